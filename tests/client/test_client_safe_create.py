"""Safe create (issue 11 §3): no create lost, duplicated or misreported.

respx for the decision table (what is retried, what is looked for, what counts as found),
then the local platform behind a proxy that loses answers after the platform acted, sync and
async: exactly one session exists and the caller is told so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
from client_proxy import FaultyProxy
from reliability_support import TERMINAL, running_platform
from wire_support import BASE, TOKEN, form, record

from canfar_widgets.errors import (
    AnswerLost,
    BadRequest,
    LaunchWarning,
    OutcomeUnknown,
    SessionRequestError,
)
from canfar_widgets.models import CreateRequest
from canfar_widgets.sessions import AsyncSession, LaunchOutcome, Reconcile, Session

# No user configuration or CANFAR_* variable reaches these tests.
pytestmark = pytest.mark.usefixtures("clean_home")

IMAGE = "images.canfar.net/skaha/terminal:1.1.2"


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> datetime:
    return datetime.now(timezone.utc)


def lose(replica_name: str, error: Exception | httpx.Response, others: str = "id{}") -> object:
    """A POST side effect: ``replica_name``'s answer is lost as ``error``; others get an id."""

    def answer(request: httpx.Request) -> httpx.Response:
        name = dict(form(request))["name"]
        if name == replica_name:
            if isinstance(error, httpx.Response):
                return error
            raise error
        return httpx.Response(200, text=others.format(name.rsplit("-", 1)[-1]) + "\n")

    return answer


def listing(respx_mock, rows):
    return respx_mock.get(BASE + "session").respond(json=rows)


# -- found by name: reported as created, logged at INFO, never sent twice --------------------


@pytest.mark.parametrize(
    "lost",
    [
        httpx.ReadTimeout("slow"),
        httpx.ReadError("reset by peer"),
        httpx.RemoteProtocolError("gone"),
        httpx.WriteTimeout("slow"),
        httpx.Response(504, text="gateway timeout"),
        httpx.Response(200, text="<html><body>Sign in</body></html>"),
        httpx.Response(200, text=""),
    ],
    ids=["read-timeout", "reset", "disconnect", "write-timeout", "504", "html-200", "empty-200"],
)
def test_a_lost_answer_is_found_by_name(api, respx_mock, slept, caplog, lost):
    posts = respx_mock.post(BASE + "session").mock(side_effect=lose("job-2", lost))
    looks = listing(respx_mock, [record("found222", "Pending", name="job-2")])
    with caplog.at_level(logging.INFO, logger="canfar_widgets.sessions"):
        assert api.create("job", image=IMAGE, replicas=3) == ["id1", "found222", "id3"]
    assert posts.call_count == 3  # never re-sent
    assert looks.call_count == 1 and slept == []  # the first look is immediate
    assert list(looks.calls.last.request.url.params.multi_items()) == [("type", "headless")]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(
        "replica 2/3 was lost" in m and "found session found222 by its name 'job-2'" in m
        for m in messages
    )


def test_launch_replicas_reports_reconciled_and_unknown(api, respx_mock, slept):
    respx_mock.post(BASE + "session").mock(
        side_effect=[
            httpx.ReadTimeout("slow"),
            httpx.ReadTimeout("slow"),
            httpx.Response(400, text="bad\n"),
        ]
    )
    respx_mock.get(BASE + "session").respond(json=[record("r1r1r1r1", name="scan-1")])
    api.client.reconcile = Reconcile(looks=2, delay=0.5)
    request = CreateRequest(name="scan", image=IMAGE, cmd="env")
    outcomes = api.launch_replicas(request, [1, 2, 3], total=3)
    by = {o.replica: o for o in outcomes}
    assert sorted(by) == [1, 2, 3]
    # which POST got which answer depends on scheduling: check the three kinds are there
    kinds = sorted(
        (o.reconciled, o.unknown, o.id is not None, type(o.error).__name__) for o in outcomes
    )
    assert (True, False, True, "NoneType") in kinds  # found by name
    assert (False, True, False, "AnswerLost") in kinds  # lost, not found
    assert (False, False, False, "BadRequest") in kinds  # plainly refused
    unknown = next(o for o in outcomes if o.unknown)
    assert unknown.name == f"scan-{unknown.replica}" and isinstance(unknown.error, AnswerLost)
    assert isinstance(unknown.error.__cause__, httpx.ReadTimeout)
    assert unknown.error.name == unknown.name and unknown.error.replica == unknown.replica
    assert slept == [0.5]  # looked twice: at once, then after the backoff
    assert all(isinstance(o, LaunchOutcome) for o in outcomes)


