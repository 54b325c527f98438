"""The local Pusher Channels HTTP API without the HTTP: routing, authentication, limits, state.

``Core.handle(method, target, body)`` takes one request as it arrived (method, request target
with its query string, raw body) and returns a :class:`Reply` (status, body, headers). The HTTP
layer in ``_server`` only moves bytes; everything the service decides is decided here, so it
can be tested and reasoned about without sockets.

The rules are written out here on purpose rather than imported from ``pusher_fast._validation``:
this server is the independent check of the client, so a mistake in the client's rules must
not silently become the server's rule too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import http
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Optional
from urllib.parse import unquote, unquote_plus

import orjson

from .._signing import Signer, md5_hex

__all__ = [
    "App",
    "Core",
    "Limits",
    "RecordedEvent",
    "RecordedRequest",
    "Reply",
]

# -- protocol constants --------------------------------------------------------------------------

MAX_CHANNEL_LENGTH = 200
MAX_EVENT_NAME_LENGTH = 200
MAX_USER_ID_LENGTH = 200
#: Largest request body read at all; bigger requests get 413 before the body is read.
MAX_REQUEST_BYTES = 1024 * 1024

SERVER_TO_USER_PREFIX = "#server-to-user-"
PRESENCE_PREFIX = "presence-"
ENCRYPTED_PREFIX = "private-encrypted-"
INFO_ATTRIBUTES = frozenset(("user_count", "subscription_count"))
EMPTY_BODY_MD5 = hashlib.md5(b"").hexdigest()

# ASCII classes on purpose: \w and \d would admit other scripts' letters and digits.
_CHANNEL_RE = re.compile(r"[-a-zA-Z0-9_=@,.;]+")
_SOCKET_ID_RE = re.compile(r"[0-9]+\.[0-9]+")
_APP_PATH_RE = re.compile(r"/apps/([^/]+)(/.*)?")
_TERMINATE_RE = re.compile(r"/users/([^/]+)/terminate_connections")

_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"


# -- public value types --------------------------------------------------------------------------


@dataclass(frozen=True)
class App:
    """One app the server serves: ``App("123456", "key", "secret")``."""

    app_id: str
    key: str
    secret: str
    disabled: bool = False
    encryption_master_key_base64: Optional[str] = None

    def __post_init__(self) -> None:
        for field_name in ("app_id", "key", "secret"):
            value = getattr(self, field_name)
            if not isinstance(value, str) or not value:
                shown = type(value).__name__ if field_name == "secret" else repr(value)
                raise ValueError(f"App.{field_name} must be a non-empty string, got {shown}")
        if "/" in self.app_id or "?" in self.app_id:
            raise ValueError(f"App.app_id {self.app_id!r} cannot hold '/' or '?'")
        if self.encryption_master_key_base64 is not None:
            _decode_master_key(self.encryption_master_key_base64)


@dataclass(frozen=True)
class Limits:
    """What the service enforces; the defaults are the multi-tenant clusters' limits."""

    max_timestamp_skew: float = 600
    max_payload_bytes: int = 10240
    max_batch_size: int = 10
    max_channels: int = 100


