"""Headless sessions really run: processes, logs, environment, exit status, killing, cleanup."""

from __future__ import annotations

import os
import re
import signal
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import support
from local_support import FORM, TERMINAL, PlatformApi
from support import group_alive

from canfar_widgets.local import LocalPlatform

pytestmark = pytest.mark.timeout(60)

Api = PlatformApi


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
    return support.wait_for(predicate, timeout)


@pytest.fixture
def platform(make_platform: Callable[..., LocalPlatform]) -> LocalPlatform:
    return make_platform(kill_grace=0.3)


@pytest.fixture
def api(platform: LocalPlatform) -> Iterator[Api]:
    client = Api(platform)
    try:
        yield client
    finally:
        client.http.close()


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_echo_completes_with_its_output(api: Api) -> None:
    sid = api.create(cmd="echo", args="hello world")
    assert api.wait_status(sid, "Completed") == "Completed"
    assert api.logs(sid) == "hello world\n"
    record = api.record(sid)
    assert record is not None and "startTime" in record and "expiryTime" in record


def test_args_split_on_single_spaces_without_quoting(api: Api) -> None:
    # The server drops one backslash (its replaceAll), so printf's \n is written \\n.
    sid = api.create(cmd="printf", args="[%s]\\\\n 'a b'  c")
    api.wait_status(sid, "Completed")
    assert api.logs(sid) == "['a]\n[b']\n[]\n[c]\n"


def test_cmd_is_one_argv_element(api: Api) -> None:
    sid = api.create(cmd="echo hi")  # the server puts cmd in command: ["echo hi"]
    assert api.wait_status(sid, "Failed") == "Failed"
    assert 'exec: "echo hi": executable file not found in $PATH' in api.logs(sid)