# -- not found: unknown, said so -------------------------------------------------------------------


def test_not_found_with_ignore_leaves_it_out_and_warns(api, respx_mock, slept):
    posts = respx_mock.post(BASE + "session").mock(
        side_effect=lose("job-2", httpx.ReadTimeout("slow"))
    )
    looks = listing(respx_mock, [])
    with pytest.warns(
        LaunchWarning,
        match=r"launched 2 of 3 .*replica 2/3: outcome unknown: .*"
        r"no session named 'job-2' was found; check fetch\(\)",
    ):
        assert api.create("job", image=IMAGE, replicas=3) == ["id1", "id3"]
    assert posts.call_count == 3
    defaults = Reconcile()
    assert looks.call_count == defaults.looks
    assert slept == [defaults.delay * defaults.factor**i for i in range(defaults.looks - 1)]


def test_not_found_with_raise_is_outcome_unknown_naming_the_replica(make_api, respx_mock, slept):
    api = make_api(errors="raise")
    respx_mock.post(BASE + "session").mock(side_effect=lose("job-2", httpx.ReadTimeout("slow")))
    listing(respx_mock, [])
    with pytest.raises(OutcomeUnknown) as info:
        api.create("job", image=IMAGE, replicas=3)
    error = info.value
    assert isinstance(error, SessionRequestError) and error.results == ["id1", "id3"]
    assert list(error.errors) == [2] and [lost.name for lost in error.unknown] == ["job-2"]
    assert "replica(s) 2 ('job-2') is unknown" in str(error)


def test_a_refusal_is_a_plain_failure_and_nothing_is_looked_for(make_api, respx_mock, slept):
    api = make_api(errors="raise")
    respx_mock.post(BASE + "session").respond(400, text="Missing parameter 'image'\n")
    looks = listing(respx_mock, [])
    with pytest.raises(SessionRequestError) as info:
        api.create("job", image=IMAGE)
    assert not isinstance(info.value, OutcomeUnknown) and isinstance(info.value, BadRequest)
    assert looks.call_count == 0


# -- what counts as "the session it asked for" -------------------------------------------------------


def test_an_older_session_of_the_same_name_is_not_taken(api, respx_mock, slept):
    respx_mock.post(BASE + "session").mock(side_effect=httpx.ReadTimeout("slow"))
    listing(
        respx_mock,
        [record("old11111", "Running", name="test", startTime=iso(now() - timedelta(hours=1)))],
    )
    with pytest.warns(LaunchWarning, match="outcome unknown"):
        assert api.create("test", image=IMAGE) == []


def test_a_session_this_client_created_before_is_not_taken(api, respx_mock, slept):
    posts = respx_mock.post(BASE + "session").mock(
        side_effect=[
            httpx.Response(200, text="mine1111\n"),
            httpx.ReadTimeout("slow"),
        ]
    )
    listing(respx_mock, [record("mine1111", "Pending", name="test")])  # no startTime yet
    assert api.create("test", image=IMAGE) == ["mine1111"]
    with pytest.warns(LaunchWarning, match="outcome unknown"):
        assert api.create("test", image=IMAGE) == []  # the same name again, answer lost
    assert posts.call_count == 2


def test_two_new_sessions_of_that_name_are_ambiguous(api, respx_mock, slept, caplog):
    respx_mock.post(BASE + "session").mock(side_effect=httpx.ReadTimeout("slow"))
    looks = listing(
        respx_mock,
        [record("twin1111", "Pending", name="test"), record("twin2222", "Pending", name="test")],
    )
    with caplog.at_level(logging.WARNING), pytest.warns(LaunchWarning, match="outcome unknown"):
        assert api.create("test", image=IMAGE) == []
    assert looks.call_count == 1  # ambiguity does not improve by looking again
    assert any("cannot tell which one" in r.getMessage() for r in caplog.records)


