"""Moved: the delivery policy is :mod:`pusher_fast._retry`, the urllib3 transport
:mod:`pusher_fast.transports.urllib3_pool`; kept so that earlier imports keep working."""

from ._retry import (
    RETRY_AFTER_MAX,
    RETRY_STATUSES,
    DeliveryPolicy,
    RetriesArg,
    async_send_with_policy,
    make_policy,
    retry_after_seconds,
    send_with_policy,
)
from .transports.urllib3_pool import Urllib3Backend

__all__ = [
    "RETRY_AFTER_MAX",
    "RETRY_STATUSES",
    "DeliveryPolicy",
    "RetriesArg",
    "Urllib3Backend",
    "async_send_with_policy",
    "make_policy",
    "retry_after_seconds",
    "send_with_policy",
]
