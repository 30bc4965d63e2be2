"""Secrets stay secret in a real notebook: saved file (widget state included), reprs, DEBUG
logs (httpx and httpcore included) and error messages.

A real ipykernel runs a notebook against a ``LocalPlatform`` whose token is a sentinel
(the kernel gets it the usual way: ``CANFAR_URL``/``CANFAR_TOKEN``). The notebook shows a
LaunchForm; the test then sends the form a launch message over the kernel's shell channel,
exactly as the browser does, carrying a private-image registry username and a sentinel
secret. Later cells show a SessionTable and a LogViewer, meet a server-side bad request and
a 401, and print every repr. The executed notebook is saved with its widget state
(nbclient ``store_widget_state=True``) and searched for the sentinels, as are the kernel's
DEBUG log, the platform's DEBUG log and every output.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import textwrap
from typing import Any

import pytest
from reliability_support import running_platform

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

TOKEN = "SENTINEL-TOKEN-8c1f"
SECRET = "SENTINEL-SECRET-71ad"
USER = "robot"
HEADER = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
PRIVATE = "images.canfar.net/private/thing:1"

CELLS = [
    # 0: DEBUG logging of everything to a file, HTTP libraries included.
    """
    import logging, os
    logging.basicConfig(filename=os.environ["RELIABILITY_LOG"], level=logging.DEBUG, force=True,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for name in ("httpx", "httpcore", "canfar_widgets", "asyncio", "anywidget", "ipywidgets"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    """,
    # 1: the form, from CANFAR_URL / CANFAR_TOKEN.
    f"""
    from canfar_widgets import LaunchForm, LogViewer, SessionTable
    form = LaunchForm(kind="headless", image={PRIVATE!r}, cmd="echo", args="private hello")
    form._ready.result(60)
    display(form)
    print("COMM", form.comm.comm_id)
    """,
    # 2: (the browser's launch message arrives before this cell runs)
    """
    ids = form._launch_future.result(60)
    print("launched", ids, form.status, "error:", repr(form.error))
    """,
    # 3: a second launch message arrived, for an image the server refuses.
    """
    import time
    try:
        form._launch_future.result(60)
    except Exception as err:
        print("refused:", repr(err))
    deadline = time.monotonic() + 10
    while not form.error and time.monotonic() < deadline:  # set just after the future fails
        time.sleep(0.01)
    print("form error:", form.error)
    """,
    # 4: table and logs of the private-image session.
    """
    from canfar_widgets import Session
    session = Session()
    session.wait(ids, until="finished", timeout=60, interval=0.1)
    table = SessionTable(hide_finished=False)
    table.refresh().result(30)
    display(table)
    viewer = LogViewer(ids)
    viewer._initial.result(30)
    display(viewer)
    print(viewer.text(ids[0]))
    """,
    # 5: a bad request the server rejects, printed every way a person would.
    """
    import traceback
    from canfar_widgets.errors import APIError
    try:
        session.create("bad-ram", image="images.canfar.net/skaha/terminal:1.1.2", ram=3,
                       cores=1, cmd="true", errors="raise")
    except APIError as err:
        print("str:", err)
        print("repr:", repr(err))
        print("request:", err.request, err.request.headers, err.response)  # reprs mask auth
        logging.getLogger("notebook").exception("create failed")
        traceback.print_exc()
    """,
    # 6: (the platform now refuses the token) a 401 in the middle of the session.
    """
    try:
        table.refresh().result(30)
    except Exception as err:
        print("refresh:", repr(err), str(err))
    print("table error:", table.error)
    try:
        session.fetch()
    except Exception as err:
        print("fetch:", repr(err))
        traceback.print_exc()
    """,
    # 7: every repr and the static snapshots.
    """
    from canfar_widgets.widgets._source import SessionSource
    for thing in (form, table, viewer, session, session.async_session, SessionSource.of(None),
                  form.source, session._wire, session._settings):
        print(type(thing).__name__, repr(thing))
    print(form._repr_mimebundle_()[0]["text/html"][:200])
    display(form, table, viewer)
    """,
]


def _launch_message(client: Any, comm_id: str, nonce: str, image: str) -> None:
    """What the browser sends when Launch is pressed: a custom comm message to the form."""
    spec = {"name": f"priv-{nonce}", "kind": "headless", "image": image,
            "resources": "flexible", "cmd": "echo", "args": "private hello", "replicas": 1}  # fmt: skip
    content = {
        "comm_id": comm_id,
        "data": {"method": "custom", "content": {"kind": "launch", "nonce": nonce, "spec": spec},
                 "buffer_paths": []},
    }  # fmt: skip
    # The credentials ride in a binary buffer, as js/launch_form.js sends them.
    credentials = json.dumps({"username": USER, "secret": SECRET}).encode()
    msg = client.kc.session.msg("comm_msg", content)
    msg["buffers"] = [credentials]  # Session.send() takes a message's own buffers
    client.kc.shell_channel.send(msg)


def _outputs_text(nb: Any, index: int) -> str:
    parts = []
    for out in nb.cells[index].get("outputs", []):
        if out.get("output_type") == "error":
            raise AssertionError(f"cell {index} failed: {out['ename']}: {out['evalue']}")
        parts.append(out.get("text", ""))
        parts.extend(str(v) for v in out.get("data", {}).values())
    return "".join(parts)


@pytest.mark.notebook
@pytest.mark.timeout(240)
def test_no_secret_in_notebook_widget_state_reprs_logs_or_errors(tmp_path, monkeypatch, caplog):
    for key in list(os.environ):
        if key.upper().startswith(("CANFAR_", "SKAHA_")):
            monkeypatch.delenv(key)
    kernel_log = tmp_path / "kernel-debug.log"
    caplog.set_level(logging.DEBUG, logger="canfar_widgets")  # the platform's, in this process
    with running_platform(token=TOKEN) as platform:
        monkeypatch.setenv("HOME", str(tmp_path))
        monkeypatch.setenv("CANFAR_URL", platform.url)
        monkeypatch.setenv("CANFAR_TOKEN", TOKEN)
        monkeypatch.setenv("RELIABILITY_LOG", str(kernel_log))

        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(c).strip()) for c in CELLS]
        client = nbclient.NotebookClient(
            nb,
            timeout=120,
            kernel_name="python3",
            store_widget_state=True,
            resources={"metadata": {"path": str(tmp_path)}},
        )
        with client.setup_kernel():
            for index, cell in enumerate(nb.cells):
                if index == 2:
                    comm_id = _outputs_text(nb, 1).split("COMM", 1)[1].split()[0]
                    _launch_message(client, comm_id, "n1", PRIVATE)
                elif index == 3:
                    _launch_message(client, comm_id, "n2", "other.example.org/x/y:1")
                elif index == 6:
                    platform.faults.auth_status = 401
                client.execute_cell(cell, index)
                if index == 6:
                    platform.faults.auth_status = None
            client.set_widgets_metadata()
        saved = tmp_path / "executed.ipynb"
        nbformat.write(nb, saved)
        created = [r for r in platform.sessions() if r["name"].startswith("priv-")]

    # The notebook did what it says (positive controls).
    outputs = {i: _outputs_text(nb, i) for i in range(len(nb.cells))}
    assert "launched ['" in outputs[2] and "Launched 1 session" in outputs[2]
    assert [r["image"] for r in created] == [PRIVATE]  # the registry credentials worked
    assert "form error: Launch failed:" in outputs[3]
    assert "private hello" in outputs[4]
    assert "BadRequest" in outputs[5] and "Invalid value for 'ram'" in outputs[5]
    assert "Unauthorized" in outputs[6] and "table error: Updating sessions failed" in outputs[6]
    assert "Session(url=" in outputs[7]
    text = saved.read_text(encoding="utf-8")
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert len(state) >= 3 and "CANFAR sessions" in text  # widget state and snapshots saved
    log_text = kernel_log.read_text(encoding="utf-8")
    assert "httpx" in log_text and "httpcore" in log_text and "POST" in log_text

    # No sentinel anywhere: whole or in part, raw or as the base64 registry header.
    places = {
        "saved notebook": text.splitlines(),
        "kernel DEBUG log": log_text.splitlines(),
        "platform DEBUG log": caplog.text.splitlines(),
    }
    leaks = [
        f"{where}: {line[:160]}"
        for where, lines in places.items()
        for line in lines
        if any(needle in line for needle in (TOKEN, SECRET, HEADER, "SENTINEL"))
    ]
    assert leaks == []