def test_start_times_use_the_platforms_clock(api, respx_mock, slept):
    # The platform's clock is an hour behind ours: its Date header says so, and a session it
    # started just now (by its clock) is new, not an hour old.
    behind = now() - timedelta(hours=1)
    respx_mock.post(BASE + "session").mock(side_effect=httpx.ReadTimeout("slow"))
    respx_mock.get(BASE + "session").respond(
        json=[
            record("late1111", "Running", name="test", startTime=iso(behind + timedelta(seconds=1)))
        ],
        headers={"Date": format_datetime(behind, usegmt=True)},
    )
    assert api.create("test", image=IMAGE) == ["late1111"]


def test_a_failed_look_is_not_a_verdict(api, respx_mock, slept):
    respx_mock.post(BASE + "session").mock(side_effect=httpx.ReadTimeout("slow"))
    respx_mock.get(BASE + "session").mock(
        side_effect=[
            httpx.Response(500, text="boom"),
            httpx.Response(200, text="<html>"),
            httpx.Response(200, json=[record("late2222", "Pending", name="test")]),
        ]
    )
    assert api.create("test", image=IMAGE) == ["late2222"]


# -- provably not sent: retried like a GET ------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("busy")],
)
def test_not_sent_is_retried_and_creates_once(api, respx_mock, slept, error):
    posts = respx_mock.post(BASE + "session").mock(
        side_effect=[error, httpx.Response(200, text="ok111111\n")]
    )
    looks = listing(respx_mock, [])
    assert api.create("job", image=IMAGE) == ["ok111111"]
    assert posts.call_count == 2 and looks.call_count == 0 and len(slept) == 1


def test_a_429_create_waits_its_retry_after(api, respx_mock, slept):
    posts = respx_mock.post(BASE + "session").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3"}),
            httpx.Response(200, text="ok222222\n"),
        ]
    )
    assert api.create("job", image=IMAGE) == ["ok222222"]
    assert posts.call_count == 2 and slept == [3.0]


def test_a_long_429_is_reported_with_when_to_come_back(make_api, respx_mock, slept):
    api = make_api(errors="raise")
    respx_mock.post(BASE + "session").respond(429, headers={"Retry-After": "600"})
    with pytest.raises(SessionRequestError) as info:
        api.create("job", image=IMAGE)
    assert info.value.retry_after == 600 and slept == []
    assert any("wait 600 s" in note for note in info.value.__notes__)


# -- an interrupt: the caller gets it at once; the outcome is looked for and logged ----------------


def creates_that_hang(respx_mock) -> tuple[asyncio.Event, list[str]]:
    """Creates that are sent and never answered: ``started`` is set on the first, ``sent``
    lists the names the server received."""
    started = asyncio.Event()
    loop = asyncio.get_running_loop()
    sent: list[str] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        sent.append(dict(form(request))["name"])
        loop.call_soon_threadsafe(started.set)
        await asyncio.sleep(30)
        return httpx.Response(200, text="never\n")

    respx_mock.post(BASE + "session").mock(side_effect=slow)
    return started, sent


async def test_an_interrupted_create_is_looked_for_in_the_background(respx_mock, caplog):
    started, sent = creates_that_hang(respx_mock)
    listing(respx_mock, [record("kept1111", "Pending", name="test")])
    caplog.set_level(logging.WARNING, logger="canfar_widgets.sessions")
    async with AsyncSession(url=BASE, token=TOKEN) as session:
        task = asyncio.create_task(session.create("test", image=IMAGE))
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if any("was created as session kept1111" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.02)
    messages = [r.getMessage() for r in caplog.records]
    assert any("create interrupted while sending replica 1/1 ('test')" in m for m in messages)
    assert any(
        "interrupted create: replica 1/1 was created as session kept1111" in m for m in messages
    )
    assert sent == ["test"]  # sent once, and not again after the interrupt


# -- against the local platform, through a proxy that loses the answer after the platform acted -----


