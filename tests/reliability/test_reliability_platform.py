"""Reliability of the client and the local platform: processes, load, faults at the wire.

Complements ``tests/local/test_local_jobs.py`` (which already proves: a job killed by a signal is
Failed, delete kills a job's group with a background child, ``stop()`` and interpreter exit
leave no job process, 40 concurrent raw creates lose none). Here everything goes through
this package's ``Session``, grandchildren are included, and the load is 200 creates.
"""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

import pytest
from reliability_support import (
    TERMINAL,
    descendants,
    group_alive,
    group_members,
    running_platform,
    wait_until,
)
from support import process_running

from canfar_widgets.errors import (
    Forbidden,
    LaunchWarning,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
)
from canfar_widgets.models import parse_events

# No user configuration or CANFAR_* variable reaches these tests.
pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("clean_home")]


def script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# A job whose shell ignores SIGTERM and leaves a child shell (`sh -c`) with a grandchild.
FAMILY = "trap '' TERM\nsh -c 'sleep 300 & sleep 300' &\nsleep 300\n"


def test_killed_headless_job_becomes_failed_with_a_warning_event():
    with running_platform() as platform:
        session = platform.session()
        try:
            [sid] = session.create("victim", image=TERMINAL, cmd="sleep", args="300")
            session.wait(sid, until="Running", timeout=15, interval=0.05)
            pgid = wait_until(lambda: platform.process_group(sid))
            assert pgid
            os.killpg(pgid, signal.SIGKILL)
            [record] = session.wait(sid, until="finished", timeout=15, interval=0.05)
            assert record["status"] == "Failed"
            [texts] = session.events(sid)
            events = parse_events(texts[sid])
            warnings = [(e.reason, e.message) for e in events if e.type == "Warning"]
            assert [reason for reason, _ in warnings] == ["BackoffLimitExceeded"], texts[sid]
            assert "Started" in {e.reason for e in events}
            assert not group_alive(pgid)
        finally:
            session.close()


def test_destroy_kills_the_whole_group_grandchildren_included(tmp_path):
    job = script(tmp_path, "family.sh", FAMILY)
    with running_platform() as platform:
        session = platform.session()
        try:
            # cmd is one argv element and args split on spaces: run the script through sh.
            [sid] = session.create("family", image=TERMINAL, cmd="/bin/sh", args=str(job))
            session.wait(sid, until="Running", timeout=15, interval=0.05)
            pgid = wait_until(lambda: platform.process_group(sid))
            assert pgid
            # sh (job) + sh -c + its sleep + the job's sleep: 4 live processes, one group.
            members = wait_until(lambda: m if len(m := group_members(pgid)) >= 4 else None)
            assert members, group_members(pgid)
            assert session.destroy(sid) == {sid: True}
            wait_until(lambda: not session.fetch(), timeout=15)
            assert wait_until(lambda: not group_alive(pgid), timeout=5)
            # Gone or a zombie awaiting its reaper (orphans go to PID 1): none still runs.
            assert [pid for pid in members if process_running(pid)] == []
        finally:
            session.close()


def test_stop_leaves_no_descendant_process(tmp_path):
    """Complements test_local_jobs' stop tests: grandchildren of every job are gone too."""
    job = script(tmp_path, "family.sh", FAMILY)
    before = set(descendants(os.getpid()))
    with running_platform(cores=8) as platform:  # room for all 3 at once on a small host
        session = platform.session()
        try:
            ids = session.create("fam", image=TERMINAL, cmd="/bin/sh", args=str(job), replicas=3)
            session.wait(ids, until="Running", timeout=15, interval=0.05)
            family = wait_until(
                lambda: f if len(f := set(descendants(os.getpid())) - before) >= 12 else None
            )
            assert family, "3 jobs x 4 processes expected"
            session.create("late", image=TERMINAL, cmd="/bin/sh", args=str(job))  # still starting
        finally:
            session.close()
    # Orphans are re-parented to PID 1, so check the pids seen, not just our descendants.
    assert [pid for pid in family if process_running(pid)] == []
    assert set(descendants(os.getpid())) - before == set()


