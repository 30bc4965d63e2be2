"""PlatformLoad: numbers from view=stats, history while visible, 503 + Retry-After honoured."""

from __future__ import annotations

import threading
import time

import pytest
from widget_fakes import TOKEN, FakeSkaha, send, wait_until

from canfar_widgets.widgets.platform_load import PlatformLoad


@pytest.fixture
def sky():
    return FakeSkaha()


def stats_requests(sky):
    return [r for r in sky.made("GET", "session") if r.url.params.get("view") == "stats"]


def test_first_sample_fills_the_bars(sky):
    load = PlatformLoad(sky.session())
    load._initial.result(5)
    assert (load.cores_used, load.cores_total) == (12.5, 64.0)
    assert load.ram_used_gb == pytest.approx(137.439)
    assert load.ram_total_gb == pytest.approx(549.756)
    assert load.cores_max == 8.0 and load.ram_max_gb == pytest.approx(34.36, abs=0.01)
    assert len(load.history) == 1 and load.history[0][1:] == [12.5, pytest.approx(137.439)]
    assert load.unavailable == "" and load.error == ""
    # RAM in GiB, the unit the form asks in (issue 15, item 14); it was "137.4 / 549.8 GB".
    assert repr(load) == "<PlatformLoad: CPU 12.5 / 64 cores, RAM 128 / 512 GiB>"
    html = load._static_html()
    assert "<meter" in html and "CPU 12.5 / 64 cores" in html
    load.close()


def test_history_grows_only_while_visible_and_is_bounded(sky):
    load = PlatformLoad(sky.session(), interval=0.05, history_size=3)
    load._initial.result(5)
    threading.Event().wait(0.25)
    assert len(stats_requests(sky)) == 1  # no view on screen: no polling
    send(load, kind="visibility", visible=True, view="v")
    assert wait_until(lambda: len(stats_requests(sky)) >= 5)
    assert len(load.history) == 3
    times = [sample[0] for sample in load.history]
    assert times == sorted(times)
    send(load, kind="visibility", visible=False, view="v")
    threading.Event().wait(0.1)
    n = len(stats_requests(sky))
    threading.Event().wait(0.25)
    assert len(stats_requests(sky)) <= n + 1
    load.close()


def test_503_with_retry_after_is_honoured(sky):
    sky.stats_reply = (503, "temporarily unavailable: null\n", {"Retry-After": "1"})
    load = PlatformLoad(sky.session(retries=False), interval=0.05)
    with pytest.raises(Exception):  # noqa: B017 - the first sample fails
        load._initial.result(5)
    assert load.unavailable == "Platform statistics unavailable"
    assert load.status == "Platform statistics unavailable, retrying in 1s"
    assert load.error == ""  # expected downtime, not an alert
    assert load.retry_at == pytest.approx(time.time() + 1, abs=0.3)
    assert load.history[-1][1:] == [None, None]
    failed_at = time.monotonic()
    send(load, kind="visibility", visible=True, view="v")  # polling would run every 0.05 s...
    sky.stats_reply = (
        200,
        {"cores": {"requestedCPUCores": 1, "cpuCoresAvailable": 2}, "ram": {}},
        {},
    )
    assert wait_until(lambda: load.cores_used == 1.0, timeout=5)
    # ...but the next request waited for Retry-After.
    assert time.monotonic() - failed_at >= 0.9
    assert len(stats_requests(sky)) == 2
    assert load.unavailable == "" and load.retry_at == 0.0
    load.close()


def test_other_errors_alert_and_auth_errors_stop(sky):
    sky.stats_reply = (500, f"broken {TOKEN}", {})
    load = PlatformLoad(sky.session(retries=False), interval=0.05)
    with pytest.raises(Exception):  # noqa: B017
        load._initial.result(5)
    assert load.error.startswith("Reading platform statistics failed")
    assert TOKEN not in load.error
    assert load.status.startswith("Platform statistics unavailable, retrying in")
    sky.stats_reply = (401, "expired", {})
    load.refresh()
    assert wait_until(lambda: "expired" in load.unavailable)
    assert load.retry_at == 0.0
    load.close()


