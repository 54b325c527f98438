#!/usr/bin/env bash
# Install everything from the repo's own files into .venv and peers/node_modules,
# then run lint, types, the whole test suite on both signing paths, and the
# sanitizer build of the C code.  Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
(cd peers && npm ci --no-audit --no-fund --loglevel=error)

.venv/bin/python -c 'import pusher_fast; print("pusher_fast signing path:", pusher_fast.IMPLEMENTATION)'

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy --strict"
.venv/bin/mypy --strict pusher_fast

echo "== tests, native signing path"
PUSHER_FAST_REQUIRE_NATIVE=1 .venv/bin/python -m pytest -q
echo "== tests, pure-Python signing path"
PUSHER_FAST_PURE=1 .venv/bin/python -m pytest -q -m "not slow"

if [ -f scripts/sanitize.sh ]; then
  echo "== C code under AddressSanitizer + UndefinedBehaviorSanitizer"
  bash scripts/sanitize.sh
fi
