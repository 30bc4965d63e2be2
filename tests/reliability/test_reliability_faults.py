"""Fault tolerance of the widgets against the local platform's fault knobs.

- A one-minute soak (``slow``, runs in CI): 20 % of API answers are 5xx and every answer
  is delayed by up to 200 ms, while a visible SessionTable and PlatformLoad poll fast and
  20 sessions are launched through the LaunchForm. The soak runs once (module fixture) and
  each property is its own test, so one failing property does not hide the others.
  ``CANFAR_WIDGETS_SOAK_SECONDS`` shortens it for local experiments.
- A 401/403 in the middle of a session: a clear message, polling stops until the person
  acts, no retry storm (requests counted at the platform).
- Stats 503 with ``Retry-After``: honoured by the client and by PlatformLoad.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from reliability_support import TERMINAL, RunnerWatch, running_platform, send, show, wait_until

from canfar_widgets.local.faults import Faults
from canfar_widgets.runner import get_runner
from canfar_widgets.widgets.launch_form import LaunchForm
from canfar_widgets.widgets.log_viewer import LogViewer
from canfar_widgets.widgets.platform_load import PlatformLoad
from canfar_widgets.widgets.session_table import SessionTable

SOAK_SECONDS = float(os.environ.get("CANFAR_WIDGETS_SOAK_SECONDS", "60"))
LAUNCHES = 20
# The launch attempt sent into a momentary full outage, so that at least one create is
# surely refused (at 20 %, 20 launches all succeed 1 time in 87).
FORCED = 3


# No user configuration or CANFAR_* variable reaches these tests.
pytestmark = pytest.mark.usefixtures("clean_home")


def log_feed(viewer: LogViewer) -> Any:
    """The shared log poll of a one-session LogViewer (one poll per session, however many views)."""
    [feed] = viewer._feeds.values()
    return feed


class CountingFaults(Faults):
    """The platform's fault knobs, counting the 5xx answers they inject."""

    injected = 0

    def injected_status(self) -> int | None:
        status = super().injected_status()
        if status is not None:
            self.injected += 1  # only ever called on the platform's loop thread
        return status


# ================================================================================================
# the soak
# ================================================================================================


@dataclass
class Soak:
    """What one soak observed (the tests below assert on it; the doc quotes it)."""

    seconds: float
    rows_before: int = 0
    fewest_rows: int = 10**9
    table_errors: set[str] = field(default_factory=set)
    table_statuses: set[str] = field(default_factory=set)
    load_texts: set[str] = field(default_factory=set)
    load_lost_numbers: bool = False
    log_shrank: bool = False
    log_chars: int = 0
    outage_shown: str = ""
    attempts: int = 0
    launched: list[str] = field(default_factory=list)
    launched_names: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    unreported: int = 0
    posts: int = 0
    created: dict[str, str] = field(default_factory=dict)
    table_polls: int = 0
    requests: int = 0
    injected: int = 0
    recovered_after: float | None = None
    after_recovery: str = ""
    problems: list[str] = field(default_factory=list)
    wall: float = 0.0

    def figures(self) -> str:
        return (
            f"soak {self.wall:.0f} s: {self.requests} API requests, {self.injected} injected 5xx, "
            f"{self.table_polls} table polls, {self.attempts} launch attempts -> "
            f"{len(self.launched)} launched, {len(self.failures)} refused and reported, "
            f"{len(self.created)} created on the platform; recovered in "
            f"{self.recovered_after if self.recovered_after is None else round(self.recovered_after, 2)} s"
        )


def _launch(form: LaunchForm, name: str, nonce: str):
    """Press Launch as the front end does (a message with the spec), return the future."""
    spec = {**form.spec(), "name": name, "kind": "headless", "image": TERMINAL,
            "resources": "flexible", "cmd": "sleep", "args": "1", "replicas": 1}  # fmt: skip
    send(form, kind="launch", nonce=nonce, spec=spec, registry=None)
    return form._launch_future


@pytest.fixture(scope="module")
def soak(tmp_path_factory):
    record = Soak(seconds=SOAK_SECONDS)
    faults = CountingFaults()
    started_wall = time.monotonic()
    ticker = tmp_path_factory.mktemp("soak") / "ticker.sh"
    ticker.write_text('i=0\nwhile true; do echo "tick $i"; i=$((i+1)); sleep 0.3; done\n')
    with running_platform(faults=faults) as platform:
        platform.preload(12, status="Completed", name="old")
        platform.preload(2, status="Running", name="steady")
        session = platform.session()
        widgets: list = []
        try:
            with RunnerWatch() as watch:
                try:
                    [ticking] = session.create(
                        "ticker", image=TERMINAL, cmd="/bin/sh", args=str(ticker)
                    )
                    _run_soak(record, platform, faults, session, widgets, ticking)
                finally:
                    for widget in widgets:
                        widget.close()
                    session.close()
            record.problems = watch.problems()
        finally:
            record.wall = time.monotonic() - started_wall
    print("\n" + record.figures())
    return record