def test_200_concurrent_creates_lose_none():
    with running_platform() as platform:
        platform.faults.jitter = 0.05  # answers overtake each other
        session = platform.session(concurrency=64)
        try:
            started = time.monotonic()
            ids = session.create("many", image=TERMINAL, cmd="true", replicas=200, errors="raise")
            took = time.monotonic() - started
            assert len(ids) == 200 and len(set(ids)) == 200
            assert platform.request_count("POST", "session") == 200
            names = {r["name"]: r["id"] for r in platform.sessions()}
            assert {f"many-{n}" for n in range(1, 201)} == set(names)
            assert set(names.values()) == set(ids)
            # Each id is the replica with its own REPLICA_ID: order kept, none swapped.
            assert [names[f"many-{n}"] for n in range(1, 201)] == ids
            platform.faults.jitter = 0
            assert wait_until(
                lambda: sum(r["status"] == "Completed" for r in session.fetch()) == 200,
                timeout=60,
                step=0.2,
            )
            print(f"\n200 concurrent creates in {took:.2f} s, none lost")
        finally:
            session.close()


def test_stats_503_raises_service_unavailable_at_once_with_retry_after():
    """Retry-After: 30 is longer than the client waits (10 s): no early retry, the error at once."""
    with running_platform() as platform:
        platform.faults.stats_unavailable = True
        session = platform.session()
        try:
            started = time.monotonic()
            with pytest.raises(ServiceUnavailable) as info:
                session.stats()
            assert time.monotonic() - started < 5
            assert info.value.status_code == 503 and info.value.retry_after == 30
            assert info.value.message == "temporarily unavailable: null"
            assert platform.request_count("GET", "session?view=stats") == 1
        finally:
            session.close()


@pytest.mark.parametrize(("status", "error"), [(401, Unauthorized), (403, Forbidden)])
def test_auth_refusal_is_never_retried(status, error):
    with running_platform() as platform:
        session = platform.session()
        try:
            assert session.fetch() == []
            platform.faults.auth_status = status
            with pytest.raises(error):
                session.fetch()
            with pytest.raises(error):
                session.stats()
            assert session.info("abcdefgh") == []  # errors="ignore": logged, not raised
            assert platform.request_count("GET", "session") == 2
            assert platform.request_count("GET", "session?view=stats") == 1
            assert platform.request_count("GET", "session/abcdefgh") == 1
            platform.faults.auth_status = None
            assert session.fetch() == []
        finally:
            session.close()


def test_a_failed_create_is_never_retried_and_created_nothing():
    with running_platform() as platform:
        session = platform.session()
        try:
            platform.faults.error_rate = 1.0
            platform.faults.error_statuses = (502, 503)  # the statuses GETs do retry
            with pytest.raises(ServerError):
                session.create("once", image=TERMINAL, cmd="true", errors="raise")
            # errors="ignore": nothing launched, and a warning says so (issue 11)
            with pytest.warns(LaunchWarning, match=r"launched 0 of 1 session \('twice'\)"):
                assert session.create("twice", image=TERMINAL, cmd="true") == []
            assert platform.request_count("POST", "session") == 2
            assert platform.sessions() == []
            platform.faults.reset()
            assert len(session.create("thrice", image=TERMINAL, cmd="true")) == 1
            assert [r["name"] for r in platform.sessions()] == ["thrice"]
        finally:
            session.close()


def test_gets_ride_out_transient_5xx():
    """502/503 on GETs are retried with backoff: a listing under 50 % faults still answers."""
    with running_platform() as platform:
        platform.preload(5)
        session = platform.session()
        try:
            platform.faults.error_rate = 0.5
            platform.faults.error_statuses = (502, 503)
            answered = failed = 0
            for _ in range(10):
                try:
                    answered += len(session.fetch()) == 5
                except ServerError:
                    failed += 1
            # P(4 failures in a row) = 1/16 per listing: most listings get through.
            assert answered >= 6 and answered + failed == 10
            assert platform.request_count("GET", "session") > 10  # some were retries
        finally:
            session.close()


def test_auth_status_knob_is_validated_and_reset():
    from canfar_widgets.local.faults import Faults

    faults = Faults()
    for bad in (200, 500, "401", 402):
        with pytest.raises(ValueError, match="auth_status"):
            faults.auth_status = bad
    faults.auth_status = 403
    faults.reset()
    assert faults.auth_status is None
