"""Poller: the one polling loop (visibility, intervals, backoff, auth stop, sharing)."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from support import wait_until

from canfar_widgets.errors import Forbidden, ServerError, Unauthorized, is_auth_error
from canfar_widgets.runner import get_runner
from canfar_widgets.widgets.feed import Poller


def _error(cls, code):
    request = httpx.Request("GET", "https://example.org/skaha/v1/session")
    return cls(httpx.Response(code, request=request, text="nope"))


class Source:
    """An async poll function that counts calls and can be told to fail."""

    def __init__(self):
        self.calls = 0
        self.fail: BaseException | None = None
        self.threads: set[str] = set()

    async def __call__(self):
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        return self.calls


class Seen:
    def __init__(self):
        self.items: list[tuple[object, BaseException | None]] = []
        self.event = threading.Event()

    def __call__(self, value, error):
        self.items.append((value, error))
        self.event.set()


def test_subscribe_polls_once_on_runner_then_pauses_while_hidden():
    source, seen = Source(), Seen()
    poller = Poller(source, fast=0.05, slow=0.05)
    sub = poller.subscribe(seen)
    assert wait_until(lambda: seen.items)
    assert seen.items[0] == (1, None)
    assert source.threads == {get_runner().name}
    time.sleep(0.3)  # hidden: no periodic polling
    assert source.calls == 1
    sub.set_visible(True)
    assert wait_until(lambda: source.calls >= 4)
    sub.set_visible(False)
    time.sleep(0.1)
    calls = source.calls
    time.sleep(0.3)
    assert source.calls == calls
    sub.close()
    assert wait_until(lambda: not poller.running)


def test_close_stops_polling():
    source, seen = Source(), Seen()
    poller = Poller(source, fast=0.05, slow=0.05)
    sub = poller.subscribe(seen)
    sub.set_visible(True)
    assert wait_until(lambda: source.calls >= 2)
    sub.close()
    assert wait_until(lambda: not poller.running)
    calls = source.calls
    time.sleep(0.25)
    assert source.calls == calls


def test_fast_while_busy_slow_when_stable():
    source = Source()
    busy = {"on": True}
    poller = Poller(source, fast=0.05, slow=30, is_busy=lambda v: busy["on"])
    sub = poller.subscribe(lambda v, e: None)
    sub.set_visible(True)
    assert wait_until(lambda: source.calls >= 3)
    busy["on"] = False
    assert wait_until(lambda: poller.interval() == 30)
    time.sleep(0.1)
    calls = source.calls
    time.sleep(0.3)
    assert source.calls == calls  # next poll is 30 s away
    sub.close()


def test_error_keeps_last_value_and_backs_off():
    source, seen = Source(), Seen()
    poller = Poller(source, fast=0.05, slow=0.4)
    sub = poller.subscribe(seen)
    assert wait_until(lambda: seen.items)
    source.fail = _error(ServerError, 500)
    poller.refresh_now()
    assert wait_until(lambda: len(seen.items) >= 2)
    value, error = seen.items[-1]
    assert value == 1 and isinstance(error, ServerError)
    assert poller.value == 1 and poller.error is error
    assert poller.interval() == pytest.approx(0.1)  # 2x fast
    sub.set_visible(True)
    assert wait_until(lambda: source.calls >= 4, timeout=3)
    assert poller.interval() <= 0.4  # capped at slow
    source.fail = None
    assert wait_until(lambda: seen.items[-1][1] is None, timeout=3)
    assert poller.error is None
    sub.close()


@pytest.mark.parametrize(("cls", "code"), [(Unauthorized, 401), (Forbidden, 403)])
def test_auth_error_stops_polling_until_refresh(cls, code):
    source, seen = Source(), Seen()
    source.fail = _error(cls, code)
    poller = Poller(source, fast=0.03, slow=0.03)
    sub = poller.subscribe(seen)
    sub.set_visible(True)
    assert wait_until(lambda: poller.auth_stopped)
    time.sleep(0.3)
    assert source.calls == 1  # no retry storm
    assert is_auth_error(seen.items[-1][1])
    source.fail = None
    assert poller.refresh_now().result(timeout=5) == 2
    assert not poller.auth_stopped
    assert wait_until(lambda: source.calls >= 4)  # periodic again
    sub.close()


def test_resume_after_auth_stop():
    source = Source()
    source.fail = _error(Unauthorized, 401)
    poller = Poller(source, fast=0.03, slow=0.03)
    sub = poller.subscribe(lambda v, e: None)
    sub.set_visible(True)
    assert wait_until(lambda: poller.auth_stopped)
    source.fail = None
    poller.resume()
    assert wait_until(lambda: source.calls >= 3)
    sub.close()


def test_refresh_now_without_subscribers_polls_once():
    source = Source()
    poller = Poller(source)
    assert poller.refresh_now().result(timeout=5) == 1
    assert wait_until(lambda: not poller.running)
    assert source.calls == 1


def test_refresh_now_future_carries_the_error():
    source = Source()
    source.fail = _error(ServerError, 502)
    poller = Poller(source)
    with pytest.raises(ServerError):
        poller.refresh_now().result(timeout=5)


def test_shared_poller_polls_once_for_many_subscribers():
    source = Source()
    a, b = Seen(), Seen()
    poller = Poller(source, fast=30, slow=30)
    sa = poller.subscribe(a)
    assert wait_until(lambda: a.items)
    sb = poller.subscribe(b)  # gets the current value at once, then one poll for both
    assert wait_until(lambda: len(b.items) >= 2)
    assert b.items[0] == (1, None)
    sa.set_visible(True)
    sb.set_visible(True)
    time.sleep(0.2)
    assert source.calls == 2
    assert a.items[-1] == b.items[-1] == (2, None)
    sa.close()
    sb.close()


def test_a_failing_subscriber_does_not_starve_others(caplog):
    source, good = Source(), Seen()
    poller = Poller(source)

    def bad(value, error):
        raise RuntimeError("boom")

    s1 = poller.subscribe(bad)
    s2 = poller.subscribe(good)
    assert wait_until(lambda: good.items)
    s1.close()
    s2.close()
    assert any("subscriber callback failed" in r.message for r in caplog.records)


def test_closing_after_runner_shutdown_is_quiet():
    from canfar_widgets.runner import Runner

    runner = Runner(name="short-lived")
    poller = Poller(Source(), fast=30, slow=30)
    poller._runner = runner
    sub = poller.subscribe(lambda v, e: None)
    assert wait_until(lambda: poller.polls == 1)
    runner.shutdown()
    sub.set_visible(True)  # no exception although the loop is gone
    sub.close()


def test_a_subscriber_waiting_for_change_keeps_the_shared_poller_fast():
    """A batch waiting on Running jobs must not ride a table's slow interval."""

    async def poll() -> list[str]:
        return ["Running"]

    poller = Poller(poll, fast=0.05, slow=30.0, is_busy=lambda states: "Pending" in states)
    table = poller.subscribe(lambda value, error: None)
    try:
        assert poller.refresh_now().result(5) == ["Running"]
        assert poller.interval() == 30.0  # stable for the table: slow
        batch = poller.subscribe(
            lambda value, error: None, is_busy=lambda states: "Running" in states
        )
        assert poller.interval() == 0.05  # the batch still waits: fast for everyone
        batch.close()
        assert poller.interval() == 30.0  # and slow again once it stops watching
    finally:
        table.close()


