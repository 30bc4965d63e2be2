"""Real-browser tests: one LocalPlatform and one JupyterLab server per session, Chromium per module.

- The platform runs in this process; JupyterLab is a subprocess whose environment has
  ``CANFAR_URL``/``CANFAR_TOKEN`` for it, which every kernel inherits.
- Each test writes its own notebook (:func:`notebook`), so no two tests share a kernel,
  and gets a fresh browser context; its kernels are shut down afterwards.
- Chromium is Debian's ``/usr/bin/chromium`` (Playwright cannot download browsers here).
  Without it the tests skip, except under CI (``CI=true``), where they fail.

Screenshots go to ``artifacts/screenshots/`` at the repository root (git-ignored);
``tests/browser/docs_images.py`` copies the chosen ones into ``docs/img/``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jlab import SCREENSHOTS, TIMEOUT_MS, shutdown_kernels

from canfar_widgets.demo import JupyterLab, platform_env

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {CHROMIUM} is missing: install it (apt-get install chromium)")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")


@pytest.fixture(scope="session")
def platform() -> Iterator[Any]:
    from canfar_widgets.local import LocalPlatform

    # A short start delay so Pending -> Running is seen, but tests stay quick.
    with LocalPlatform(start_delay=0.5) as running:
        yield running


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lab-root")


@pytest.fixture(scope="session")
def lab(platform: Any, lab_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    _require_chromium()
    log = tmp_path_factory.mktemp("lab-log") / "jupyterlab.log"
    server = JupyterLab(lab_root, env=platform_env(platform.url, platform.token), log_path=log)
    with server:
        yield server


# Per module, not per session: while Playwright's sync API is started, the main thread
# counts as running an asyncio loop, which would break every later (non-browser) test
# that calls asyncio.run() or a Runner.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser: Any, lab: JupyterLab, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    if request.node.stash.get(_FAILED, False):
        # What the page looked like when the test failed, for the person reading CI logs.
        path = SCREENSHOTS / "failures" / f"{request.node.name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        print(f"failure screenshot: {path}")
    context.close()
    shutdown_kernels(lab)


@pytest.fixture
def notebook(lab_root: Path, request: pytest.FixtureRequest) -> Callable[..., str]:
    """Write a notebook of code cells into the lab root; returns its name (unique per test)."""

    def write(*cells: str, name: str | None = None) -> str:
        name = name or request.node.name.replace("[", "-").replace("]", "") + ".ipynb"
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {
            "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python",
        }
        nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        nbformat.write(nb, lab_root / name)
        return name

    return write


