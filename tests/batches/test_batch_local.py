"""Batch against the local platform: real HTTP, real processes, real second interpreters.

The job is a small Python script (run with this interpreter) that prints its replica's
environment and raises ``ValueError`` on the replicas listed in ``FAIL``; with ``OUT`` set
it writes ``out-<nn>.txt`` there. Everything a batch records goes to a per-test SQLite file
(``CANFAR_WIDGETS_BATCH_DB``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from batch_support import IMAGE, launch

from canfar_widgets import Batch
from canfar_widgets.local import LocalPlatform
from canfar_widgets.models import ContainerRegistry

pytestmark = pytest.mark.slow


def child_env(platform: LocalPlatform, record_file: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CANFAR_URL=platform.url,
        CANFAR_TOKEN=platform.token,
        CANFAR_WIDGETS_BATCH_DB=str(record_file),
    )
    return env


def run_child(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_launch_12_with_4_failing_then_triage_and_rerun(platform, session, record_file, job):
    posts = platform.request_count("POST", "session")
    batch = launch("scan", job, session, env={"FAIL": "3,5,8,11"}, replicas=12)
    assert platform.request_count("POST", "session") - posts == 12
    replicas = batch.wait(timeout=90)
    assert [r.replica for r in replicas] == list(range(1, 13))
    assert batch.counts == {"Completed": 8, "Failed": 4}
    assert [r.replica for r in batch.failed] == [3, 5, 8, 11]
    assert len(batch.done) == 8
    for replica in replicas:
        assert replica.name == f"scan-{replica.replica}" and replica.attempt == 1
        assert replica.started is not None and replica.ended is not None
        assert replica.duration is not None and replica.duration >= 0
    rows = batch.errors()
    assert [(r.replica, r.reason, r.last_line) for r in rows] == [
        (n, "non-zero exit (exit code 1)", f"ValueError: bad frame {n:04d}") for n in (3, 5, 8, 11)
    ]
    assert all(r.id and r.attempt == 1 for r in rows)
    assert "Traceback (most recent call last)" in batch.logs([3])[3]
    assert "BackoffLimitExceeded" in batch.events([3])[3]

    # Re-run the failed ones with the environment changed: same names, REPLICA_ID/COUNT.
    first_ids = {r.replica: r.id for r in batch.failed}
    posts = platform.request_count("POST", "session")
    launched = batch.rerun(env={"FAIL": "", "MODE": "second"})
    assert [r.replica for r in launched] == [3, 5, 8, 11]
    assert platform.request_count("POST", "session") - posts == 4
    batch.wait(timeout=90)
    assert batch.counts == {"Completed": 12}
    logs = batch.logs()
    for number in (3, 5, 8, 11):
        replica = batch.replicas[number - 1]
        assert replica.attempt == 2 and replica.earlier_ids == (first_ids[number],)
        assert logs[number].splitlines()[0] == f"replica {number}/12 name scan-{number} mode second"
    assert logs[1].splitlines()[0] == "replica 1/12 name scan-1 mode first"
    assert batch.errors() == []
    # Nothing failed any more, so a bare rerun() launches nothing.
    assert batch.rerun() == []
    batch.destroy()


def test_retries_rerun_failures_and_then_stop(platform, session, record_file, job, monkeypatch):
    monkeypatch.setattr(Batch, "retry_delay", 0.1)
    batch = launch("retry", job, session, env={"FAIL": "2"}, replicas=3, retries=2)
    batch.wait(timeout=90)
    second = batch.replicas[1]
    assert second.status == "Failed" and second.attempt == 3 and len(second.earlier_ids) == 2
    assert [r.attempt for r in batch.replicas] == [1, 3, 1]
    posts = platform.request_count("POST", "session")
    batch.refresh()
    time.sleep(0.3)
    batch.refresh()
    assert platform.request_count("POST", "session") == posts  # it stopped after 2 re-runs
    batch.destroy()


def test_a_deleted_replica_is_deleted_and_never_retried(
    platform, session, record_file, job, monkeypatch
):
    monkeypatch.setattr(Batch, "retry_delay", 0.0)
    batch = launch("gone", job, session, env={"SLEEP": "30"}, replicas=2, retries=2)
    for _ in range(100):
        if batch.counts.get("Running") == 2:
            break
        time.sleep(0.1)
        batch.refresh()
    victim = batch.replicas[0].id
    session.destroy(victim)
    for _ in range(100):
        batch.refresh()
        if batch.replicas[0].status == "Deleted":
            break
        time.sleep(0.1)
    first = batch.replicas[0]
    assert first.status == "Deleted" and first.reason == "deleted by the user"
    assert first.attempt == 1  # not re-run, although retries=2
    assert [row.reason for row in batch.errors()] == ["deleted by the user"]
    assert batch.rerun() == []  # a bare rerun() does not undo a deletion either
    result = batch.destroy()
    assert result == {2: True}
    assert batch.counts == {"Deleted": 2}


def test_reopened_in_a_second_interpreter_after_destroy(platform, record_file, job):
    env = child_env(platform, record_file)
    run_child(
        f"""
        import sys
        from canfar_widgets import Batch
        batch = Batch.launch("reopen", "{IMAGE}", cmd=sys.executable, args={str(job)!r},
                             env={{"FAIL": "2", "MODE": "first"}}, replicas=3)
        batch.wait(timeout=90)
        batch.rerun([2], env={{"MODE": "again"}})
        batch.wait(timeout=90)
        print(batch.destroy())
    """,
        env,
    )
    # The first interpreter has exited, its sessions are gone from the platform.
    assert not [
        s
        for s in platform.sessions()
        if s["name"].startswith("reopen-") and s["status"] != "Terminating"
    ]
    done = run_child(
        """
        import json
        from canfar_widgets import Batch
        batch = Batch.open("reopen")
        print(json.dumps({"states": [r.status for r in batch.replicas],
                          "attempts": [r.attempt for r in batch.replicas],
                          "earlier": [len(r.earlier_ids) for r in batch.replicas],
                          "logs": batch.logs(),
                          "errors": [[e.replica, e.reason, e.last_line] for e in batch.errors()],
                          "listed": [[b.name, b.replicas, b.destroyed] for b in Batch.list()]}))
    """,
        env,
    )
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["states"] == ["Completed", "Failed", "Completed"]
    assert seen["attempts"] == [1, 2, 1] and seen["earlier"] == [0, 1, 0]
    assert seen["logs"]["1"].startswith("replica 1/3 name reopen-1 mode first")
    assert seen["logs"]["2"].startswith("replica 2/3 name reopen-2 mode again")
    assert seen["errors"] == [[2, "non-zero exit (exit code 1)", "ValueError: bad frame 0002"]]
    assert seen["listed"] == [["reopen", 3, True]]


def test_two_processes_racing_a_rerun_make_one_session(platform, session, record_file, job):
    batch = launch("race", job, session, env={"FAIL": "1,2"}, replicas=2)
    batch.wait(timeout=90)
    assert batch.counts == {"Failed": 2}
    env = child_env(platform, record_file)
    go = record_file.parent / "go"
    code = textwrap.dedent(f"""
        import os, time
        from canfar_widgets import Batch
        batch = Batch.open("race")
        while not os.path.exists({str(go)!r}):
            time.sleep(0.005)
        # The re-run succeeds (and takes a while), so the loser finds nothing failed.
        print(len(batch.rerun(env={{"FAIL": "", "SLEEP": "3"}})))
    """)
    posts = platform.request_count("POST", "session")
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(1.5)  # both have opened the batch and wait at the line
    go.write_text("go")
    outputs = [child.communicate(timeout=120) for child in children]
    assert all(child.returncode == 0 for child in children), [err for _, err in outputs]
    assert sorted(int(out.strip()) for out, _ in outputs) == [0, 2]
    assert platform.request_count("POST", "session") - posts == 2
    batch.refresh()
    assert [r.attempt for r in batch.replicas] == [2, 2]
    named = [s for s in platform.sessions() if s["name"] in ("race-1", "race-2")]
    assert len(named) == 4  # two first attempts, two re-runs: no duplicate
    batch.destroy()


def test_outputs_find_and_miss_under_the_local_arc(record_file, job, clean_home, tmp_path):
    # A platform started here (after clean_home) announces its storage root in this HOME,
    # which is where outputs() looks for it: /arc paths resolve to the platform's arc.
    arc = tmp_path / "arc"
    with (
        LocalPlatform(
            arc=arc, start_delay=0.1, headless_start_delay=0.05, metrics_interval=0
        ) as local,
        local.session() as session,
    ):
        out = arc / "projects" / "survey" / "out"
        out.mkdir(parents=True)
        # What the job writes to: /arc itself when bubblewrap mounts it, else the local root.
        seen_as = "/arc/projects/survey/out" if local.storage.mounted else str(out)
        batch = launch("outs", job, session, env={"FAIL": "2,4", "OUT": seen_as}, replicas=5)
        batch.wait(timeout=90)
        found = batch.outputs("/arc/projects/survey/out/out-{replica:02d}.txt")
        assert found.missing == [2, 4]
        assert found.found == {n: [out / f"out-{n:02d}.txt"] for n in (1, 3, 5)}
        assert found.files[0].read_text() == "result of replica 1\n"
        # An explicit root wins, and a miss everywhere is a miss.
        elsewhere = batch.outputs("/arc/x/{replica}.txt", root=str(tmp_path / "nothing"))
        assert elsewhere.found == {} and elsewhere.missing == [1, 2, 3, 4, 5]
        batch.destroy()


def test_usage_figures(platform, session, record_file, job):
    fixed = launch("use-fixed", job, session, env={"SLEEP": "1"}, replicas=2, cores=1, ram=2)
    flexible = launch("use-flex", job, session, replicas=1)
    fixed.wait(timeout=90)
    flexible.wait(timeout=90)
    usage = fixed.usage()
    assert not usage.estimated and usage.attempts == 2 and len(usage.per_replica) == 2
    for row, replica in zip(usage.per_replica, fixed.replicas, strict=True):
        assert row.wall_seconds == pytest.approx(replica.duration)
        assert row.core_hours == pytest.approx(replica.duration / 3600)
        assert row.ram_gb_hours == pytest.approx(2 * replica.duration / 3600)
    assert usage.wall_seconds == pytest.approx(sum(r.duration for r in fixed.replicas))
    assert usage.wall_seconds >= 1  # each slept a second; start/end are whole seconds
    flex = flexible.usage()
    [replica] = flexible.replicas
    # The local platform's default request: 1 core, 4 GB (GET context).
    assert flex.estimated and "default request" in str(flex)
    assert flex.core_hours == pytest.approx(replica.duration / 3600)
    assert flex.ram_gb_hours == pytest.approx(4 * replica.duration / 3600)
    fixed.destroy()
    flexible.destroy()


def test_500_replicas_refresh_with_one_request(platform, session, record_file):
    platform.preload(500, status="Running", name="big")
    with pytest.warns(UserWarning, match="rebuilt from the platform's 500 sessions named big"):
        batch = Batch.open("big", session=session)
    assert batch.total == 500 and batch.counts == {"Running": 500}
    before = platform.request_count()
    batch.refresh()
    assert platform.request_count() - before == 1
    assert platform.request_count("GET", "session") >= 1
    # The record now knows it: opening again needs no rebuild (and warns nothing).
    again = Batch.open("big", session=session)
    assert again.counts == {"Running": 500}
    with pytest.raises(ValueError, match="pass cmd="):
        batch.rerun([1])
    assert set(batch.destroy().values()) == {True}
    assert batch.counts == {"Deleted": 500}


def test_wait_async_cancelled_stops_waiting_not_the_jobs(
    platform, session, record_file, job, capsys
):
    batch = launch("patient", job, session, env={"SLEEP": "30"}, replicas=2)

    async def main() -> None:
        task = asyncio.ensure_future(batch.wait_async(timeout=60))
        await asyncio.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stopped waiting for batch 'patient'" in err
    assert "keep running" in err
    batch.refresh()
    assert set(batch.counts) <= {"Pending", "Running"}
    batch.destroy()
    assert batch.counts == {"Deleted": 2}


def test_the_record_holds_no_secret(platform, session, record_file, job):
    registry = ContainerRegistry(username="bob", secret="registry-s3cret-value")
    batch = launch("secret", job, session, replicas=1, registry=registry)
    batch.wait(timeout=90)
    reopened = Batch.open("secret", session=session)
    with pytest.raises(ValueError, match="registry credentials for user 'bob'"):
        reopened.rerun([1])
    [again] = reopened.rerun([1], registry=registry)
    assert again.attempt == 2
    reopened.wait(timeout=90)
    reopened.destroy()
    blob = b"".join(p.read_bytes() for p in record_file.parent.glob("batches.sqlite*"))
    for secret in (
        b"registry-s3cret-value",
        platform.token.encode(),
        registry.header_value().encode(),
    ):
        assert secret not in blob
    assert b"bob" in blob  # the username is kept, to say which credentials a re-run needs


def test_the_cli_lists_shows_prints_logs_and_reruns(platform, session, record_file, job):
    batch = launch("cli", job, session, env={"FAIL": "2"}, replicas=3)
    batch.wait(timeout=90)
    env = child_env(platform, record_file)

    def cli(*words: str, code: int = 0) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "canfar_widgets", "batch", *words],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == code, done.stderr
        return done.stdout if code == 0 else done.stderr

    listed = cli("list")
    assert listed.splitlines()[0].split() == ["NAME", "CREATED", "REPLICAS", "STATUS"]
    assert "cli" in listed and "Completed 2, Failed 1" in listed
    assert json.loads(cli("list", "--json"))[0]["counts"] == {"Completed": 2, "Failed": 1}
    shown = cli("show", "cli")
    assert "3 replicas, Completed 2, Failed 1" in shown
    assert "cli-2" in shown and "non-zero exit" in shown
    assert "2: ValueError: bad frame 0002" in shown
    logs = cli("logs", "cli", "--replica", "2")
    assert "── cli replica 2 ──" in logs and "ValueError: bad frame 0002" in logs
    assert "replica 1" not in logs
    posts = platform.request_count("POST", "session")
    rerun = cli("rerun", "cli")
    assert "replica 2: attempt 2" in rerun
    assert platform.request_count("POST", "session") - posts == 1
    assert "no batch named 'nope'" in cli("show", "nope", code=1)
    batch.refresh()
    assert batch.replicas[1].attempt == 2
    batch.wait(timeout=90)
    batch.destroy()


def test_ctrl_c_in_wait_stops_the_waiting_not_the_jobs(platform, session, record_file, job):
    import signal

    env = child_env(platform, record_file)
    code = textwrap.dedent(f"""
        import sys
        from canfar_widgets import Batch
        batch = Batch.launch("interrupted", "{IMAGE}", cmd=sys.executable, args={str(job)!r},
                             env={{"SLEEP": "30"}}, replicas=2)
        print("waiting", flush=True)
        batch.wait(timeout=60, interval=0.2)
    """)
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "waiting"
    time.sleep(1.0)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode != 0 and "KeyboardInterrupt" in err
    said = [line for line in err.splitlines() if "stopped waiting" in line]
    assert said == [
        "stopped waiting for batch 'interrupted'; its replicas keep running on the "
        "platform (Batch.open('interrupted') finds them again)"
    ]
    batch = Batch.open("interrupted", session=session)
    assert set(batch.counts) <= {"Pending", "Running"} and batch.total == 2
    assert batch.destroy() == {1: True, 2: True}


def test_archived_logs_are_capped_with_a_marker(
    platform, session, record_file, tmp_path, monkeypatch
):
    from canfar_widgets.batches import batch as batch_module

    monkeypatch.setattr(batch_module, "LOG_CAP", 2000)
    chatty = tmp_path / "chatty.py"
    chatty.write_text("for n in range(1000):\n    print(f'line {n:04d}')\nprint('the end')\n")
    batch = Batch.launch("chatty", IMAGE, cmd=sys.executable, args=str(chatty), session=session)
    batch.wait(timeout=90)
    batch.destroy()
    [text] = Batch.open("chatty", session=session).logs().values()
    first, *rest = text.splitlines()
    assert first.startswith("[canfar-widgets: the first ") and "bytes were cut" in first
    assert rest[-1] == "the end" and rest[-2] == "line 0999"
    assert len("\n".join(rest).encode()) <= 2000
    assert "line 0000" not in text


def test_deadline_and_a_command_that_cannot_start(record_file, tmp_path):
    with (
        LocalPlatform(
            start_delay=0.1,
            headless_start_delay=0.05,
            metrics_interval=0,
            headless_expiry=2,
            kill_grace=0.2,
        ) as short,
        short.session() as client,
    ):
        sleeper = Batch.launch("sleeper", IMAGE, cmd="sleep", args="30", session=client)
        missing = Batch.launch(
            "missing", IMAGE, cmd=str(tmp_path / "no-such-program"), session=client
        )
        sleeper.wait(timeout=60, interval=0.2)
        missing.wait(timeout=60, interval=0.2)
        assert [(r.replica, r.reason) for r in sleeper.errors()] == [(1, "ran past its deadline")]
        [row] = missing.errors()
        assert row.reason == "the command could not be started"
        assert "no such file or directory" in row.last_line