@dataclass(frozen=True)
class RecordedEvent:
    """One event the server accepted, once per channel it was triggered on."""

    channel: str
    name: str
    data: str
    socket_id: Optional[str] = None
    time: float = 0.0
    #: The plaintext of an encrypted-channel event, when the server holds the app's master key
    #: and the data decrypts; otherwise None.
    decrypted_data: Optional[str] = None
    app_id: str = ""

    @property
    def user_id(self) -> Optional[str]:
        """The user of a send-to-user event (channel ``#server-to-user-{id}``), else None."""
        if self.channel.startswith(SERVER_TO_USER_PREFIX):
            return self.channel[len(SERVER_TO_USER_PREFIX) :]
        return None

    def json(self) -> Any:
        """The event data parsed as JSON (the decrypted data for encrypted channels)."""
        text = self.decrypted_data if self.decrypted_data is not None else self.data
        return orjson.loads(text)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server answered (``status`` 0: the connection was reset on purpose)."""

    method: str
    path: str
    status: int
    query: str = ""
    body: bytes = b""
    error: Optional[str] = None
    time: float = 0.0


@dataclass(frozen=True)
class Reply:
    """What to answer: status, body, content type and extra headers."""

    status: int
    body: bytes = b"{}"
    content_type: str = _JSON
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass(frozen=True)
class Fault:
    """One injected fault: ``fail`` (answer ``status``), ``stall`` (wait), ``reset`` (drop)."""

    kind: str
    status: int = 500
    retry_after: Optional[str] = None
    seconds: float = 0.0


# -- internals -----------------------------------------------------------------------------------


class ApiError(Exception):
    """A request the service refuses: status code and the explanation sent as the body."""

    def __init__(self, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class _Member:
    __slots__ = ("connections", "user_info")

    def __init__(self, user_info: Any) -> None:
        self.user_info = user_info
        self.connections = 0


class _Channel:
    __slots__ = ("members", "subscriptions")

    def __init__(self) -> None:
        self.subscriptions = 0  # connections that are not presence members
        self.members: dict[str, _Member] = {}

    def subscription_count(self) -> int:
        return self.subscriptions + sum(m.connections for m in self.members.values())

    def user_count(self) -> int:
        return len(self.members)


class _AppState:
    __slots__ = ("app", "channels", "disabled", "master_key", "signer")

    def __init__(self, app: App) -> None:
        self.app = app
        self.signer = Signer(app.key, app.secret)
        self.disabled = app.disabled
        self.master_key = (
            _decode_master_key(app.encryption_master_key_base64)
            if app.encryption_master_key_base64 is not None
            else None
        )
        self.channels: dict[str, _Channel] = {}


def _decode_master_key(value: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("encryption_master_key_base64 is not valid base64") from None
    if len(key) != 32:
        raise ValueError(
            f"encryption_master_key_base64 must decode to 32 bytes, got {len(key)} bytes"
        )
    return key


def _decrypt(master_key: bytes, channel: str, data: str) -> Optional[str]:
    """Open an end-to-end encrypted event's data, or None when it does not open."""
    from nacl.exceptions import CryptoError
    from nacl.secret import SecretBox

    try:
        doc = orjson.loads(data)
        nonce = base64.b64decode(doc["nonce"], validate=True)
        ciphertext = base64.b64decode(doc["ciphertext"], validate=True)
        key = hashlib.sha256(channel.encode("utf-8") + master_key).digest()
        plain: bytes = SecretBox(key).decrypt(ciphertext, nonce)
        return plain.decode("utf-8")
    except (ValueError, KeyError, TypeError, CryptoError):
        return None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def _channel_problem(channel: Any) -> Optional[str]:
    if not isinstance(channel, str):
        return f"channel names must be strings, got {type(channel).__name__}"
    if len(channel) > MAX_CHANNEL_LENGTH:
        return (
            f"Channel name too long: {len(channel)} characters, "
            f"the limit is {MAX_CHANNEL_LENGTH}: {channel[:40]!r}..."
        )
    name = channel
    if channel.startswith(SERVER_TO_USER_PREFIX):
        name = channel[len(SERVER_TO_USER_PREFIX) :]
    if not _CHANNEL_RE.fullmatch(name):
        return (
            f"Invalid channel name {channel!r}: use 1-{MAX_CHANNEL_LENGTH} characters "
            "of a-z A-Z 0-9 and -_=@,.;"
        )
    return None


def _check_count(count: int, limit: int, too_many: str) -> None:
    """400 for a request carrying more than ``limit`` items (``too_many`` formats ``count``)."""
    if count > limit:
        raise ApiError(400, f"{too_many.format(count)}, at most {limit} per request")


def _check_channel(channel: Any, where: str = "") -> str:
    problem = _channel_problem(channel)
    if problem is not None:
        raise ApiError(400, where + problem)
    assert isinstance(channel, str)
    return channel


def _parse_info(value: Any, where: str = "") -> frozenset[str]:
    if value is None or value == "":
        return frozenset()
    if not isinstance(value, str):
        raise ApiError(400, f"{where}info must be a comma-separated string of attributes")
    attrs = frozenset(a for a in value.split(",") if a)
    unknown = sorted(attrs - INFO_ATTRIBUTES)
    if unknown:
        raise ApiError(
            400,
            f"{where}Unknown info attribute(s) {', '.join(unknown)}: "
            f"expected {', '.join(sorted(INFO_ATTRIBUTES))}",
        )
    return attrs


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# -- the core ------------------------------------------------------------------------------------