def test_environment_is_minimal_and_layered(
    api: Api, platform: LocalPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANFAR_LOCAL_TEST_SECRET", "leak")
    r = api.http.post(
        "session",
        params=[
            ("name", "envjob"),
            ("image", TERMINAL),
            ("cmd", "env"),
            ("env", "GREETING=hi"),
            ("env", "NOEQUALS"),
            ("env", "A=1=2"),
            ("env", "EMPTY="),
            ("env", "HOME=/nope"),
            ("env", "REPLICA_ID=7"),
        ],
        headers=FORM,
    )
    sid = r.text.strip()
    api.wait_status(sid, "Completed")
    env = dict(line.split("=", 1) for line in api.logs(sid).splitlines())
    assert env["GREETING"] == "hi"
    assert env["REPLICA_ID"] == "7"
    assert "NOEQUALS" not in env and "A" not in env and "EMPTY" not in env
    assert "CANFAR_LOCAL_TEST_SECRET" not in env
    assert env["HOME"] == env["PWD"] != "/nope"  # the template's values win
    # HOME is the user's home on the storage, as the headless launch template sets it
    assert platform.storage is not None
    expected = platform.storage.job_home(platform.username)
    assert env["HOME"] == expected
    assert expected == (
        f"/arc/home/{platform.username}"
        if platform.storage.mounted
        else str(platform.arc / "home" / platform.username)
    )
    assert env["skaha_sessionid"] == sid and env["skaha_hostname"] == "envjob"
    assert env["skaha_username"] == platform.username
    assert env["PATH"] and env["OMP_NUM_THREADS"] == "1"


def test_job_runs_in_the_users_home(api: Api, platform: LocalPlatform) -> None:
    # CANFAR's headless template: workingDir = HOME = the user's home, the same for every job
    first = api.create(cmd="pwd")
    second = api.create(cmd="pwd")
    api.wait_status(first, "Completed")
    api.wait_status(second, "Completed")
    assert api.logs(first) == api.logs(second)
    assert api.logs(first).strip().endswith(f"/home/{platform.username}")


def test_stdout_and_stderr_are_merged_in_order(api: Api, tmp_path: Path) -> None:
    cmd = script(tmp_path, "mix.sh", "echo 1\necho 2 >&2\necho 3\n")
    sid = api.create(cmd=cmd)
    api.wait_status(sid, "Completed")
    assert api.logs(sid) == "1\n2\n3\n"


def test_nonzero_exit_fails(api: Api) -> None:
    sid = api.create(cmd="false")
    assert api.wait_status(sid, "Failed") == "Failed"
    events = api.events(sid)
    assert "BackoffLimitExceeded" in events and "Started" in events


def test_killed_by_signal_fails(api: Api, platform: LocalPlatform) -> None:
    sid = api.create(cmd="sleep", args="300")
    api.wait_status(sid, "Running")
    pgid = platform.process_group(sid)
    assert pgid is not None
    os.killpg(pgid, signal.SIGKILL)
    assert api.wait_status(sid, "Failed") == "Failed"


def test_command_not_found(api: Api) -> None:
    sid = api.create(cmd="no-such-command-xyz")
    assert api.wait_status(sid, "Failed") == "Failed"
    text = 'exec: "no-such-command-xyz": executable file not found in $PATH'
    assert text in api.logs(sid)
    events = api.events(sid)
    assert re.search(r"^Warning +Failed +Error: ", events, re.M) and text in events
    assert api.record(sid)["startTime"]  # type: ignore[index]


def test_not_executable(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "plain.txt"
    path.write_text("echo hi\n")
    sid = api.create(cmd=str(path))
    api.wait_status(sid, "Failed")
    assert "permission denied" in api.logs(sid)


def test_headless_without_cmd_completes_with_a_note(api: Api) -> None:
    sid = api.create()
    assert api.wait_status(sid, "Completed") == "Completed"
    assert "entrypoint" in api.logs(sid) and "not emulated" in api.logs(sid)


def test_delete_kills_the_whole_process_group(
    api: Api, platform: LocalPlatform, tmp_path: Path
) -> None:
    # the job ignores SIGTERM and leaves a background child: both must die
    cmd = script(tmp_path, "stubborn.sh", "trap '' TERM\nsleep 300 &\nsleep 300\n")
    sid = api.create(cmd=cmd)
    api.wait_status(sid, "Running")
    pgid = platform.process_group(sid)
    assert pgid is not None
    wait_for(lambda: len([p for p in os.listdir("/proc") if p.isdigit() and _pgid(p) == pgid]) >= 3)
    assert api.http.delete(f"session/{sid}").status_code == 200
    assert api.status(sid) in ("Terminating", None)
    api.wait_status(sid, None)
    wait_for(lambda: not group_alive(pgid), timeout=5)
    assert api.logs(sid) == ""  # gone: logs of unknown sessions are empty


def _pgid(pid: str) -> int | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(data[data.rfind(b")") + 2 :].split()[2])


def test_finished_job_leaves_no_background_process(
    api: Api, platform: LocalPlatform, tmp_path: Path
) -> None:
    cmd = script(tmp_path, "bg.sh", "sleep 300 &\necho started\n")
    sid = api.create(cmd=cmd)
    api.wait_status(sid, "Completed")
    pgid = platform.process_group(sid)
    assert pgid is not None
    wait_for(lambda: not group_alive(pgid), timeout=5)


def test_headless_expiry_kills_and_fails() -> None:
    with LocalPlatform(
        headless_start_delay=0.0, headless_expiry=1, kill_grace=0.2, metrics_interval=0
    ) as p:
        api = Api(p)
        try:
            sid = api.create(cmd="sleep", args="300")
            api.wait_status(sid, "Running")
            pgid = p.process_group(sid)
            assert pgid is not None
            assert api.wait_status(sid, "Failed", timeout=10) == "Failed"
            assert "DeadlineExceeded" in api.events(sid)
            wait_for(lambda: not group_alive(pgid), timeout=5)
        finally:
            api.http.close()


def test_stop_leaves_no_process_behind() -> None:
    p = LocalPlatform(headless_start_delay=0.0, kill_grace=0.3, metrics_interval=0, cores=8)
    p.start()
    try:
        api = Api(p)
        ids = [api.create(cmd="sleep", args="300") for _ in range(3)]
        for sid in ids:
            api.wait_status(sid, "Running")
        groups = [p.process_group(sid) for sid in ids]
        api.http.close()
        workdir = p.workdir
    finally:
        p.stop()
    for pgid in groups:
        assert pgid is not None
        with pytest.raises(ProcessLookupError):
            os.killpg(pgid, 0)
    assert workdir is not None and not workdir.exists()


def test_stop_while_jobs_are_starting() -> None:
    p = LocalPlatform(headless_start_delay=0.0, kill_grace=0.3, metrics_interval=0)
    p.start()
    try:
        api = Api(p)
        for _ in range(5):
            api.create(cmd="sleep", args="300")
        api.http.close()
    finally:
        p.stop()
    assert _sleeping_children() == []  # none left running, none left as a zombie


def _sleeping_children() -> list[str]:
    """Our child processes named ``sleep`` (alive or zombie)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            data = Path(f"/proc/{pid}/stat").read_bytes()
        except OSError:
            continue
        comm = data[data.index(b"(") + 1 : data.rfind(b")")]
        ppid = int(data[data.rfind(b")") + 2 :].split()[1])
        if ppid == os.getpid() and comm == b"sleep":
            found.append(pid)
    return found


def test_custom_workdir_is_kept(tmp_path: Path) -> None:
    with LocalPlatform(
        workdir=tmp_path / "wd", headless_start_delay=0.0, metrics_interval=0, arc=tmp_path / "arc"
    ) as p:
        api = Api(p)
        sid = api.create(cmd="touch", args="made-here")
        api.wait_status(sid, "Completed")
        api.http.close()
    assert (tmp_path / "wd" / "logs" / f"{sid}.log").exists()
    assert (tmp_path / "wd" / "state.sqlite3").exists()
    # the job's working directory is its home on the storage root, which is kept too
    assert (tmp_path / "arc" / "home" / p.username / "made-here").exists()


def test_running_job_reports_usage() -> None:
    with LocalPlatform(headless_start_delay=0.0, metrics_interval=0.05, kill_grace=0.2) as p:
        api = Api(p)
        try:
            sid = api.create(cmd="sleep", args="300")
            api.wait_status(sid, "Running")
            record = wait_for(lambda: (r := api.record(sid)) and "cpuCoresInUse" in r and r)
            assert float(record["ramInUse"]) >= 0
            assert float(record["cpuCoresInUse"]) >= 0
            keys = list(record)
            assert (
                keys.index("requestedGPUCores")
                < keys.index("ramInUse")
                < keys.index("cpuCoresInUse")
                < keys.index("isFixedResources")
            )
            api.http.delete(f"session/{sid}")
        finally:
            api.http.close()


def test_many_concurrent_creates_none_lost(api: Api, platform: LocalPlatform) -> None:
    import concurrent.futures

    def one(n: int) -> str:
        return api.create(name=f"many-{n}", cmd="true")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(one, range(40)))
    assert len(set(ids)) == 40
    wait_for(lambda: all(api.status(s) == "Completed" for s in ids), timeout=30)
    listed = {r["id"] for r in api.http.get("session", params={"type": "headless"}).json()}
    assert set(ids) <= listed


def test_interpreter_exit_without_stop_leaves_no_process() -> None:
    import subprocess
    import sys

    code = (
        "import httpx, time\n"
        "from canfar_widgets.local import LocalPlatform\n"
        "p = LocalPlatform(headless_start_delay=0.0, kill_grace=0.3, metrics_interval=0).start()\n"
        "h = {'Authorization': 'Bearer ' + p.token,\n"
        "     'Content-Type': 'application/x-www-form-urlencoded'}\n"
        "sid = httpx.post(p.url + '/session', params={'name': 'x', 'image': '" + TERMINAL + "',\n"
        "                 'cmd': 'sleep', 'args': '300'}, headers=h).text.strip()\n"
        "while p.process_group(sid) is None or p.sessions()[0]['status'] != 'Running':\n"
        "    time.sleep(0.02)\n"
        "print(p.process_group(sid), flush=True)\n"  # exits without p.stop()
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    pgid = int(done.stdout.strip())
    wait_for(lambda: not group_alive(pgid), timeout=5)
