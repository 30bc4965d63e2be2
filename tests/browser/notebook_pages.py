"""What a test needs from either front end: JupyterLab 4 ("lab") or Notebook 7 ("nb7").

Both are built from the same JupyterLab components, so a test written against the page
(roles, names, prompts) runs in either; only opening a notebook differs (:mod:`jlab`,
:mod:`nb7`). The user-settings folder is the same layout in both, so settings are written
the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import jlab
import nb7
import pytest


@dataclass(frozen=True)
class FrontEnd:
    """A test's page in one front end, the server behind it, and its tag for file names."""

    tag: str  # "lab" or "nb7"
    server: Any  # canfar_widgets.demo.JupyterLab or JupyterNotebook
    page: Any

    def open_and_run(self, name: str, *, wait: bool = True) -> None:
        """Open notebook ``name`` here and run all its cells (see :func:`jlab.open_and_run`)."""
        opener = jlab.open_and_run if self.tag == "lab" else nb7.open_and_run
        opener(self.page, self.server, name, wait=wait)


def front_end_of(request: pytest.FixtureRequest, tag: str) -> FrontEnd:
    """The ``lab`` + ``page`` fixtures for ``"lab"``, ``notebook7`` + ``nb7_page`` for ``"nb7"``."""
    if tag == "lab":
        return FrontEnd(tag, request.getfixturevalue("lab"), request.getfixturevalue("page"))
    return FrontEnd(tag, request.getfixturevalue("notebook7"), request.getfixturevalue("nb7_page"))


@contextmanager
def user_settings(server: Any, plugin: str, values: dict[str, Any]) -> Iterator[None]:
    """Set ``plugin``'s user settings on ``server`` while the block runs, then put back what was.

    ``plugin`` is the settings id as a path, e.g. ``"@jupyterlab/apputils-extension/kernels-settings"``.
    The page reads them when it loads, so open the notebook inside the block.
    """
    path = server.settings_dir / f"{plugin}.jupyterlab-settings"
    path.parent.mkdir(parents=True, exist_ok=True)
    before = path.read_text(encoding="utf-8") if path.exists() else None
    path.write_text(json.dumps(values), encoding="utf-8")
    try:
        yield
    finally:
        if before is None:
            path.unlink()
        else:
            path.write_text(before, encoding="utf-8")


def comms_over_subshells_disabled(server: Any) -> Any:
    """JupyterLab's ``commsOverSubshells`` off: widget messages wait in the kernel's one queue.

    That is what ipykernel 6, VS Code and the setting turned off give.
    """
    return user_settings(
        server,
        "@jupyterlab/apputils-extension/kernels-settings",
        {"commsOverSubshells": "disabled"},
    )


# -- a batch whose jobs run until the test lets them end --

# Each job waits for the file $RELEASE, so nothing finishes before the test says so.
JOB_HELD_UNTIL_RELEASED = """\
import os, pathlib, sys, time
release = pathlib.Path(os.environ["RELEASE"])
give_up = time.monotonic() + 300  # never outlive a broken test
while not release.exists():
    if time.monotonic() > give_up:
        sys.exit("never released")
    time.sleep(0.1)
print("released")
"""


def held_batch_setup(tmp: str) -> str:
    """Cell code that keeps the batch record in ``tmp`` and writes the held job to ``tmp/job.py``.

    Launch it with ``cmd=sys.executable, args=tmp + "/job.py", env={"RELEASE": tmp + "/release"}``;
    writing ``tmp/release`` then lets every job end.
    """
    return (
        "import os, pathlib, sys\n"
        f'os.environ["CANFAR_WIDGETS_BATCH_DB"] = {tmp!r} + "/batches.sqlite"\n'
        f"pathlib.Path({tmp!r}, 'job.py').write_text({JOB_HELD_UNTIL_RELEASED!r})\n"
    )