class Core:
    """State and rules of one local Pusher HTTP API; every public method is thread-safe."""

    def __init__(
        self,
        apps: Sequence[App],
        limits: Limits = Limits(),
        *,
        max_recorded: Optional[int] = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not apps:
            raise ValueError("at least one app is needed")
        self.limits = limits
        self._clock = clock
        self._apps: dict[str, _AppState] = {}
        self._by_key: dict[str, _AppState] = {}
        for app in apps:
            if app.app_id in self._apps:
                raise ValueError(f"app id {app.app_id!r} is used twice")
            if app.key in self._by_key:
                raise ValueError(f"app key {app.key!r} is used twice")
            state = _AppState(app)
            self._apps[app.app_id] = state
            self._by_key[app.key] = state
        self.default_app_id = apps[0].app_id
        self._cond = threading.Condition(threading.Lock())
        self._events: deque[RecordedEvent] = deque(maxlen=max_recorded)
        self._requests: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self._terminated: list[str] = []
        self._faults: deque[Fault] = deque()
        self.listener: Optional[Callable[[RecordedRequest], None]] = None
        self.event_count = 0  # accepted events since start (not reset by clear())
        self.request_count = 0

    # -- configuration -------------------------------------------------------------------------

    @property
    def apps(self) -> list[App]:
        return [s.app for s in self._apps.values()]

    def app(self, app_id: Optional[str] = None) -> App:
        return self._state(app_id).app

    def _state(self, app_id: Optional[str]) -> _AppState:
        key = self.default_app_id if app_id is None else str(app_id)
        try:
            return self._apps[key]
        except KeyError:
            raise KeyError(f"no app with id {key!r}") from None

    def set_disabled(self, disabled: bool = True, app_id: Optional[str] = None) -> None:
        state = self._state(app_id)
        with self._cond:
            state.disabled = bool(disabled)

    # -- recording -----------------------------------------------------------------------------

    @property
    def events(self) -> list[RecordedEvent]:
        with self._cond:
            return list(self._events)

    # The server's public methods own the defaults; it passes every argument here.

    def events_for(
        self, channel: Optional[str], name: Optional[str], app_id: Optional[str]
    ) -> list[RecordedEvent]:
        with self._cond:
            return self._matching(channel, name, app_id)

    def _matching(
        self, channel: Optional[str], name: Optional[str], app_id: Optional[str]
    ) -> list[RecordedEvent]:
        """Recorded events that match (None matches any); the caller holds ``_cond``."""
        return [
            e
            for e in self._events
            if (channel is None or e.channel == channel)
            and (name is None or e.name == name)
            and (app_id is None or e.app_id == str(app_id))
        ]

    def wait_for_events(
        self, count: int, timeout: float, channel: Optional[str], name: Optional[str]
    ) -> list[RecordedEvent]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = self._matching(channel, name, None)
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    return found
                self._cond.wait(remaining)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._cond:
            return list(self._requests)

    @property
    def terminated_users(self) -> list[str]:
        with self._cond:
            return list(self._terminated)

    def clear(self) -> None:
        with self._cond:
            self._events.clear()
            self._requests.clear()
            self._terminated.clear()

    def record_request(
        self, method: str, target: str, body: bytes, status: int, error: Optional[str]
    ) -> RecordedRequest:
        path, _, query = target.partition("?")
        rec = RecordedRequest(method, path, status, query, body, error, self._clock())
        with self._cond:
            self._requests.append(rec)
            self.request_count += 1
        listener = self.listener
        if listener is not None:
            listener(rec)
        return rec

    # -- simulated channel state ---------------------------------------------------------------

    def add_subscriber(self, channel: str, count: int = 1, app_id: Optional[str] = None) -> None:
        _check_local_channel(channel)
        if count < 0:
            raise ValueError("count must be >= 0")
        state = self._state(app_id)
        with self._cond:
            state.channels.setdefault(channel, _Channel()).subscriptions += count

    def remove_subscriber(self, channel: str, count: int = 1, app_id: Optional[str] = None) -> None:
        state = self._state(app_id)
        with self._cond:
            ch = state.channels.get(channel)
            have = ch.subscriptions if ch is not None else 0
            if count < 0 or count > have:
                raise ValueError(
                    f"cannot remove {count} subscriber(s) from {channel!r}: it has {have} "
                    "(presence members are removed with remove_member)"
                )
            assert ch is not None or count == 0
            if ch is not None:
                ch.subscriptions -= count
                self._drop_if_empty(state, channel)

    def add_member(self, channel: str, user_id: str, user_info: Any, app_id: Optional[str]) -> None:
        """One more connection of ``user_id`` on presence ``channel`` (user_count counts users)."""
        _check_local_channel(channel)
        if not channel.startswith(PRESENCE_PREFIX):
            raise ValueError(f"members belong to presence channels, not {channel!r}")
        user_id = str(user_id)
        state = self._state(app_id)
        with self._cond:
            ch = state.channels.setdefault(channel, _Channel())
            member = ch.members.get(user_id)
            if member is None:
                member = ch.members[user_id] = _Member(user_info)
            elif user_info is not None:
                member.user_info = user_info
            member.connections += 1

    def remove_member(self, channel: str, user_id: str, app_id: Optional[str] = None) -> None:
        """``user_id`` leaves presence ``channel`` (all its connections); no-op when absent."""
        state = self._state(app_id)
        with self._cond:
            ch = state.channels.get(channel)
            if ch is not None and ch.members.pop(str(user_id), None) is not None:
                self._drop_if_empty(state, channel)

    def reset_state(self) -> None:
        with self._cond:
            for state in self._apps.values():
                state.channels.clear()

    def channel_snapshot(self, app_id: Optional[str] = None) -> dict[str, dict[str, Any]]:
        """``{channel: {"subscription_count", "user_count"?, "users"?}}`` of occupied channels."""
        state = self._state(app_id)
        with self._cond:
            out: dict[str, dict[str, Any]] = {}
            for name, ch in state.channels.items():
                item: dict[str, Any] = {"subscription_count": ch.subscription_count()}
                if name.startswith(PRESENCE_PREFIX):
                    item["user_count"] = ch.user_count()
                    item["users"] = list(ch.members)
                out[name] = item
            return out

    @staticmethod
    def _drop_if_empty(state: _AppState, channel: str) -> None:
        ch = state.channels.get(channel)
        if ch is not None and ch.subscriptions == 0 and not ch.members:
            del state.channels[channel]

    # -- faults --------------------------------------------------------------------------------

    def add_faults(self, fault: Fault, n: int) -> None:
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._cond:
            self._faults.extend([fault] * n)

    def take_fault(self) -> Optional[Fault]:
        if not self._faults:  # unlocked peek: the common case costs no lock
            return None
        with self._cond:
            return self._faults.popleft() if self._faults else None

    @property
    def pending_faults(self) -> int:
        with self._cond:
            return len(self._faults)

    def clear_faults(self) -> None:
        with self._cond:
            self._faults.clear()

    @staticmethod
    def fault_reply(fault: Fault) -> Reply:
        headers: tuple[tuple[str, str], ...] = ()
        if fault.retry_after is not None:
            headers = (("Retry-After", fault.retry_after),)
        body = f"{_phrase(fault.status)} (injected by pusher_fast.testing)".encode()
        return Reply(fault.status, body, _TEXT, headers)

    # -- request handling ----------------------------------------------------------------------

    def handle(self, method: str, target: str, body: bytes) -> Reply:
        """Answer one request; ``target`` is the request target (path and query) as received."""
        path, _, query = target.partition("?")
        try:
            reply = self._route(method, path, query, body)
            error = None
        except ApiError as e:
            reply = Reply(e.status, e.message.encode("utf-8"), _TEXT, e.headers)
            error = e.message
        self.record_request(method, target, body, reply.status, error)
        return reply

    def _route(self, method: str, path: str, query: str, body: bytes) -> Reply:
        m = _APP_PATH_RE.fullmatch(path)
        if m is None:
            raise ApiError(404, f"Not found: {path}")
        app_id, rest = m.group(1), m.group(2) or ""
        allowed: str
        arg = ""
        if rest == "/events":
            endpoint, allowed = "events", "POST"
        elif rest == "/batch_events":
            endpoint, allowed = "batch_events", "POST"
        elif rest == "/channels":
            endpoint, allowed = "channels", "GET"
        elif rest.startswith("/channels/") and rest.endswith("/users") and rest.count("/") == 3:
            endpoint, allowed, arg = "users", "GET", rest[len("/channels/") : -len("/users")]
        elif rest.startswith("/channels/") and rest.count("/") == 2:
            endpoint, allowed, arg = "channel", "GET", rest[len("/channels/") :]
        else:
            t = _TERMINATE_RE.fullmatch(rest)
            if t is None:
                raise ApiError(404, f"Not found: {path}")
            endpoint, allowed, arg = "terminate", "POST", t.group(1)
        if method != allowed:
            raise ApiError(
                405, f"Method {method} not allowed on {path}: use {allowed}", (("Allow", allowed),)
            )
        state = self._apps.get(app_id)
        if state is None:
            raise ApiError(404, f"Unknown app: {app_id}")
        params = self._authenticate(state, method, path, query, body)
        if state.disabled:
            raise ApiError(403, f"App {app_id} is disabled")
        if endpoint == "events":
            return self._trigger(state, body)
        if endpoint == "batch_events":
            return self._trigger_batch(state, body)
        if endpoint == "channels":
            return self._list_channels(state, params)
        if endpoint == "channel":
            return self._get_channel(state, unquote(arg), params)
        if endpoint == "users":
            return self._get_users(state, unquote(arg))
        return self._terminate(state, unquote(arg), body)

    # -- authentication ------------------------------------------------------------------------

    def _authenticate(
        self, state: _AppState, method: str, path: str, query: str, body: bytes
    ) -> dict[str, str]:
        params = _parse_query(query, unquote)
        signature = params.pop("auth_signature", None)
        missing = [k for k in ("auth_key", "auth_timestamp", "auth_version") if k not in params]
        if signature is None:
            missing.append("auth_signature")
        if missing:
            raise ApiError(401, f"Missing authentication parameter(s): {', '.join(missing)}")
        key = params["auth_key"]
        owner = self._by_key.get(key)
        if owner is None:
            raise ApiError(401, f"Unknown auth_key: {key}")
        if owner is not state:
            raise ApiError(401, f"auth_key {key} does not belong to app {state.app.app_id}")
        if params["auth_version"] != "1.0":
            raise ApiError(401, f"Unsupported auth_version {params['auth_version']!r}: use 1.0")
        assert signature is not None
        expected_string = self._check_signature(state, method, path, query, params, signature)
        try:
            timestamp = float(params["auth_timestamp"])
        except ValueError:
            raise ApiError(
                401, f"Invalid auth_timestamp {params['auth_timestamp']!r}: use Unix seconds"
            ) from None
        now = self._clock()
        skew = self.limits.max_timestamp_skew
        if not abs(now - timestamp) <= skew:
            raise ApiError(
                401,
                f"Timestamp expired: Given timestamp ({_safe_iso(timestamp)}) "
                f"not within {skew:g}s of server time ({_iso(now)})",
            )
        given_md5 = params.get("body_md5")
        if body:
            if given_md5 is None:
                raise ApiError(401, "Missing body_md5: a request with a body must carry its MD5")
            actual = md5_hex(body)
            if given_md5 != actual:
                raise ApiError(
                    401,
                    f"Invalid body_md5: you sent {given_md5} but the body's MD5 is {actual} "
                    f"(signed string: {expected_string!r})",
                )
        elif given_md5 is not None and given_md5 != EMPTY_BODY_MD5:
            raise ApiError(
                401, f"Invalid body_md5: you sent {given_md5} for an empty body ({EMPTY_BODY_MD5})"
            )
        return params

    @staticmethod
    def _check_signature(
        state: _AppState,
        method: str,
        path: str,
        query: str,
        params: dict[str, str],
        signature: str,
    ) -> str:
        """Verify; return the string that was signed. Tolerant of how a client escaped the URL
        (a signature covers the unescaped text), strict about the text itself."""
        string = _string_to_sign(method, path, params)
        if state.signer.verify(string.encode("utf-8"), signature):
            return string
        candidates = []
        if "%" in path:
            candidates.append(_string_to_sign(method, unquote(path), params))
        if "+" in query:
            plus_params = _parse_query(query, unquote_plus)
            plus_params.pop("auth_signature", None)
            candidates.append(_string_to_sign(method, path, plus_params))
        for candidate in candidates:
            if state.signer.verify(candidate.encode("utf-8"), signature):
                return candidate
        raise ApiError(
            401,
            f"Invalid signature: you should have sent HmacSHA256Hex({string!r}, your_secret_key), "
            f"but you sent {signature!r}",
        )

    # -- endpoints -----------------------------------------------------------------------------

    @staticmethod
    def _json_object(body: bytes) -> dict[str, Any]:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise ApiError(400, f"Request body is not valid JSON: {e}") from None
        if not isinstance(doc, dict):
            raise ApiError(400, "Request body must be a JSON object")
        return doc

    def _check_event(
        self, name: Any, data: Any, socket_id: Any, where: str
    ) -> tuple[str, str, Optional[str]]:
        """Check one event's name, data and socket_id; return them typed."""
        if not isinstance(name, str) or not name:
            raise ApiError(400, f"{where}Missing event name: 'name' must be a non-empty string")
        if len(name) > MAX_EVENT_NAME_LENGTH:
            raise ApiError(
                400,
                f"{where}Event name too long: {len(name)} characters, "
                f"the limit is {MAX_EVENT_NAME_LENGTH}",
            )
        if not isinstance(data, str):
            raise ApiError(400, f"{where}Expected 'data' to be a string (JSON-encode it first)")
        if socket_id is not None and (
            not isinstance(socket_id, str) or not _SOCKET_ID_RE.fullmatch(socket_id)
        ):
            raise ApiError(400, f"{where}Invalid socket_id {socket_id!r}")
        limit = self.limits.max_payload_bytes
        if len(data) > limit // 4:  # UTF-8 takes at most 4 bytes a character
            size = len(data.encode("utf-8"))
            if size > limit:
                raise ApiError(
                    413,
                    f"{where}The data content of this event exceeds the allowed maximum "
                    f"({limit} bytes): it is {size} bytes",
                )
        return name, data, socket_id

    def _trigger(self, state: _AppState, body: bytes) -> Reply:
        doc = self._json_object(body)
        name, data, socket_id = doc.get("name"), doc.get("data"), doc.get("socket_id")
        channels = doc.get("channels")
        if channels is None and "channel" in doc:
            channels = [doc["channel"]]
        if channels is None:
            raise ApiError(400, "Missing channels: send 'channels' (a list) or 'channel'")
        if not isinstance(channels, list):
            raise ApiError(400, "Expected 'channels' to be a list of channel names")
        if not channels:
            raise ApiError(400, "'channels' is empty: trigger on at least one channel")
        _check_count(len(channels), self.limits.max_channels, "Too many channels: {}")
        for channel in channels:
            _check_channel(channel)
        unique = list(dict.fromkeys(channels))
        if len(unique) > 1 and any(c.startswith(ENCRYPTED_PREFIX) for c in unique):
            raise ApiError(
                400, "An encrypted channel cannot be triggered together with other channels"
            )
        name, data, socket_id = self._check_event(name, data, socket_id, "")
        info = _parse_info(doc.get("info"))
        now = self._clock()
        with self._cond:
            for channel in unique:
                self._record_event(state, channel, name, data, socket_id, now)
            result = (
                {"channels": {c: self._attributes(state, c, info) for c in unique}}
                if info
                else None
            )
            self._cond.notify_all()
        return Reply(200, _dumps(result) if result is not None else b"{}")

    def _trigger_batch(self, state: _AppState, body: bytes) -> Reply:
        doc = self._json_object(body)
        batch = doc.get("batch")
        if not isinstance(batch, list):
            raise ApiError(400, "Expected request parameter batch to be an array")
        _check_count(len(batch), self.limits.max_batch_size, "Batch too large: {} events")
        infos: list[frozenset[str]] = []
        for i, item in enumerate(batch):
            where = f"batch[{i}]: "
            if not isinstance(item, dict):
                raise ApiError(400, f"{where}each event must be a JSON object")
            if "channel" not in item:
                raise ApiError(400, f"{where}Missing 'channel'")
            _check_channel(item["channel"], where)
            self._check_event(item.get("name"), item.get("data"), item.get("socket_id"), where)
            infos.append(_parse_info(item.get("info"), where))
        now = self._clock()
        with self._cond:
            for item in batch:  # every item was checked above: str channel, name and data
                self._record_event(
                    state,
                    str(item["channel"]),
                    str(item["name"]),
                    str(item["data"]),
                    item.get("socket_id"),
                    now,
                )
            result = (
                {
                    "batch": [
                        self._attributes(state, item["channel"], info)
                        for item, info in zip(batch, infos)
                    ]
                }
                if any(infos)
                else None
            )
            self._cond.notify_all()
        return Reply(200, _dumps(result) if result is not None else b"{}")

    def _record_event(
        self,
        state: _AppState,
        channel: str,
        name: str,
        data: str,
        socket_id: Optional[str],
        now: float,
    ) -> None:
        decrypted = None
        if state.master_key is not None and channel.startswith(ENCRYPTED_PREFIX):
            decrypted = _decrypt(state.master_key, channel, data)
        self._events.append(
            RecordedEvent(channel, name, data, socket_id, now, decrypted, state.app.app_id)
        )
        self.event_count += 1

    @staticmethod
    def _attributes(state: _AppState, channel: str, info: Iterable[str]) -> dict[str, int]:
        ch = state.channels.get(channel)
        out: dict[str, int] = {}
        if "user_count" in info and channel.startswith(PRESENCE_PREFIX):
            out["user_count"] = ch.user_count() if ch is not None else 0
        if "subscription_count" in info:
            out["subscription_count"] = ch.subscription_count() if ch is not None else 0
        return out

    def _list_channels(self, state: _AppState, params: dict[str, str]) -> Reply:
        prefix = params.get("filter_by_prefix", "")
        info = _parse_info(params.get("info"))
        if "user_count" in info and not prefix.startswith(PRESENCE_PREFIX):
            raise ApiError(
                400,
                "user_count may only be requested for presence channels: "
                "add filter_by_prefix=presence-",
            )
        with self._cond:
            channels = {
                name: self._attributes(state, name, info)
                for name, ch in state.channels.items()
                if name.startswith(prefix) and ch.subscription_count() > 0
            }
        return Reply(200, _dumps({"channels": channels}))

    def _get_channel(self, state: _AppState, channel: str, params: dict[str, str]) -> Reply:
        _check_channel(channel)
        info = _parse_info(params.get("info"))
        if "user_count" in info and not channel.startswith(PRESENCE_PREFIX):
            raise ApiError(
                400, f"user_count is only available for presence channels, not {channel!r}"
            )
        with self._cond:
            ch = state.channels.get(channel)
            result: dict[str, Any] = {"occupied": ch is not None and ch.subscription_count() > 0}
            result.update(self._attributes(state, channel, info))
        return Reply(200, _dumps(result))

    def _get_users(self, state: _AppState, channel: str) -> Reply:
        _check_channel(channel)
        if not channel.startswith(PRESENCE_PREFIX):
            raise ApiError(400, f"Users can only be fetched for presence channels, not {channel!r}")
        with self._cond:
            ch = state.channels.get(channel)
            users = [{"id": uid} for uid in ch.members] if ch is not None else []
        return Reply(200, _dumps({"users": users}))

    def _terminate(self, state: _AppState, user_id: str, body: bytes) -> Reply:
        if not (1 <= len(user_id) <= MAX_USER_ID_LENGTH) or not _CHANNEL_RE.fullmatch(user_id):
            raise ApiError(
                400,
                f"Invalid user id {user_id!r}: use 1-{MAX_USER_ID_LENGTH} characters "
                "of a-z A-Z 0-9 and -_=@,.;",
            )
        if body:
            self._json_object(body)
        with self._cond:
            self._terminated.append(user_id)
            # Terminated connections leave every presence channel they were members of.
            for name in [n for n, ch in state.channels.items() if user_id in ch.members]:
                del state.channels[name].members[user_id]
                self._drop_if_empty(state, name)
        return Reply(200, b"{}")


def _check_local_channel(channel: str) -> None:
    problem = _channel_problem(channel)
    if problem is not None:
        raise ValueError(problem)


def _safe_iso(ts: float) -> str:
    try:
        return _iso(ts)
    except (OverflowError, OSError, ValueError):
        return repr(ts)


def _parse_query(query: str, unescape: Callable[[str], str]) -> dict[str, str]:
    params: dict[str, str] = {}
    if not query:
        return params
    escaped = "%" in query or (unescape is unquote_plus and "+" in query)
    for item in query.split("&"):
        if item:
            k, _, v = item.partition("=")
            if escaped:
                k, v = unescape(k), unescape(v)
            params[k] = v
    return params


def _string_to_sign(method: str, path: str, params: dict[str, str]) -> str:
    # The reference sorts by key with keys lower-cased; values are not escaped.
    pairs = sorted(params.items())
    if any(not k.islower() for k, _ in pairs):
        pairs = sorted((k.lower(), v) for k, v in pairs)
    return method + "\n" + path + "\n" + "&".join([k + "=" + v for k, v in pairs])
