"""Packaging metadata and build settings (the wheel and sdist themselves are built and checked
by scripts/check_wheel.sh in CI: cp39-abi3 tag, auditwheel, install on another Python)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pyproject() -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return dict(tomllib.load(handle))


def test_license_file_matches_the_declared_license() -> None:
    project = pyproject()["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 pusher_fast contributors" in text


def test_python_classifiers_agree_with_requires_python() -> None:
    project = pyproject()["project"]
    assert project["requires-python"] == ">=3.9"
    versions = {
        c.rsplit(" :: ", 1)[1]
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert versions == {"3.9", "3.10", "3.11", "3.12", "3.13"}
    assert "Typing :: Typed" in project["classifiers"]
    assert (ROOT / "pusher_fast" / "py.typed").exists()


def test_no_invented_project_urls() -> None:
    # There is no public repository or documentation site: no URLs until there is one.
    assert "urls" not in pyproject()["project"]


def test_every_optional_transport_has_its_extra() -> None:
    extras = pyproject()["project"]["optional-dependencies"]
    for extra, requirement in [
        ("aiohttp", "aiohttp"), ("requests", "requests"), ("tornado", "tornado"), ("cli", "tqdm"),
    ]:  # fmt: skip
        assert any(r.startswith(requirement) for r in extras[extra]), extra
        assert any(r.startswith(requirement) for r in extras["test"]), f"test lacks {requirement}"
    for mocker in ("responses", "requests-mock"):
        assert any(r.startswith(mocker) for r in extras["test"])


def test_extension_is_built_for_the_limited_api() -> None:
    code = (
        "import build_ffi\nprint(build_ffi.make_builder()._assigned_source[3]['py_limited_api'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "True"
    setup = (ROOT / "setup.py").read_text(encoding="utf-8")
    assert '"bdist_wheel": {"py_limited_api": "cp39"}' in setup


def test_sdist_manifest_carries_the_tests_and_their_needs() -> None:
    manifest = (ROOT / "MANIFEST.in").read_text(encoding="utf-8").splitlines()
    for line in (
        "graft tests",
        "include peers/package.json peers/package-lock.json",
        "include LICENSE CHANGELOG.md",
        "include build_ffi.py",
    ):
        assert line in manifest, line


def test_changelog_names_the_current_version() -> None:
    import pusher_fast

    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {pusher_fast.__version__} " in text


def test_every_package_directory_is_in_the_distribution() -> None:
    """A subpackage missing from the wheel imports from a checkout and fails once installed."""
    import setuptools

    config = pyproject()["tool"]["setuptools"]["packages"]["find"]
    found = set(setuptools.find_packages(str(ROOT), include=config["include"]))
    on_disk = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "pusher_fast").rglob("__init__.py")
    }
    assert on_disk == found
    assert {"pusher_fast.transports", "pusher_fast.integrations", "pusher_fast.testing"} <= found
