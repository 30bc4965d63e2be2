"""The example notebooks run unmodified, headless, against a LocalPlatform.

Each notebook is copied to a temp folder and executed with nbclient (the same function
``canfar-widgets demo --execute`` uses) in a kernel whose environment points the client at
the platform (``CANFAR_URL``/``CANFAR_TOKEN``); then its printed outputs are checked.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from canfar_widgets.demo import example_notebooks, examples_dir, execute_notebook, platform_env
from canfar_widgets.helpers import chunk

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def platform() -> Iterator[Any]:
    from canfar_widgets.local import LocalPlatform

    with LocalPlatform(start_delay=0.2) as running:
        yield running


def run_example(
    name: str, platform: Any, tmp_path: Path, **extra_env: str
) -> nbformat.NotebookNode:
    path = Path(shutil.copy(examples_dir() / name, tmp_path / name))
    env = {**platform_env(platform.url, platform.token), **extra_env}
    result = execute_notebook(path, env, timeout=90)
    assert result.ok, f"{name} failed: {result.error}"
    return result.notebook


def stdout(nb: nbformat.NotebookNode) -> str:
    """Everything the notebook printed, in order."""
    return "".join(
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "stream" and out.name == "stdout"
    )


def displays(nb: nbformat.NotebookNode) -> list[dict[str, Any]]:
    return [
        out.data
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type in ("display_data", "execute_result")
    ]


def test_examples_are_found_and_clean():
    names = [path.name for path in example_notebooks()]
    assert names == ["quickstart.ipynb", "batch-replicas.ipynb", "client-api.ipynb"]
    for path in example_notebooks():
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name
                # No platform address or credential baked into an example's code.
                for word in ("http://", "https://", "token=", "url="):
                    assert word not in cell.source, (path.name, word)


def test_committed_notebooks_match_the_generator():
    build = examples_dir() / "_build.py"
    if not build.exists():  # an installed wheel ships only what it needs
        pytest.skip("examples/_build.py not shipped here")
    done = subprocess.run([sys.executable, str(build), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_quickstart(platform, tmp_path):
    nb = run_example("quickstart.ipynb", platform, tmp_path)
    text = stdout(nb)
    assert f"platform: {platform.url}" in text
    assert "status: Completed" in text
    assert "log: Hello from canfar-widgets" in text
    # The dashboard cell produced a live widget, not an error, and (issue 15, item 19) its
    # saved snapshot beside it: the state in words and HTML a saved notebook shows.
    [dashboard] = [data for data in displays(nb) if WIDGET_MIME in data]
    [snapshot] = [
        data for data in displays(nb) if "data-canfar-snapshot" in data.get("text/html", "")
    ]
    assert dashboard["text/plain"] == "" and snapshot["text/plain"].startswith("<Dashboard")
    # The text says what a person sees: the names the widgets use, the default filter.
    markdown = " ".join(
        " ".join(cell.source.split()) for cell in nb.cells if cell.cell_type == "markdown"
    )
    for words in (
        "Launch a session",
        "Platform load",
        "Sessions",
        "Hide finished** is off",
        "More actions",
        "Keep alive",
    ):
        assert words in markdown, words
    assert "while it runs." not in markdown  # item 9: a 10 s job was never seen running
    # Item 16: nothing red under a cell (no log line, no warning) on the happy path.
    stderr = [
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "stream" and out.name == "stderr"
    ]
    assert stderr == []


def test_batch_replicas(platform, tmp_path):
    record = tmp_path / "batches.sqlite"  # the notebook's batch record, not the user's
    nb = run_example(
        "batch-replicas.ipynb", platform, tmp_path, CANFAR_WIDGETS_BATCH_DB=str(record)
    )
    text = stdout(nb)
    frames = [f"frame-{n:03d}" for n in range(1, 25)]
    assert "launched 12 replicas" in text
    # Progress was printed as counts, ending with 8 completed and the 4 broken frames failed.
    assert "counts: {'Completed': 8, 'Failed': 4}" in text
    assert "completed: 8, failed: 4" in text
    # Triage: the replicas whose chunk holds a broken frame, with the traceback's last line.
    triage = re.findall(
        r"^replica +(\d+) +attempt 1 +non-zero exit \(exit code 1\): +ValueError: "
        r"(frame-\d+): NaN in header$",
        text,
        flags=re.M,
    )
    assert triage == [
        ("3", "frame-005"),
        ("6", "frame-011"),
        ("8", "frame-016"),
        ("11", "frame-022"),
    ]
    assert "re-running: ['detect-3', 'detect-6', 'detect-8', 'detect-11']" in text
    assert "after the re-run: {'Completed': 12}" in text
    assert "attempts: {3: 2, 6: 2, 8: 2, 11: 2}" in text
    assert "outputs: 12 files, missing: []" in text
    # Each replica's log holds exactly its chunk of the inputs, in order.
    collected = dict(re.findall(r"^(detect-\d+) +\d+ frames: (.*)$", text, flags=re.M))
    assert sorted(collected, key=lambda n: int(n.rsplit("-", 1)[1])) == [
        f"detect-{n}" for n in range(1, 13)
    ]
    for replica in range(1, 13):
        assert collected[f"detect-{replica}"].split(", ") == list(chunk(frames, replica, 12))
    assert "all 24 frames processed once by 12 replicas" in text
    assert re.search(
        r"^12 replicas, 16 attempts, \d+ s wall, [\d.]+ core-hours, [\d.]+ "
        r"RAM-GB-hours \(flexible sessions: the platform's default request\)$",
        text,
        flags=re.M,
    )
    assert "deleted: 12" in text
    assert "re-opened: {'Completed': 12}" in text
    assert "attempts: [1, 1, 2, 1, 1, 2, 1, 2, 1, 1, 2, 1]" in text
    assert "archived log of replica 3: replica 3 processed frame-006" in text
    assert any(WIDGET_MIME in data for data in displays(nb)), "watch() showed no widget"
    assert not (tmp_path / "detect_sources.py").exists()
    assert not (tmp_path / "detect-results").exists()
    assert record.exists()


def test_client_api(platform, tmp_path):
    nb = run_example("client-api.ipynb", platform, tmp_path)
    text = stdout(nb)
    expected = [
        "created: 2",
        "statuses: ['Completed', 'Completed']",
        "fetched: ['api-demo-1', 'api-demo-2']",
        "info: [('api-demo-1', 'Completed'), ('api-demo-2', 'Completed')]",
        "logs: ['hello from the client API']",
        "last event: True Completed\nlast event: True Completed",
        "info of a missing id: []",
        "raised: NotFound 404",
        "notebook: Running",
        "destroy_with: [True, True]",
        "destroy: True",
        "async statuses: ['Completed', 'Completed', 'Completed']",
        "async logs: ['hello from async']",
        "async destroy: True",
    ]
    for line in expected:
        assert line in text
    assert re.search(r"renewed: \{'\w+': True\}", text)
    # verbose=True printed the log under a header instead of returning it.
    assert re.search(r"── Session \w+ ──.*\n+hello from the client API", text)
    # connect() in a kernel shows a link that opens in a new tab, not a browser on the server.
    links = [data["text/html"] for data in displays(nb) if "text/html" in data]
    assert any(
        f'href="{platform.base}/session/notebook/' in html and 'target="_blank"' in html
        for html in links
    )
    # Everything the notebook created is gone again.
    assert not [
        s
        for s in platform.sessions()
        if s.get("status") not in ("Terminating",)
        and s.get("name", "").startswith(("api-", "async-"))
    ]