@pytest.mark.parametrize("mode", ["reset", "stall", "html"])
@pytest.mark.parametrize("flavour_", ["sync", "async"])
def test_local_platform_lost_answer_creates_exactly_one(mode, flavour_, caplog):
    with running_platform() as platform, FaultyProxy(platform.base) as proxy:
        proxy.fail("POST", "/skaha/v1/session", mode, stall=3.0)
        kwargs = {"url": proxy.url + "/skaha/v1", "token": platform.token, "timeout": 1}
        with caplog.at_level(logging.INFO, logger="canfar_widgets.sessions"):
            if flavour_ == "sync":
                with Session(**kwargs) as session:
                    ids = session.create("lost", image=TERMINAL, cmd="sleep", args="30")
            else:

                async def main() -> list[str]:
                    async with AsyncSession(**kwargs) as session:
                        return await session.create("lost", image=TERMINAL, cmd="sleep", args="30")

                ids = asyncio.run(main())
        names = [(r["id"], r["name"]) for r in platform.sessions()]
        assert names == [(ids[0], "lost")]  # created once, and reported as created
        assert proxy.forwarded[("POST", "/skaha/v1/session")] == 1  # never sent twice
        assert any("found session" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("flavour_", ["sync", "async"])
def test_local_platform_replicas_with_one_lost_answer(flavour_):
    with running_platform() as platform, FaultyProxy(platform.base) as proxy:
        proxy.fail("POST", "/skaha/v1/session", "reset")
        kwargs = {"url": proxy.url + "/skaha/v1", "token": platform.token}
        if flavour_ == "sync":
            with Session(**kwargs) as session:
                ids = session.create("rep", image=TERMINAL, cmd="sleep", args="30", replicas=4)
        else:

            async def main() -> list[str]:
                async with AsyncSession(**kwargs) as session:
                    return await session.create(
                        "rep", image=TERMINAL, cmd="sleep", args="30", replicas=4
                    )

            ids = asyncio.run(main())
        by_name = {r["name"]: r["id"] for r in platform.sessions()}
        assert sorted(by_name) == ["rep-1", "rep-2", "rep-3", "rep-4"]
        assert ids == [by_name[f"rep-{n}"] for n in range(1, 5)]  # replica order, none missing
        assert proxy.forwarded[("POST", "/skaha/v1/session")] == 4


def test_local_platform_429_is_retried_and_creates_once():
    with running_platform() as platform, FaultyProxy(platform.base) as proxy:
        proxy.fail("POST", "/skaha/v1/session", "refuse")
        with Session(url=proxy.url + "/skaha/v1", token=platform.token) as session:
            ids = session.create("again", image=TERMINAL, cmd="true")
        assert [r["id"] for r in platform.sessions()] == ids and len(ids) == 1
        assert proxy.forwarded[("POST", "/skaha/v1/session")] == 1  # the 429 never reached it


def test_local_platform_unknown_outcome_when_nothing_was_created(make_api):
    # The proxy stalls a create the platform refused (an unknown image): the answer is lost,
    # the session cannot be found, so the outcome is said to be unknown, not "failed".
    with running_platform() as platform, FaultyProxy(platform.base) as proxy:
        proxy.fail("POST", "/skaha/v1/session", "stall", stall=2.0)
        with Session(url=proxy.url + "/skaha/v1", token=platform.token, timeout=0.5) as session:
            session.reconcile = Reconcile(looks=2, delay=0.05)
            with pytest.raises(OutcomeUnknown, match="'nothing'"):
                session.create("nothing", image="images.canfar.net/skaha/nope:1", errors="raise")
        assert platform.sessions() == []


def test_the_short_create_warning_never_quotes_a_5xx_text(api, respx_mock):
    # A 500's text may quote the job's manifest, environment values included.
    respx_mock.post(BASE + "session").respond(
        500, text="unexpected exception: value: SENTINEL-ENV-77\n"
    )
    with pytest.warns(LaunchWarning) as seen:
        api.create("job", image=IMAGE, env={"K": "SENTINEL-ENV-77"})
    assert "ServerError 500" in str(seen[0].message)
    assert "SENTINEL-ENV-77" not in str(seen[0].message)


def test_ctrl_c_during_a_sync_create_reports_what_was_created(respx_mock, caplog):
    import os
    import signal
    import threading

    sending = threading.Event()
    sent: list[str] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        sent.append(dict(form(request))["name"])
        sending.set()
        await asyncio.sleep(30)
        return httpx.Response(200, text="never\n")

    respx_mock.post(BASE + "session").mock(side_effect=slow)
    listing(respx_mock, [record("kept2222", "Pending", name="test")])
    caplog.set_level(logging.WARNING, logger="canfar_widgets.sessions")

    def press_ctrl_c() -> None:
        if sending.wait(10):
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does

    with Session(url=BASE, token=TOKEN) as session:
        threading.Thread(target=press_ctrl_c, daemon=True).start()
        # (this once showed that a Ctrl-C landing while the work was being queued left it
        # running unseen: Runner.run now holds its future before queueing)
        with pytest.raises(KeyboardInterrupt):
            session.create("test", image=IMAGE)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
            "created as session kept2222" in r.getMessage() for r in caplog.records
        ):
            time.sleep(0.02)
    assert any(
        "interrupted create: replica 1/1 was created as session kept2222 ('test')" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
    assert any(
        "create interrupted while sending replica 1/1 ('test')" in r.getMessage()
        for r in caplog.records
    )
    assert sent == ["test"]


async def test_an_interrupt_counts_only_the_replicas_actually_sent(respx_mock, caplog):
    started, sent = creates_that_hang(respx_mock)
    listing(respx_mock, [])
    caplog.set_level(logging.WARNING, logger="canfar_widgets.sessions")
    async with AsyncSession(url=BASE, token=TOKEN, concurrency=1) as session:
        session.reconcile = Reconcile(looks=1)
        task = asyncio.create_task(session.create("test", image=IMAGE, replicas=3))
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # the caller is released at once; the runner side logs as it unwinds
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
            "no session named" in r.getMessage() for r in caplog.records
        ):
            await asyncio.sleep(0.02)
    [warning] = [r.getMessage() for r in caplog.records if "create interrupted" in r.getMessage()]
    # one connection slot: replica 1 was on the wire, 2 and 3 still queued (never sent)
    assert sent == ["test-1"] and "replica 1/3 ('test-1')" in warning and "test-2" not in warning


