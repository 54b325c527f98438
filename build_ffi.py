"""Builds ``pusher_fast._native`` from ``csrc/`` with cffi in API mode.

``csrc/pf_ffi.h`` is the contract: its declarations (preprocessor lines
removed) are the cdef, and the C sources implement them.  Extra compiler and
linker flags come from ``PUSHER_FAST_CFLAGS`` (e.g. ``-fsanitize=address``).

Used by setup.py through ``cffi_modules``; run directly
(``python build_ffi.py``) to build the extension in place for development.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import sysconfig
import tempfile

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = ("pf_sha256.c", "pf_md5.c", "pf_sign.c")
HEADERS = ("pf_ffi.h", "pf_sha256.h", "pf_md5.h")
CFLAGS = ["-O2", "-std=c99", "-Wall", "-Wextra", "-fvisibility=hidden"]


def make_builder(root: str = "") -> FFI:
    """The FFI builder, with paths under ``root`` ("" = relative to this file's
    directory, as setuptools requires; absolute for a standalone compile, which
    runs the compiler from a temporary directory)."""
    csrc = os.path.join(root, "csrc")
    with open(os.path.join(HERE, "csrc", "pf_ffi.h"), encoding="utf-8") as f:
        cdef = "".join(line for line in f if not line.lstrip().startswith("#"))
    extra = shlex.split(os.environ.get("PUSHER_FAST_CFLAGS", ""))
    builder = FFI()
    builder.cdef(cdef)
    builder.set_source(
        "pusher_fast._native",
        '#include "pf_ffi.h"\n',
        sources=[os.path.join(csrc, name) for name in SOURCES],
        include_dirs=[csrc],
        depends=[os.path.join(csrc, name) for name in HEADERS],
        extra_compile_args=CFLAGS + extra,
        extra_link_args=extra,
        # The stable ABI (cffi's generated code only uses it): one ``_native.abi3.so``
        # serves every CPython from 3.9 on; setup.py tags the wheel cp39-abi3.
        py_limited_api=True,
    )
    return builder


ffibuilder = make_builder()


def build_in_place() -> str:
    """Compile in a temporary directory and move the module into the package."""
    with tempfile.TemporaryDirectory(prefix="pusher_fast_build_") as tmp:
        built = make_builder(HERE).compile(tmpdir=tmp, verbose=False)
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        target = os.path.join(HERE, "pusher_fast", "_native" + suffix)
        shutil.copyfile(built, target + ".tmp")
        os.replace(target + ".tmp", target)  # a concurrent import never sees half a file
    return target


if __name__ == "__main__":
    print(f"built {build_in_place()}", file=sys.stderr)
