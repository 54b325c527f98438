"""Builds the optional C extension ``pusher_fast._native`` (see build_ffi.py).

The metadata lives in pyproject.toml.  If the extension cannot be compiled
(no C compiler, unsupported platform), the install still succeeds and
pusher_fast runs on its pure-Python signing path.
"""

from __future__ import annotations

import sys
import sysconfig

from setuptools import setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """build_ext that reports a failed C build instead of failing the install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any build failure means "no extension"
            self._skip(exc)

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._skip(exc)

    @staticmethod
    def _skip(exc: BaseException) -> None:
        detail = " ".join(str(exc).split())
        if len(detail) > 160:
            detail = detail[:157] + "..."
        reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        print(
            f"pusher_fast: C extension not built ({reason}), using the pure-Python path",
            file=sys.stderr,
        )


# The extension uses only the limited API (build_ffi.py: py_limited_api=True), so
# the wheel is tagged cp39-abi3: one wheel for CPython 3.9 and every later version.
# A free-threaded CPython has no limited API: cffi builds a version-specific
# extension there, and the wheel must say so.
_OPTIONS = (
    {}
    if sysconfig.get_config_var("Py_GIL_DISABLED")
    else {"bdist_wheel": {"py_limited_api": "cp39"}}
)

setup(
    cmdclass={"build_ext": OptionalBuildExt},
    cffi_modules=["build_ffi.py:ffibuilder"],
    options=_OPTIONS,
)
