#!/usr/bin/env bash
# Install everything from the repo's own files into .venv and peers/node_modules,
# then run lint, types, the whole test suite on both signing paths, and the
# sanitizer build of the C code.  Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

# The Celery tests need a real broker: redis-server from the system's package manager,
# installed only when it is missing (non-interactive; needs root, as in CI).
if ! command -v redis-server >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server \
      || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server; }
  else
    echo "redis-server is missing and cannot be installed here: the Celery tests will skip" >&2
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
(cd peers && npm ci --no-audit --no-fund --loglevel=error)

.venv/bin/python -c 'import pusher_fast; print("pusher_fast signing path:", pusher_fast.IMPLEMENTATION)'

echo "== ruff"
.venv/bin/ruff check .
# Python files only: README examples are laid out for reading (they are run by tests/test_readme.py).
.venv/bin/ruff format --check --exclude "*.md" .
echo "== mypy --strict"
.venv/bin/mypy --strict pusher_fast
# User code reading typed results (tests/test_typing.py also runs it, with misreadings that must fail).
.venv/bin/mypy --strict tests/typing_example.py

echo "== tests, native signing path; no leaked socket or file"
# Every unclosed resource fails the run (a ResourceWarning raised in __del__ reaches pytest as an
# unraisable-exception warning, hence both filters).
PUSHER_FAST_REQUIRE_NATIVE=1 .venv/bin/python -m pytest -q \
  -W error::ResourceWarning -W error::pytest.PytestUnraisableExceptionWarning
echo "== tests, pure-Python signing path"
PUSHER_FAST_PURE=1 .venv/bin/python -m pytest -q -m "not slow"

# The oldest Python the package supports, when the machine has it: install and build there
# too, and run the tests of the parts most sensitive to the version (asyncio, C extension,
# HTTP layer).  A machine without python3.9 skips this, and says so.
PY39=""
for candidate in python3.9 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.9*/bin/python3.9; do
  if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 9)' 2>/dev/null; then
    PY39="$candidate"
    break
  fi
done
if [ -n "$PY39" ]; then
  echo "== Python 3.9: install, native build, core tests"
  "$PY39" -m venv .venv39
  .venv39/bin/python -m pip install -q --upgrade pip
  .venv39/bin/python -m pip install -q -e '.[test]'
  PUSHER_FAST_REQUIRE_NATIVE=1 .venv39/bin/python -m pytest -q -p no:randomly \
    tests/test_http11.py tests/test_asynchttp.py tests/test_async.py tests/test_client.py \
    tests/test_bulk.py tests/test_native.py tests/test_validation.py tests/test_oracle.py
else
  echo "== Python 3.9: skipped (no Python 3.9 on this machine)"
fi

echo "== wheel (cp39-abi3, auditwheel manylinux, installed on another Python) and sdist"
bash scripts/check_wheel.sh .venv/bin/python

if [ -f scripts/sanitize.sh ]; then
  echo "== C code under AddressSanitizer + UndefinedBehaviorSanitizer"
  bash scripts/sanitize.sh
fi
