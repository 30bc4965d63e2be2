"""Batch parts without a platform: the failure classifier, the record, outputs, lost answers.

The lost-answer tests drive ``Batch`` through an httpx transport that drops a POST's answer
(the platform did create the session), so the record must say Unknown and then find the
session by name, never re-run it blindly.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from canfar_widgets.batches import Batch, _reasons
from canfar_widgets.batches._outputs import find_outputs, local_arc, resolve
from canfar_widgets.batches._record import AttemptRow, Record, default_path

URL = "https://batches.invalid/skaha/v1"
TOKEN = "unit-token-not-a-secret-anywhere"


# -- the classifier -------------------------------------------------------------------------------

EVENTS_OOM = """\
TYPE      REASON      MESSAGE                                              FIRST-TIME             LAST-TIME
Normal    Started     Started container skaha-headless-bob-abc             2026-08-01T17:49:58Z   2026-08-01T17:49:58Z
Warning   OOMKilled   Container main was OOMKilled (exit code 137)         2026-08-01T17:55:01Z   2026-08-01T17:55:01Z
"""
EVENTS_PULL = """\
TYPE      REASON     MESSAGE                                                                           FIRST-TIME   LAST-TIME
Normal    Pulling    Pulling image "images.canfar.net/skaha/nope:1"                                    2026-08-01T17:49:57Z   2026-08-01T17:49:57Z
Warning   Failed     Failed to pull image "images.canfar.net/skaha/nope:1": not found                 2026-08-01T17:49:58Z   2026-08-01T17:49:58Z
Warning   Failed     Error: ErrImagePull                                                               2026-08-01T17:49:58Z   2026-08-01T17:49:58Z
Normal    BackOff    Back-off pulling image "images.canfar.net/skaha/nope:1"                           2026-08-01T17:50:10Z   2026-08-01T17:50:10Z
Warning   Failed     Error: ImagePullBackOff                                                           2026-08-01T17:50:10Z   2026-08-01T17:50:10Z
"""
EVENTS_SCHEDULING = """\
TYPE      REASON             MESSAGE                                                                                  FIRST-TIME   LAST-TIME
Warning   FailedScheduling   0/12 nodes are available: 4 Insufficient cpu, 8 Insufficient memory. preemption: 0/12   <none>       <none>
"""
EVENTS_QUOTA = """\
TYPE      REASON             MESSAGE                                                                 FIRST-TIME   LAST-TIME
Warning   FailedCreate       Error creating: pods "x" is forbidden: exceeded quota: skaha-quota, requested: cpu=64   <none>   <none>
"""
EVENTS_DEADLINE = """\
TYPE      REASON             MESSAGE                                          FIRST-TIME             LAST-TIME
Normal    Killing            Stopping container skaha-headless-bob-abc        2026-08-15T17:49:58Z   2026-08-15T17:49:58Z
Warning   DeadlineExceeded   Job was active longer than specified deadline    2026-08-15T17:50:00Z   2026-08-15T17:50:00Z
"""
EVENTS_EXEC = """\
TYPE      REASON   MESSAGE                                                                                 FIRST-TIME   LAST-TIME
Warning   Failed   Error: failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "pyhton": executable file not found in $PATH: unknown   2026-08-01T17:49:58Z   2026-08-01T17:49:58Z
"""
TRACEBACK = """\
processing frame 0017
Traceback (most recent call last):
  File "/arc/home/bob/scan.py", line 12, in <module>
    raise ValueError("bad frame 0017: NaN in header")
