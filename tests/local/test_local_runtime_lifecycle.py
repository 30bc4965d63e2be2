"""No job outlives its platform, and nothing is forgotten: a real ``canfar-widgets local``
process is killed (SIGKILL, SIGHUP, SIGTERM) with jobs running; a platform restarted on the
same workdir tells the truth about them. Also: a start that cannot write its files fails."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import support
from reliability_support import descendants
from support import process_running, reap

from canfar_widgets.local import LocalPlatform, discovery
from canfar_widgets.models import parse_events

pytestmark = pytest.mark.timeout(180)

TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
TOKEN = "lifecycle-test-token-4f9a"
# A job with a child shell and a grandchild, that ignores SIGTERM.
FAMILY = "trap '' TERM\nsh -c 'sleep 300 & sleep 300' &\nsleep 300\n"


@contextmanager
def cli_platform(
    workdir: Path, arc: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``canfar-widgets local`` as a real process; yields it and its API URL."""
    cmd = [
        sys.executable,
        "-m",
        "canfar_widgets",
        "local",
        "--port",
        "0",
        "--workdir",
        str(workdir),
        "--arc",
        str(arc),
        "--cores",
        "8",
        "--headless-start-delay",
        "0",
        "--kill-grace",
        "0.3",
        *extra,
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CANFAR_LOCAL_TOKEN": TOKEN, **(env or {})},
    )
    try:
        assert proc.stdout is not None
        url = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.strip().startswith("url:"):
                url = line.split()[-1]
            if line.startswith("Press Ctrl-C"):
                break
        assert url, proc.stderr.read() if proc.stderr else "no banner"
        yield proc, url
    finally:
        reap(proc)


def create(url: str, **params: Any) -> str:
    r = httpx.post(
        f"{url}/session",
        params={"name": "job", "image": TERMINAL, **params},
        headers={"Authorization": f"Bearer {TOKEN}", **FORM},
    )
    assert r.status_code == 200, r.text
    return r.text.strip()


def status(url: str, sid: str) -> str | None:
    r = httpx.get(f"{url}/session/{sid}", headers={"Authorization": f"Bearer {TOKEN}"})
    return r.json()["status"] if r.status_code == 200 else None


@pytest.mark.parametrize(
    ("sig", "extra"),
    [
        (signal.SIGKILL, ()),
        (signal.SIGHUP, ()),
        (signal.SIGTERM, ()),
        # without bubblewrap only the watchdog stands between a SIGKILL and orphans
        (signal.SIGKILL, ("--no-arc-mount",)),
    ],
    ids=["SIGKILL", "SIGHUP", "SIGTERM", "SIGKILL-no-bwrap"],
)
def test_killed_platform_leaves_no_process_and_a_restart_reports_failed(
    tmp_path: Path, sig: signal.Signals, extra: tuple[str, ...]
) -> None:
    workdir, arc = tmp_path / "wd", tmp_path / "arc"
    job = tmp_path / "family.sh"
    job.write_text(FAMILY)
    with cli_platform(workdir, arc, *extra) as (proc, url):
        ids = [create(url, name=f"fam-{n}", cmd="/bin/sh", args=str(job)) for n in range(3)]
        support.wait_for(lambda: all(status(url, sid) == "Running" for sid in ids), 30)
        # 3 jobs x (sh, sh -c, 2 sleeps), plus bwrap where it is used
        family = support.wait_for(
            lambda: f if len(f := [p for p in descendants(proc.pid)]) >= 12 else None, 30
        )
        announced = discovery.read(int(url.split(":")[2].split("/")[0]))
        assert announced is not None and announced["pid"] == proc.pid
        assert announced["arc"] == str(arc.resolve())
        proc.send_signal(sig)
        proc.wait(timeout=30)
        assert support.wait_until(
            lambda: not [p for p in family if process_running(p)], timeout=15
        ), [p for p in family if process_running(p)]
    if sig != signal.SIGKILL:
        assert proc.returncode == 0
    # a restarted platform on the same workdir lists them, truthfully
    with LocalPlatform(workdir=workdir, arc=arc, metrics_interval=0) as again:
        records = {r["id"]: r for r in again.sessions()}
        assert [records[sid]["status"] for sid in ids] == ["Failed"] * 3
        session = again.session()
        try:
            [texts] = session.events(ids[0])
        finally:
            session.close()
        reasons = [e.reason for e in parse_events(texts[ids[0]])]
        expected = "NodeLost" if sig == signal.SIGKILL else "NodeShutdown"
        assert expected in reasons and reasons[-1] == "BackoffLimitExceeded", reasons
        assert "Started" in reasons


def test_restart_keeps_finished_sessions_and_logs(tmp_path: Path) -> None:
    workdir, arc = tmp_path / "wd", tmp_path / "arc"
    with LocalPlatform(
        workdir=workdir, arc=arc, headless_start_delay=0, metrics_interval=0, start_delay=0.1
    ) as first:
        session = first.session()
        try:
            [done] = session.create("done", image=TERMINAL, cmd="echo", args="kept")
            [nb] = session.create(
                "nb", image="images.canfar.net/skaha/astroml:latest", kind="notebook"
            )
            session.wait([done], until="finished", timeout=15, interval=0.05)
            session.wait([nb], until="Running", timeout=15, interval=0.05)
        finally:
            session.close()
    with LocalPlatform(workdir=workdir, arc=arc, metrics_interval=0) as second:
        session = second.session()
        try:
            by_id = {r["id"]: r for r in session.fetch()}
            assert by_id[done]["status"] == "Completed"
            assert by_id[nb]["status"] == "Running"  # emulated: nothing was lost
            assert by_id[nb]["connectURL"].startswith(second.base + "/session/notebook/")
            assert session.logs(done) == {done: "kept\n"}
            assert session.destroy(done) == {done: True}
        finally:
            session.close()
    with LocalPlatform(workdir=workdir, arc=arc, metrics_interval=0) as third:
        assert {r["id"] for r in third.sessions()} == {nb}  # the delete was remembered