def _run_soak(
    record: Soak, platform, faults: CountingFaults, session, widgets: list, ticking: str
) -> None:
    table = SessionTable(session, hide_finished=False)
    widgets.append(table)
    table.feed.fast = table.feed.slow = 0.2
    load = PlatformLoad(session, interval=0.25)
    widgets.append(load)
    viewer = LogViewer(ticking, session)
    widgets.append(viewer)
    log_feed(viewer).fast = log_feed(viewer).slow = 0.25
    form = LaunchForm(session, kind="headless", image=TERMINAL)
    widgets.append(form)
    form._ready.result(30)
    show(table, load, viewer)
    table.refresh().result(10)
    load._initial.result(10)
    assert wait_until(lambda: load.cores_total is not None and "tick 1" in viewer.text(ticking))
    record.rows_before = len(table.records)
    assert record.rows_before == 15

    posts_before = platform.request_count("POST", "session")
    faults.jitter = 0.2
    faults.error_rate = 0.2
    start = time.monotonic()
    end = start + record.seconds
    hard_end = end + 60  # launching goes on (under faults) until 20 are in, within reason
    gap = record.seconds * 0.75 / (LAUNCHES * 1.35)
    next_launch = start
    pending = None
    while time.monotonic() < end or (
        (len(record.launched) < LAUNCHES or pending is not None) and time.monotonic() < hard_end
    ):
        now = time.monotonic()
        if pending is None and len(record.launched) < LAUNCHES and now >= next_launch:
            record.attempts += 1
            if record.attempts == FORCED:
                faults.error_rate = 1.0  # this create surely meets a 5xx
            name = f"soak-{record.attempts}"
            pending = (name, _launch(form, name, nonce=f"n{record.attempts}"))
        if pending is not None and pending[1].done():
            name, future = pending
            pending = None
            faults.error_rate = 0.2
            next_launch = time.monotonic() + gap
            try:
                ids = future.result()
            except Exception:
                shown = wait_until(lambda: form.error.startswith("Launch failed"), timeout=3)
                record.failures.append(form.error)
                record.unreported += not shown
            else:
                record.launched += ids
                record.launched_names.append(name)
        record.fewest_rows = min(record.fewest_rows, len(table.records))
        if table.error:
            record.table_errors.add(table.error)
        if table.status:
            record.table_statuses.add(table.status)
        if load.cores_total is None:
            record.load_lost_numbers = True
        record.load_texts.update(t for t in (load.error, load.status, load.unavailable) if t)
        chars = len(viewer.text(ticking))
        record.log_shrank |= chars < record.log_chars
        record.log_chars = max(record.log_chars, chars)
        time.sleep(0.05)

    # A full outage at the end, so every widget is showing a failure when faults stop...
    faults.error_rate = 1.0
    wait_until(lambda: table.error and load.unavailable and viewer.error, timeout=10)
    record.outage_shown = f"table={table.error!r} load={load.status!r} logs={viewer.error!r}"
    record.fewest_rows = min(record.fewest_rows, len(table.records))
    # ...then faults off: everything must come back by itself, nobody presses anything.
    faults.error_rate = 0.0
    faults.jitter = 0.0
    healed = time.monotonic()

    def recovered() -> bool:
        ids = {r.id for r in table.records}
        return (
            table.error == ""
            and set(record.launched) <= ids
            and load.error == ""
            and load.unavailable == ""
            and viewer.error == ""
            and len(viewer.text(ticking)) > record.log_chars
        )

    if wait_until(recovered, timeout=20, step=0.05):
        record.recovered_after = time.monotonic() - healed
    record.after_recovery = f"table error={table.error!r}, load={load.unavailable!r} {load.error!r}"
    record.table_polls = table.feed.polls
    record.posts = platform.request_count("POST", "session") - posts_before
    record.requests = platform.request_count()
    record.injected = faults.injected
    record.created = {
        r["name"]: r["id"]
        for r in platform.sessions()
        if str(r.get("name", "")).startswith("soak-")
    }


@pytest.mark.slow
def test_soak_table_keeps_the_last_rows(soak):
    assert soak.table_errors, "the faults never reached the table: nothing was tested"
    assert soak.fewest_rows >= soak.rows_before


