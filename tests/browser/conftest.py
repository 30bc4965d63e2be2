"""Real-browser tests: one LocalPlatform and one JupyterLab (and Notebook 7) server per session, Chromium per module.

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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jlab import SCREENSHOTS, TIMEOUT_MS, shutdown_kernels
from notebook_pages import FrontEnd, front_end_of

from canfar_widgets.demo import JupyterLab, JupyterNotebook, platform_env

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


@contextmanager
def jupyter_server(
    kind: Any, platform: Any, lab_root: Path, tmp_path_factory: pytest.TempPathFactory, log: str
) -> Iterator[Any]:
    """A running ``kind`` (JupyterLab or JupyterNotebook) serving ``lab_root``, its kernels
    pointed at ``platform``; its output goes to ``<tmp>/<log>-log/<log>.log``."""
    _require_chromium()
    log_path = tmp_path_factory.mktemp(f"{log}-log") / f"{log}.log"
    with kind(
        lab_root, env=platform_env(platform.url, platform.token), log_path=log_path
    ) as server:
        yield server


@pytest.fixture(scope="session")
def lab(
    platform: Any, lab_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JupyterLab]:
    with jupyter_server(JupyterLab, platform, lab_root, tmp_path_factory, "jupyterlab") as server:
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


@contextmanager
def fresh_page(
    browser: Any, server: Any, request: pytest.FixtureRequest, **context_options: Any
) -> Iterator[Any]:
    """A page in a new browser context (1280x900 unless ``viewport`` says otherwise).

    Afterwards: a screenshot if the test failed, the context closed, and the server's
    kernels shut down. ``context_options`` go to ``browser.new_context``.
    """
    context = browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **context_options})
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
    shutdown_kernels(server)


@pytest.fixture
def page(browser: Any, lab: JupyterLab, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser page for JupyterLab."""
    with fresh_page(browser, lab, request) as page:
        yield page


@pytest.fixture
def notebook(lab_root: Path, request: pytest.FixtureRequest) -> Callable[..., str]:
    """Write a notebook of code cells into the lab root; returns its name (unique per test)."""

    def write(*cells: str, name: str | None = None) -> str:
        name = name or request.node.name.replace("[", "-").replace("]", "") + ".ipynb"
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
        }
        nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        nbformat.write(nb, lab_root / name)
        return name

    return write


# -- Notebook 7, beside JupyterLab: same platform, same folder (so `notebook` serves both) --


@pytest.fixture(scope="session")
def notebook7(
    platform: Any, lab_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JupyterNotebook]:
    with jupyter_server(
        JupyterNotebook, platform, lab_root, tmp_path_factory, "notebook7"
    ) as server:
        yield server


@pytest.fixture
def nb7_page(
    browser: Any, notebook7: JupyterNotebook, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """A fresh browser page for Notebook 7 (like ``page`` for JupyterLab)."""
    with fresh_page(browser, notebook7, request) as page:
        yield page


# -- what many test modules share --


@pytest.fixture(params=["lab", "nb7"])
def front_end(request: pytest.FixtureRequest) -> FrontEnd:
    """The test runs twice: in JupyterLab 4 (``[lab]``) and in Notebook 7 (``[nb7]``)."""
    return front_end_of(request, request.param)


@pytest.fixture
def no_sessions_left(platform: Any) -> Iterator[None]:
    """After the test, none of the user's sessions is left active (so the next test starts clean).

    Opt-in per module: ``pytestmark = pytest.mark.usefixtures("no_sessions_left")``.
    """
    yield
    client = platform.session()
    try:
        ids = [item["id"] for item in client.fetch()]
        if ids:
            client.destroy(ids)
    finally:
        client.close()