def test_restart_reaps_leftovers_but_not_a_reused_pid(tmp_path: Path) -> None:
    from canfar_widgets.local import proc
    from canfar_widgets.local.state import StateFile

    workdir = tmp_path / "wd"
    workdir.mkdir()
    leftover = subprocess.Popen(["sleep", "300"], start_new_session=True)
    stranger = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        base = {
            "userid": "root",
            "uid": 0,
            "gid": 0,
            "image": TERMINAL,
            "type": "headless",
            "connect_url": "",
            "fixed": False,
            "req_millicores": 1000,
            "req_ram_gib": 4,
            "gpus": 0,
            "deadline": 1209600,
            "status": "Running",
            "start": int(time.time()),
            "boot": proc.boot_id(),
            "events": [],
        }
        state = StateFile(workdir / "state.sqlite3")
        state.write(
            {
                "aaaa0001": {
                    **base,
                    "id": "aaaa0001",
                    "name": "ours",
                    "created": 1.0,
                    "pgid": leftover.pid,
                    "pgid_start": proc.start_ticks(leftover.pid),
                },
                # same pgid number in the record, but another start time: a reused pid
                "aaaa0002": {
                    **base,
                    "id": "aaaa0002",
                    "name": "reused",
                    "created": 2.0,
                    "pgid": stranger.pid,
                    "pgid_start": (proc.start_ticks(stranger.pid) or 0) + 1,
                },
            },
            deleted=[],
        )
        state.close()
        with LocalPlatform(
            workdir=workdir, arc=tmp_path / "arc", metrics_interval=0, username="root"
        ) as p:
            statuses = {r["id"]: r["status"] for r in p.sessions()}
            assert statuses == {"aaaa0001": "Failed", "aaaa0002": "Failed"}
        assert leftover.wait(timeout=10) == -signal.SIGKILL
        assert stranger.poll() is None  # not ours any more: left alone
    finally:
        for child in (leftover, stranger):
            if child.poll() is None:
                child.kill()
            child.wait()


def test_unwritable_workdir_gives_failed_with_the_reason(tmp_path: Path) -> None:
    """The workdir turns read-only under a running platform (as a full disk would)."""
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        pytest.skip("unshare/nsenter are missing: cannot make a read-only mount")
    workdir, arc = tmp_path / "wd", tmp_path / "arc"
    workdir.mkdir()
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no user+mount namespaces here: {probe.stderr.decode().strip()}")
    # The platform runs in its own mount namespace, where the test later covers the workdir
    # with a read-only filesystem (a remount is refused while sqlite holds its file open).
    script = (
        f"exec {sys.executable} -m canfar_widgets local --port 0 --workdir {workdir} "
        f"--arc {arc} --headless-start-delay 0"
    )
    proc = subprocess.Popen(
        ["unshare", "-rm", "sh", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CANFAR_LOCAL_TOKEN": TOKEN},
    )
    try:
        assert proc.stdout is not None
        url = None
        for _ in range(50):
            line = proc.stdout.readline()
            if line.strip().startswith("url:"):
                url = line.split()[-1]
            if not line or line.startswith("Press Ctrl-C"):
                break
        assert url, proc.stderr.read() if proc.stderr else ""
        ok = create(url, name="before", cmd="true")
        support.wait_for(lambda: status(url, ok) == "Completed", 30)
        remount = subprocess.run(
            [
                "nsenter",
                "-t",
                str(proc.pid),
                "-U",
                "-m",
                "--preserve-credentials",
                "mount",
                "-t",
                "tmpfs",
                "-o",
                "ro,size=64k",
                "tmpfs",
                str(workdir),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert remount.returncode == 0, remount.stderr
        sid = create(url, name="after", cmd="true")
        assert support.wait_for(lambda: status(url, sid) in ("Failed", "Completed"), 30)
        assert status(url, sid) == "Failed"  # never Pending forever
        events = httpx.get(
            f"{url}/session/{sid}",
            params={"view": "events"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ).text
        failed = [e for e in parse_events(events) if e.reason == "Failed"]
        assert failed and "Read-only file system" in failed[0].message, events
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            reap(proc)


def test_discovery_file_while_running(tmp_path: Path) -> None:
    with LocalPlatform(arc=tmp_path / "arc", metrics_interval=0) as p:
        assert p.port is not None
        path = discovery.directory() / f"{p.port}.json"
        data = json.loads(path.read_text())
        assert data == {"url": p.url, "arc": str((tmp_path / "arc").resolve()), "pid": os.getpid()}
        assert discovery.read(p.port) == data
        assert data in discovery.read_all()
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700
        assert p.token not in path.read_text()
    assert not path.exists()
    assert discovery.read(p.port) is None


def test_discovery_imports_without_tornado() -> None:
    code = (
        "import sys, canfar_widgets.local.discovery as d; "
        "print('tornado' in sys.modules, callable(d.read))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["False", "True"]
