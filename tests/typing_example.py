"""User code reading pusher_fast's results, checked by ``mypy --strict`` (tests/test_typing.py).

Every ``assert_type`` fails type checking if a method's return type degrades to
``Any`` or changes shape.  tests/test_typing.py also runs these functions against
the local ``PusherServer``, so the types are checked against real answers.
Not collected by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import sys
from typing import Optional

import pusher_fast
from pusher_fast import (
    BatchResult,
    BulkReport,
    BulkReportDict,
    ChannelAttributes,
    ChannelAuth,
    ChannelInfo,
    ChannelsInfo,
    FailedEvent,
    TerminateResult,
    TriggerResult,
    UserAuth,
    UsersInfo,
    WebhookPayload,
)
from pusher_fast.aio import AsyncPusher

if sys.version_info >= (3, 11):
    from typing import assert_type
else:  # the checks are mypy's; at run time on 3.9/3.10 this is a no-op

    def assert_type(value: object, typ: object) -> object:
        return value


def presence_user_count(client: pusher_fast.Pusher, channel: str) -> int:
    """The most nested read: channels_info -> channels -> name -> user_count."""
    # Pusher answers user_count only for presence channels, hence the prefix filter.
    result = client.channels_info(prefix_filter="presence-", attributes=["user_count"])
    assert_type(result, ChannelsInfo)
    assert_type(result["channels"][channel], ChannelAttributes)
    return result["channels"][channel]["user_count"]


def channel_state(client: pusher_fast.Pusher, channel: str) -> tuple[bool, Optional[int]]:
    info = client.channel_info(channel, attributes=["subscription_count"])
    assert_type(info, ChannelInfo)
    occupied: bool = info["occupied"]
    return occupied, info.get("subscription_count")


def first_user_id(client: pusher_fast.Pusher, channel: str) -> str:
    users = client.users_info(channel)
    assert_type(users, UsersInfo)
    return users["users"][0]["id"]


def trigger_counts(client: pusher_fast.Pusher, channel: str) -> dict[str, ChannelAttributes]:
    result = client.trigger(channel, "created", {"id": 1}, info=["subscription_count"])
    assert_type(result, TriggerResult)
    return result.get("channels", {})


def batch_counts(client: pusher_fast.Pusher, channel: str) -> list[ChannelAttributes]:
    result = client.trigger_batch(
        [{"channel": channel, "name": "created", "data": "{}", "info": "subscription_count"}]
    )
    assert_type(result, BatchResult)
    return result.get("batch", [])


def to_user_and_terminate(client: pusher_fast.Pusher, user_id: str) -> TerminateResult:
    assert_type(client.send_to_user(user_id, "notice", {"text": "hi"}), TriggerResult)
    return client.terminate_user_connections(user_id)


def auth_responses(client: pusher_fast.Pusher, socket_id: str) -> tuple[str, str, str]:
    private = client.authenticate("private-orders", socket_id)
    assert_type(private, ChannelAuth)
    presence = client.authorize_channel("presence-room", socket_id, {"user_id": "7"})
    channel_data: Optional[str] = presence.get("channel_data")
    user = client.authenticate_user(socket_id, {"id": "7"})
    assert_type(user, UserAuth)
    body = f"socket_id={socket_id}&channel_name=private-orders".encode()
    assert_type(client.authorize_channel_from_body(body), ChannelAuth)
    assert_type(client.authenticate_user_from_body(f"socket_id={socket_id}", {"id": "7"}), UserAuth)
    return private["auth"], channel_data or "", user["user_data"]


def webhook_event_names(
    client: pusher_fast.Pusher, key: str, signature: str, body: str
) -> list[str]:
    payload = client.validate_webhook(key, signature, body)
    assert_type(payload, Optional[WebhookPayload])
    if payload is None:
        return []
    return [event["name"] + ":" + event["channel"] for event in payload["events"]]


def bulk_send(client: pusher_fast.Pusher, channel: str) -> tuple[BulkReport, BulkReportDict]:
    with client.bulk(concurrency=2) as sender:
        sender.add(channel, "tick", {"n": 1})
    report = sender.report
    failures: list[FailedEvent] = report.failed
    for failed in failures:
        channel_name: str = failed.event["channel"]
        print(channel_name, failed.reason, failed.status)
    return report, report.as_dict()


async def async_reads(client: AsyncPusher, channel: str) -> tuple[int, bool, str]:
    channels = await client.channels_info("presence-", attributes=["user_count"])
    assert_type(channels, ChannelsInfo)
    info = await client.channel_info(channel)
    assert_type(info, ChannelInfo)
    users = await client.users_info(channel)
    assert_type(await client.trigger(channel, "created", {}), TriggerResult)
    assert_type(await client.trigger_batch([]), BatchResult)
    assert_type(await client.send_to_user("7", "notice", {}), TriggerResult)
    assert_type(await client.terminate_user_connections("7"), TerminateResult)
    assert_type(client.authenticate("private-orders", "1.2"), ChannelAuth)
    return channels["channels"][channel]["user_count"], info["occupied"], users["users"][0]["id"]


async def async_bulk(client: AsyncPusher, channel: str) -> BulkReport:
    async with client.bulk() as sender:
        await sender.add(channel, "tick", {"n": 1})
    return sender.report
