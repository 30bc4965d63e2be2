"""Fixtures shared across the suite. Test files opt in to each, except one autouse guard:
no widget's poller may outlive the test module that started it."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# CI is the landing gate, so its property-based runs are reproducible (the same examples
# every run); local runs keep drawing new examples, which is how bugs get found.
settings.register_profile("ci", derandomize=True)


def pytest_configure(config: pytest.Config) -> None:
    # The local platform keeps its storage (/arc) and the batch record in the user's state and
    # data folders; a test run must never write into the real ones.
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="canfar-widgets-tests-"))
    for name in ("XDG_STATE_HOME", "XDG_DATA_HOME"):
        os.environ.setdefault(name, str(scratch / name.lower()))


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


def _polling_tasks() -> set[asyncio.Task[Any]]:
    """The widgets' polling tasks alive on the shared runner (none if it never started)."""
    runner_module = sys.modules.get("canfar_widgets.runner")
    runner = getattr(runner_module, "_shared", None)
    if runner is None or runner._closed or not runner.started:
        return set()

    async def alive() -> set[asyncio.Task[Any]]:
        return {t for t in asyncio.all_tasks() if t.get_name().startswith("poll:")}

    return runner.run(alive(), timeout=10)


@pytest.fixture(scope="module", autouse=True)
def no_poller_outlives_its_module() -> Iterator[None]:
    """Fail the module whose widgets are left polling after it ends.

    Why: a poller left running polls on through later tests, against a platform its module
    stopped, and its retries landed in another test's record of retry delays (a CI
    failure of `test_not_sent_is_retried_and_creates_once`). Module-scoped, so a widget
    kept for a whole module (a fixture) is fine as long as the module closes it.
    """
    before = _polling_tasks()
    yield
    deadline = time.monotonic() + 3
    while True:
        gc.collect()  # a widget nobody holds is closed by its finalizer
        left = _polling_tasks() - before
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # a closed widget's poller ends on the runner loop, soon after
    if left:
        names = ", ".join(sorted(t.get_name() for t in left))
        pytest.fail(
            f"this module left {len(left)} poller(s) running ({names}): close the widgets "
            "it makes (widget.close()), or they poll on in later tests",
            pytrace=False,
        )


@pytest.fixture
def make_platform(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """A factory of started local platforms (storage under ``tmp_path``), all stopped after.

    ``make_platform(cores=2)`` overrides :data:`support.FAST_PLATFORM` for one test.
    """
    from support import FAST_PLATFORM

    from canfar_widgets.local import LocalPlatform

    started: list[Any] = []

    def make(**overrides: Any) -> Any:
        platform = LocalPlatform(**{**FAST_PLATFORM, "arc": tmp_path / "arc", **overrides})
        started.append(platform)
        return platform.start()

    yield make
    for platform in reversed(started):
        platform.stop()


@pytest.fixture
def fresh_widgets(clean_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """:func:`clean_home`, and no default ``Session`` shared by widgets across tests."""
    from canfar_widgets.widgets._source import SessionSource

    monkeypatch.setattr(SessionSource, "_default", None)
    return clean_home


# Under CI a missing tool must fail the run, not quietly skip its tests: a green CI that
# skipped the browser or the JS tests would prove nothing. A skip that is right even in CI
# says so by starting its reason with ALLOWED_IN_CI.
ALLOWED_IN_CI = "[allowed in CI]"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else ""
        if ALLOWED_IN_CI not in reason:
            report.outcome = "failed"
            report.longrepr = f"skipped under CI, which must run every test: {reason}"
    return report
