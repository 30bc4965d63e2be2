"""PlatformLoad: numbers from view=stats, history while visible, 503 + Retry-After honoured."""

from __future__ import annotations

import threading
import time

import pytest
from widget_fakes import TOKEN, FakeSkaha, send, wait_until

from canfar_widgets.widgets.load import PlatformLoad


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
    assert repr(load) == "<PlatformLoad: CPU 12.5 / 64 cores, RAM 137.4 / 549.8 GB>"
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
    sky.stats_reply = (200, {"cores": {"requestedCPUCores": 1, "cpuCoresAvailable": 2}, "ram": {}}, {})
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