def test_missing_numbers_stay_none(sky):
    sky.stats_reply = (200, {"cores": {}, "ram": {}}, {})
    load = PlatformLoad(sky.session())
    load._initial.result(5)
    assert load.cores_used is None and load.cores_total is None
    assert "CPU – / – cores" in load._static_html()
    load.close()


def test_only_the_new_sample_travels_and_a_view_asks_for_the_history_once(sky):
    """PlatformLoad update (issue 16): one sample per update, not the whole history."""
    from canfar_widgets.widgets._traffic import measure_traffic

    load = PlatformLoad(sky.session(), history_size=60)
    load._initial.result(5)
    for _ in range(20):
        load.refresh().result(5)
    assert len(load.history) == 21
    with measure_traffic(load) as meter:
        load.refresh().result(5)
    samples = [m for m in meter.custom() if m.get("kind") == "sample"]
    assert len(samples) == 1 and samples[0]["n"] == 22
    assert samples[0]["sample"][1:] == [12.5, pytest.approx(137.439)]
    sent = [name for update in meter.updates() for name in update]
    assert "history" not in sent and "history_snapshot" not in sent
    assert meter.bytes < 600  # one sample and "Updated hh:mm:ss", whatever the history
    # A view opening asks for the history once: then it has all 22 samples.
    with measure_traffic(load) as meter:
        send(load, kind="history")
    assert load.history_snapshot == load.history and load.history_count == 22
    assert meter.bytes > 22 * 20
    load.close()


def test_numbers_agree_ram_in_gib_and_over_commitment_said_so(sky):
    """Issue 15, item 14: no "CPU requested 5 of 2 cores (250%)" beside "Largest session 8 cores"."""
    load = PlatformLoad(sky.session())
    load._initial.result(5)
    assert load.cpu_text == "CPU: 12.5 of 64 cores requested (20%)"
    assert load.ram_text == "RAM: 128 of 512 GiB requested (25%)"  # 137.439 G / 549.756 G
    assert load.ceiling_text == "Largest session: 8 cores, 32 GiB"  # "32Gi", not 34.4 GB
    assert load.ram_max_gib == 32.0 and not load.over_committed
    sky.stats_reply = (200, {
        "cores": {"requestedCPUCores": 5, "cpuCoresAvailable": 2, "maxCPUCores": {"cpuCores": 8}},
        "ram": {"requestedRAM": "4.295G", "ramAvailable": "8.59G", "maxRAM": {"ram": "32Gi"}},
    }, {})  # fmt: skip
    load.refresh().result(5)
    assert load.over_committed
    assert (
        load.cpu_text
        == "CPU: 5 of 2 cores requested: over-committed by 3 cores (new sessions wait as Pending)"
    )
    assert "%" not in load.cpu_text
    assert load.ram_text == "RAM: 4 of 8 GiB requested (50%)"
    assert load.ceiling_text == (
        "Largest session: 8 cores, 32 GiB (more than this platform's 2 cores and 8 GiB: such a session would wait)"
    )
    load.close()


def test_not_loaded_is_said_when_nothing_loaded(sky):
    sky.stats_reply = (401, "expired token", {})
    load = PlatformLoad(sky.session(retries=False))
    with pytest.raises(Exception):  # noqa: B017
        load._initial.result(5)
    assert load.cpu_text == "CPU: not loaded" and load.ram_text == "RAM: not loaded"
    assert load.login_refused
    # One message, not three: the banner (unavailable); no alert and no status copy.
    assert "expired" in load.unavailable and load.error == "" and load.status == ""
    assert "expired" in load._static_html() and "CPU – / – cores" in load._static_html()
    load.close()


def test_a_launch_ends_the_idle_interval(sky):
    from canfar_widgets import launches
    from canfar_widgets.runner import get_runner

    load = PlatformLoad(sky.session(), interval=30)
    load._initial.result(5)
    runner = get_runner()
    for _ in range(4):  # unchanged samples, as the loop takes them
        runner.run(load.poller._poll_once(runner.loop))
    assert load.poller.interval() == 60
    launches.announce(["new00001"])
    assert load.poller.interval() == 30
    load.close()