def test_match_lost_rules():
    from canfar_widgets.reconcile import match_lost

    began = time.time()
    rows = [
        {"id": "old11111", "name": "a", "startTime": iso(now() - timedelta(minutes=5))},
        {"id": "new11111", "name": "a", "startTime": iso(now() + timedelta(seconds=1))},
        {"id": "pend1111", "name": "b"},  # Pending: no startTime yet
        {"id": "mine1111", "name": "c"},
        {"id": "twin1111", "name": "d"},
        {"id": "twin2222", "name": "d"},
        {"id": 7, "name": "e"},
        {"name": "f"},
    ]
    lost = {1: "a", 2: "b", 3: "c", 4: "d", 5: "e", 6: "f", 7: "zzz"}
    found, ambiguous = match_lost(rows, lost, {"mine1111"}, began - 2)
    assert found == {1: "new11111", 2: "pend1111"}
    assert ambiguous == {4}
    # one record is never given to two replicas asking for the same name
    found, _ = match_lost([{"id": "only1111", "name": "x"}], {1: "x", 2: "x"}, set(), 0)
    assert found == {1: "only1111"}


def test_a_200_that_is_not_an_id_is_an_unexpected_answer_never_an_id(make_api, respx_mock, slept):
    api = make_api(errors="raise")
    api.client.reconcile = Reconcile(looks=1)
    respx_mock.post(BASE + "session").respond(200, text="<!DOCTYPE html><html>proxy</html>")
    listing(respx_mock, [])
    with pytest.raises(OutcomeUnknown) as info:
        api.create("job", image=IMAGE)
    [lost] = info.value.unknown
    assert (
        "unexpected answer from the platform: a 200 that is not a session id (an HTML/XML page)"
        in str(lost)
    )
    assert "proxy" not in str(info.value)  # the body itself is never quoted
