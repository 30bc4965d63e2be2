"""Fixtures shared across the suite (test files opt in; nothing here is autouse)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI is the landing gate, so its property-based runs are reproducible (the same examples
# every run); local runs keep drawing new examples, which is how bugs get found.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def clean_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh HOME and no CANFAR_*/SKAHA_* variables: no user config leaks into a test.

    The suite's own knobs (``CANFAR_WIDGETS_*``, e.g. the soak length) are kept.
    """
    for key in list(os.environ):
        upper = key.upper()
        if upper.startswith(("CANFAR_", "SKAHA_")) and not upper.startswith("CANFAR_WIDGETS_"):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def fresh_widgets(clean_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """:func:`clean_home`, and no default ``Session`` shared by widgets across tests."""
    from canfar_widgets.widgets._backend import Backend

    monkeypatch.setattr(Backend, "_default", None)
    return clean_home
