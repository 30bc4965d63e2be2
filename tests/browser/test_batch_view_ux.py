"""BatchView in JupyterLab 4 and Notebook 7, in Chromium, against the local platform.

A batch of 6 whose replicas 2, 4 and 5 fail on their first attempt (the job leaves a mark
file and succeeds when re-run): the view shows names and replica numbers, the failures
grouped by reason; a group filters the table; Download logs gives one file per replica;
Retry failed re-runs exactly the failed ones and their rows turn to attempt 2, Completed;
a granted browser notification fires when the batch finishes (``window.Notification`` is
wrapped to record, with permission granted through the browser context); Delete batch
deletes. Pictures at 900, 1280 and 1400 px, light and dark, go to artifacts/screenshots/.
"""

from __future__ import annotations

import io
import secrets
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import fresh_page
from jlab import open_and_run, screenshot, set_theme
from nb7 import open_and_run as nb7_open_and_run

pytestmark = pytest.mark.usefixtures("no_sessions_left")

JOB = """\
import os, pathlib, sys, time
me = int(os.environ["REPLICA_ID"])
marks = pathlib.Path(os.environ["MARKS"])
print(f"replica {me} of {os.environ['REPLICA_COUNT']} starting")
time.sleep(float(os.environ.get("SLEEP", "0")))
mark = marks / f"failed-{me}"
if str(me) in os.environ.get("FAIL", "").split(",") and not mark.exists():
    mark.write_text("once")
    raise ValueError("bad frame in field-017.fits")
print("done")
"""

# Records every notification the page makes, and keeps the browser's own permission.
RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  window.__notes = [];
  class Recording {
    constructor(title, options) { window.__notes.push({ title, body: (options || {}).body || "" }); }
    static get permission() { return Real ? Real.permission : "denied"; }
    static requestPermission(cb) { return Real ? Real.requestPermission(cb) : Promise.resolve("denied"); }
  }
  window.Notification = Recording;
})();
"""


def setup_cell(name: str, tmp: str, replicas: int = 6, sleep: float = 2.0) -> str:
    return f"""
import os, pathlib, sys
os.environ["CANFAR_WIDGETS_BATCH_DB"] = {tmp!r} + "/batches.sqlite"
pathlib.Path({tmp!r}, "marks").mkdir(parents=True, exist_ok=True)
pathlib.Path({tmp!r}, "job.py").write_text({JOB!r})
from canfar_widgets import Batch, Session
from canfar_widgets.widgets._source import SessionSource
session = Session()
SessionSource.of(session).feed.fast = 0.5
batch = Batch.launch({name!r}, "images.canfar.net/skaha/terminal:1.1.2", cmd=sys.executable,
                     args={tmp!r} + "/job.py", replicas={replicas}, session=session,
                     env={{"FAIL": "2,4,5", "SLEEP": "{sleep}", "MARKS": {tmp!r} + "/marks"}})
"""


@pytest.fixture
def granted(browser: Any, lab: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A JupyterLab page whose origin may show notifications, with them recorded."""
    viewport = {"width": 1400, "height": 1100}
    with fresh_page(browser, lab, request, viewport=viewport, accept_downloads=True) as page:
        origin = lab.url("", with_token=False).rstrip("/")
        page.context.grant_permissions(["notifications"], origin=origin)
        # Before the first navigation, so it runs ahead of the page's own scripts.
        page.context.add_init_script(RECORD_NOTIFICATIONS)
        yield page


def view_of(page: Any, name: str) -> Any:
    return page.get_by_role("group", name=f"Batch {name}")


def row(view: Any, name: str) -> Any:
    return view.get_by_role("row").filter(has=view.page.get_by_role("cell", name=name, exact=True))


def pictures(page: Any, view: Any, prefix: str) -> None:
    for width in (900, 1280, 1400):
        page.set_viewport_size({"width": width, "height": 1100})
        view.scroll_into_view_if_needed()
        screenshot(view, f"{prefix}-{width}")


