"""Event encoding: validate, encode, encrypt and size-check an event into the
JSON its request carries, and sign that request.

The one implementation behind ``trigger``, ``trigger_batch``, both bulk senders
and the async client.  It reads nothing of the client: its settings come in an
:class:`EventSettings`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sized
from dataclasses import dataclass
from typing import Any, Callable, Optional

import orjson

from . import _json
from . import _validation as v
from ._crypto import ChannelBoxes
from ._fallback import FRAME_BATCH, FRAME_JSON, FRAME_STRING, frame_body
from ._request import POST, Request

#: Entries each of an encoder's caches (trigger prefixes, batch heads) holds at most.
CACHE_SIZE = 1024
_PLAIN_EVENT_KEYS = frozenset(("channel", "name", "data"))
_orjson_dumps = orjson.dumps
_OPTIONS = _json.OPTIONS
_ENCRYPTED = v.ENCRYPTED_PREFIX
_BATCH_HEAD = b'{"batch":['

# One batch event: its JSON fragment as sent, then what replaying it takes
# (channel, name, data before encryption, socket id), kept raw: the dict a
# failed event shows is only built for events that fail.  A data of None
# means the fragment's own "data" (an unencrypted event of the short path).
Item = tuple[bytes, str, str, Optional[str], Optional[str]]


@dataclass(frozen=True)
class EventSettings:
    """What encoding and signing an event needs, fixed when the client is built."""

    owner: Any
    """The client the requests are for (``Request.client``: its ``base_url``)."""
    signer: Any
    trigger_limit: int
    batch_limit: int
    json_encoder: Optional[type[json.JSONEncoder]]
    boxes: ChannelBoxes
    events_path: str
    batch_path: str
    sign_batch: Callable[[bytes, int], str]
    event_events: Callable[[int, bytes, bytes], tuple[bytes, str]]
    """``event(frame, prefix, data) -> (body, query)`` of the events endpoint: framing, the
    clock and signing in one call (one C call on the native path)."""
    event_batch: Callable[[int, bytes, bytes], tuple[bytes, str]]


def event_settings(
    owner: Any,
    signer: Any,
    app_id: str,
    trigger_limit: int,
    batch_limit: int,
    json_encoder: Optional[type[json.JSONEncoder]],
    boxes: ChannelBoxes,
) -> EventSettings:
    """The settings of an app's events, with the signer's endpoints for its two paths."""
    events_path = f"/apps/{app_id}/events"
    batch_path = f"/apps/{app_id}/batch_events"
    events = signer.endpoint(POST, events_path)
    batch = signer.endpoint(POST, batch_path)
    return EventSettings(
        owner, signer, trigger_limit, batch_limit, json_encoder, boxes, events_path, batch_path,
        batch.sign, events.event, batch.event,
    )  # fmt: skip


def short_data(data: Any, limit: int) -> tuple[int, bytes] | None:
    """How the short path frames ``data`` and the JSON it frames, or None when the general
    path must decide: ``(FRAME_STRING, orjson text)`` for dict/list data orjson encodes
    without a ``null`` (a NaN, an unencodable value) within ``limit`` bytes, embedded as a
    JSON string; ``(FRAME_JSON, JSON string)`` for ``str`` data."""
    kind = type(data)
    if kind is dict or kind is list:
        try:
            text = _orjson_dumps(data, option=_OPTIONS)
        except TypeError:  # orjson's refusal: the general path explains
            return None
        # find(), not `in`: bytes.__contains__ first tries the operand as an int
        # and raises and clears a TypeError inside, every call (1,800 instructions).
        if text.find(b"null") >= 0 or len(text) > limit:
            return None
        return FRAME_STRING, text
    if kind is str and len(data) * 4 <= limit:
        return FRAME_JSON, _orjson_dumps(data)
    return None


def framed(head: bytes, data: Any, limit: int) -> bytes:
    """``head`` + ``data`` as a JSON string + ``}`` (see :func:`short_data`), or b"" when the
    general path must decide."""
    short = short_data(data, limit)
    return frame_body(short[0], head, short[1]) if short is not None else b""


def replay_data(item: Item) -> str:
    """The data of ``item`` before encryption, as ``add()`` would take it again."""
    data = item[3]
    if data is None:
        text: str = _json.loads(item[0])["data"]
        return text
    return data


class EventEncoder:
    """Encodes and signs events as ``trigger``, ``trigger_batch`` and the bulk senders send
    them; its two short-path caches are bounded in total entries."""

    def __init__(self, settings: EventSettings) -> None:
        self.settings = settings
        self._owner = settings.owner
        self._trigger_limit = settings.trigger_limit
        self._batch_limit = settings.batch_limit
        self._plain_json = settings.json_encoder is None
        self._events_path = settings.events_path
        self._batch_path = settings.batch_path
        self._sign_batch = settings.sign_batch
        self._event_events = settings.event_events
        self._event_batch = settings.event_batch
        # channel -> event name -> b'{"name":..,"channels":["..."],"data":' when the
        # short path may take them, else b"".
        self._prefixes: dict[str, dict[str, bytes]] = {}
        self._prefix_count = 0  # entries in _prefixes, all channels together
        # (channel, name) -> b'{"channel":"..","name":..,"data":', or b"".
        self._heads: dict[tuple[str, str], bytes] = {}

    # -- shared by every path -------------------------------------------------------

    def data_to_string(self, data: Any) -> str:
        if isinstance(data, str):
            return data if type(data) is str else str(data)
        encoder = self.settings.json_encoder
        if encoder is not None:
            return _json.dumps_compat(data, encoder, ensure_ascii=False)
        return _json.dumps(data)

    def encrypt(self, channel: str, data: str) -> str:
        payload = self.settings.boxes.encrypt(channel, data)
        if self.settings.json_encoder is not None:
            return json.dumps(payload, ensure_ascii=False)
        return _json.dumps(payload)

    def body(self, params: dict[str, Any]) -> bytes:
        if self.settings.json_encoder is not None:  # the official library's exact bytes
            return json.dumps(params).encode("utf-8")
        return _json.dumps_bytes(params)

    def _plain(self, channel: str, name: str) -> bool:
        """Whether the short paths may take this channel and event name."""
        return (
            len(name) <= v.MAX_EVENT_NAME_LENGTH
            and self._plain_json
            and not channel.startswith(_ENCRYPTED)
            and v.channel_is_valid(channel)
        )

    # -- trigger ---------------------------------------------------------------------

    def trigger(
        self, channels: Any, event_name: Any, data: Any, socket_id: Any = None, info: Any = None
    ) -> Request:
        """The signed ``/events`` request of ``trigger(...)``."""
        # The common case (one known plain channel, no options, str or
        # dict/list data, default JSON) takes a short path; anything else, and
        # anything it is unsure of, takes the general one.
        if socket_id is None and info is None and type(channels) is str and type(event_name) is str:
            by_name = self._prefixes.get(channels)
            prefix = by_name.get(event_name) if by_name is not None else None
            if prefix is None:
                prefix = self._prefix(channels, event_name)
            if prefix:
                request = self._signed_trigger(prefix, data)
                if request is not None:
                    return request
        return self._general_trigger(channels, event_name, data, socket_id, info)

    def _signed_trigger(self, prefix: bytes, data: Any) -> Request | None:
        """Frame ``data`` after ``prefix`` and sign the body (None: not for the short path).

        The one place a short-path trigger body is framed and signed.
        """
        short = short_data(data, self._trigger_limit)
        if short is None:
            return None
        body, query = self._event_events(short[0], prefix, short[1])
        return Request(self._owner, POST, self._events_path, None, body, query)

    def _prefix(self, channel: str, event_name: str) -> bytes:
        """The cached short-path prefix of ``channel`` and ``event_name`` (b"": none)."""
        prefix = b""
        if self._plain(channel, event_name):
            # Channel names are of an alphabet JSON needs no escapes for.
            prefix = (
                b'{"name":'
                + _json.dumps_bytes(event_name)
                + b',"channels":["'
                + channel.encode("ascii")
                + b'"],"data":'
            )
        # Bounded in total entries (not per channel): cleared when full.
        if self._prefix_count >= CACHE_SIZE:
            self._prefixes.clear()
            self._prefix_count = 0
        self._prefixes.setdefault(channel, {})[event_name] = prefix
        self._prefix_count += 1
        return prefix

    def _general_trigger(
        self, channels: Any, event_name: Any, data: Any, socket_id: Any, info: Any
    ) -> Request:
        channels = _channel_list(channels, "trigger")
        if type(event_name) is not str or len(event_name) > v.MAX_EVENT_NAME_LENGTH:
            event_name = v.validate_event_name(event_name)
        data = self.data_to_string(data)
        first = channels[0]
        if first.startswith(_ENCRYPTED) or (
            len(channels) > 1 and any(c.startswith(_ENCRYPTED) for c in channels)
        ):
            if len(channels) > 1:
                raise ValueError(
                    "You cannot trigger to multiple channels when using encrypted channels: "
                    f"{channels!r:.300}"
                )
            data = self.encrypt(first, data)
        v.check_data_size(data, self._trigger_limit, "")
        params: dict[str, Any] = {"name": event_name, "channels": channels, "data": data}
        if socket_id:
            params["socket_id"] = v.validate_socket_id(socket_id)
        if info:
            params["info"] = v.join_attributes(info)
        body = self.body(params)
        query = self.settings.signer.sign_query(
            POST, self._events_path, "", body, round(time.time())
        )
        return Request(self._owner, POST, self._events_path, params, body, query)

    # -- trigger_batch ---------------------------------------------------------------

    def batch(self, batch: Any, already_encoded: bool = False) -> Request:
        """The signed ``/batch_events`` request of ``trigger_batch(...)``."""
        if isinstance(batch, (str, bytes, Mapping)) or not isinstance(batch, Iterable):
            raise TypeError(f"batch should be a list of event dicts, got {type(batch).__name__}")
        params: dict[str, Any] | None = None  # Request.params parses the body when asked
        if self._plain_json:
            # Each event becomes its JSON fragment once, as the bulk senders' do.
            fragments = [
                self._batch_fragment(index, event, already_encoded)
                for index, event in enumerate(batch)
            ]
            body, query = self._event_batch(FRAME_BATCH, _BATCH_HEAD, b",".join(fragments))
            return Request(self._owner, POST, self._batch_path, None, body, query)
        events = []  # the official library's exact bytes
        for index, event in enumerate(batch):
            if not isinstance(event, Mapping):
                raise TypeError(f"batch[{index}] should be a dict, got {type(event).__name__}")
            events.append(self._batch_event(index, event, already_encoded))
        params = {"batch": events}
        body = self.body(params)
        query = self._sign_batch(body, round(time.time()))
        return Request(self._owner, POST, self._batch_path, params, body, query)

    def _batch_fragment(self, index: int, event: Any, already_encoded: bool) -> bytes:
        if (
            type(event) is dict
            and len(event) == 3
            and _PLAIN_EVENT_KEYS.issuperset(event)
            and type(event["channel"]) is str  # one channel: nothing to fan out
        ):
            data = event["data"]
            if not already_encoded or type(data) is str:
                fragment = self._short_fragment(event["channel"], event["name"], data)
                if fragment:
                    return fragment
                try:
                    return self._encode(event["channel"], event["name"], data, None)[0][0]
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
            data = self.data_to_string(data)
        if channel.startswith(_ENCRYPTED):
            data = self.encrypt(channel, data)
        v.check_data_size(data, self._batch_limit, f" of batch[{index}]")
        out = dict(event)  # the caller's dict is never modified
        out["channel"] = channel
        out["name"] = name
        out["data"] = data
        # Optional fields that are empty are left out, as trigger() does.
        for optional, check in (("socket_id", v.validate_socket_id), ("info", v.join_attributes)):
            if event.get(optional):
                out[optional] = check(event[optional])
            else:
                out.pop(optional, None)
        return out

    # -- batch events one by one (the bulk senders) ------------------------------------

    def encode(
        self, channels: str | Iterable[str], name: str, data: Any, socket_id: str | None
    ) -> list[Item]:
        """One batch event per channel of the event, validated and encoded."""
        if socket_id is None and type(channels) is str and type(name) is str:
            head = self._heads.get((channels, name))
            if head is None:
                head = self._head(channels, name)
            if head:
                # short_data() and frame_body() inlined: this runs once per event added.
                kind = type(data)
                if kind is dict or kind is list:
                    try:
                        text = _orjson_dumps(data, option=_OPTIONS)
                    except TypeError:  # orjson's refusal: the general path explains
                        text = b"null"
                    if text.find(b"null") < 0 and len(text) <= self._batch_limit:
                        # The JSON text as a JSON string: orjson escapes the quotes and
                        # backslashes (it has no control characters), faster than two
                        # replace() calls.
                        fragment = head + _orjson_dumps(text.decode()) + b"}"
                        return [(fragment, channels, name, None, None)]
                elif kind is str and len(data) * 4 <= self._batch_limit:
                    return [(head + _orjson_dumps(data) + b"}", channels, name, data, None)]
        return self._encode(channels, name, data, socket_id)

    def _short_fragment(self, channel: str, name: Any, data: Any) -> bytes:
        """:meth:`encode`'s short path for one event of a batch (b"": not for it)."""
        if type(name) is not str:
            return b""
        head = self._heads.get((channel, name))
        if head is None:
            head = self._head(channel, name)
        return framed(head, data, self._batch_limit) if head else b""

    def _head(self, channel: str, name: str) -> bytes:
        head = b""
        if self._plain(channel, name):
            head = (
                b'{"channel":"'
                + channel.encode("ascii")
                + b'","name":'
                + _json.dumps_bytes(name)
                + b',"data":'
            )
        if len(self._heads) >= CACHE_SIZE:
            self._heads.clear()
        self._heads[(channel, name)] = head
        return head

    def _encode(
        self, channels: str | Iterable[str], name: str, data: Any, socket_id: str | None
    ) -> list[Item]:
        chans = [channels] if isinstance(channels, str) else list(channels)
        chans = _checked_channels(chans, len(chans), "an event")
        name = v.validate_event_name(name)
        text = self.data_to_string(data)
        if len(chans) > 1 and any(v.is_encrypted_channel(c) for c in chans):
            raise ValueError(
                "You cannot send to multiple channels when using encrypted channels: "
                f"{chans!r:.300}"
            )
        sid = v.validate_socket_id(socket_id) if socket_id else None
        items: list[Item] = []
        for channel in chans:
            sent = self.encrypt(channel, text) if v.is_encrypted_channel(channel) else text
            v.check_data_size(sent, self._batch_limit, "")
            wire: dict[str, Any] = {"channel": channel, "name": name, "data": sent}
            if sid:
                wire["socket_id"] = sid
            items.append((_json.dumps_bytes(wire), channel, name, text, sid))
        return items

    def request(self, items: list[Item]) -> Request:
        """A signed batch_events request for ``items`` (signed afresh on every try)."""
        body, query = self._event_batch(
            FRAME_BATCH, _BATCH_HEAD, b",".join([item[0] for item in items])
        )
        return Request(self._owner, POST, self._batch_path, None, body, query)


def _channel_list(channels: Any, what: str) -> list[str]:
    """``channels`` (a name or names) as a checked list of 1 to 100 channel names."""
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
    return _checked_channels(channels, count, what)


def _checked_channels(channels: Iterable[Any], count: int, what: str) -> list[str]:
    if count == 0:
        raise ValueError(f"No channels given: {what} needs 1 to 100 channels")
    if count > v.MAX_CHANNELS_PER_TRIGGER:
        raise ValueError(
            f"Too many channels: {count} given; the limit is {v.MAX_CHANNELS_PER_TRIGGER}"
        )
    return [v.validate_channel(c) for c in channels]
