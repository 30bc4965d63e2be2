"""A Launch click while a cell blocks in ``batch.wait()`` is served within 2 s (issue 14).

In Chromium against JupyterLab 4 and Notebook 7, with JupyterLab's ``commsOverSubshells``
setting disabled (what ipykernel 6, VS Code and that setting off give): no comm subshell
serves widget messages, so only the kernel pump inside ``Batch.wait`` can. Cell 1 shows a
LaunchForm; cell 2 launches a batch of 3 headless jobs that each wait for a release file
and blocks in ``batch.wait()``. The test clicks Launch (found by role and name) and the
page must say "Launched 1 session: <id>" within 2 s of the click (timed in the page),
while cell 2 is still running; the platform lists that session. Only then does the test
create the release file, so the batch cannot have finished before. Cell 2 ends by
printing on which thread the kernel handled the "launch" message (the main one, blocked
in ``wait``: so the pump served it), how many widget messages the pump served, and the
kernel's subshells (none in JupyterLab: the setting held; Notebook 7 leaves one open for
another comm target). Screenshots: artifacts/screenshots/clicks-during-wait-*.png.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from jlab import cell_prompts, screenshot, wait_for_all_cells
from notebook_pages import comms_over_subshells_disabled, held_batch_setup

pytestmark = pytest.mark.usefixtures("no_sessions_left")

TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"
BOUND_MS = 2_000  # the issue's own "a Launch click during batch.wait() is served within 2 s"

FORM_CELL = """
import threading
from canfar_widgets import LaunchForm, Session
# Which thread handles each widget "launch" message: the main one (only the pump can serve
# it while cell 2 blocks) or a subshell's.
kernel = get_ipython().kernel
launch_threads = []
def _traced(handler):
    def comm_msg(stream, ident, parent):
        data = parent.get("content", {{}}).get("data", {{}})
        if data.get("method") == "custom" and data.get("content", {{}}).get("kind") == "launch":
            launch_threads.append(threading.current_thread() is threading.main_thread())
        return handler(stream, ident, parent)
    return comm_msg
kernel.shell_handlers["comm_msg"] = _traced(kernel.shell_handlers["comm_msg"])
session = Session()
form = LaunchForm(session, name={name!r}, kind="headless", image={image!r},
                  cmd="echo", args="launched while a cell waits")
form
"""

WAIT_CELL = """
import json
from canfar_widgets import Batch, kernel_pump
batch = Batch.launch({batch!r}, {image!r}, cmd=sys.executable, args={tmp!r} + "/job.py",
                     replicas=3, session=session, env={{"RELEASE": {tmp!r} + "/release"}})
print("waiting for the batch", flush=True)
replicas = batch.wait(timeout=600)
kernel = get_ipython().kernel
channel = getattr(kernel, "shell_channel_thread", None)
subshells = channel.manager.list_subshell() if channel is not None else []
served = sum(p.served for p in kernel_pump._pumps.values())
print("RESULT " + json.dumps({{"subshells": subshells, "served": served,
                               "launch_on_main": launch_threads,
                               "states": sorted({{r.status for r in replicas}})}}))
"""

# Times the click (capture phase, before the form's own handler) and the moment the status
# line first says "Launched", with the cells' prompts at that moment.
TIMING_JS = """
form => {
  const status = form.querySelector(".cw-status-line");
  window.__clickAt = null;
  window.__result = null;
  form.addEventListener("click", (event) => {
    if (event.target.closest("button") && event.target.closest("button").textContent.trim() === "Launch")
      window.__clickAt = performance.now();
  }, { capture: true });
  const seen = () => {
    const text = (status.textContent || "").trim();
    if (window.__result === null && text.startsWith("Launched")) {
      const prompts = [...document.querySelectorAll(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt")].map(e => e.textContent.trim());
      window.__result = { at: performance.now(), text, prompts };
    }
  };
  new MutationObserver(seen).observe(status, { childList: true, characterData: true, subtree: true });
}
"""


@pytest.fixture
def no_comm_subshells(front_end):
    """JupyterLab's ``commsOverSubshells`` set to disabled, in the front end under test."""
    with comms_over_subshells_disabled(front_end.server):
        yield


def test_a_launch_click_during_batch_wait_is_served(
    front_end, no_comm_subshells, notebook, platform, tmp_path: Path
):
    tag, page = front_end.tag, front_end.page
    session_name = f"during-wait-{secrets.token_hex(2)}"
    batch_name = f"held{secrets.token_hex(2)}"
    tmp = str(tmp_path)
    nb = notebook(
        FORM_CELL.format(name=session_name, image=TERMINAL),
        held_batch_setup(tmp) + WAIT_CELL.format(tmp=tmp, batch=batch_name, image=TERMINAL),
    )
    front_end.open_and_run(nb, wait=False)

    form = page.get_by_role("form", name="Launch a CANFAR session")
    form.wait_for()
    # Loaded (the platform's images are in the chooser), with the fields cell 1 set.
    form.get_by_label("Choose an image", exact=True).locator("option[value*='/']").first.wait_for(
        state="attached"
    )
    assert form.get_by_label("Name", exact=True).input_value() == session_name
    launch = form.get_by_role("button", name="Launch", exact=True)
    # Cell 2 is inside batch.wait(): it printed so, and its prompt is [*].
    page.locator(".jp-OutputArea-output").filter(has_text="waiting for the batch").wait_for(
        timeout=60_000
    )
    assert cell_prompts(page)[1] == "[*]:"
    assert not (tmp_path / "release").exists()
    assert launch.is_enabled()

    form.evaluate(TIMING_JS)
    launch.click()
    # Waited for generously, so that a late answer fails on the bound below, with its time.
    page.wait_for_function("() => window.__result !== null", timeout=30_000)
    result = page.evaluate("() => ({ ...window.__result, clickAt: window.__clickAt })")
    assert result["clickAt"] is not None, "the Launch click was not seen in the page"
    took = result["at"] - result["clickAt"]
    screenshot(form, f"clicks-during-wait-{tag}")
    assert result["text"].startswith("Launched 1 session: "), result["text"]
    # Served while cell 2 still blocked (its jobs wait for a file not yet written).
    assert result["prompts"][1] == "[*]:", result["prompts"]
    assert took <= BOUND_MS, (
        f"the launch was answered {took:.0f} ms after the click (bound {BOUND_MS} ms)"
    )
    [launched_id] = result["text"].removeprefix("Launched 1 session: ").split(", ")
    listed = [s for s in platform.sessions() if s.get("name") == session_name]
    assert [s["id"] for s in listed] == [launched_id]
    assert cell_prompts(page)[1] == "[*]:"

    # Now let the batch finish; cell 2 ends and reports what served the click.
    (tmp_path / "release").write_text("go")
    wait_for_all_cells(page, nb, timeout_ms=120_000)
    line = page.locator(".jp-OutputArea-output").filter(has_text="RESULT ").inner_text()
    report = json.loads(line[line.index("RESULT ") + len("RESULT ") :].strip().splitlines()[0])
    # The one launch message was handled on the kernel's main thread, which was blocked in
    # batch.wait(): the pump served it (not a comm subshell).
    assert report["launch_on_main"] == [True], report
    assert report["served"] >= 1, report
    if tag == "lab":
        assert report["subshells"] == [], report  # the setting held: no subshell at all
    # Notebook 7 leaves one subshell open (for another comm target: the launch message
    # above did not go to it), so only the handling thread is asserted there.
    assert report["states"] == ["Completed"]
