"""JSON text: compact UTF-8 from orjson by default, the official library's exact
bytes when the caller passes ``json_encoder``.

Data JSON cannot represent (NaN, Infinity, non-string keys, unknown types)
raises ``TypeError``/``ValueError``: never a silent ``null``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

# datetime and dataclasses go to ``default`` (absent) and so raise TypeError,
# as they do with json.dumps; orjson would otherwise serialize them silently.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _reject_non_finite(value: Any) -> None:
    """orjson writes NaN and Infinity as null; find them and refuse."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"Out of range float value {item!r} is not JSON compliant")
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def dumps_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON; raises TypeError/ValueError for what JSON cannot hold."""
    try:
        out = orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        if "Integer exceeds" in str(exc):
            # Python ints are unbounded; json.dumps writes them, so do we.
            return json.dumps(
                value, separators=(",", ":"), ensure_ascii=False, allow_nan=False
            ).encode("utf-8")
        raise TypeError(f"Data is not JSON serializable: {exc}") from None
    if b"null" in out:
        _reject_non_finite(value)
    return out


def dumps(value: Any) -> str:
    return dumps_bytes(value).decode("utf-8")


def dumps_compat(value: Any, cls: type[json.JSONEncoder] | None, ensure_ascii: bool) -> str:
    """``json.dumps`` exactly as pusher-http-python calls it (plus allow_nan=False)."""
    return json.dumps(value, cls=cls, ensure_ascii=ensure_ascii, allow_nan=False)


loads = orjson.loads
