"""Channel authorization and user authentication: the signatures pusher-js asks
the server for, computed from a signer, the app key and the encryption master key."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, Optional

import orjson

from . import _auth_body, _json
from . import _validation as v
from ._crypto import shared_secret
from .types import ChannelAuth, UserAuth

_loads = orjson.loads
_dumps = _json.dumps
_JSONDecodeError = orjson.JSONDecodeError
_MAX_AUTH_BODY = _auth_body.MAX_AUTH_BODY_BYTES
_PRESENCE = v.PRESENCE_PREFIX
_ENCRYPTED = v.ENCRYPTED_PREFIX
_PRESENCE_OR_ENCRYPTED = (_PRESENCE, _ENCRYPTED)


def dumps_text(value: Any, json_encoder: Optional[type[json.JSONEncoder]]) -> str:
    """channel_data / user_data JSON, as the official library writes it."""
    if json_encoder is not None:
        return _json.dumps_compat(value, json_encoder, ensure_ascii=True)
    return _json.dumps(value)


class Authorizer:
    """Signs subscriptions and sign-ins for one app; holds no state but its keys."""

    __slots__ = ("_channel_auth", "_hmac_hex", "_json_encoder", "_key", "_master_key", "_user_auth")

    def __init__(
        self,
        signer: Any,
        key: str,
        master_key: Optional[bytes],
        json_encoder: Optional[type[json.JSONEncoder]] = None,
    ) -> None:
        self._key = key
        self._master_key = master_key
        self._json_encoder = json_encoder
        self._channel_auth = signer.channel_auth
        self._user_auth = signer.user_auth
        self._hmac_hex = signer.hmac_hex

    def channel(self, channel: Any, socket_id: Any, custom_data: Any = None) -> ChannelAuth:
        """What ``Pusher.authenticate`` returns (see there)."""
        # Private and presence channels: C checks the socket id and channel and
        # signs in one call; None from it means "invalid", explained below.
        if type(channel) is str and type(socket_id) is str:
            if not custom_data:
                if not channel.startswith(_PRESENCE_OR_ENCRYPTED):
                    auth = self._channel_auth(socket_id, channel, "")
                    if auth is not None:
                        return {"auth": auth}
            elif not channel.startswith(_ENCRYPTED) and (
                not channel.startswith(_PRESENCE)
                or (
                    # type() first: isinstance with an ABC costs as much as the rest.
                    (type(custom_data) is dict or isinstance(custom_data, Mapping))
                    and "user_id" in custom_data
                )
            ):
                encoder = self._json_encoder
                signed_data = (
                    _dumps(custom_data) if encoder is None else dumps_text(custom_data, encoder)
                )
                auth = self._channel_auth(socket_id, channel, signed_data)
                if auth is not None:
                    return {"auth": auth, "channel_data": signed_data}
        return self._checked_channel(channel, socket_id, custom_data)

    def _checked_channel(self, channel: Any, socket_id: Any, custom_data: Any) -> ChannelAuth:
        """:meth:`channel` in Python: validates each input, so bad ones raise, named."""
        channel = v.validate_subscribable_channel(channel)
        socket_id = v.validate_socket_id(socket_id)
        channel_data: str | None = None
        if channel.startswith(_PRESENCE):
            if not isinstance(custom_data, Mapping) or "user_id" not in custom_data:
                raise ValueError(
                    f"Presence channel {channel!r} needs custom_data with a 'user_id', "
                    f"got {custom_data!r:.200}"
                )
        if custom_data:
            channel_data = dumps_text(custom_data, self._json_encoder)
            to_sign = f"{socket_id}:{channel}:{channel_data}"
        else:
            to_sign = f"{socket_id}:{channel}"
        response: ChannelAuth = {"auth": self._key + ":" + self._hmac_hex(to_sign.encode("utf-8"))}
        if channel.startswith(_ENCRYPTED):
            secret = shared_secret(channel, self._master_key)
            response["shared_secret"] = base64.b64encode(secret).decode("ascii")
        if channel_data is not None:
            response["channel_data"] = channel_data
        return response

    def channel_from_body(self, body: Any, custom_data: Any = None) -> ChannelAuth:
        """What ``Pusher.authorize_channel_from_body`` returns (see there)."""
        # pusher-js's form body and a JSON object are read here, without the general
        # parse (inlined: a call costs a tenth of the budget).  What this shortcut
        # cannot settle exactly (a value still escaped, a tail that may repeat a
        # field, any refusal) goes to parse_channel_body, so both agree on every
        # body (tests/test_auth_body.py).
        if body.__class__ is bytes and len(body) <= _MAX_AUTH_BODY:
            channel: Any  # (None: the general parse decides)
            if body.startswith(b"socket_id="):
                try:
                    text = body.decode("ascii")
                except UnicodeDecodeError:
                    text = "socket_id="  # (the general parse decides)
                socket_id, _, channel = text[10:].partition("&channel_name=")
                # socket_id must end at that '&': one holding '&' is refused below.
                if "&" in channel:
                    channel, _, tail = channel.partition("&")
                    if (
                        "socket_id" in tail or "channel_name" in tail or "%" in tail
                    ) and not _auth_body.tail_is_clean(tail):
                        channel = None
                if channel and "%" in channel:
                    # '@' first, alone: the one escape channel names commonly hold.
                    channel = channel.replace("%40", "@")
                    if "%" in channel:
                        channel = _auth_body.unescape_channel(channel)
            elif body and body[0] == 123:  # b"{"
                try:
                    parsed = _loads(body)  # an object: it starts with '{'
                    socket_id = parsed["socket_id"]
                    channel = parsed["channel_name"]
                except (_JSONDecodeError, KeyError, TypeError):
                    channel = None
                else:
                    # orjson keeps the last of repeated keys: take the shortcut only for an
                    # object of exactly four strings (8 quotes, none escaped), the two keys
                    # and their two values, where no key can repeat; else the general
                    # parse decides (it refuses a repeated field).
                    if (
                        socket_id.__class__ is not str
                        or channel.__class__ is not str
                        or body.count(b'"') != 8
                    ):
                        channel = None
            else:
                channel = None
            if channel:
                if not custom_data and not channel.startswith(_PRESENCE_OR_ENCRYPTED):
                    auth = self._channel_auth(socket_id, channel, "")
                    if auth is not None:
                        return {"auth": auth}
                # A form value is final unless it holds '%', '+' or (socket_id) '&',
                # all refused by the C check: then the general parse decides.
                if body[0] == 123 or not (
                    "%" in channel
                    or "+" in channel
                    or "%" in socket_id
                    or "+" in socket_id
                    or "&" in socket_id
                ):
                    return self.channel(channel, socket_id, custom_data)
        socket_id, channel = _auth_body.parse_channel_body(body)
        return self.channel(channel, socket_id, custom_data)

    def user(self, socket_id: Any, user_data: Any) -> UserAuth:
        """What ``Pusher.authenticate_user`` returns (see there)."""
        v.validate_user_data(user_data)
        encoder = self._json_encoder
        encoded = _dumps(user_data) if encoder is None else dumps_text(user_data, encoder)
        if type(socket_id) is str:
            auth = self._user_auth(socket_id, encoded)
            if auth is not None:
                return {"auth": auth, "user_data": encoded}
        socket_id = v.validate_socket_id(socket_id)  # raises: it is not a valid socket id
        to_sign = f"{socket_id}::user::{encoded}".encode()
        return {"auth": self._key + ":" + self._hmac_hex(to_sign), "user_data": encoded}
