"""Fixtures of the batch tests: one local platform per module (the suite's fast timings),
a per-test batch record file, the job script on disk and a client of the platform."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from batch_support import JOB
from support import FAST_PLATFORM

from canfar_widgets import Batch
from canfar_widgets.local import LocalPlatform


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    arc = tmp_path_factory.mktemp("arc")
    with LocalPlatform(**{**FAST_PLATFORM, "arc": arc}) as running:
        yield running


@pytest.fixture
def record_file(clean_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Everything a batch records goes to this test's own SQLite file."""
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "batches.sqlite"
    monkeypatch.setenv("CANFAR_WIDGETS_BATCH_DB", str(path))
    monkeypatch.setattr(Batch, "poll_interval", 0.2)
    return path


@pytest.fixture
def job(tmp_path: Path) -> Path:
    path = tmp_path / "job.py"
    path.write_text(JOB)
    return path


@pytest.fixture
def session(platform: LocalPlatform) -> Iterator[Any]:
    with platform.session() as client:
        yield client
