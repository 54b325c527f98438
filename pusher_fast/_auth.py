"""Channel authorization and user authentication: the signatures pusher-js asks
the server for, computed from a signer, the app key and the encryption master key."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, Optional

from . import _auth_body, _json
from . import _validation as v
from ._crypto import shared_secret
from .types import ChannelAuth, UserAuth

_pusher_js_form = _auth_body.PUSHER_JS_FORM.fullmatch
_MAX_AUTH_BODY = _auth_body.MAX_AUTH_BODY_BYTES
_PRESENCE = v.PRESENCE_PREFIX
_ENCRYPTED = v.ENCRYPTED_PREFIX


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
        if type(channel) is str and type(socket_id) is str and not channel.startswith(_ENCRYPTED):
            if not custom_data:
                if not channel.startswith(_PRESENCE):
                    auth = self._channel_auth(socket_id, channel, "")
                    if auth is not None:
                        return {"auth": auth}
            elif not channel.startswith(_PRESENCE) or (
                isinstance(custom_data, Mapping) and "user_id" in custom_data
            ):
                signed_data = dumps_text(custom_data, self._json_encoder)
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
        # pusher-js's common body is read here, without the general parse.
        if body.__class__ is bytes and len(body) <= _MAX_AUTH_BODY and body.isascii():
            match = _pusher_js_form(body.decode("ascii"))
            if match is not None:
                socket_id, channel, tail = match.groups()
                # A tail naming socket_id or channel_name may repeat one: the general
                # parse decides.
                if not tail or ("socket_id" not in tail and "channel_name" not in tail):
                    # channel()'s own first step, inlined: the call costs a fifth of it.
                    if (
                        not custom_data
                        and not channel.startswith(_PRESENCE)
                        and not channel.startswith(_ENCRYPTED)
                    ):
                        auth = self._channel_auth(socket_id, channel, "")
                        if auth is not None:
                            return {"auth": auth}
                    return self.channel(channel, socket_id, custom_data)
        socket_id, channel = _auth_body.parse_channel_body(body)
        return self.channel(channel, socket_id, custom_data)

    def user(self, socket_id: Any, user_data: Any) -> UserAuth:
        """What ``Pusher.authenticate_user`` returns (see there)."""
        v.validate_user_data(user_data)
        encoded = dumps_text(user_data, self._json_encoder)
        if type(socket_id) is str:
            auth = self._user_auth(socket_id, encoded)
            if auth is not None:
                return {"auth": auth, "user_data": encoded}
        socket_id = v.validate_socket_id(socket_id)  # raises: it is not a valid socket id
        to_sign = f"{socket_id}::user::{encoded}".encode()
        return {"auth": self._key + ":" + self._hmac_hex(to_sign), "user_data": encoded}
