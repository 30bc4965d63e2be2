"""Security on a shared machine: the token out of the process list, private files, and a
flood of idle or half-open connections that cannot starve a real client."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import support

from canfar_widgets.local import LocalPlatform
from canfar_widgets.local.platform import LISTEN_BACKLOG

pytestmark = pytest.mark.timeout(180)

TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@contextmanager
def cli(
    *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    """``canfar-widgets local`` as a real process: (process, url, banner lines)."""
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "canfar_widgets", "local", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        url = next(line.split()[-1] for line in lines if line.strip().startswith("url:"))
        yield proc, url, lines
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def command_lines() -> list[bytes]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                found.append(Path(f"/proc/{entry}/cmdline").read_bytes())
            except OSError:
                continue
    return found


def works(url: str, token: str) -> bool:
    r = httpx.get(f"{url}/context", headers={"Authorization": f"Bearer {token}"})
    return r.status_code == 200


@pytest.mark.parametrize("how", ["env", "file"])
def test_token_is_not_in_the_process_list(tmp_path: Path, how: str) -> None:
    token = f"secret-{how}-token-7c1e93"
    args = ["--arc", str(tmp_path / "arc")]
    env = {"CANFAR_LOCAL_TOKEN": ""}
    if how == "env":
        env["CANFAR_LOCAL_TOKEN"] = token
    else:
        path = tmp_path / "token"
        path.write_text(token + "\n")
        path.chmod(0o600)
        args += ["--token-file", str(path)]
    with cli(*args, env=env) as (_proc, url, lines):
        assert works(url, token)
        # a job runs too: none of its processes carries the token either
        r = httpx.post(
            f"{url}/session",
            params={"name": "j", "image": TERMINAL, "cmd": "sleep", "args": "30"},
            headers={"Authorization": f"Bearer {token}", **FORM},
        )
        assert r.status_code == 200
        assert not [c for c in command_lines() if token.encode() in c]
        assert not [line for line in lines if token in line]  # nor printed
        assert any("token:" in line and "(from " in line for line in lines)


def test_token_option_warns(tmp_path: Path) -> None:
    with cli("--token", "visible-token", "--arc", str(tmp_path / "arc")) as (proc, url, _):
        assert works(url, "visible-token")
        proc.terminate()
        proc.wait(timeout=30)
        assert proc.stderr is not None
        assert "--token is readable by every user" in proc.stderr.read()


def test_empty_token_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_text("\n")
    done = subprocess.run(
        [sys.executable, "-m", "canfar_widgets", "local", "--port", "0", "--token-file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and "the file is empty" in done.stderr


def test_workdir_and_logs_are_private(tmp_path: Path) -> None:
    workdir = tmp_path / "wd"
    workdir.mkdir(mode=0o755)
    with LocalPlatform(
        workdir=workdir, arc=tmp_path / "arc", headless_start_delay=0, metrics_interval=0
    ) as p:
        session = p.session()
        try:
            [sid] = session.create("log", image=TERMINAL, cmd="echo", args="private")
            session.wait([sid], until="finished", timeout=15, interval=0.05)
        finally:
            session.close()
        assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
        assert stat.S_IMODE((workdir / "logs").stat().st_mode) == 0o700
        assert stat.S_IMODE((workdir / "logs" / f"{sid}.log").stat().st_mode) == 0o600
        assert stat.S_IMODE((workdir / "state.sqlite3").stat().st_mode) == 0o600
        assert p.token.encode() not in (workdir / "state.sqlite3").read_bytes()


def test_listen_backlog_holds_a_burst() -> None:
    assert LISTEN_BACKLOG >= 1024
    if shutil.which("ss") is None:
        pytest.skip("ss is missing: cannot read the listen backlog")
    with LocalPlatform(metrics_interval=0) as p:
        out = subprocess.run(
            ["ss", "-ltnH", f"sport = :{p.port}"], capture_output=True, text=True, check=True
        ).stdout.split()
        somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
        assert int(out[2]) == min(LISTEN_BACKLOG, somaxconn)  # Send-Q of a listener = backlog


def test_idle_and_half_open_connections_do_not_starve_a_client(tmp_path: Path) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1400:
        pytest.skip(f"the open-file limit ({hard}) is too low for 1,100 connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    token = "idle-test-token"
    flood: list[socket.socket] = []
    # The platform starts with the usual soft limit of 1,024 open files, which 1,100
    # connections would exhaust (accept() then fails and real clients wait in the backlog).
    prefix = ("prlimit", f"--nofile=1024:{hard if hard != resource.RLIM_INFINITY else 65536}")
    if shutil.which("prlimit") is None:
        prefix = ()
    try:
        with cli(
            "--idle-timeout",
            "2",
            "--arc",
            str(tmp_path / "arc"),
            prefix=prefix,
            env={"CANFAR_LOCAL_TOKEN": token},
        ) as (_proc, url, _):
            host, port = url.split("/")[2].split(":")
            for n in range(1100):
                sock = socket.create_connection((host, int(port)), timeout=10)
                if n % 2:  # half the flood sends half a request and then nothing
                    sock.sendall(b"GET /skaha/v1/session HTTP/1.1\r\nHost: x\r\n")
                flood.append(sock)
            with httpx.Client(timeout=20) as client:
                r = client.get(f"{url}/context", headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 200
            # ... and the idle ones are closed by the server after the idle timeout
            for sock in flood[:20]:
                sock.settimeout(20)
                assert sock.recv(1024) == b""
            support.wait_for(lambda: works(url, token), 10)
    finally:
        for sock in flood:
            sock.close()