def test_batch_view_in_jupyterlab(granted, lab, notebook, tmp_path):
    page = granted
    name = f"scan{secrets.token_hex(2)}"
    open_and_run(page, lab, notebook(setup_cell(name, str(tmp_path)), "batch"))
    view = view_of(page, name)
    view.wait_for()

    # Notify me, while the batch still runs: the click asks the browser (granted here).
    view.get_by_role("button", name="Notify me").click()
    view.get_by_role("button", name="Notifications on").wait_for()

    view.get_by_text("All 6 finished").wait_for(timeout=90_000)
    for n in range(1, 7):
        assert row(view, f"{name}-{n}").get_by_role("cell").first.inner_text() == str(n)
    assert "Failed" in row(view, f"{name}-2").inner_text()
    groups = view.get_by_role("region", name="Failures by reason")
    assert groups.inner_text().startswith("3 failed:")
    group = view.get_by_role("button", name="3 × ValueError: bad frame in field-017.fits")
    assert group.is_visible()
    # A granted notification said the batch finished, with its counts.
    page.wait_for_function("() => window.__notes.some(n => n.title.includes('finished'))")
    notes = page.evaluate("window.__notes")
    finish = [n for n in notes if "finished" in n["title"]]
    assert finish == [{"title": f"Batch {name} finished", "body": "3 Completed, 3 Failed"}]

    # The group filters the table to its replicas.
    group.click()
    assert group.get_attribute("aria-pressed") == "true"
    visible = [r for r in view.locator("tbody tr").all() if r.is_visible()]
    assert [r.get_by_role("cell").nth(1).inner_text() for r in visible] == [
        f"{name}-2",
        f"{name}-4",
        f"{name}-5",
    ]
    pictures(page, view, "batch-view-failed")

    # Logs of one replica, inline below the table, with its name.
    row(view, f"{name}-4").get_by_role("button", name=f"Logs of {name}-4").click()
    view.get_by_role("heading", name=f"Logs of {name}-4 (replica 4)").wait_for()
    view.locator(".cw-bv-detail-text").filter(has_text="ValueError: bad frame").wait_for()

    # Download logs: one zip, one file per replica.
    with page.expect_download() as caught:
        view.get_by_role("button", name="Download logs").click()
    download = caught.value
    assert download.suggested_filename == f"{name}-logs.zip"
    with zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes())) as archive:
        files = sorted(archive.namelist())
    assert files == [f"{name}-logs/replica-{n}_{name}-{n}.log" for n in range(1, 7)]
    view.get_by_text(f"Downloaded {name}-logs.zip: 6 logs").wait_for()

    # Retry failed: asks, then re-runs exactly 2, 4 and 5; their rows turn to attempt 2.
    view.get_by_role("button", name="Retry failed (3)").click()
    view.get_by_text("Re-run the 3 failed replicas?").wait_for()
    view.get_by_role("button", name="Retry", exact=True).click()
    view.get_by_text("Re-running 3 failed replicas: 2, 4, 5.").wait_for()
    view.get_by_text("All 6 finished").wait_for(timeout=90_000)
    row(view, f"{name}-5").filter(has_text="Completed").wait_for(timeout=90_000)
    for n in range(1, 7):
        cells = row(view, f"{name}-{n}").get_by_role("cell")
        assert cells.nth(2).inner_text() == "Completed"
        assert cells.nth(3).inner_text() == ("2" if n in (2, 4, 5) else "1")
    # What it said went once the re-runs ended; the group is gone, Retry says why it is off.
    view.get_by_text("Re-running 3 failed replicas").wait_for(state="detached")
    assert view.get_by_role("button", name="Retry failed (0)").is_disabled()
    view.get_by_text("Nothing failed, so nothing to retry.").wait_for()
    pictures(page, view, "batch-view-done")

    try:
        set_theme(page, "JupyterLab Dark")
        view.scroll_into_view_if_needed()
        screenshot(view, "batch-view-dark")
    finally:
        set_theme(page, "JupyterLab Light")
    page.set_viewport_size({"width": 1280, "height": 1100})
    screenshot(view, "batch-view-light")

    # Delete batch: asks, deletes, says so; the record stays.
    view.get_by_role("button", name="Delete batch").click()
    view.get_by_role("button", name="Delete", exact=True).click()
    view.get_by_text(f"Deleted 6 sessions of batch {name}").wait_for()
    assert view.get_by_role("button", name="Delete batch").is_disabled()


def test_batch_view_in_notebook_7(nb7_page, notebook7, notebook, tmp_path):
    page = nb7_page
    name = f"nbscan{secrets.token_hex(2)}"
    nb7_open_and_run(
        page, notebook7, notebook(setup_cell(name, str(tmp_path), replicas=5, sleep=0.5), "batch")
    )
    view = view_of(page, name)
    view.get_by_text("All 5 finished").wait_for(timeout=90_000)
    assert row(view, f"{name}-2").get_by_role("cell").first.inner_text() == "2"
    view.get_by_role("button", name="3 × ValueError: bad frame in field-017.fits").wait_for()
    # No permission granted in this context: Notify me says alerts show in the widget...
    view.get_by_role("button", name="Notify me").click()
    view.get_by_role("button", name="Notifications on").wait_for()
    view.get_by_text("alerts show here").wait_for()
    view.get_by_role("button", name="Retry failed (3)").click()
    view.get_by_role("button", name="Retry", exact=True).click()
    view.get_by_text("Re-running 3 failed replicas: 2, 4, 5.").wait_for()
    row(view, f"{name}-4").filter(has_text="Completed").wait_for(timeout=90_000)
    row(view, f"{name}-5").filter(has_text="Completed").wait_for(timeout=90_000)
    assert row(view, f"{name}-4").get_by_role("cell").nth(3).inner_text() == "2"
    # ...and the re-run batch's finish shows there, once, as an alert.
    inbox = view.locator(".cw-notify-inbox")
    inbox.filter(has_text=f"Batch {name} finished").wait_for(timeout=60_000)
    assert "5 Completed" in inbox.inner_text()
    page.set_viewport_size({"width": 1280, "height": 1000})
    screenshot(view, "nb7-batch-view")
