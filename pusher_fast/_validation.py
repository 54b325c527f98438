"""Validation rules and limits: the one place that says what input is accepted.

Every rule raises ``ValueError`` (bad value) or ``TypeError`` (bad type), with a
message naming the bad value and the rule it broke, as the official library
does for the same input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MAX_CHANNEL_LENGTH = 200
MAX_CHANNELS_PER_TRIGGER = 100
MAX_EVENT_NAME_LENGTH = 200
MAX_USER_ID_LENGTH = 200
#: The official library's data limit for ``trigger`` (dedicated clusters take 30 KB).
TRIGGER_MAX_DATA_BYTES = 30720
#: The official library's data limit for each event of ``trigger_batch``.
BATCH_MAX_DATA_BYTES = 10240
#: Events per ``batch_events`` request on multi-tenant clusters.
MAX_BATCH_EVENTS = 10

SERVER_TO_USER_PREFIX = "#server-to-user-"
ENCRYPTED_PREFIX = "private-encrypted-"
PRESENCE_PREFIX = "presence-"

CHANNEL_ALPHABET = "a-z, A-Z, 0-9 and -_=@,.;"
# Explicit ASCII classes: \d or \w would admit other scripts' digits and letters.
_channel_re = re.compile(r"[-a-zA-Z0-9_=@,.;]+")
_socket_id_re = re.compile(r"[0-9]+\.[0-9]+")
_app_id_re = re.compile(r"[0-9]+")
_attribute_re = re.compile(r"[a-z_]+")

# A path-normalising proxy would rewrite "/channels/.." or "/users/./...".
_DOTS_RULE = "a name of dots only cannot be a URL path segment"

# Channel names seen valid, so a hot trigger loop skips the regex.  Bounded:
# cleared when full, so hostile input cannot grow it without limit.
_valid_channels: set[str] = set()
_VALID_CACHE_SIZE = 4096


def ensure_text(value: Any, name: str) -> str:
    """Return ``value`` as ``str`` (bytes are decoded as UTF-8) or raise TypeError."""
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{name} {value!r} is not valid UTF-8") from None
    raise TypeError(f"{name} should be a string, got {type(value).__name__}: {value!r:.80}")


def validate_secret(value: Any, name: str = "secret") -> str:
    """``value`` as ``str`` (UTF-8 bytes decoded); errors say what is wrong, never the value."""
    text: str
    if isinstance(value, (bytes, bytearray)):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(
                f"{name} is {len(value)} bytes that are not valid UTF-8 (value not shown)"
            ) from None
    elif isinstance(value, str):
        text = value if type(value) is str else str.__str__(value)
    else:
        raise TypeError(f"{name} should be a string, got {type(value).__name__} (value not shown)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: its repr() would hold the whole secret
        raise ValueError(
            f"{name} holds characters UTF-8 cannot encode (lone surrogates; value not shown)"
        ) from None
    return text


def split_host(value: Any) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` as (name, port or None).

    A URL, a path, spaces or an empty name are refused: ``host`` is where
    requests go, and a mistake there should fail here, not at the first request.
    """
    text = ensure_text(value, "host")
    rule = "a host is a name or IP address, optionally with :PORT"
    if "://" in text:
        raise ValueError(f"Invalid host {text!r}: {rule}; drop the scheme (use ssl= for https)")
    if any(c in text for c in "/?#@\\"):
        raise ValueError(f"Invalid host {text!r}: {rule}, with no path, query or user")
    if not text.isprintable() or any(c.isspace() for c in text):
        raise ValueError(f"Invalid host {text!r}: {rule}, with no spaces or control characters")
    port_text: str | None = None
    if text.startswith("["):  # [IPv6] or [IPv6]:port
        name, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"Invalid host {text!r}: {rule} ([IPv6]:PORT for IPv6)")
        port_text = rest[1:] if rest else None
        _require_ipv6(name, text, rule)
    elif text.count(":") > 1:  # a bare IPv6 literal, without a port
        name = text
        _require_ipv6(name, text, rule)
    else:
        name, colon, port_text_ = text.partition(":")
        port_text = port_text_ if colon else None
    if not name:
        raise ValueError(f"Invalid host {text!r}: {rule}; the name is empty")
    if port_text is None:
        return name, None
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise ValueError(f"Invalid host {text!r}: the port after ':' must be 1-65535")
    return name, int(port_text)


def _require_ipv6(name: str, text: str, rule: str) -> None:
    import ipaddress

    try:
        ipaddress.IPv6Address(name)
    except ValueError:
        raise ValueError(f"Invalid host {text!r}: {rule} ([IPv6]:PORT for IPv6)") from None


def _channel_problem(channel: str) -> str | None:
    if len(channel) > MAX_CHANNEL_LENGTH:
        return f"is {len(channel)} characters long; the limit is {MAX_CHANNEL_LENGTH}"
    name = channel
    if channel.startswith(SERVER_TO_USER_PREFIX):
        name = channel[len(SERVER_TO_USER_PREFIX) :]
    if not _channel_re.fullmatch(name):
        return f"must be 1-{MAX_CHANNEL_LENGTH} characters of {CHANNEL_ALPHABET}"
    return None


