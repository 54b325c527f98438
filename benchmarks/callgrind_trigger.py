"""Instructions per request built and signed, counted by callgrind (noise-free).

Runs ``--n`` calls of one case after a warm-up; run it twice under callgrind,
with ``--n N`` and ``--n 0``, and divide the difference of the instruction
counts by N (``--measure`` does exactly that):

    python benchmarks/callgrind_trigger.py --measure --case all [--signer native]
    valgrind --tool=callgrind python benchmarks/callgrind_trigger.py --case trigger100 --n 20000

Valgrind's CPU has no SHA extensions, so the default signer is the one of
such CPUs (OpenSSL HMAC); ``--signer native`` forces our C signer (portable
SHA-256 under valgrind).  The clock is read as in production (the count of
instructions does not depend on the time's value).  No network: ``Pusher._trigger_request`` and
``_batch_request`` build and sign only.
"""

from __future__ import annotations

import argparse
import hmac
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

import pusher_fast

KEY, SECRET, APP_ID = "278d425bdf160c739803", "7ad3773142a6692b25b8", "123456"
SMALL = {"message": "x" * 80}  # 100 B of JSON
LARGE = {"message": "y" * 9200}  # 9 KB of JSON
PRESENCE = {"user_id": "user-42", "user_info": {"name": "Ada Lovelace"}}
USER = {"id": "user-42", "name": "Ada Lovelace"}
WEBHOOK = (
    '{"time_ms":TIME,"events":['
    + ",".join(f'{{"name":"channel_occupied","channel":"ch-{i}"}}' for i in range(20))
    + "]}"
)
BATCH = [{"channel": f"channel-{i}", "name": "event", "data": SMALL} for i in range(10)]


CASES = ("trigger100", "trigger9k", "batch", "auth", "presence", "user", "webhook")


def make(case: str, signer: str) -> Callable[[], Any]:
    client = pusher_fast.Pusher(APP_ID, KEY, SECRET)
    if signer == "native":  # the C signer whatever the CPU (valgrind hides SHA-NI)
        from pusher_fast._native_signer import Signer

        client._use_signer(Signer(KEY, SECRET))
    elif signer == "python":
        from pusher_fast._signing import PythonSigner

        client._use_signer(PythonSigner(KEY, SECRET))
    if case == "trigger100":
        build = client._trigger_request
        return lambda: build("channel", "event", SMALL)
    if case == "trigger9k":
        build = client._trigger_request
        return lambda: build("channel", "event", LARGE)
    if case == "batch":
        batch = client._batch_request
        return lambda: batch([dict(e) for e in BATCH])
    if case == "auth":
        return lambda: client.authenticate("private-channel", "1234.5678")
    if case == "presence":
        return lambda: client.authenticate("presence-channel", "1234.5678", PRESENCE)
    if case == "user":
        return lambda: client.authenticate_user("1234.5678", USER)
    if case == "webhook":
        body = WEBHOOK.replace("TIME", str(int(time.time() * 1000)))
        signature = hmac.new(SECRET.encode(), body.encode(), "sha256").hexdigest()
        return lambda: client.validate_webhook(KEY, signature, body)
    raise SystemExit(f"unknown case {case!r}")


def run(case: str, n: int, signer: str) -> None:
    fn = make(case, signer)
    for _ in range(200):  # warm caches and buffer pools alike in both runs
        fn()
    for _ in range(n):
        fn()


def count(case: str, n: int, signer: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             sys.executable, os.path.abspath(__file__),
             "--case", case, "--n", str(n), "--signer", signer],
            capture_output=True, text=True, check=True,
            env=dict(os.environ, PYTHONHASHSEED="0"),  # the same dict layouts every run
        )  # fmt: skip
        found = re.search(r"Collected : (\d+)", proc.stderr)
        if not found:
            raise SystemExit(proc.stderr[-2000:])
        return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", default="trigger100", help=", ".join(CASES) + " or all")
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--measure", action="store_true", help="run callgrind and report")
    parser.add_argument(
        "--signer", default="default", help="default (as selected), native (C) or python"
    )
    args = parser.parse_args()
    if not args.measure:
        run(args.case, args.n, args.signer)
        return
    print(f"signer={args.signer}")
    cases = CASES if args.case == "all" else [args.case]
    for case in cases:
        per = (count(case, args.n, args.signer) - count(case, 0, args.signer)) / args.n
        print(f"{case}: {per:,.0f} instructions per call")


if __name__ == "__main__":
    main()