@pytest.mark.slow
def test_soak_table_says_it_is_retrying(soak):
    texts = sorted(soak.table_errors | soak.table_statuses)
    assert any(re.search(r"retry", text, re.I) for text in texts), texts


@pytest.mark.slow
def test_soak_platform_load_keeps_its_numbers_and_says_it_is_retrying(soak):
    assert not soak.load_lost_numbers
    assert any("retrying in" in text for text in soak.load_texts), sorted(soak.load_texts)


@pytest.mark.slow
def test_soak_log_viewer_keeps_its_text(soak):
    assert soak.log_chars > 0 and not soak.log_shrank


@pytest.mark.slow
def test_soak_recovers_by_itself(soak):
    assert "HTTP 5" in soak.outage_shown, soak.outage_shown  # the outage was visible...
    assert soak.recovered_after is not None, soak.after_recovery  # ...and healed unaided


@pytest.mark.slow
def test_soak_creates_exactly_the_successful_launches(soak):
    assert len(soak.launched) == LAUNCHES
    assert soak.failures, "no launch met a fault: the no-duplicate rule was not exercised"
    # A create is never retried: one POST per press of Launch.
    assert soak.posts == soak.attempts == LAUNCHES + len(soak.failures)
    # A refused create created nothing; every success exists once.
    assert sorted(soak.created) == sorted(soak.launched_names)
    assert sorted(soak.created.values()) == sorted(soak.launched)
    # Every refusal was reported in the form.
    assert soak.unreported == 0
    assert all(text.startswith("Launch failed: injected fault: 50") for text in soak.failures)


@pytest.mark.slow
def test_soak_no_unhandled_exception_anywhere(soak):
    assert soak.problems == []
    assert soak.injected > 0


# ================================================================================================
# 401 / 403 in the middle of a session
# ================================================================================================


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_mid_session_stops_polling_with_a_clear_message(status):
    with running_platform() as platform, RunnerWatch() as watch:
        session = platform.session()
        [sid] = session.create("worker", image=TERMINAL, cmd="sleep", args="60")
        table = SessionTable(session, hide_finished=False)
        load = PlatformLoad(session, interval=0.1)
        viewer = LogViewer(sid, session)
        widgets = [table, load, viewer]
        try:
            table.feed.fast = table.feed.slow = 0.1
            log_feed(viewer).fast = log_feed(viewer).slow = 0.1
            show(*widgets)
            assert wait_until(
                lambda: (
                    table.records
                    and load.cores_total is not None
                    and viewer.states.get(sid) == "Running"
                )
            )

            before = platform.request_count()
            platform.faults.auth_status = status
            stopped = wait_until(
                lambda: (
                    table.feed.auth_stopped
                    and load._poller.auth_stopped
                    and log_feed(viewer).auth_stopped
                ),
                timeout=15,
            )
            assert stopped, [
                (p.name, p.auth_stopped, p.running, p.polls, repr(p.error))
                for p in (table.feed, load._poller, log_feed(viewer))
            ] + [platform.request_count("GET", "session"), platform.request_count() - before]
            at_stop = platform.request_count()
            time.sleep(3)  # 30 polling intervals of each widget
            # No retry storm: each widget's poll that met the refusal (the viewer's poll is
            # two requests: the record, then the listing that says whether it still exists),
            # then nothing at all.
            assert platform.request_count() == at_stop
            assert at_stop - before <= 2 * len(widgets), at_stop - before

            word = "Unauthorized" if status == 401 else "Not authorized"
            for widget in widgets:
                # PlatformLoad says a refused login in its status area (no alert beside it).
                shown = widget.unavailable if widget is load else widget.error
                assert word in shown and f"HTTP {status}" in shown, shown
            # The table says polling stopped and what to do.
            assert "Automatic refresh stopped; press Refresh" in table.error

            # The person acts (new token in place, presses Refresh): each comes back.
            platform.faults.auth_status = None
            for widget in widgets:
                send(widget, kind="refresh")
            assert wait_until(lambda: table.error == "" and not table.feed.auth_stopped)
            assert wait_until(lambda: load.error == "" and not load._poller.auth_stopped)
            assert wait_until(lambda: viewer.error == "" and not log_feed(viewer).auth_stopped)
            # ...and polls periodically again.
            again = platform.request_count("GET", "session?view=stats")
            assert wait_until(
                lambda: platform.request_count("GET", "session?view=stats") >= again + 3, timeout=5
            )
        finally:
            for widget in widgets:
                widget.close()
            session.close()
    assert watch.problems() == []


