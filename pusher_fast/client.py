"""``Pusher``: the official client's API, call for call, on a fast core.

Building a request (validate, encode, encrypt, sign) is pure: the
``_*_request`` methods return a :class:`~pusher_fast._request.Request` and
touch no socket.  The public methods hand that request to the backend
(``self.http.send_request``) and return what it returns: the parsed JSON for
the default blocking transport, an awaitable for an async backend.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sized
from typing import TYPE_CHECKING, Any, Callable

import orjson

from . import _json
from . import _validation as v
from ._crypto import ChannelBoxes, parse_master_key, shared_secret
from ._fallback import FRAME_BATCH as _FRAME_BATCH
from ._fallback import FRAME_JSON as _FRAME_JSON
from ._fallback import FRAME_STRING as _FRAME_STRING
from ._fasthttp import default_backend
from ._request import GET, POST, Request
from ._signing import Signer
from ._transport import RetriesArg
from .bulk import _EventEncoder

if TYPE_CHECKING:
    from .bulk import BulkSender

_URL_PATH_RE = re.compile(r"/apps/([0-9]+)/?")
_PREFIX_CACHE_SIZE = 1024
_PLAIN_EVENT_KEYS = frozenset(("channel", "name", "data"))
_orjson_dumps = orjson.dumps


class Pusher:
    """Client for the Pusher Channels HTTP API (drop-in for ``pusher.Pusher``).

    >>> client = Pusher(app_id="123456", key="key", secret="secret", cluster="eu")
    >>> client.authenticate("private-orders", "1234.5678")["auth"][:4]
    'key:'

    Beyond the official keywords: ``max_payload_kb`` (the data limit for
    ``trigger`` and for each batch event, in KB of UTF-8 as sent; the default
    keeps the official limits, 30 KB and 10 KB), ``retries`` (a count or a
    ``urllib3.Retry``; off by default) and ``pool_manager`` (a urllib3 pool of
    your own) for the default transport.
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
        **backend_options: Any,
    ) -> None:
        self._app_id = v.validate_app_id(app_id)
        self._key = v.ensure_text(key, "key")
        self._secret = v.ensure_text(secret, "secret")
        if not isinstance(ssl, bool):
            raise TypeError(f"ssl should be a boolean, got {ssl!r}")
        self._ssl = ssl
        if host:
            self._host = v.ensure_text(host, "host")
        elif cluster:
            self._host = f"api-{v.ensure_text(cluster, 'cluster')}.pusher.com"
        else:
            self._host = "api.pusherapp.com"
        if port is not None and (not isinstance(port, int) or isinstance(port, bool)):
            raise TypeError(f"port should be an integer, got {port!r}")
        if port is not None and not 0 <= port < 65536:
            raise ValueError(f"port {port} is out of range 1-65535")
        self._port = port or (443 if ssl else 80)
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
            raise TypeError(f"timeout should be an integer or a float, got {timeout!r}")
        self._timeout = timeout
        self._json_encoder = json_encoder
        self._json_decoder = json_decoder
        self._encryption_master_key = parse_master_key(
            encryption_master_key, encryption_master_key_base64
        )
        self._boxes = ChannelBoxes(self._encryption_master_key)
        if max_payload_kb is None:
            self._trigger_limit = v.TRIGGER_MAX_DATA_BYTES
            self._batch_limit = v.BATCH_MAX_DATA_BYTES
        else:
            if (
                not isinstance(max_payload_kb, int)
                or isinstance(max_payload_kb, bool)
                or max_payload_kb <= 0
            ):
                raise ValueError(f"max_payload_kb should be a positive int, got {max_payload_kb!r}")
            self._trigger_limit = self._batch_limit = max_payload_kb * 1024

        self._use_signer(Signer(self._key, self._secret))
        self._encoder = _EventEncoder(self)
        self._fast_prefixes: dict[str, dict[str, bytes]] = {}
        self._events_path = f"/apps/{self._app_id}/events"
        self._batch_path = f"/apps/{self._app_id}/batch_events"
        self._channels_path = f"/apps/{self._app_id}/channels"
        self._base_url = f"{self.scheme}://{self._host}:{self._port}"

        if backend is None:
            self.http: Any = default_backend(self, retries=retries, **backend_options)
        else:
            if retries is not None:
                backend_options["retries"] = retries
            self.http = backend(self, **backend_options)
        self._send: Callable[[Request], Any] = self.http.send_request

    def _use_signer(self, signer: Any) -> None:
        """Sign with ``signer`` (a ``Signer`` of either path; benchmarks compare them)."""
        self._signer = signer
        events = signer.endpoint(POST, f"/apps/{self._app_id}/events")
        batch = signer.endpoint(POST, f"/apps/{self._app_id}/batch_events")
        self._sign_events = events.sign
        self._sign_batch = batch.sign
        # event(frame, prefix, data) -> (body, query): framing, clock and signing in one C call.
        self._event_events = events.event
        self._event_batch = batch.event

    # -- alternative constructors ------------------------------------------------

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Pusher:
        """A client from ``http(s)://KEY:SECRET@HOST[:PORT]/apps/APP_ID``.

        >>> Pusher.from_url("http://key:secret@127.0.0.1:6001/apps/123456").port
        6001
        """
        text = v.ensure_text(url, "url")
        parts = urllib.parse.urlsplit(text)
        match = _URL_PATH_RE.fullmatch(parts.path)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if (
            parts.scheme not in ("http", "https")
            or not parts.username
            or parts.password is None
            or not parts.hostname
            or not match
            or port == -1
        ):
            shown = re.sub(r":[^:@/]*@", ":***@", text)  # never echo the secret
            raise ValueError(
                f"Unparsable url: {shown!r}: expected http(s)://KEY:SECRET@HOST[:PORT]/apps/APP_ID"
            )
        kwargs: dict[str, Any] = {
            "key": urllib.parse.unquote(parts.username),
            "secret": urllib.parse.unquote(parts.password),
            "host": parts.hostname,
            "app_id": match.group(1),
            "ssl": parts.scheme == "https",
        }
        if port is not None:
            kwargs["port"] = port
        kwargs.update(options)
        return cls(**kwargs)

    @classmethod
    def from_env(cls, env: str = "PUSHER_URL", **options: Any) -> Pusher:
        """A client from the URL in environment variable ``env`` (see :meth:`from_url`)."""
        value = os.environ.get(env)
        if not value:
            raise ValueError(f"Environment variable {env} not found or empty")
        return cls.from_url(value, **options)

    # -- properties the official client (and its backends) expose ---------------

    @property
    def app_id(self) -> str:
        return self._app_id

    @property
    def key(self) -> str:
        return self._key

    @property
    def secret(self) -> str:
        return self._secret

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def timeout(self) -> float:
        return self._timeout

    @property
    def ssl(self) -> bool:
        return self._ssl

    @property
    def scheme(self) -> str:
        return "https" if self._ssl else "http"

    @property
    def base_url(self) -> str:
        return self._base_url

    # -- encoding helpers -------------------------------------------------------

    def _data_to_string(self, data: Any) -> str:
        if isinstance(data, str):
            return data if type(data) is str else str(data)
        if self._json_encoder is not None:
            return _json.dumps_compat(data, self._json_encoder, ensure_ascii=False)
        return _json.dumps(data)

    def _dumps_text(self, value: Any) -> str:
        """channel_data / user_data / encrypted payload JSON, as the official lib writes it."""
        if self._json_encoder is not None:
            return _json.dumps_compat(value, self._json_encoder, ensure_ascii=True)
        return _json.dumps(value)

    def _encrypt(self, channel: str, data: str) -> str:
        payload = self._boxes.encrypt(channel, data)
        if self._json_encoder is not None:
            return json.dumps(payload, ensure_ascii=False)
        return _json.dumps(payload)

    def _body(self, params: dict[str, Any]) -> bytes:
        if self._json_encoder is not None:
            return json.dumps(params).encode("utf-8")
        return _json.dumps_bytes(params)

    def _signed(self, method: str, path: str, extra: str, params: dict[str, Any]) -> Request:
        body = self._body(params) if method == POST else b""
        query = self._signer.sign_query(method, path, extra, body, round(time.time()))
        return Request(self, method, path, params, body, query)

    # -- request builders (pure) --------------------------------------------------

    def _trigger_request(
        self,
        channels: Any,
        event_name: Any,
        data: Any,
        socket_id: Any = None,
        info: Any = None,
    ) -> Request:
        # The common case (one known plain channel, no options, str or
        # dict/list data, default JSON) takes a short path; anything else, and
        # anything it is unsure of, takes the general one below.
        if socket_id is None and info is None and type(channels) is str and type(event_name) is str:
            by_name = self._fast_prefixes.get(channels)
            prefix = by_name.get(event_name) if by_name is not None else None
            if prefix is None:
                prefix = self._fast_prefix(channels, event_name)
            if prefix:
                kind = type(data)
                if kind is dict or kind is list:
                    try:
                        text = _orjson_dumps(data, option=_json.OPTIONS)
                    except TypeError:  # orjson's refusal: the general path explains
                        text = b"null"
                    if b"null" not in text and len(text) <= self._trigger_limit:
                        # The data goes in as a JSON string: prefix "escaped text"}
                        body, query = self._event_events(_FRAME_STRING, prefix, text)
                        return Request(self, POST, self._events_path, None, body, query)
                elif kind is str and len(data) * 4 <= self._trigger_limit:
                    body, query = self._event_events(_FRAME_JSON, prefix, _orjson_dumps(data))
                    return Request(self, POST, self._events_path, None, body, query)
        if isinstance(channels, str):
            channels = [channels]
        elif isinstance(channels, (Mapping, bytes, bytearray)) or not isinstance(
            channels, (Sized, Iterable)
        ):
            raise TypeError(
                f"channels should be a channel name or a list of channel names, got "
                f"{type(channels).__name__}"
            )
        count = len(channels) if isinstance(channels, Sized) else len(channels := list(channels))
        if count == 0:
            raise ValueError("No channels given: trigger needs 1 to 100 channels")
        if count > v.MAX_CHANNELS_PER_TRIGGER:
            raise ValueError(
                f"Too many channels: {count} given; the limit is {v.MAX_CHANNELS_PER_TRIGGER}"
            )
        channels = [v.validate_channel(c) for c in channels]
        if type(event_name) is not str or len(event_name) > v.MAX_EVENT_NAME_LENGTH:
            event_name = v.validate_event_name(event_name)
        data = self._data_to_string(data)
        first = channels[0]
        if first.startswith(v.ENCRYPTED_PREFIX) or (
            count > 1 and any(c.startswith(v.ENCRYPTED_PREFIX) for c in channels)
        ):
            if count > 1:
                raise ValueError(
                    "You cannot trigger to multiple channels when using encrypted channels: "
                    f"{channels!r:.300}"
                )
            data = self._encrypt(first, data)
        v.check_data_size(data, self._trigger_limit, "")
        params: dict[str, Any] = {"name": event_name, "channels": channels, "data": data}
        if socket_id:
            params["socket_id"] = v.validate_socket_id(socket_id)
        if info:
            params["info"] = v.join_attributes(info)
        return self._signed(POST, self._events_path, "", params)

    def _fast_prefix(self, channel: Any, event_name: Any) -> bytes:
        """``{"name":...,"channels":[...],"data":`` for a plain channel and event name
        the fast path may take, else b"" (cached either way, bounded)."""
        prefix = b""
        if (
            type(event_name) is str
            and len(event_name) <= v.MAX_EVENT_NAME_LENGTH
            and self._json_encoder is None
            and not channel.startswith(v.ENCRYPTED_PREFIX)
            and v.channel_is_valid(channel)
        ):
            # Channel names are of an alphabet JSON needs no escapes for.
            prefix = (
                b'{"name":'
                + _json.dumps_bytes(event_name)
                + b',"channels":["'
                + channel.encode("ascii")
                + b'"],"data":'
            )
        if len(self._fast_prefixes) >= _PREFIX_CACHE_SIZE:
            self._fast_prefixes.clear()
        if type(event_name) is str:
            self._fast_prefixes.setdefault(channel, {})[event_name] = prefix
        return prefix

    def _batch_request(self, batch: Any, already_encoded: bool = False) -> Request:
        if isinstance(batch, (str, bytes, Mapping)) or not isinstance(batch, Iterable):
            raise TypeError(f"batch should be a list of event dicts, got {type(batch).__name__}")
        if self._json_encoder is not None:  # the official library's exact bytes
            events = []
            for index, event in enumerate(batch):
                if not isinstance(event, Mapping):
                    raise TypeError(f"batch[{index}] should be a dict, got {type(event).__name__}")
                events.append(self._batch_event(index, event, already_encoded))
            body = self._body({"batch": events})
            params: dict[str, Any] | None = {"batch": events}
        else:
            # Each event becomes its JSON fragment once, as the bulk sender's do.
            fragments = [
                self._batch_fragment(index, event, already_encoded)
                for index, event in enumerate(batch)
            ]
            params = None  # Request.params parses the body when asked
            body, query = self._event_batch(_FRAME_BATCH, b'{"batch":[', b",".join(fragments))
            return Request(self, POST, self._batch_path, params, body, query)
        return Request(
            self, POST, self._batch_path, params, body, self._sign_batch(body, round(time.time()))
        )

    def _batch_fragment(self, index: int, event: Any, already_encoded: bool) -> bytes:
        if (
            type(event) is dict
            and len(event) == 3
            and _PLAIN_EVENT_KEYS.issuperset(event)
            and type(event["channel"]) is str  # one channel: nothing to fan out
        ):
            data = event["data"]
            if not already_encoded or type(data) is str:
                try:
                    return self._encoder.encode(event["channel"], event["name"], data, None)[0][0]
                except (ValueError, TypeError):
                    pass  # the general path below words the error with the event's index
        if not isinstance(event, Mapping):
            raise TypeError(f"batch[{index}] should be a dict, got {type(event).__name__}")
        return _json.dumps_bytes(self._batch_event(index, event, already_encoded))

    def _batch_event(self, index: int, event: Mapping[str, Any], already_encoded: bool) -> Any:
        for field in ("channel", "name", "data"):
            if field not in event:
                raise KeyError(
                    f"batch[{index}] has no {field!r}: each event needs channel, name, data"
                )
        channel = v.validate_channel(event["channel"])
        name = v.validate_event_name(event["name"])
        data = event["data"]
        if already_encoded:
            if not isinstance(data, str):
                raise TypeError(
                    f"batch[{index}]['data'] should be a string when already_encoded=True, "
                    f"got {type(data).__name__}"
                )
        else:
            data = self._data_to_string(data)
        if channel.startswith(v.ENCRYPTED_PREFIX):
            data = self._encrypt(channel, data)
        v.check_data_size(data, self._batch_limit, f" of batch[{index}]")
        out = dict(event)  # the caller's dict is never modified
        out["channel"] = channel
        out["name"] = name
        out["data"] = data
        # Optional fields that are empty are left out, as trigger() does.
        if event.get("socket_id"):
            out["socket_id"] = v.validate_socket_id(event["socket_id"])
        else:
            out.pop("socket_id", None)
        if event.get("info"):
            out["info"] = v.join_attributes(event["info"])
        else:
            out.pop("info", None)
        return out

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
            POST, f"/apps/{self._app_id}/users/{user_id}/terminate_connections", "", {}
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
    ) -> Any:
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
    ) -> Any:
        """Trigger several events in one request (``{"channel","name","data"}`` dicts).

        The input is not modified.  Events on ``private-encrypted-`` channels
        are encrypted one by one.  With ``already_encoded=True`` each ``data``
        must already be a string.
        """
        return self._send(self._batch_request(batch, already_encoded))

    def channels_info(
        self, prefix_filter: str | None = None, attributes: str | Iterable[str] = ()
    ) -> Any:
        """Occupied channels, optionally those starting with ``prefix_filter``."""
        return self._send(self._channels_info_request(prefix_filter, attributes))

    def channel_info(self, channel: str, attributes: str | Iterable[str] = ()) -> Any:
        """State of one channel: ``{"occupied": ..., ...attributes}``."""
        return self._send(self._channel_info_request(channel, attributes))

    def users_info(self, channel: str) -> Any:
        """Users on a presence channel: ``{"users": [{"id": ...}]}``."""
        return self._send(self._users_info_request(channel))

    def send_to_user(self, user_id: str, event_name: str, data: Any) -> Any:
        """Trigger on the user's ``#server-to-user-`` channel (user sign-in required)."""
        user_id = v.validate_user_id(user_id)
        return self.trigger([v.SERVER_TO_USER_PREFIX + user_id], event_name, data)

    def terminate_user_connections(self, user_id: str) -> Any:
        """Disconnect every connection of a signed-in user."""
        return self._send(self._terminate_request(user_id))

    def bulk(self, **options: Any) -> BulkSender:
        """A :class:`~pusher_fast.bulk.BulkSender` on this client (use it as a context manager).

        >>> with client.bulk(concurrency=4) as sender:  # doctest: +SKIP
        ...     sender.add("orders", "created", {"id": 1})
        """
        from . import bulk

        return bulk.BulkSender(self, **options)

    def authenticate(self, channel: str, socket_id: str, custom_data: Any = None) -> dict[str, str]:
        """Authorize ``socket_id`` to subscribe to a private, presence or encrypted channel.

        Presence channels need ``custom_data`` with a ``user_id`` (and optional
        ``user_info``).  Encrypted channels also get the ``shared_secret``.

        >>> client.authenticate("presence-room", "1.2", {"user_id": "7"})  # doctest: +SKIP
        {'auth': 'key:...', 'channel_data': '{"user_id":"7"}'}
        """
        # Private and presence channels: C checks the socket id and channel and
        # signs in one call; None from it means "invalid", explained below.
        if (
            type(channel) is str
            and type(socket_id) is str
            and not channel.startswith(v.ENCRYPTED_PREFIX)
        ):
            if not custom_data:
                if not channel.startswith(v.PRESENCE_PREFIX):
                    auth = self._signer.channel_auth(socket_id, channel, "")
                    if auth is not None:
                        return {"auth": auth}
            elif not channel.startswith(v.PRESENCE_PREFIX) or (
                isinstance(custom_data, Mapping) and "user_id" in custom_data
            ):
                signed_data = self._dumps_text(custom_data)
                auth = self._signer.channel_auth(socket_id, channel, signed_data)
                if auth is not None:
                    return {"auth": auth, "channel_data": signed_data}
        channel = v.validate_subscribable_channel(channel)
        socket_id = v.validate_socket_id(socket_id)
        channel_data: str | None = None
        if channel.startswith(v.PRESENCE_PREFIX):
            if not isinstance(custom_data, Mapping) or "user_id" not in custom_data:
                raise ValueError(
                    f"Presence channel {channel!r} needs custom_data with a 'user_id', "
                    f"got {custom_data!r:.200}"
                )
        if custom_data:
            channel_data = self._dumps_text(custom_data)
            to_sign = f"{socket_id}:{channel}:{channel_data}"
        else:
            to_sign = f"{socket_id}:{channel}"
        response = {"auth": self._key + ":" + self._signer.hmac_hex(to_sign.encode("utf-8"))}
        if channel.startswith(v.ENCRYPTED_PREFIX):
            secret = shared_secret(channel, self._encryption_master_key)
            response["shared_secret"] = base64.b64encode(secret).decode("ascii")
        if channel_data is not None:
            response["channel_data"] = channel_data
        return response

    authorize_channel = authenticate

    def authenticate_user(
        self, socket_id: str, user_data: Mapping[str, Any] | None = None
    ) -> dict[str, str]:
        """Sign in ``socket_id`` as the user in ``user_data`` (needs a string ``id``)."""
        v.validate_user_data(user_data)
        encoded = self._dumps_text(user_data)
        if type(socket_id) is str:
            auth = self._signer.user_auth(socket_id, encoded)
            if auth is not None:
                return {"auth": auth, "user_data": encoded}
        socket_id = v.validate_socket_id(socket_id)  # raises: it is not a valid socket id
        to_sign = f"{socket_id}::user::{encoded}".encode()
        return {"auth": self._key + ":" + self._signer.hmac_hex(to_sign), "user_data": encoded}

    def validate_webhook(
        self, key: str, signature: str, body: str | bytes, *, decrypt: bool = False
    ) -> dict[str, Any] | None:
        """The webhook's payload if ``key`` is ours and ``signature`` is valid, else None.

        The signature is checked in constant time over the raw body; stale
        payloads (``time_ms`` more than 5 minutes away) are refused as the
        official library does.  ``decrypt=True`` replaces the ``data`` of
        events on encrypted channels with the plaintext.
        """
        try:
            key = v.ensure_text(key, "key")
            signature = v.ensure_text(signature, "signature")
        except ValueError:  # bytes that are not UTF-8: not our key, not a signature
            return None
        if isinstance(body, str):
            try:
                raw = body.encode("utf-8")
            except UnicodeEncodeError:
                return None
        elif isinstance(body, (bytes, bytearray, memoryview)):
            raw = bytes(body)
        else:
            raise TypeError(f"body should be a string or bytes, got {type(body).__name__}")
        if key != self._key:
            return None
        if not self._signer.verify(raw, signature):
            return None
        try:
            if self._json_decoder is not None:
                payload = json.loads(raw.decode("utf-8"), cls=self._json_decoder)
            else:
                payload = _json.loads(raw)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError included
            return None
        if not isinstance(payload, dict):
            return None
        time_ms = payload.get("time_ms")
        if not time_ms or not isinstance(time_ms, (int, float)) or isinstance(time_ms, bool):
            return None
        if abs(time.time() * 1000 - time_ms) > 300000:
            return None
        if decrypt and not self._decrypt_events(payload):
            return None
        return payload

    def _decrypt_events(self, payload: dict[str, Any]) -> bool:
        events = payload.get("events")
        if not isinstance(events, list):
            return True
        for event in events:
            if not isinstance(event, dict):
                continue
            channel = event.get("channel")
            data = event.get("data")
            if not (isinstance(channel, str) and channel.startswith(v.ENCRYPTED_PREFIX)):
                continue
            if not isinstance(data, str):
                continue
            try:
                sealed = _json.loads(data)
                event["data"] = self._boxes.decrypt(channel, sealed["nonce"], sealed["ciphertext"])
            except (ValueError, KeyError, TypeError):
                return False
        return True
