"""``canfar-widgets demo``: serving JupyterLab (or Notebook 7) on the examples or the person's
own folder until Ctrl-C, never losing what they made there, and ``--execute`` reports."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from canfar_widgets import cli, demo

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def write_notebook(path: Path, *sources: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, path)


def test_execute_reports_each_notebook_and_fails_on_error(tmp_path, monkeypatch, capsys):
    write_notebook(
        tmp_path / "quickstart.ipynb",
        "import os\nprint(os.environ['CANFAR_URL'])",
        "from canfar_widgets import Session\nprint(len(Session().fetch()))",
    )
    write_notebook(tmp_path / "broken.ipynb", "x = 1", "1 / 0")
    write_notebook(tmp_path / "_private.ipynb", "raise SystemExit('not an example')")
    monkeypatch.setattr(demo, "examples_dir", lambda: tmp_path)

    assert cli.main(["demo", "--execute"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^local platform: http://127\.0\.0\.1:\d+/skaha/v1$", out, re.M)
    # quickstart first, then by name; one line each with a time; the error says where.
    lines = [line for line in out.splitlines() if ".ipynb" in line]
    assert re.fullmatch(r"quickstart\.ipynb +ok +\d+\.\d+s", lines[0])
    assert re.fullmatch(r"broken\.ipynb +FAILED +\d+\.\d+s", lines[1])
    assert len(lines) == 2
    assert "cell 2: ZeroDivisionError: division by zero" in out
    assert "1/2 notebooks ran without errors" in out


def test_serves_jupyterlab_until_ctrl_c(tmp_path):
    port = demo.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "canfar_widgets", "demo", "--no-browser", f"--port={port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 90
        seen = []
        root = None
        while root is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            match = re.match(r"JupyterLab: (\S+)", line)
            url = url or (match and match.group(1))
            match = re.match(r"notebooks: +(\S+) \(", line)
            root = match and Path(match.group(1))
        assert url, "no URL printed:\n" + "".join(seen)
        assert root and root.is_dir(), "no folder printed:\n" + "".join(seen)
        assert re.fullmatch(
            rf"http://127\.0\.0\.1:{port}/lab/tree/quickstart\.ipynb\?token=\S+", url
        )
        token = url.rsplit("token=", 1)[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token={token}") as reply:
            names = {item["name"] for item in json.load(reply)["content"]}
        assert {"quickstart.ipynb", "batch-replicas.ipynb", "client-api.ipynb"} <= names
        with urllib.request.urlopen(url) as reply:
            assert reply.status == 200
        # Without the token the server refuses.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents")
        assert refused.value.code == 403
        refused.value.close()

        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, rest
        assert "stopping" in rest
        # Nothing was added or changed in the temporary copy: it is gone, without a word.
        assert not root.exists()
        assert "kept" not in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # Both servers are gone: the port is free again.
    assert demo.free_port(port) == port


# -- the folder served, and nothing the person made is lost -----------------------------------


def start_demo(*args: str, **popen: object) -> tuple[subprocess.Popen, str, Path]:
    """Start ``canfar-widgets demo --no-browser ARGS`` (stdout piped); its URL and folder."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "canfar_widgets", "demo", "--no-browser", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        **popen,
    )
    url = folder = None
    seen = []
    deadline = time.monotonic() + 90
    while folder is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if match := re.match(r"(?:JupyterLab|Notebook 7): (\S+)", line):
            url = match.group(1)
        if match := re.match(r"notebooks: +(\S+) \(", line):
            folder = Path(match.group(1))
    if url is None or folder is None:
        proc.kill()
        proc.communicate()
        raise AssertionError("no URL and folder printed:\n" + "".join(seen))
    return proc, url, folder


