"""``Pusher``: the official client's API, call for call, on a fast core.

Building a request is pure (``_events``, ``_auth``): the ``_*_request``
methods return a :class:`~pusher_fast._request.Request` and touch no socket.
The public methods hand it to the backend (``self.http.send_request``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Callable, cast

from . import _auth_body, _config, _webhook
from . import _validation as v
from ._auth import Authorizer
from ._crypto import ChannelBoxes
from ._events import EventEncoder, EventSettings, event_settings
from ._json import loads as _json_loads
from ._request import GET, POST, Request
from ._retry import RetriesArg
from ._signing import Signer
from ._webhook import Webhook
from .errors import PusherWebhookError
from .transports import default_backend
from .types import (
    BatchResult,
    ChannelAuth,
    ChannelInfo,
    ChannelsInfo,
    TerminateResult,
    TriggerResult,
    UserAuth,
    UsersInfo,
    WebhookPayload,
)

if TYPE_CHECKING:
    from .bulk import BulkSender


class Pusher:
    """Client for the Pusher Channels HTTP API (drop-in for ``pusher.Pusher``).

    >>> client = Pusher(app_id="123456", key="key", secret="secret", cluster="eu")
    >>> client.authenticate("private-orders", "1234.5678")["auth"][:4]
    'key:'

    Beyond the official keywords: ``max_payload_kb`` (the data limit for
    ``trigger`` and for each batch event, in KB of UTF-8 as sent; the default
    keeps the official limits, 30 KB and 10 KB), ``retries`` (a count or a
    ``urllib3.Retry``; off by default), ``at_least_once`` (also retry outcomes
    that may have been processed: a read timeout, a connection lost after the
    request was sent; off by default: see the README's delivery policy) and
    ``pool_manager`` (a urllib3 pool of your own) for the default transport.

    The API methods are annotated with the shapes of the answers
    (:mod:`pusher_fast.types`).  A custom ``backend=`` returns whatever its
    ``send_request`` returns (a coroutine, a future...), as in the official
    library: the annotations describe the default transports.
    """

    def __init__(
        self,
        app_id: str | int,
        key: str,
        secret: str,
        ssl: bool = True,
        host: str | None = None,
        port: int | None = None,
        timeout: float = 5,
        cluster: str | None = None,
        encryption_master_key: str | bytes | None = None,
        encryption_master_key_base64: str | bytes | None = None,
        json_encoder: type[json.JSONEncoder] | None = None,
        json_decoder: type[json.JSONDecoder] | None = None,
        backend: Callable[..., Any] | None = None,
        *,
        max_payload_kb: int | None = None,
        retries: RetriesArg = None,
        at_least_once: bool = False,
        **backend_options: Any,
    ) -> None:
        self._config = config = _config.build_config(
            app_id, key, secret, ssl, host, port, timeout, cluster,
            encryption_master_key, encryption_master_key_base64,
            json_encoder, json_decoder, max_payload_kb,
        )  # fmt: skip
        self._base_url = config.base_url  # read for every request sent
        self._boxes = ChannelBoxes(config.master_key)
        self._channels_path = f"/apps/{config.app_id}/channels"
        self._use_signer(Signer(config.key, config.secret))

        if not isinstance(at_least_once, bool):
            raise TypeError(f"at_least_once should be a bool, got {at_least_once!r}")
        if backend is None:
            self.http: Any = default_backend(
                self, retries=retries, at_least_once=at_least_once, **backend_options
            )
        else:
            if retries is not None:
                backend_options["retries"] = retries
            if at_least_once:
                backend_options["at_least_once"] = at_least_once
            self.http = backend(self, **backend_options)
        self._send: Callable[[Request], Any] = self.http.send_request

    def _use_signer(self, signer: Any) -> None:
        """Sign with ``signer`` (a ``Signer`` of either path; benchmarks compare them)."""
        config = self._config
        self._signer = signer
        settings = event_settings(
            self, signer, config.app_id, config.trigger_limit, config.batch_limit,
            config.json_encoder, self._boxes,
        )  # fmt: skip
        self._events = EventEncoder(settings)
        # Bound here, not delegated: a trigger costs no extra call.
        self._trigger_request: Callable[..., Request] = self._events.trigger
        self._batch_request: Callable[..., Request] = self._events.batch
        self._auth = Authorizer(signer, config.key, config.master_key, config.json_encoder)

    @property
    def event_settings(self) -> EventSettings:
        """How this client encodes and signs events (for the bulk senders)."""
        return self._events.settings

    # -- alternative constructors ------------------------------------------------

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Pusher:
        """A client from ``http(s)://KEY:SECRET@HOST[:PORT]/apps/APP_ID``.

        >>> Pusher.from_url("http://key:secret@127.0.0.1:6001/apps/123456").port
        6001
        """
        return cls(**{**_config.url_options(url), **options})

    @classmethod
    def from_env(cls, env: str = "PUSHER_URL", **options: Any) -> Pusher:
        """A client from the URL in environment variable ``env`` (see :meth:`from_url`)."""
        return cls.from_url(_config.env_url(env), **options)

    # -- properties the official client (and its backends) expose ---------------

    @property
    def app_id(self) -> str:
        return self._config.app_id

    @property
    def key(self) -> str:
        return self._config.key

    @property
    def secret(self) -> str:
        return self._config.secret

    @property
    def host(self) -> str:
        return self._config.host

    @property
    def port(self) -> int:
        return self._config.port

    @property
    def timeout(self) -> float:
        return self._config.timeout

    @property
    def ssl(self) -> bool:
        return self._config.ssl

    @property
    def scheme(self) -> str:
        return "https" if self._config.ssl else "http"

    @property
    def base_url(self) -> str:
        return self._base_url

    # -- request builders (pure) --------------------------------------------------

    def _signed(self, method: str, path: str, extra: str, params: dict[str, Any]) -> Request:
        body = self._events.body(params) if method == POST else b""
        query = self._signer.sign_query(method, path, extra, body, round(time.time()))
        return Request(self, method, path, params, body, query)

    def _channels_info_request(self, prefix_filter: Any = None, attributes: Any = ()) -> Request:
        params: dict[str, str] = {}
        if prefix_filter:
            params["filter_by_prefix"] = v.validate_prefix(prefix_filter)
        if attributes:
            params["info"] = v.join_attributes(attributes)
        return self._get(self._channels_path, params)

    def _channel_info_request(self, channel: Any, attributes: Any = ()) -> Request:
        channel = v.validate_subscribable_channel(channel)
        params: dict[str, str] = {}
        if attributes:
            params["info"] = v.join_attributes(attributes)
        return self._get(f"{self._channels_path}/{channel}", params)

    def _users_info_request(self, channel: Any) -> Request:
        channel = v.validate_subscribable_channel(channel)
        return self._get(f"{self._channels_path}/{channel}/users", {})

    def _terminate_request(self, user_id: Any) -> Request:
        user_id = v.validate_user_id(user_id)
        return self._signed(
            POST, f"/apps/{self._config.app_id}/users/{user_id}/terminate_connections", "", {}
        )

    def _get(self, path: str, params: dict[str, str]) -> Request:
        extra = "&".join(k + "=" + params[k] for k in sorted(params))
        return self._signed(GET, path, extra, params)

    # -- the official API -----------------------------------------------------------

    def trigger(
        self,
        channels: str | Iterable[str],
        event_name: str,
        data: Any,
        socket_id: str | None = None,
        info: str | Iterable[str] | None = None,
    ) -> TriggerResult:
        """Trigger ``event_name`` with ``data`` on one channel or up to 100.

        ``data`` that is not a ``str`` is JSON-encoded.  ``socket_id`` excludes
        that connection; ``info`` (e.g. ``["subscription_count"]``) asks for
        channel attributes, returned as ``{"channels": {...}}``.

        >>> client.trigger("orders", "created", {"id": 1})  # doctest: +SKIP
        {}
        """
        return self._send(self._trigger_request(channels, event_name, data, socket_id, info))

    def trigger_batch(
        self, batch: Iterable[Mapping[str, Any]] = (), already_encoded: bool = False
    ) -> BatchResult:
        """Trigger several events in one request (``{"channel","name","data"}`` dicts).

        The input is not modified.  Events on ``private-encrypted-`` channels
        are encrypted one by one.  With ``already_encoded=True`` each ``data``
        must already be a string.
        """
        return self._send(self._batch_request(batch, already_encoded))

    def channels_info(
        self, prefix_filter: str | None = None, attributes: str | Iterable[str] = ()
    ) -> ChannelsInfo:
        """Occupied channels, optionally those starting with ``prefix_filter``."""
        return self._send(self._channels_info_request(prefix_filter, attributes))

    def channel_info(self, channel: str, attributes: str | Iterable[str] = ()) -> ChannelInfo:
        """State of one channel: ``{"occupied": ..., ...attributes}``."""
        return self._send(self._channel_info_request(channel, attributes))

    def users_info(self, channel: str) -> UsersInfo:
        """Users on a presence channel: ``{"users": [{"id": ...}]}``."""
        return self._send(self._users_info_request(channel))

    def send_to_user(self, user_id: str, event_name: str, data: Any) -> TriggerResult:
        """Trigger on the user's ``#server-to-user-`` channel (user sign-in required)."""
        user_id = v.validate_user_id(user_id)
        return self.trigger([v.SERVER_TO_USER_PREFIX + user_id], event_name, data)

    def terminate_user_connections(self, user_id: str) -> TerminateResult:
        """Disconnect every connection of a signed-in user."""
        return self._send(self._terminate_request(user_id))

    def close(self) -> None:
        """Close the transport's pooled connections (a backend without ``close()`` is left alone).

        The client stays usable: a later request opens a new connection.
        ``with Pusher(...) as client:`` closes it on leaving the block.
        """
        close = getattr(self.http, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> Pusher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def bulk(self, **options: Any) -> BulkSender:
        """A :class:`~pusher_fast.bulk.BulkSender` on this client (use it as a context manager).

        >>> with client.bulk(concurrency=4) as sender:  # doctest: +SKIP
        ...     sender.add("orders", "created", {"id": 1})
        """
        from . import bulk

        return bulk.BulkSender(self, **options)

    def authenticate(self, channel: str, socket_id: str, custom_data: Any = None) -> ChannelAuth:
        """Authorize ``socket_id`` to subscribe to a private, presence or encrypted channel.

        Presence channels need ``custom_data`` with a ``user_id`` (and optional
        ``user_info``).  Encrypted channels also get the ``shared_secret``.

        >>> client.authenticate("presence-room", "1.2", {"user_id": "7"})  # doctest: +SKIP
        {'auth': 'key:...', 'channel_data': '{"user_id":"7"}'}
        """
        return self._auth.channel(channel, socket_id, custom_data)

    authorize_channel = authenticate

    def authenticate_user(
        self, socket_id: str, user_data: Mapping[str, Any] | None = None
    ) -> UserAuth:
        """Sign in ``socket_id`` as the user in ``user_data`` (needs a string ``id``)."""
        return self._auth.user(socket_id, user_data)

    def validate_webhook(
        self, key: str, signature: str, body: str | bytes, *, decrypt: bool = False
    ) -> WebhookPayload | None:
        """The webhook's payload if ``key`` is ours and ``signature`` is valid, else None.

        The signature is checked in constant time over the raw body; stale
        payloads (``time_ms`` more than 5 minutes away) are refused as the
        official library does.  ``decrypt=True`` replaces the ``data`` of
        events on encrypted channels with the plaintext.  :meth:`webhook`
        makes the same checks and says which one failed.
        """
        if not decrypt and key.__class__ is str and signature.__class__ is str:
            payload = self._webhook_fast(key, signature, body)
            if payload is not None:
                return cast("WebhookPayload", payload)
        try:
            key = v.ensure_text(key, "key")
            signature = v.ensure_text(signature, "signature")
        except ValueError:  # bytes that are not UTF-8: not our key, not a signature
            return None
        try:
            raw = _webhook.raw_body(body)
            tokens = self._webhook_tokens(None)
            payload = _webhook.verify(tokens, key, signature, raw, self._config.json_decoder)
            if decrypt:
                _webhook.decrypt_events(payload, self._boxes)
        except PusherWebhookError:
            return None
        # Checked: a JSON object with a numeric time_ms; the rest is as Pusher signed it.
        return cast("WebhookPayload", payload)

    def _webhook_fast(self, key: str, signature: str, body: Any) -> dict[str, Any] | None:
        """``validate_webhook``'s common case (our key, a bytes or str body, default JSON) in
        a few steps: the payload when every check passes, else None and the general path
        decides (it makes the same checks, so it gives the same answer)."""
        config = self._config
        if key != config.key or config.json_decoder is not None:
            return None
        if body.__class__ is bytes:
            raw = body
        elif body.__class__ is str:
            try:
                raw = body.encode("utf-8")
            except UnicodeEncodeError:
                return None
        else:
            return None
        if not self._signer.verify(raw, signature):
            return None
        try:
            payload = _json_loads(raw)
        except ValueError:
            return None
        if payload.__class__ is not dict:
            return None
        time_ms = payload.get("time_ms")
        if (
            time_ms
            and time_ms.__class__ in (int, float)
            and abs(time.time() * 1000 - time_ms) <= _webhook.MAX_WEBHOOK_AGE_MS
        ):
            return payload
        return None

    # -- server side: raw request bodies and typed webhooks -------------------------

    def authorize_channel_from_body(
        self, body: bytes | str | Mapping[str, Any], custom_data: Any = None
    ) -> ChannelAuth:
        """:meth:`authenticate` for the body pusher-js posted (``socket_id``, ``channel_name``).

        ``body`` is the raw request body (form-encoded or JSON, bytes or str)
        or an already-parsed mapping.  A body without those fields, with one
        repeated, malformed or over 16 KB raises ValueError naming the problem.

        >>> client.authorize_channel_from_body(b"socket_id=1.2&channel_name=private-a")
        ... # doctest: +SKIP
        {'auth': 'key:...'}
        """
        return self._auth.channel_from_body(body, custom_data)

    def authenticate_user_from_body(
        self, body: bytes | str | Mapping[str, Any], user_data: Mapping[str, Any]
    ) -> UserAuth:
        """:meth:`authenticate_user` for the body pusher-js posted to the user-auth endpoint."""
        return self.authenticate_user(_auth_body.parse_user_body(body), user_data)

    def webhook(
        self,
        headers: Any,
        body: bytes | str,
        *,
        extra_tokens: Iterable[Mapping[str, str]] | None = None,
    ) -> Webhook:
        """The verified, typed :class:`~pusher_fast.Webhook` of a webhook request.

        ``headers`` is any mapping of the request's headers (looked up
        case-insensitively), ``body`` the raw body.  ``extra_tokens``
        (``[{"key": ..., "secret": ...}]``) are also accepted, for rotating
        credentials.  Event data on encrypted channels is decrypted when the
        client has a master key.  Anything invalid raises
        :class:`~pusher_fast.errors.PusherWebhookError`; its ``reason`` says why.
        """
        raw = _webhook.raw_body(body)
        payload = _webhook.verify(
            self._webhook_tokens(extra_tokens),
            _webhook.header(headers, _webhook.KEY_HEADER),
            _webhook.header(headers, _webhook.SIGNATURE_HEADER),
            raw,
            self._config.json_decoder,
        )
        boxes = self._boxes if self._config.master_key is not None else None
        return _webhook.to_webhook(payload, boxes)

    def _webhook_tokens(
        self, extra_tokens: Iterable[Mapping[str, str]] | None
    ) -> list[_webhook.Token]:
        own = self.__dict__.get("_own_token")
        if own is None or own.signer is not self._signer:  # built once per signer
            own = self.__dict__["_own_token"] = _webhook.Token(self._config.key, self._signer)
        tokens = [own]
        if extra_tokens is not None:
            # A Signer per rotated secret, kept (bounded) so each webhook does not re-derive it.
            cache: dict[tuple[str, str], Any] = self.__dict__.setdefault("_extra_signers", {})
            for pair in _webhook.tokens_from(extra_tokens):
                signer = cache.get(pair)
                if signer is None:
                    if len(cache) >= 16:
                        cache.clear()
                    signer = cache[pair] = Signer(*pair)
                tokens.append(_webhook.Token(pair[0], signer))
        return tokens