ValueError: bad frame 0017: NaN in header
"""


@pytest.mark.parametrize(
    ("status", "events", "logs", "expected"),
    [
        ("Failed", EVENTS_OOM, "", "out of memory (exit code 137)"),
        (
            "Failed",
            "",
            "Killed\ncommand terminated with exit code 137\n",
            "out of memory (exit code 137)",
        ),
        (
            "Failed",
            "Warning  OOMKilled  container was OOMKilled  <none>  <none>",
            "",
            "out of memory",
        ),
        ("Failed", EVENTS_PULL, "", "image pull failure"),
        ("Failed", EVENTS_SCHEDULING, "", "cannot be scheduled: insufficient CPU, RAM"),
        ("Failed", EVENTS_QUOTA, "", "cannot be scheduled: quota exceeded"),
        ("Failed", EVENTS_DEADLINE, "", "ran past its deadline"),
        ("Failed (DeadlineExceeded)", "", "", "ran past its deadline"),
        ("Failed", EVENTS_EXEC, "", "the command could not be started"),
        ("Failed", "", "step 3\nprocess exited with exit code 2\n", "non-zero exit (exit code 2)"),
        (
            "Failed",
            "Warning  BackoffLimitExceeded  Job has reached the specified backoff limit",
            TRACEBACK,
            "non-zero exit",
        ),
        # Waited for capacity, then ran and failed: the exit is the cause, not the wait.
        (
            "Failed",
            EVENTS_SCHEDULING + "\nNormal  Terminated  container exited with exit code 1 (Error)",
            TRACEBACK,
            "non-zero exit (exit code 1)",
        ),
        ("Completed", EVENTS_OOM, "", ""),
        ("Running", "", "", ""),
    ],
)
def test_classify_reads_the_kubernetes_words(status, events, logs, expected):
    assert _reasons.classify(status, events, logs) == expected


def test_classify_deleted_and_lost_win_over_everything():
    assert _reasons.classify("Failed", EVENTS_OOM, "", deleted=True) == "deleted by the user"
    assert _reasons.classify("Running", deleted=True) == "deleted by the user"
    assert _reasons.classify("Failed", lost=True).startswith("the launch answer was lost")


@pytest.mark.parametrize(
    ("logs", "line"),
    [
        (TRACEBACK, "ValueError: bad frame 0017: NaN in header"),
        ("all good\nwrote 3 files\n", "wrote 3 files"),
        ("error: cannot open /arc/x\nretrying\n\n", "error: cannot open /arc/x"),
        ("", ""),
        ("\n\n", ""),
    ],
)
def test_last_error_line(logs, line):
    assert _reasons.last_error_line(logs) == line


# -- the record -----------------------------------------------------------------------------------


def test_record_location_follows_the_environment(clean_home, monkeypatch, tmp_path):
    monkeypatch.delenv("CANFAR_WIDGETS_BATCH_DB", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert default_path() == clean_home / ".local/share/canfar-widgets/batches.sqlite"
    monkeypatch.setenv("CANFAR_WIDGETS_BATCH_DB", str(tmp_path / "elsewhere.db"))
    assert default_path() == tmp_path / "elsewhere.db"


def test_record_is_wal_owner_only_and_claims_once(tmp_path):
    record = Record(tmp_path / "r.sqlite")
    first = [
        AttemptRow(
            replica=n,
            attempt=1,
            id=f"id{n}",
            status="Failed",
            claimed=time.time(),
            spec={"name": "b"},
        )
        for n in (1, 2)
    ]
    key = record.add_batch(URL, "b", 2, 0, {"name": "b"}, first)
    assert (record.path.stat().st_mode & 0o777) == 0o600
    with sqlite3.connect(record.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    spec = {1: {"name": "b"}, 2: {"name": "b"}}
    won = record.claim(key, {1: 1, 2: 1}, spec)
    assert [(a.replica, a.attempt, a.status) for a in won] == [
        (1, 2, "Launching"),
        (2, 2, "Launching"),
    ]
    # A second claim on the same attempts (another kernel, a moment later) gets nothing.
    assert record.claim(key, {1: 1, 2: 1}, spec) == []
    assert [(a.replica, a.attempt) for a in record.attempts(key)] == [
        (1, 1),
        (1, 2),
        (2, 1),
        (2, 2),
    ]


def test_record_keys_by_server_and_name_newest_first(tmp_path):
    record = Record(tmp_path / "r.sqlite")
    older = record.add_batch(URL, "scan", 1, 0, {}, [], created=1000.0)
    newer = record.add_batch(URL, "scan", 1, 0, {}, [], created=2000.0)
    record.add_batch(URL + "-other", "scan", 1, 0, {}, [], created=3000.0)
    assert record.newest(URL, "scan").key == newer
    assert [row.key for row in record.batches(URL)] == [newer, older]
    assert record.newest(URL, "nope") is None


# -- outputs ---------------------------------------------------------------------------------------


def test_outputs_pattern_rules(tmp_path):
    for n in (1, 3):
        (tmp_path / f"out-{n:02d}.txt").write_text("x")
    (tmp_path / "out-03-extra.txt").write_text("y")
    found = find_outputs(str(tmp_path / "out-{replica:02d}*.txt"), [1, 2, 3], root=None, server=URL)
    assert found.missing == [2]
    assert found.found[1] == [tmp_path / "out-01.txt"]
    assert found.found[3] == [tmp_path / "out-03-extra.txt", tmp_path / "out-03.txt"]
    with pytest.raises(ValueError, match=r"pattern: must contain \{replica\}"):
        find_outputs(str(tmp_path / "*.txt"), [1], root=None, server=URL)
    with pytest.raises(ValueError, match=r"pattern: only \{replica\} may be in braces"):
        find_outputs(str(tmp_path / "{replica}-{frame}.txt"), [1], root=None, server=URL)


def test_arc_paths_resolve_below_root_or_the_local_platform(clean_home, monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert resolve("/arc/home/me/x.txt", root=tmp_path) == tmp_path / "home/me/x.txt"
    assert resolve("/tmp/x.txt", root=tmp_path) == Path("/tmp/x.txt")
    assert resolve("rel/x.txt", root=tmp_path) == tmp_path / "rel/x.txt"
    if Path("/arc").is_dir():  # pragma: no cover - inside a CANFAR session
        pytest.skip("/arc is mounted here")
    assert local_arc(URL) is None
    with pytest.raises(FileNotFoundError, match="pass root="):
        find_outputs("/arc/home/me/{replica}.txt", [1], root=None, server=URL)
    folder = clean_home / ".local/state/canfar-widgets/local-platforms"
    folder.mkdir(parents=True)
    arc = tmp_path / "arc"
    # A stale file (its process is gone) is ignored; the live one is matched by URL.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    (folder / "1.json").write_text(
        json.dumps({"url": URL, "arc": "/nowhere", "pid": int(dead.stdout)})
    )
    (folder / "2.json").write_text(
        json.dumps({"url": URL + "/", "arc": str(arc), "pid": os.getpid()})
    )
    (folder / "3.json").write_text("not json")
    assert local_arc(URL) == arc
    (arc / "home/me").mkdir(parents=True)
    (arc / "home/me/1.txt").write_text("x")
    found = find_outputs("/arc/home/me/{replica}.txt", [1, 2], root=None, server=URL)
    assert found.found == {1: [arc / "home/me/1.txt"]} and found.missing == [2]


# -- lost create answers ---------------------------------------------------------------------------


class LossyPlatform:
    """A tiny in-memory skaha: it creates every session it is sent, but drops some answers."""

    def __init__(self, lose: set[str]) -> None:
        self.lose = lose
        self.sessions: list[dict[str, Any]] = []
        self.posts = 0
        self.lists = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path.endswith("/session"):
            self.posts += 1
            form = httpx.QueryParams(request.content.decode())
            name = form["name"]
            key = f"s{len(self.sessions):07d}"
            self.sessions.append(
                {
                    "id": key,
                    "name": name,
                    "status": "Running",
                    "type": "headless",
                    "startTime": "2026-12-01T10:00:00Z",
                }
            )
            if name in self.lose:
                raise httpx.ReadTimeout("answer lost", request=request)
            return httpx.Response(200, text=key + "\n")
        if request.method == "GET" and path.endswith("/session"):
            self.lists += 1
            return httpx.Response(200, json=self.sessions)
        return httpx.Response(404, text="not here")


@pytest.fixture
def record_file(clean_home, monkeypatch, tmp_path):
    path = tmp_path / "batches.sqlite"
    monkeypatch.setenv("CANFAR_WIDGETS_BATCH_DB", str(path))
    return path


def lossy_session(platform: LossyPlatform) -> Any:
    from canfar_widgets.sessions import Session

    return Session(url=URL, token=TOKEN, transport=httpx.MockTransport(platform))


def test_a_lost_answer_is_unknown_then_found_by_name(record_file):
    platform = LossyPlatform(lose={"lossy-2"})
    with lossy_session(platform) as session:
        batch = Batch.launch(
            "lossy",
            "images.canfar.net/skaha/terminal:1.1.2",
            cmd="true",
            replicas=3,
            session=session,
        )
        assert [r.status for r in batch.replicas] == ["Pending", "Unknown", "Pending"]
        assert batch.replicas[1].id is None
        # Not failed, so not re-run: rerun() refreshes first, which finds it by name.
        assert batch.rerun() == []
        second = batch.replicas[1]
        [made] = [s for s in platform.sessions if s["name"] == "lossy-2"]
        assert second.status == "Running" and second.id == made["id"]
        assert platform.posts == 3


def test_a_lost_answer_with_no_session_fails_after_the_grace(record_file, monkeypatch):
    platform = LossyPlatform(lose={"ghost-1"})
    with lossy_session(platform) as session:
        batch = Batch.launch(
            "ghost",
            "images.canfar.net/skaha/terminal:1.1.2",
            cmd="true",
            replicas=2,
            session=session,
        )
        # The platform never made it after all.
        platform.sessions[:] = [s for s in platform.sessions if s["name"] != "ghost-1"]
        batch.refresh()
        assert batch.replicas[0].status == "Unknown"
        with pytest.raises(ValueError, match="replica 1 is Unknown"):
            batch.rerun([1])
        assert platform.posts == 2
        monkeypatch.setattr(Batch, "unknown_grace", 0.0)
        batch.refresh()
        [row] = batch.errors()
        assert row.replica == 1 and row.reason.startswith("the launch answer was lost")


def test_a_refused_launch_is_failed_with_the_servers_words(record_file):
    def refuse(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(400, text="Invalid value for 'cores': 300\n")
        return httpx.Response(200, json=[])

    from canfar_widgets.sessions import Session

    with Session(url=URL, token=TOKEN, transport=httpx.MockTransport(refuse)) as session:
        batch = Batch.launch(
            "refused",
            "images.canfar.net/skaha/terminal:1.1.2",
            cmd="true",
            replicas=2,
            session=session,
        )
        assert batch.counts == {"Failed": 2}
        assert [row.reason for row in batch.errors()] == [
            "launch refused: 400 Invalid value for 'cores': 300"
        ] * 2


def test_bad_input_is_refused_before_anything_is_recorded(record_file):
    session = lossy_session(LossyPlatform(set()))
    with pytest.raises(ValueError, match="name"):
        Batch.launch("bad_name!", "images.canfar.net/skaha/terminal:1.1.2", session=session)
    with pytest.raises(ValueError, match="retries"):
        Batch.launch("ok", "images.canfar.net/skaha/terminal:1.1.2", retries=-1, session=session)
    assert Batch.list(session=session) == []


def test_to_pandas_names_the_extra(record_file):
    session = lossy_session(LossyPlatform(set()))
    batch = Batch.launch(
        "frame", "images.canfar.net/skaha/terminal:1.1.2", cmd="true", replicas=2, session=session
    )
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r'pip install "canfar-widgets\[pandas\]"'):
            batch.to_pandas()
    else:  # pragma: no cover - pandas is optional
        frame = batch.to_pandas()
        assert list(frame["replica"]) == [1, 2] and "earlier_ids" in frame.columns


def test_importing_batches_loads_no_widget_stack():
    code = textwrap.dedent("""
        import sys
        import canfar_widgets.batches
        from canfar_widgets import Batch
        assert Batch is canfar_widgets.batches.Batch
        print(sorted(m for m in ("ipywidgets", "anywidget", "IPython") if m in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_wait_polls_through_a_platform_hiccup_but_not_a_refusal(record_file, monkeypatch):
    monkeypatch.setattr(Batch, "poll_interval", 0.01)
    state = {"gets": 0, "answer": 500}

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, text="abc12345\n")
        state["gets"] += 1
        if state["gets"] <= 2:  # two failed polls, then the job is seen finished
            return httpx.Response(state["answer"], text="try later")
        return httpx.Response(
            200,
            json=[{"id": "abc12345", "name": "hiccup", "type": "headless", "status": "Completed"}],
        )

    from canfar_widgets.errors import APIError
    from canfar_widgets.sessions import Session

    with Session(url=URL, token=TOKEN, transport=httpx.MockTransport(flaky)) as session:
        batch = Batch.launch(
            "hiccup", "images.canfar.net/skaha/terminal:1.1.2", cmd="true", session=session
        )
        [replica] = batch.wait(timeout=30)
        assert replica.status == "Completed" and state["gets"] >= 3
        state.update(gets=0, answer=401)
        batch2 = Batch.launch(
            "refusal", "images.canfar.net/skaha/terminal:1.1.2", cmd="true", session=session
        )
        with pytest.raises(APIError) as caught:
            batch2.wait(timeout=30)
        assert caught.value.status_code == 401 and state["gets"] == 1


def test_open_without_a_record_rebuilds_from_the_platforms_names(record_file):
    sessions = [
        {
            "id": "solo0001",
            "name": "solo",
            "status": "Completed",
            "type": "headless",
            "image": "images.canfar.net/skaha/terminal:1.1.2",
        },
        {
            "id": "gap00001",
            "name": "gap-1",
            "status": "Running",
            "type": "headless",
            "startTime": "2026-12-01T10:00:00Z",
        },
        {
            "id": "gap00011",
            "name": "gap-1",
            "status": "Failed",
            "type": "headless",
            "startTime": "2026-12-01T09:00:00Z",
        },  # an older attempt: the newest wins
        {"id": "gap00003", "name": "gap-3", "status": "Completed", "type": "headless"},
        {"id": "gap0000x", "name": "gap-0", "status": "Completed", "type": "headless"},
    ]

    def listing(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/session"):
            return httpx.Response(200, json=sessions)
        return httpx.Response(200, text="")

    from canfar_widgets.sessions import Session

    with Session(url=URL, token=TOKEN, transport=httpx.MockTransport(listing)) as session:
        with pytest.warns(UserWarning, match="rebuilt from the platform's 1 sessions named solo"):
            solo = Batch.open("solo", session=session)
        assert [(r.name, r.status, r.id) for r in solo.replicas] == [
            ("solo", "Completed", "solo0001")
        ]
        with pytest.warns(UserWarning, match="2 sessions named gap-<n>"):
            gap = Batch.open("gap", session=session)
        assert [(r.replica, r.status, r.id) for r in gap.replicas] == [
            (1, "Running", "gap00001"),
            (2, "Failed", None),
            (3, "Completed", "gap00003"),
        ]
        assert gap.errors()[0].reason == "no session of this replica was found"
        with pytest.raises(LookupError, match="no batch named 'nothing'"):
            Batch.open("nothing", session=session)


def test_launch_sends_what_create_sends_and_a_rerun_is_the_same_replica(record_file):
    forms: list[list[tuple[str, str]]] = []

    def recording(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            form = list(httpx.QueryParams(request.content.decode()).multi_items())
            forms.append(form)
            return httpx.Response(200, text=f"id{len(forms):06d}\n")
        return httpx.Response(200, json=[])

    from canfar_widgets.sessions import Session

    spec = dict(
        image="images.canfar.net/skaha/terminal:1.1.2",
        cmd="python",
        args=["/arc/home/me/scan.py", "--fast"],
        env={"MODE": "a", "N": 3},
        replicas=3,
        cores=2,
        ram=8,
    )
    with Session(url=URL, token=TOKEN, transport=httpx.MockTransport(recording)) as session:
        session.create("wire", **spec)
        created = sorted(forms, key=lambda f: f[0][1])
        forms.clear()
        batch = Batch.launch("wire", session=session, **spec)
        launched = sorted(forms, key=lambda f: f[0][1])
        assert launched == created  # the same requests as Session.create, field for field
        forms.clear()
        first_id = batch.replicas[1].id
        batch._attempts[2][-1].update(status="Failed")  # as a refresh would have found it
        batch._record.save(batch._row.key, batch._attempts[2])
        [again] = batch.rerun([2], env={"MODE": "b"}, ram=16)
    assert again.attempt == 2 and again.earlier_ids == (first_id,)
    [form] = forms
    assert form == [
        ("name", "wire-2"),
        ("image", "images.canfar.net/skaha/terminal:1.1.2"),
        ("cores", "2"),
        ("ram", "16"),
        ("type", "headless"),
        ("cmd", "python"),
        ("args", "/arc/home/me/scan.py --fast"),
        ("env", "MODE=b"),
        ("env", "N=3"),
        ("env", "REPLICA_ID=2"),
        ("env", "REPLICA_COUNT=3"),
    ]


def test_a_lagging_listing_does_not_make_a_new_replica_deleted(record_file, monkeypatch):
    from canfar_widgets.batches import batch as batch_module

    platform = LossyPlatform(lose=set())
    with lossy_session(platform) as session:
        batch = Batch.launch(
            "lag", "images.canfar.net/skaha/terminal:1.1.2", cmd="true", replicas=2, session=session
        )
        made = list(platform.sessions)
        platform.sessions.clear()  # the listing does not show them yet
        batch.refresh()
        assert batch.counts == {"Pending": 2}
        platform.sessions.extend(made)
        batch.refresh()
        assert batch.counts == {"Running": 2}
        # Seen, then gone before it finished: deleted (by someone, somewhere).
        platform.sessions[:] = [s for s in made if s["name"] == "lag-2"]
        batch.refresh()
        assert [r.status for r in batch.replicas] == ["Deleted", "Running"]
        # Never seen at all, past the grace: deleted too.
        monkeypatch.setattr(batch_module, "LIST_GRACE", 0.0)
        other = Batch.launch(
            "never", "images.canfar.net/skaha/terminal:1.1.2", cmd="true", session=session
        )
        platform.sessions[:] = []
        other.refresh()
        assert other.counts == {"Deleted": 1}
