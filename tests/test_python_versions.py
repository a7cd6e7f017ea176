"""The Python versions evalhub declares: a lower bound and no cap, and this interpreter among them."""

from __future__ import annotations

import sys
import tomllib

from tests.conftest import REPO


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_requires_python_has_a_floor_and_no_cap():
    from packaging.specifiers import SpecifierSet

    spec = SpecifierSet(_project()["requires-python"])
    assert "3.11" in spec and "3.10" not in spec
    assert all(version in spec for version in ("3.12", "3.13", "3.14"))  # nothing requires a cap


def test_this_interpreter_is_supported_and_declared():
    from packaging.specifiers import SpecifierSet

    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert running in SpecifierSet(_project()["requires-python"])
    assert f"Programming Language :: Python :: {running}" in _project()["classifiers"]
