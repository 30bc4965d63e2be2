"""Capacity and the failure modes a batch meets, in the Kubernetes words CANFAR uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import support
from local_support import TERMINAL, PlatformApi
from support import FAST_PLATFORM, group_alive

from canfar_widgets.local import LocalPlatform
from canfar_widgets.models import parse_events

pytestmark = pytest.mark.timeout(120)

FAST = {**FAST_PLATFORM, "kill_grace": 0.3}
NO_CPU = "0/1 nodes are available: 1 Insufficient cpu."


class Api(PlatformApi):
    """`PlatformApi` with events parsed, and the longer waits a full host needs."""

    wait_timeout = 30.0

    def events(self, sid: str) -> list[Any]:
        return parse_events(super().events(sid))


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[LocalPlatform]:
    with LocalPlatform(arc=tmp_path / "arc", cores=2, ram=16, memory_interval=0.05, **FAST) as p:
        yield p


@pytest.fixture
def api(platform: LocalPlatform) -> Iterator[Api]:
    client = Api(platform)
    yield client
    client.http.close()


def gate_script(platform: LocalPlatform) -> str:
    """A job that says it started, then waits until the test releases it."""
    gates = platform.arc / "projects" / "gates"
    gates.mkdir(parents=True, exist_ok=True)
    script = gates / "gate.sh"
    script.write_text(
        "touch /arc/projects/gates/started-$skaha_sessionid\n"
        "while [ ! -e /arc/projects/gates/release-$skaha_sessionid ]; do\n"
        "  sleep 0.05\ndone\n"
    )
    return (
        "/arc/projects/gates/gate.sh"
        if platform.storage and platform.storage.mounted
        else str(script)
    )


def test_eight_one_core_jobs_on_two_cores_run_two_at_a_time(
    api: Api, platform: LocalPlatform
) -> None:
    gates = platform.arc / "projects" / "gates"
    script = gate_script(platform)
    ids = [api.create(name=f"cap-{n}", cmd="/bin/sh", args=script, cores="1") for n in range(8)]

    def started() -> list[str]:
        return [sid for sid in ids if (gates / f"started-{sid}").exists()]

    order: list[str] = []
    released: set[str] = set()
    most_at_once = 0
    while len(released) < len(ids):
        expected = min(len(ids), len(released) + 2)
        support.wait_for(lambda expected=expected: len(started()) >= expected, 30)
        now = started()
        running = [sid for sid in now if sid not in released]
        most_at_once = max(most_at_once, len(running))
        assert len(running) <= 2, f"{len(running)} one-core jobs at once on 2 cores"
        statuses = api.statuses(ids)
        waiting = [sid for sid, st in zip(ids, statuses, strict=True) if st == "Pending"]
        assert len(waiting) == len(ids) - len(now)
        for sid in waiting:
            reasons = [(e.type, e.reason, e.message) for e in api.events(sid)]
            assert ("Warning", "FailedScheduling", NO_CPU) in reasons, reasons
            assert "Scheduled" not in {r for _, r, _ in reasons}
        order += [sid for sid in now if sid not in order]
        oldest = running[0]
        (gates / f"release-{oldest}").touch()
        released.add(oldest)
        api.wait_status(oldest, "Completed")
    assert most_at_once == 2
    assert order == ids  # oldest first
    # a job that waited was scheduled once room freed: FailedScheduling, then Scheduled
    reasons = [e.reason for e in api.events(ids[-1])]
    assert reasons.index("FailedScheduling") < reasons.index("Scheduled") < reasons.index("Started")
    assert api.statuses(ids) == ["Completed"] * 8


def test_stats_report_the_capacity(api: Api) -> None:
    stats = api.http.get("session", params={"view": "stats"}).json()
    assert stats["cores"]["cpuCoresAvailable"] == 2.0
    assert stats["ram"]["ramAvailable"] == "17.18G"  # 16 GiB in decimal GB


def test_a_request_larger_than_the_node_stays_pending(api: Api) -> None:
    big_cpu = api.create(name="big-cpu", cmd="true", cores="4")
    big_ram = api.create(name="big-ram", cmd="true", ram="32")
    small = api.create(name="small", cmd="true", cores="1", ram="1")
    assert api.wait_status(small, "Completed") == "Completed"  # not stuck behind the big ones
    assert api.statuses([big_cpu, big_ram]) == ["Pending", "Pending"]
    messages = {e.message for e in api.events(big_cpu) if e.reason == "FailedScheduling"}
    assert messages == {NO_CPU}
    messages = {e.message for e in api.events(big_ram) if e.reason == "FailedScheduling"}
    assert messages == {"0/1 nodes are available: 1 Insufficient memory."}
    # deleting a waiting job: gone at once, and it never runs
    assert api.http.delete(f"session/{big_cpu}").status_code == 200
    assert api.http.get(f"session/{big_cpu}").status_code == 404


def test_flexible_sessions_count_their_default_request(tmp_path: Path) -> None:
    # default request: 1 core, 4 GiB. A 6 GiB node holds one flexible job at a time.
    with LocalPlatform(arc=tmp_path / "arc", cores=8, ram=6, **FAST) as p:
        api = Api(p)
        try:
            first = api.create(name="flex-1", cmd="sleep", args="300")
            api.wait_status(first, "Running")
            second = api.create(name="flex-2", cmd="true")
            support.wait_for(
                lambda: any(e.reason == "FailedScheduling" for e in api.events(second))
            )
            assert api.status(second) == "Pending"
            assert api.http.delete(f"session/{first}").status_code == 200
            assert api.wait_status(second, "Completed") == "Completed"
        finally:
            api.http.close()


def test_out_of_memory_is_killed_with_137(
    api: Api, platform: LocalPlatform, tmp_path: Path
) -> None:
    hog = tmp_path / "hog.py"
    hog.write_text("import time\nblock = b'x' * (1536 * 2**20)\ntime.sleep(120)\n")
    sid = api.create(name="hog", cmd="python", args=str(hog), ram="1", cores="1")
    assert api.wait_status(sid, "Failed", timeout=60) == "Failed"
    events = api.events(sid)
    oom = [e for e in events if e.reason == "OOMKilled"]
    assert oom and oom[0].type == "Warning", events
    assert "exit code 137" in oom[0].message and "1Gi" in oom[0].message
    assert events[-1].reason == "BackoffLimitExceeded"


def test_nonzero_exit_says_its_code(api: Api) -> None:
    sid = api.create(cmd="python", args="-c raise(SystemExit(3))")
    assert api.wait_status(sid, "Failed") == "Failed"
    messages = [e.message for e in api.events(sid) if e.reason == "Terminated"]
    assert len(messages) == 1 and messages[0].endswith("terminated with exit code 3 (Error)")


def test_image_pull_failure_knob(api: Api, platform: LocalPlatform) -> None:
    platform.faults.pull_failures = (TERMINAL,)
    sid = api.create(cmd="touch", args="never-made")
    support.wait_for(lambda: any("ErrImagePull" in e.message for e in api.events(sid)))
    events = api.events(sid)
    assert any(
        e.type == "Warning" and e.message.startswith(f'Failed to pull image "{TERMINAL}"')
        for e in events
    )
    assert any(e.message == "Error: ImagePullBackOff" for e in events)
    assert api.status(sid) == "Pending"
    assert not (platform.arc / "home" / platform.username / "never-made").exists()
    other = api.create(cmd="true", image="images.canfar.net/skaha/astroml:latest")
    assert api.wait_status(other, "Completed") == "Completed"  # only that image fails
    platform.faults.reset()
    assert platform.faults.pull_failures == ()


def test_unschedulable_knob(api: Api, platform: LocalPlatform) -> None:
    platform.faults.unschedulable = True
    sid = api.create(cmd="true")
    support.wait_for(lambda: any(e.reason == "FailedScheduling" for e in api.events(sid)))
    [message] = {e.message for e in api.events(sid) if e.reason == "FailedScheduling"}
    assert message == "0/1 nodes are available: 1 node(s) were unschedulable."
    assert api.status(sid) == "Pending"
    platform.faults.unschedulable = False  # uncordoned: the scheduler retries
    assert api.wait_status(sid, "Completed") == "Completed"
    with pytest.raises(ValueError, match="unschedulable"):
        platform.faults.unschedulable = "yes"  # type: ignore[assignment]


def test_deleted_session_is_gone_at_once_and_its_group_dies(
    api: Api, platform: LocalPlatform
) -> None:
    sid = api.create(cmd="sleep", args="300")
    api.wait_status(sid, "Running")
    pgid = platform.process_group(sid)
    assert pgid is not None
    assert api.http.delete(f"session/{sid}").status_code == 200
    assert api.http.get(f"session/{sid}").status_code == 404  # no Terminating phase
    assert sid not in {r["id"] for r in api.http.get("session").json()}
    support.wait_for(lambda: not group_alive(pgid), timeout=10)
    # the kill freed the core for the next job
    assert api.wait_status(api.create(cmd="true", cores="2"), "Completed") == "Completed"


def test_a_broken_runtime_fails_the_job_never_pending_forever(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from canfar_widgets.local.jobs import Job

    async def broken(self: Job) -> None:
        raise RuntimeError("simulated runtime bug")

    monkeypatch.setattr(Job, "spawn", broken)
    sid = api.create(cmd="true")
    assert api.wait_status(sid, "Failed") == "Failed"
    [failed] = [e for e in api.events(sid) if e.reason == "Failed"]
    assert failed.message == "Error: local runtime error: RuntimeError: simulated runtime bug"
    monkeypatch.undo()
    # the core it held is free again
    assert api.wait_status(api.create(cmd="true", cores="2"), "Completed") == "Completed"