@pytest.mark.parametrize("status", [401, 403])
def test_auth_stopped_widgets_say_how_to_resume(status):
    """Every widget whose polling stopped on 401/403 says so and how to resume."""
    with running_platform() as platform:
        session = platform.session()
        [sid] = session.create("worker", image=TERMINAL, cmd="sleep", args="60")
        load = PlatformLoad(session, interval=0.1)
        viewer = LogViewer(sid, session)
        try:
            log_feed(viewer).fast = log_feed(viewer).slow = 0.1
            show(load, viewer)
            assert wait_until(lambda: load.cores_total is not None and viewer.states)
            platform.faults.auth_status = status
            assert wait_until(lambda: load._poller.auth_stopped and log_feed(viewer).auth_stopped)
            silent = {}
            for widget in (load, viewer):
                # PlatformLoad says a refused login in its status area (`unavailable`).
                text = " ".join((widget.error, widget.status, getattr(widget, "unavailable", "")))
                if not (re.search(r"stopped", text, re.I) and re.search(r"refresh", text, re.I)):
                    silent[type(widget).__name__] = text
            assert silent == {}
        finally:
            load.close()
            viewer.close()
            session.close()


# ================================================================================================
# stats 503 + Retry-After
# ================================================================================================


def test_platform_load_honours_retry_after_of_a_503():
    with running_platform() as platform, RunnerWatch() as watch:
        platform.faults.stats_unavailable = True  # 503 with Retry-After: 30
        session = platform.session()
        load = PlatformLoad(session, interval=0.1)
        form = None
        try:
            show(load)
            with pytest.raises(Exception, match="503"):
                load._initial.result(10)
            assert load.status == "Platform statistics unavailable, retrying in 30s"
            assert load.unavailable == "Platform statistics unavailable"
            assert load.error == ""  # announced downtime, not an alert
            assert 28 < load.retry_at - time.time() <= 30
            time.sleep(2)  # 20 polling intervals
            assert platform.request_count("GET", "session?view=stats") == 1
            # The launch form reads stats too: it is not held up by the 503 either.
            started = time.monotonic()
            form = LaunchForm(session)
            form._ready.result(10)
            assert time.monotonic() - started < 5
            assert form.limits and form.load_limits == {}
        finally:
            load.close()
            _end_retry_after_wait(load)
            if form is not None:
                form.close()
            session.close()
    assert watch.problems() == []


def _end_retry_after_wait(load: PlatformLoad) -> None:
    """Cancel a poll still waiting out Retry-After after close() (see the next test), so it
    does not poll a stopped platform during a later test."""
    task = load._poller._task
    if task is not None:
        task.cancel()


def test_closing_platform_load_during_a_retry_after_wait_ends_its_polling():
    """Closing the widget must not leave a task waiting out Retry-After to poll once more."""
    with running_platform() as platform:
        platform.faults.stats_unavailable = True
        session = platform.session()
        runner = get_runner()
        baseline = runner.task_count
        load = PlatformLoad(session, interval=0.1)
        try:
            show(load)
            with pytest.raises(Exception, match="503"):
                load._initial.result(10)
            time.sleep(0.5)  # the next poll is now waiting for Retry-After
        finally:
            load.close()
        try:
            assert wait_until(lambda: runner.task_count <= baseline, timeout=3), (
                f"{runner.task_count - baseline} task(s) still alive after close()"
            )
            assert not load._poller.running
        finally:
            _end_retry_after_wait(load)
            session.close()


def test_session_feed_honours_retry_after_of_a_503_listing():
    """The shared session poller does not ask again before the server's Retry-After."""
    import httpx

    from canfar_widgets.sessions import AsyncSession

    listings: list[float] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/session") and "view" not in request.url.params:
            listings.append(time.monotonic())
            if len(listings) > 1:
                return httpx.Response(
                    503, text="temporarily unavailable\n", headers={"Retry-After": "30"}
                )
        return httpx.Response(200, json=[{"id": "abc12345", "status": "Running"}])

    session = AsyncSession(
        url="https://retry.test/skaha/v1", token="t", transport=httpx.MockTransport(handle)
    )
    table = SessionTable(session)
    try:
        table.feed.fast, table.feed.slow = 0.1, 0.75  # the defaults (2 s, 15 s) / 20
        show(table)
        assert wait_until(lambda: table.error, timeout=5)  # the second listing met the 503
        time.sleep(2)  # backoff would poll again 3-4 times; the server asked for 30 s
        assert len(listings) == 2, f"{len(listings) - 2} listings sent before Retry-After"
    finally:
        table.close()
        session.close()
