"""Turn a pytest-benchmark JSON file into the README's table: medians and ratios.

    python -m pytest benchmarks/bench_client.py --benchmark-only --benchmark-json=out.json
    python benchmarks/summarize.py out.json

For each group: the median of every contender (µs), and how many times faster
pusher_fast (native) is than the official library, than our pure-Python path,
and how it compares with the floor (hashlib.md5 + hmac.digest on the same bytes).
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict


def main(path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    for bench in data["benchmarks"]:
        match = re.search(r"\[(\w+)\]$", bench["name"])
        impl = match.group(1) if match else bench["name"]
        groups[bench["group"] or bench["name"]][impl] = bench["stats"]["median"] * 1e6
    machine = data.get("machine_info", {})
    print(
        f"machine: {machine.get('cpu', {}).get('brand_raw', '?')}, "
        f"{machine.get('cpu', {}).get('count', '?')} cores, Python {machine.get('python_version')}"
    )
    print()
    print("| case | native µs | pure-Python µs | official µs | floor µs | vs official | vs pure |")
    print("|---|---|---|---|---|---|---|")
    for group, impls in groups.items():
        native = impls.get("native")
        if native is None:
            continue
        official, pure, floor = impls.get("official"), impls.get("python"), impls.get("floor")

        def fmt(value: float | None) -> str:
            return f"{value:.2f}" if value is not None else "-"

        def ratio(other: float | None) -> str:
            return f"{other / native:.1f}x" if other is not None else "-"

        print(
            f"| {group} | {fmt(native)} | {fmt(pure)} | {fmt(official)} | {fmt(floor)} "
            f"| {ratio(official)} | {ratio(pure)} |"
        )


if __name__ == "__main__":
    main(sys.argv[1])
