"""``canfar-widgets demo``: serving JupyterLab until Ctrl-C, and ``--execute`` reports."""

from __future__ import annotations

import json
import re
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
    write_notebook(tmp_path / "quickstart.ipynb",
                   "import os\nprint(os.environ['CANFAR_URL'])",
                   "from canfar_widgets import Session\nprint(len(Session().fetch()))")
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
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 90
        seen = []
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            match = re.match(r"JupyterLab: (\S+)", line)
            url = match and match.group(1)
        assert url, "no URL printed:\n" + "".join(seen)
        assert re.fullmatch(rf"http://127\.0\.0\.1:{port}/lab/tree/quickstart\.ipynb\?token=\S+", url)
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
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # Both servers are gone: the port is free again.
    assert demo.free_port(port) == port
