"""End-to-end encryption for ``private-encrypted-`` channels (NaCl secretbox).

The per-channel key is SHA256(channel name bytes + 32-byte master key); each
event gets a fresh 24-byte random nonce; the event's data becomes the JSON
text ``{"nonce": b64, "ciphertext": b64}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import warnings
from typing import Any

import nacl.exceptions
import nacl.secret
import nacl.utils

MASTER_KEY_BYTES = 32
NONCE_BYTES = nacl.secret.SecretBox.NONCE_SIZE


def parse_master_key(raw: Any, b64: Any) -> bytes | None:
    """The 32-byte master key from the constructor's two (exclusive) arguments."""
    if raw is not None and b64 is not None:
        raise ValueError(
            "Do not provide both encryption_master_key and encryption_master_key_base64; "
            "encryption_master_key is deprecated, provide only encryption_master_key_base64"
        )
    if raw is not None:
        warnings.warn(
            "`encryption_master_key` is deprecated, please use `encryption_master_key_base64`",
            DeprecationWarning,
            stacklevel=4,
        )
        try:
            key = raw.encode("utf-8") if isinstance(raw, str) else raw
        except UnicodeEncodeError:  # its repr() would hold the whole key
            raise ValueError(
                "encryption_master_key holds characters UTF-8 cannot encode (value not shown)"
            ) from None
        if not isinstance(key, bytes):
            raise TypeError(f"encryption_master_key should be bytes, got {type(raw).__name__}")
        if len(key) != MASTER_KEY_BYTES:
            raise ValueError(
                f"encryption_master_key must be {MASTER_KEY_BYTES} bytes long, got {len(key)}"
            )
        return key
    if b64 is not None:
        if not isinstance(b64, (str, bytes)):
            raise TypeError(
                f"encryption_master_key_base64 should be a string, got {type(b64).__name__}"
            )
        text = b64.encode("ascii", "replace") if isinstance(b64, str) else b64
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("encryption_master_key_base64 must be valid base64") from None
        if len(key) != MASTER_KEY_BYTES:
            raise ValueError(
                "encryption_master_key_base64 must be a base64 string which decodes to "
                f"{MASTER_KEY_BYTES} bytes, got {len(key)}"
            )
        return key
    return None


def _require(master_key: bytes | None) -> bytes:
    if master_key is None:
        raise ValueError(
            "No master key was provided for use with encrypted channels: pass "
            "encryption_master_key_base64 (32 random bytes, base64) to Pusher()"
        )
    return master_key


def shared_secret(channel: str, master_key: bytes | None) -> bytes:
    return hashlib.sha256(channel.encode("utf-8") + _require(master_key)).digest()


class ChannelBoxes:
    """SecretBox per encrypted channel, derived once (bounded cache)."""

    __slots__ = ("_boxes", "_master_key")
    _LIMIT = 1024

    def __init__(self, master_key: bytes | None) -> None:
        self._master_key = master_key
        self._boxes: dict[str, nacl.secret.SecretBox] = {}

    def box(self, channel: str) -> nacl.secret.SecretBox:
        box = self._boxes.get(channel)
        if box is None:
            box = nacl.secret.SecretBox(shared_secret(channel, self._master_key))
            if len(self._boxes) >= self._LIMIT:
                self._boxes.clear()
            self._boxes[channel] = box
        return box

    def encrypt(self, channel: str, data: str, nonce: bytes | None = None) -> dict[str, str]:
        """``{"nonce", "ciphertext"}`` (base64) for ``data`` on ``channel``."""
        if nonce is None:
            nonce = nacl.utils.random(NONCE_BYTES)
        encrypted = self.box(channel).encrypt(data.encode("utf-8"), nonce)
        return {
            "nonce": base64.b64encode(nonce).decode("ascii"),
            "ciphertext": base64.b64encode(encrypted.ciphertext).decode("ascii"),
        }

    def decrypt(self, channel: str, nonce_b64: str, ciphertext_b64: str) -> str:
        """The plaintext of an encrypted event; ValueError when it does not authenticate."""
        try:
            nonce = base64.b64decode(nonce_b64, validate=True)
            ciphertext = base64.b64decode(ciphertext_b64, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise ValueError("encrypted data: nonce or ciphertext is not valid base64") from None
        if len(nonce) != NONCE_BYTES:
            raise ValueError(f"encrypted data: nonce is {len(nonce)} bytes, expected {NONCE_BYTES}")
        try:
            plain = self.box(channel).decrypt(ciphertext, nonce)
        except nacl.exceptions.CryptoError:
            raise ValueError(f"encrypted data on {channel!r} failed to decrypt") from None
        return plain.decode("utf-8")