def put_file(url: str, path: str, content: str) -> None:
    """Save a file through the server's contents API, as the browser does when one saves."""
    base, token = url.split("/", 3)[:3], url.rsplit("token=", 1)[1]
    request = urllib.request.Request(
        f"{'/'.join(base)}/api/contents/{path}?token={token}",
        method="PUT",
        data=json.dumps({"type": "file", "format": "text", "content": content}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as reply:
        assert reply.status in (200, 201)


def stop_demo(proc: subprocess.Popen, sig: int = signal.SIGINT) -> str:
    proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
    return rest


def test_snapshot_sees_added_and_changed_files_not_jupyters_copies(tmp_path):
    (tmp_path / "a.ipynb").write_text("{}")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("b")
    before = demo.snapshot(tmp_path)
    assert sorted(before) == ["a.ipynb", "sub/b.txt"]
    assert demo.changed_files(tmp_path, before) == []

    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "a-checkpoint.ipynb").write_text("{}")
    (tmp_path / "empty folder").mkdir()
    assert demo.changed_files(tmp_path, before) == []

    (tmp_path / "sub" / "b.txt").write_text("changed")
    (tmp_path / "new.ipynb").write_text("{}")
    assert demo.changed_files(tmp_path, before) == ["new.ipynb", "sub/b.txt"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "{missing}"], "the folder to serve, {missing}, does not exist"),
        (["demo", "{file}"], "the folder to serve, {file}, is not a folder"),
        (["demo", "--notebook-dir", "{missing}"], "the folder to serve, {missing}, does not exist"),
        (["demo", "{tmp}", "--notebook-dir", "{file}"], "two folders given"),
        (
            ["demo", "{tmp}", "--execute"],
            "--execute runs the bundled examples in a temporary folder",
        ),
        (
            ["demo", "{blocked}", "--examples"],
            "--examples copies the examples into {blocked}/canfar-widgets-examples, but that is a file",
        ),
    ],
)
def test_a_bad_folder_is_refused_in_plain_words(tmp_path, capsys, argv, message):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "blocked").mkdir()
    (tmp_path / "blocked" / "canfar-widgets-examples").write_text("a file of mine")
    names = {
        "missing": str(tmp_path / "nope"),
        "file": str(tmp_path / "notes.txt"),
        "tmp": str(tmp_path),
        "blocked": str(tmp_path / "blocked"),
    }
    assert cli.main([arg.format(**names) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("canfar-widgets demo: ")
    assert message.format(**names) in err
    # Nothing was created or touched.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked", "notes.txt"]
    assert (tmp_path / "blocked" / "canfar-widgets-examples").read_text() == "a file of mine"


def test_notebook_needs_notebook_7(monkeypatch, capsys):
    monkeypatch.setattr(demo, "_is_notebook_7", lambda: False)
    assert cli.main(["demo", "--notebook"]) == 2
    assert "needs notebook>=7: pip install 'canfar-widgets[demo]'" in capsys.readouterr().err


def test_files_made_in_the_temporary_copy_are_kept_without_a_terminal():
    proc, url, root = start_demo()
    try:
        assert root.is_dir() and (root / "quickstart.ipynb").is_file()
        put_file(url, "my-analysis.ipynb", '{"cells": []}')
        rest = stop_demo(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    try:
        # No terminal: nothing is asked, nothing blocks, and the new file is still there.
        assert "Keep them?" not in rest
        assert f"you added or changed 1 file in {root}: my-analysis.ipynb" in rest
        assert f"kept {root}" in rest
        assert f"canfar-widgets demo {root}" in rest
        assert (root / "my-analysis.ipynb").read_text() == '{"cells": []}'
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_with_a_terminal_the_person_is_asked_before_deleting(tmp_path):
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "canfar_widgets", "demo", "--no-browser"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    out = b""

    def read_until(pattern: bytes, timeout: float = 90) -> re.Match[bytes]:
        nonlocal out
        deadline = time.monotonic() + timeout
        while not (found := re.search(pattern, out)):
            assert time.monotonic() < deadline, (
                f"no {pattern!r} in:\n{out.decode(errors='replace')}"
            )
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                try:
                    out += os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
        assert found, out.decode(errors="replace")
        return found

    root = None
    try:
        url = read_until(rb"JupyterLab: (\S+)").group(1).decode()
        root = Path(read_until(rb"notebooks: +(\S+) \(").group(1).decode())
        put_file(url, "scratch.ipynb", '{"cells": []}')
        proc.send_signal(signal.SIGINT)
        read_until(rb"scratch\.ipynb\s+Keep them\? \[Y/n\] ")
        assert root.is_dir(), "deleted before the answer"
        os.write(master, b"n\n")
        read_until(rb"deleted " + re.escape(str(root).encode()))
        assert proc.wait(30) == 0
        assert not root.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


def test_serves_your_folder_in_notebook_7_and_adds_the_examples_beside(tmp_path):
    (tmp_path / "mine.ipynb").write_text('{"cells": [], "mine": true}')
    examples = tmp_path / demo.EXAMPLES_SUBFOLDER
    examples.mkdir()
    (examples / "quickstart.ipynb").write_text("my own edits")

    proc, url, root = start_demo(str(tmp_path), "--examples", "--notebook")
    try:
        assert root == tmp_path.resolve()
        assert re.fullmatch(
            r"http://127\.0\.0\.1:\d+/notebooks/canfar-widgets-examples/"
            r"quickstart\.ipynb\?token=\S+",
            url,
        )
        with urllib.request.urlopen(url) as reply:  # Notebook 7's page, not JupyterLab's
            assert reply.status == 200
            assert "/lab/" not in reply.url
        token = url.rsplit("token=", 1)[1]
        api = url.split("/notebooks/")[0] + "/api/contents"
        with urllib.request.urlopen(f"{api}?token={token}") as reply:
            names = {item["name"] for item in json.load(reply)["content"]}
        assert names == {"mine.ipynb", demo.EXAMPLES_SUBFOLDER}
        put_file(url, "made-in-demo.txt", "new")
        # SIGTERM stops it as Ctrl-C does, and without asking anything.
        rest = stop_demo(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "stopping" in rest
    assert "kept" not in rest and "deleted" not in rest
    # Nothing of the person's was replaced or removed; the missing examples were added.
    assert (tmp_path / "mine.ipynb").read_text() == '{"cells": [], "mine": true}'
    assert (tmp_path / "made-in-demo.txt").read_text() == "new"
    assert (examples / "quickstart.ipynb").read_text() == "my own edits"
    assert {"batch-replicas.ipynb", "client-api.ipynb"} <= {p.name for p in examples.iterdir()}


@pytest.mark.parametrize(
    ("terminal", "answer", "kept"),
    [
        (False, None, True),  # no terminal: nothing asked, kept
        (True, "\n", True),  # Enter: the default is to keep
        (True, "n\n", False),  # only a clear no deletes
        (True, EOFError, True),  # end of input: kept
        (True, KeyboardInterrupt, True),  # Ctrl-C at the question: kept
    ],
)
def test_the_temporary_copy_is_kept_unless_the_person_says_no(
    tmp_path, monkeypatch, capsys, terminal, answer, kept
):
    root = tmp_path / "copy"
    root.mkdir()
    (root / "quickstart.ipynb").write_text("example")
    before = demo.snapshot(root)
    (root / "quickstart.ipynb").write_text("example, run and saved")
    (root / "mine.py").write_text("print('mine')")
    asked = []

    def fake_input(prompt):
        asked.append(prompt)
        if isinstance(answer, type):
            raise answer
        return answer

    monkeypatch.setattr(demo, "_has_terminal", lambda: terminal)
    monkeypatch.setattr("builtins.input", fake_input)
    demo._keep_or_delete(root, before, may_ask=True)
    out = capsys.readouterr().out
    assert f"you added or changed 2 files in {root}: mine.py, quickstart.ipynb" in out
    assert asked == (["Keep them? [Y/n] "] if terminal else [])
    assert root.exists() == kept
    assert (f"kept {root}" in out) == kept
    assert (f"deleted {root}" in out) == (not kept)


def test_the_temporary_copy_goes_quietly_when_nothing_was_made(tmp_path, monkeypatch, capsys):
    root = tmp_path / "copy"
    root.mkdir()
    (root / "quickstart.ipynb").write_text("example")
    before = demo.snapshot(root)
    (root / ".ipynb_checkpoints").mkdir()
    (root / ".ipynb_checkpoints" / "quickstart-checkpoint.ipynb").write_text("example")
    monkeypatch.setattr(demo, "_has_terminal", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: pytest.fail("asked needlessly"))
    demo._keep_or_delete(root, before, may_ask=True)
    assert not root.exists()
    assert capsys.readouterr().out == ""


def test_after_sigterm_nothing_is_asked_and_the_work_is_kept(tmp_path, monkeypatch, capsys):
    root = tmp_path / "copy"
    root.mkdir()
    before = demo.snapshot(root)
    (root / "mine.ipynb").write_text("{}")
    monkeypatch.setattr(demo, "_has_terminal", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: pytest.fail("asked after SIGTERM"))
    demo._keep_or_delete(root, before, may_ask=False)
    assert (root / "mine.ipynb").exists()
    assert f"kept {root}" in capsys.readouterr().out
