"""JSON text: compact UTF-8 from orjson by default, the official library's exact
bytes when the caller passes ``json_encoder``.

Data JSON cannot represent (NaN, Infinity, non-string keys, unknown types)
raises ``TypeError``/``ValueError``: never a silent ``null``.  Beyond what
``json.dumps`` takes, ``uuid.UUID`` (as its string) and ``enum.Enum`` (as its
value) are written, as orjson does.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Iterator
from typing import Any

import orjson

# datetime and dataclasses go to ``default`` (absent) and so raise TypeError,
# as they do with json.dumps; orjson would otherwise serialize them silently.
OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _walk(value: Any) -> Iterator[Any]:
    """Every value nested in ``value`` (dict values, list/tuple items, Enum values).

    Each container is visited once, so a cycle ends the walk rather than
    looping forever; ``json.dumps`` then names the circular reference.
    """
    stack = [value]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        yield item
        if isinstance(item, (dict, list, tuple)):
            if id(item) in seen:
                continue
            seen.add(id(item))
            stack.extend(item.values() if isinstance(item, dict) else item)
        elif isinstance(item, enum.Enum):
            stack.append(item.value)


def _too_deep() -> ValueError:
    return ValueError(
        "Data is not JSON serializable: it is nested deeper than the JSON encoder allows"
    )


def _reject_non_finite(value: Any) -> None:
    """orjson writes NaN and Infinity as null; find them and refuse."""
    for item in _walk(value):
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"Out of range float value {item!r} is not JSON compliant")


def _reject_non_string_keys(value: Any) -> None:
    for item in _walk(value):
        if isinstance(item, dict):
            for key in item:
                if not isinstance(key, str):
                    raise TypeError(f"Data is not JSON serializable: dict key {key!r} is not a str")


def dumps_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON; raises TypeError/ValueError for what JSON cannot hold.

    orjson does the work; what it refuses but ``json.dumps`` writes (integers
    beyond 64 bits, float and tuple subclasses such as namedtuples) goes
    through ``json.dumps`` instead, after checking that every key is a string.
    """
    try:
        out = orjson.dumps(value, option=OPTIONS)
    except orjson.JSONEncodeError:
        _reject_non_string_keys(value)
        try:
            return json.dumps(
                value, separators=(",", ":"), ensure_ascii=False, allow_nan=False
            ).encode("utf-8")
        except TypeError as exc:
            raise TypeError(f"Data is not JSON serializable: {exc}") from None
        except RecursionError:
            raise _too_deep() from None
    if out.find(b"null") >= 0:  # find(): see _events.short_data
        _reject_non_finite(value)
    return out


def dumps(value: Any) -> str:
    return dumps_bytes(value).decode("utf-8")


def dumps_compat(value: Any, cls: type[json.JSONEncoder] | None, ensure_ascii: bool) -> str:
    """``json.dumps`` exactly as pusher-http-python calls it (plus allow_nan=False)."""
    try:
        return json.dumps(value, cls=cls, ensure_ascii=ensure_ascii, allow_nan=False)
    except RecursionError:
        raise _too_deep() from None


loads = orjson.loads
