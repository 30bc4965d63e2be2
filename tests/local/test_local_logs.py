"""The local platform's ``?view=logs``: streamed in chunks (a reader costs the platform a
chunk, not the log) and rotated as the kubelet does (the current file is what is served)."""

from __future__ import annotations

import gc
import stat
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import support
from local_support import FORM, TERMINAL, authorized_client

from canfar_widgets.local import LocalPlatform
from canfar_widgets.local.jobs import Job

pytestmark = pytest.mark.timeout(120)

LINE = "0123456789" * 9 + "abcdefghi\n"  # 100 bytes


@pytest.fixture
def platform(make_platform: Callable[..., LocalPlatform]) -> LocalPlatform:
    return make_platform(kill_grace=0.3)


@pytest.fixture
def http(platform: LocalPlatform) -> Iterator[httpx.Client]:
    with authorized_client(platform, timeout=60) as client:
        yield client


def writer(tmp_path: Path, lines: int) -> str:
    """A job that writes ``lines`` numbered 100-byte lines."""
    path = tmp_path / "write.sh"
    path.write_text(f"#!/bin/sh\nyes '{LINE[:-1]}' | head -n {lines}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def numbered(tmp_path: Path, lines: int) -> str:
    path = tmp_path / "numbered.sh"
    path.write_text(f"#!/bin/sh\nseq -f 'line %08g {'x' * 77}' 1 {lines}\n")  # 100 bytes a line
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def run_job(http: httpx.Client, cmd: str) -> str:
    r = http.post("session", params={"name": "logs", "image": TERMINAL, "cmd": cmd}, headers=FORM)
    assert r.status_code == 200, r.text
    sid = r.text.strip()
    support.wait_for(lambda: http.get(f"session/{sid}").json()["status"] == "Completed", 60)
    return sid


def test_a_log_read_costs_the_platform_a_chunk_not_the_log(platform, http, tmp_path, monkeypatch):
    monkeypatch.setattr(Job, "log_max_bytes", 0)  # one 20 MB file: never rotated
    size = 200_000 * len(LINE)
    sid = run_job(http, writer(tmp_path, 200_000))
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        received = [0, 0]

        def read(slot: int) -> None:  # the client side keeps nothing either: bytes counted
            with http.stream("GET", f"session/{sid}", params={"view": "logs"}) as response:
                assert response.status_code == 200
                for chunk in response.iter_raw():
                    received[slot] += len(chunk)

        readers = [threading.Thread(target=read, args=(i,)) for i in range(2)]
        for t in readers:
            t.start()
        for t in readers:
            t.join()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert received == [size, size]
    # Two concurrent readers, the platform and the clients all in this process: well under
    # a tenth of the log per reader (the whole-file read held 2x the log per reader).
    assert peak / 2 < 0.1 * size, peak


def test_the_log_rotates_as_the_kubelet_does_and_the_current_file_is_served(
    platform, http, tmp_path, monkeypatch
):
    monkeypatch.setattr(Job, "log_max_bytes", 100_000)  # 1,000 lines a file
    monkeypatch.setattr(Job, "log_max_files", 3)
    sid = run_job(http, numbered(tmp_path, 4_500))
    served = http.get(f"session/{sid}", params={"view": "logs"}).text
    # kubectl logs after rotations: the current file only, beginning at a whole line.
    lines = served.splitlines()
    assert lines and len(served) <= 100_000
    assert lines[-1].startswith("line 00004500 ")
    first = int(lines[0].split()[1])
    assert first > 1 and len(lines) == 4_500 - first + 1
    # On disk: the current file and log_max_files - 1 rotated ones, whole lines, in order,
    # nothing lost between them.
    current = next(platform.workdir.glob(f"logs/{sid}.log"))
    rotated = sorted(current.parent.glob(f"{sid}.log.*"), key=lambda p: -int(p.suffix[1:]))
    assert [p.suffix for p in rotated] == [".2", ".1"]
    kept = "".join(p.read_text() for p in [*rotated, current])
    numbers = [int(line.split()[1]) for line in kept.splitlines()]
    assert numbers == list(range(numbers[0], 4_501))
    assert all(p.stat().st_size <= 100_000 for p in [*rotated, current])
    # Deleting the session deletes every file of its log.
    assert http.delete(f"session/{sid}").status_code in (200, 204)
    support.wait_for(lambda: not list(current.parent.glob(f"{sid}.log*")), 15)


def test_output_is_complete_when_the_session_reads_finished(platform, http, tmp_path):
    sid = run_job(http, numbered(tmp_path, 30_000))  # 3 MB through the pipe, one file
    served = http.get(f"session/{sid}", params={"view": "logs"}).text
    assert served.count("\n") == 30_000 and served.endswith("line 00030000 " + "x" * 77 + "\n")
