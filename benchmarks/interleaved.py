"""The cases of bench_client.py, timed round-robin: native, pure-Python, official, floor.

On a shared machine the load changes from second to second; timing the
contenders of a case in alternation, many rounds, and taking medians gives
ratios that the load cannot skew.  Prints a Markdown table.

    python benchmarks/interleaved.py [--rounds 25] [--seconds 0.02]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import timeit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_client import CASES, IMPLS

from pusher_fast import _signing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=0.02, help="per contender per round")
    args = parser.parse_args()
    impls = [i for i in IMPLS if i != "native" or _signing.IMPLEMENTATION == "native"]
    cpu = platform.processor() or platform.machine()
    print(f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{args.rounds} rounds, medians in µs")  # fmt: skip
    print()
    print("| case | native | pure-Python | official | floor | vs official | vs pure |")
    print("|---|---|---|---|---|---|---|")
    for case, make in CASES.items():
        fns = {impl: make(impl) for impl in impls}
        numbers = {}
        for impl, fn in fns.items():
            count, _ = timeit.Timer(fn).autorange()
            numbers[impl] = max(1, int(count * args.seconds / 0.2))
        samples: dict[str, list[float]] = {impl: [] for impl in fns}
        for _ in range(args.rounds):
            for impl, fn in fns.items():
                n = numbers[impl]
                samples[impl].append(timeit.timeit(fn, number=n) / n * 1e6)
        med = {impl: statistics.median(v) for impl, v in samples.items()}
        native = med.get("native", med["python"])
        cells = [f"{med[i]:.2f}" if i in med else "-" for i in IMPLS]
        ratios = f" | {med['official'] / native:.1f}x | {med['python'] / native:.1f}x |"
        print(f"| {case} | " + " | ".join(cells) + ratios)


if __name__ == "__main__":
    main()
