"""The shapes of what the client returns, as ``TypedDict`` classes.

They describe the Pusher Channels HTTP API's answers (and the auth and
webhook payloads) so ``mypy --strict`` checks code that reads them, e.g.
``client.channels_info(attributes=["user_count"])["channels"][name]["user_count"]``.
At run time every result is a plain ``dict``.  Keys the API sends only when
asked for (``info=``, ``attributes=``) or only for some channels are
not required: read them with ``.get()`` when they may be absent.

No ``from __future__ import annotations`` here: ``typing.get_type_hints``
on these classes must work on Python 3.9 too.
"""

from typing import Optional, TypedDict

__all__ = [
    "BatchResult",
    "BulkReportDict",
    "ChannelAttributes",
    "ChannelAuth",
    "ChannelCache",
    "ChannelInfo",
    "ChannelsInfo",
    "FailedEventData",
    "TerminateResult",
    "TriggerResult",
    "User",
    "UserAuth",
    "UsersInfo",
    "WebhookEventData",
    "WebhookPayload",
]


class ChannelAttributes(TypedDict, total=False):
    """A channel's attributes as asked for: ``user_count`` (presence channels only)
    and ``subscription_count`` (when enabled for the app)."""

    user_count: int
    subscription_count: int


class ChannelsInfo(TypedDict):
    """``channels_info()``: the occupied channels, each with the attributes asked for."""

    channels: dict[str, ChannelAttributes]


class ChannelCache(TypedDict):
    """The last event of a cache channel (``attributes=["cache"]``): its data and
    the seconds it has left."""

    data: str
    ttl: int


class _ChannelInfoRequired(TypedDict):
    occupied: bool


class ChannelInfo(_ChannelInfoRequired, total=False):
    """``channel_info()``: ``occupied`` always, the attributes asked for when they apply."""

    user_count: int
    subscription_count: int
    cache: ChannelCache


class User(TypedDict):
    """A user on a presence channel."""

    id: str


class UsersInfo(TypedDict):
    """``users_info()``: the users on a presence channel."""

    users: list[User]


class TriggerResult(TypedDict, total=False):
    """``trigger()`` and ``send_to_user()``: ``{}``, or with ``info=`` the attributes of
    each channel triggered on."""

    channels: dict[str, ChannelAttributes]


class BatchResult(TypedDict, total=False):
    """``trigger_batch()``: ``{}``, or when events carry ``info`` one attributes
    dict per event, in order."""

    batch: list[ChannelAttributes]


class TerminateResult(TypedDict):
    """``terminate_user_connections()``: an empty object."""


class _ChannelAuthRequired(TypedDict):
    auth: str


class ChannelAuth(_ChannelAuthRequired, total=False):
    """``authenticate()`` / ``authorize_channel()``: ``channel_data`` for presence
    channels, ``shared_secret`` for encrypted ones."""

    channel_data: str
    shared_secret: str


class UserAuth(TypedDict):
    """``authenticate_user()``: the signature and the user data it signs (JSON text)."""

    auth: str
    user_data: str


class _WebhookEventRequired(TypedDict):
    name: str
    channel: str


class WebhookEventData(_WebhookEventRequired, total=False):
    """One event of a webhook; which optional keys come depends on ``name``."""

    event: str
    data: str
    socket_id: str
    user_id: str


class WebhookPayload(TypedDict):
    """``validate_webhook()``: the webhook body (``time_ms`` when Pusher sent it)."""

    time_ms: int
    events: list[WebhookEventData]


class _FailedEventRequired(TypedDict):
    channel: str
    name: str
    data: str


class FailedEventData(_FailedEventRequired, total=False):
    """``FailedEvent.event``: the keyword arguments of ``sender.add`` that replay it."""

    socket_id: str


class BulkReportDict(TypedDict):
    """``BulkReport.as_dict()``: the counts of a bulk run (``failed`` is a count here)."""

    submitted: int
    delivered: int
    failed: int
    requests: int
    retries: int
    ambiguous: int
    elapsed_s: float
    events_per_s: Optional[float]