def channel_is_valid(channel: str) -> bool:
    """Whether ``validate_channel`` would accept ``channel`` (no ``#`` names)."""
    return len(channel) <= MAX_CHANNEL_LENGTH and _channel_re.fullmatch(channel) is not None


def validate_channel(value: Any) -> str:
    """A channel name one may trigger on (``#server-to-user-`` names included)."""
    if type(value) is str and value in _valid_channels:
        return value
    channel = ensure_text(value, "channel")
    problem = _channel_problem(channel)
    if problem:
        raise ValueError(f"Invalid channel {channel[:210]!r}: a channel name {problem}")
    if len(_valid_channels) >= _VALID_CACHE_SIZE:
        _valid_channels.clear()
    _valid_channels.add(channel)
    return channel


def validate_subscribable_channel(value: Any) -> str:
    """A channel a client can subscribe to or that can be queried (no ``#`` names)."""
    channel = validate_channel(value)
    if channel.startswith("#"):
        raise ValueError(
            f"Invalid channel {channel!r}: {SERVER_TO_USER_PREFIX} channels cannot be "
            "authorized or queried; channel names are characters of " + CHANNEL_ALPHABET
        )
    if not channel.strip("."):
        raise ValueError(f"Invalid channel {channel!r}: {_DOTS_RULE}")
    return channel


def validate_socket_id(value: Any) -> str:
    """``digits.digits`` in ASCII; anything else could smuggle a channel into a signature."""
    socket_id = ensure_text(value, "socket_id")
    if not _socket_id_re.fullmatch(socket_id):
        raise ValueError(
            f"Invalid socket_id {socket_id[:100]!r}: a socket id is ASCII digits, '.', ASCII digits"
        )
    return socket_id


def validate_user_id(value: Any, path_segment: bool = True) -> str:
    """A user id; ``path_segment`` (sent in a URL or a user's channel) refuses dots only."""
    user_id = ensure_text(value, "user_id")
    if not user_id:
        raise ValueError("Invalid user id '': a user id is 1-200 characters")
    if len(user_id) > MAX_USER_ID_LENGTH:
        raise ValueError(
            f"Invalid user id {user_id[:210]!r}: it is {len(user_id)} characters long; "
            f"the limit is {MAX_USER_ID_LENGTH}"
        )
    if not _channel_re.fullmatch(user_id):
        raise ValueError(
            f"Invalid user id {user_id!r}: a user id is characters of {CHANNEL_ALPHABET}"
        )
    if path_segment and not user_id.strip("."):
        raise ValueError(f"Invalid user id {user_id!r}: {_DOTS_RULE}")
    return user_id


def validate_user_data(user_data: Any) -> Mapping[str, Any]:
    if user_data is None:
        raise ValueError("user_data is None: it must be a dict with a string 'id'")
    # type() first: isinstance with an ABC is slow on the sign-in hot path.
    if type(user_data) is not dict and not isinstance(user_data, Mapping):
        raise TypeError(f"user_data should be a dict, got {type(user_data).__name__}")
    if user_data.get("id") is None:
        raise ValueError(f"user_data {user_data!r:.200} has no 'id' field")
    validate_user_id(user_data["id"], path_segment=False)  # the official library signs "."
    return user_data


def validate_event_name(value: Any) -> str:
    event_name = ensure_text(value, "event_name")
    if len(event_name) > MAX_EVENT_NAME_LENGTH:
        raise ValueError(
            f"event_name {event_name[:50]!r}... is {len(event_name)} characters long; "
            f"the limit is {MAX_EVENT_NAME_LENGTH}"
        )
    return event_name


def validate_app_id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    app_id = ensure_text(value, "app_id")
    if not _app_id_re.fullmatch(app_id):
        raise ValueError(f"Invalid app id {app_id!r}: an app id is ASCII digits")
    return app_id


def join_attributes(attributes: Any) -> str:
    """``info`` attributes (a list, or a comma-separated string) as the API's comma list."""
    if isinstance(attributes, (str, bytes)):
        items = ensure_text(attributes, "attributes").split(",")
    else:
        items = [ensure_text(a, "attribute") for a in attributes]
    for item in items:
        if not _attribute_re.fullmatch(item):
            raise ValueError(
                f"Invalid info attribute {item!r}: attributes are lowercase names such as "
                "'user_count' or 'subscription_count'"
            )
    return ",".join(items)


def validate_prefix(value: Any) -> str:
    prefix = ensure_text(value, "prefix_filter")
    if not _channel_re.fullmatch(prefix) or len(prefix) > MAX_CHANNEL_LENGTH:
        raise ValueError(
            f"Invalid prefix_filter {prefix[:210]!r}: a channel prefix is 1-200 characters "
            f"of {CHANNEL_ALPHABET}"
        )
    return prefix


def utf8_length(text: str) -> int:
    """Bytes ``text`` takes in UTF-8, without encoding it when it is ASCII."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8"))


def check_data_size(data: str, limit: int, where: str) -> None:
    # A character takes at most 4 bytes, so short data needs no count at all.
    if len(data) * 4 > limit:
        size = utf8_length(data)
        if size > limit:
            raise ValueError(
                f"Too much data: the event data{where} is {size} bytes in UTF-8; "
                f"the limit is {limit} bytes"
            )


def is_encrypted_channel(channel: str) -> bool:
    return channel.startswith(ENCRYPTED_PREFIX)