class Constant:
    """An async poll function that returns the same value and counts calls."""

    def __init__(self, value=("same",)):
        self.value = value
        self.calls = 0

    async def __call__(self):
        self.calls += 1
        return self.value


def test_unchanged_polls_go_idle_and_a_nudge_makes_them_fast_again():
    """Idle Dashboard (issue 16): polling stops growing once nothing changes."""
    source = Constant()
    poller = Poller(source, fast=0.02, slow=0.02, idle=3600, idle_after=3)
    sub = poller.subscribe(lambda v, e: None)
    sub.set_visible(True)
    # 1 poll with a new value, then 3 unchanged ones: the 4th has the idle interval.
    assert wait_until(lambda: source.calls >= 4)
    time.sleep(0.3)  # ~15 slow intervals: none of them polls
    assert source.calls == 4
    assert poller.unchanged == 3 and poller.interval() == 3600
    poller.nudge()  # the window got focus
    assert wait_until(lambda: source.calls >= 5)
    assert poller.interval() == 0.02
    time.sleep(0.3)
    # After the nudge: one poll at once, then two more before idling again (3 unchanged).
    assert source.calls == 7
    sub.close()


def test_coming_into_view_leaves_idle_and_polls_at_once():
    source = Constant()
    poller = Poller(source, fast=0.02, slow=0.02, idle=3600, idle_after=1)
    sub = poller.subscribe(lambda v, e: None)
    sub.set_visible(True)
    assert wait_until(lambda: source.calls >= 2)
    time.sleep(0.1)
    assert source.calls == 2 and poller.interval() == 3600
    sub.set_visible(False)
    time.sleep(0.05)
    sub.set_visible(True)
    assert wait_until(lambda: source.calls >= 3)
    sub.close()


def test_changed_values_never_idle():
    source = Source()  # a new value every poll
    poller = Poller(source, fast=0.02, slow=0.02, idle=3600, idle_after=2)
    sub = poller.subscribe(lambda v, e: None)
    sub.set_visible(True)
    assert wait_until(lambda: source.calls >= 6)
    assert poller.unchanged == 0 and poller.interval() == 0.02
    sub.close()


def test_hurry_polls_at_once_then_fast_until_the_window_ends():
    source = Constant()
    poller = Poller(source, fast=0.01, slow=30, idle=60, idle_after=1)
    sub = poller.subscribe(lambda v, e: None)
    assert poller.refresh_now().result(5) == ("same",)
    poller.refresh_now().result(5)
    assert poller.interval() == 60  # stable: idle
    calls = source.calls
    poller.hurry(3600)
    assert wait_until(lambda: source.calls > calls)  # at once, though 60 s were left
    assert poller.interval() == 0.01
    poller._hot_until = 0.0  # the window is over
    assert poller.interval() in (30, 60)
    sub.close()


def test_lively_values_poll_fast_for_a_while_then_slow_never_idle():
    source = Constant(["job Running"])
    poller = Poller(
        source,
        fast=0.01,
        slow=30,
        idle=60,
        idle_after=1,
        is_lively=lambda v: "job Running" in v,
        lively_polls=3,
    )
    sub = poller.subscribe(lambda v, e: None)
    sub.set_visible(True)
    # The first poll, then 3 unchanged fast ones; then the slow interval (30 s), not idle.
    assert wait_until(lambda: source.calls >= 4)
    time.sleep(0.2)
    assert source.calls == 4
    assert poller.interval() == 30
    sub.close()


def test_a_busy_check_runs_once_per_value_object():
    """A quiet poll hands back the same list: asking 5,000 records again is waste."""
    value = ["Pending"]
    checks = []

    async def poll():
        return value

    def is_busy(v):
        checks.append(v)
        return "Pending" in v

    poller = Poller(poll, fast=0.01, slow=30, is_busy=is_busy)
    sub = poller.subscribe(lambda v, e: None)
    for _ in range(3):
        poller.refresh_now().result(5)
        assert poller.interval() == 0.01
    assert len(checks) == 1
    sub.close()
