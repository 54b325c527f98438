#!/usr/bin/env bash
# The C code under AddressSanitizer + UndefinedBehaviorSanitizer:
#   1. csrc/test_pf.c (known vectors, boundaries, fuzzing), built with -Werror;
#   2. the cffi extension built with the sanitizers in a temporary copy of the
#      package, and tests/test_native.py run against it.
# Exits non-zero on any failure or sanitizer report.  The in-place extension
# is rebuilt normally at the end, so the tree is left with a plain build.
# Usage: bash scripts/sanitize.sh   (PYTHON=... to pick the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

# The interpreter: $PYTHON, else the first of .venv, the active virtualenv and
# python3 that has the build and test dependencies (cffi, pytest, hypothesis,
# and what the pusher_fast package imports).
usable() { "$1" -c 'import cffi, pytest, hypothesis, nacl, orjson, urllib3' >/dev/null 2>&1; }
if [ -z "${PYTHON:-}" ]; then
  for candidate in .venv/bin/python "${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}" python3; do
    if [ -n "$candidate" ] && usable "$candidate"; then PYTHON=$candidate; break; fi
  done
  if [ -z "${PYTHON:-}" ]; then
    echo "sanitize.sh: no interpreter with the test dependencies; set PYTHON=/path/to/python" >&2
    exit 2
  fi
fi
case "$PYTHON" in /*) ;; */*) PYTHON="$ROOT/$PYTHON" ;; esac  # the tests run from elsewhere
echo "python: $PYTHON"
CC=${CC:-gcc}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pusher_fast_sanitize.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

SAN_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# A sanitizer's report on stderr is a failure even if the exit status hid it.
check_log() {
  if grep -Eq "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer|UndefinedBehaviorSanitizer" "$1"; then
    echo "sanitize.sh: sanitizer report in $2" >&2
    return 1
  fi
}

echo "== csrc/test_pf.c under ASan+UBSan"
# shellcheck disable=SC2086
$CC -std=c99 -O1 -g $SAN_FLAGS -Wall -Wextra -Werror -Icsrc \
  csrc/test_pf.c csrc/pf_sha256.c csrc/pf_md5.c csrc/pf_sign.c -o "$WORK/test_pf"
"$WORK/test_pf" 20000 2>&1 | tee "$WORK/test_pf.log"
check_log "$WORK/test_pf.log" test_pf

echo "== pusher_fast._native built with ASan+UBSan, tests/test_native.py"
# A copy, so that nothing else using this tree loads the instrumented module.
mkdir -p "$WORK/tree/tests"
(cd "$ROOT" && tar cf - --exclude='__pycache__' --exclude='*.so' pusher_fast) | (cd "$WORK/tree" && tar xf -)
cp tests/test_native.py "$WORK/tree/tests/"
PUSHER_FAST_CFLAGS="$SAN_FLAGS" "$PYTHON" - "$WORK/tree" <<'EOF'
import os, shutil, sys, sysconfig, tempfile
sys.path.insert(0, os.getcwd())
import build_ffi

dest = os.path.join(sys.argv[1], "pusher_fast")
with tempfile.TemporaryDirectory() as tmp:
    built = build_ffi.make_builder(build_ffi.HERE).compile(tmpdir=tmp, verbose=False)
    shutil.copy(built, os.path.join(dest, "_native" + sysconfig.get_config_var("EXT_SUFFIX")))
EOF

LIBASAN=$($CC -print-file-name=libasan.so)
LIBUBSAN=$($CC -print-file-name=libubsan.so)
(
  cd "$WORK/tree"
  export LD_PRELOAD="$LIBASAN:$LIBUBSAN"
  export PUSHER_FAST_REQUIRE_NATIVE=1
  export PYTHONMALLOC=malloc  # so ASan sees Python's allocations too
  loaded=$("$PYTHON" -c 'import pusher_fast._native as m; print(m.__file__)')
  case "$loaded" in
    "$WORK"/*) echo "instrumented module: $loaded" ;;
    *) echo "sanitize.sh: imported $loaded instead of the instrumented copy" >&2; exit 1 ;;
  esac
  # --capture=sys: a sanitizer writes to fd 2, which fd-level capture would swallow on abort.
  "$PYTHON" -m pytest -q --capture=sys -p no:cacheprovider tests/test_native.py 2>&1 \
    | tee "$WORK/pytest.log"
  exit "${PIPESTATUS[0]}"
)
check_log "$WORK/pytest.log" tests/test_native.py

echo "== restoring the normal in-place build"
"$PYTHON" build_ffi.py
echo "sanitize.sh: all clean"
