"""Helpers the browser tests call: open and run a notebook, theme, screenshots, contrast."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from canfar_widgets.demo import JupyterLab

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
# Playwright's default per-action/expect timeout (ms); kernels start in ~2 s here.
TIMEOUT_MS = 30_000


def open_and_run(page: Any, lab: JupyterLab, name: str, *, wait: bool = True) -> None:
    """Open notebook ``name``, wait for an idle kernel, run all cells (and wait for them).

    ``?reset`` starts from an empty workspace, so tabs of earlier tests are not restored
    (each would start a kernel). With ``wait``, returns once every cell has run and fails
    with the traceback if one raised.
    """
    page.goto(lab.url(f"lab/tree/{name}?reset"))
    page.locator(".jp-NotebookPanel").first.wait_for()
    wait_kernel_idle(page)
    run_all_cells(page, name)
    if wait:
        wait_for_all_cells(page, name)


# The input prompts of the notebook on show: "[ ]:" before a run, "[*]:" queued or running,
# "[3]:" done. Notebook 7 draws the same prompts (it is built from JupyterLab's components).
PROMPTS_JS = """() => [...document.querySelectorAll(
  '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim())"""
_STARTED_JS = f"() => {{ const p = ({PROMPTS_JS})(); return p.length > 0 && p[0] !== '[ ]:'; }}"
_DONE_JS = f"() => {{ const p = ({PROMPTS_JS})(); return p.length > 0 && p.every(t => /^\\[\\d+\\]:$/.test(t)); }}"
_TRACEBACK_JS = """() => [...document.querySelectorAll(
  '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
  .map(e => e.textContent).filter(t => /Traceback|Error:/.test(t)).join("\\n").slice(0, 3000)"""


def run_all_cells(page: Any, name: str) -> None:
    """Click Run > Run All Cells on the open notebook ``name``; returns once the run has started.

    A click that lands while the page is still wiring its menus does nothing, so it is
    tried up to three times. Example: ``run_all_cells(page, "scan.ipynb")``.
    """
    for _attempt in range(3):
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:  # the first prompt turns from [ ] to [*] or [1] once the run has started
            page.wait_for_function(_STARTED_JS, timeout=5_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"Run All Cells did not start {name}")


def wait_for_all_cells(page: Any, name: str, timeout_ms: float = 90_000) -> None:
    """Wait until every cell of ``name`` has run; fail with the traceback if one raised."""
    page.wait_for_function(_DONE_JS, timeout=timeout_ms)
    failure = page.evaluate(_TRACEBACK_JS)
    if failure:
        raise AssertionError(f"a cell of {name} raised:\n{failure}")


def cell_prompts(page: Any) -> list[str]:
    """The input prompts of the notebook on show, e.g. ``["[1]:", "[*]:"]``."""
    return page.evaluate(PROMPTS_JS)


def wait_for_prompt(page: Any, index: int, prompt: str) -> None:
    """Wait until cell ``index`` (from 0) shows ``prompt``, e.g. ``"[*]:"`` (queued or running)."""
    page.wait_for_function(f"([i, want]) => ({PROMPTS_JS})()[i] === want", arg=[index, prompt])


def wait_kernel_idle(page: Any, timeout_ms: float = 60_000) -> None:
    """The status bar says ``| Idle`` once the kernel has started and is not busy."""
    page.locator("#jp-main-statusbar").get_by_text("| Idle").wait_for(timeout=timeout_ms)


def toggle_left_sidebar(page: Any) -> None:
    """Collapse (or expand) the left sidebar by clicking its current tab, for wider widgets."""
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()


def set_theme(page: Any, theme: str) -> None:
    """Switch JupyterLab's theme from the Settings menu, as a person would."""
    page.get_by_role("menuitem", name="Settings", exact=True).click()
    # Submenu entries have no role, and a theme's role flips to menuitemcheckbox once chosen.
    page.locator(".lm-Menu-item[data-type='submenu']").filter(
        has=page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Theme$"))
    ).click()
    page.locator(".lm-Menu-item[data-command='apputils:change-theme']").filter(
        has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(theme)}$"))
    ).click()
    light = "false" if "Dark" in theme else "true"
    page.locator(f"body[data-jp-theme-light='{light}']").wait_for(state="attached")
    # The theme CSS swaps in asynchronously after the attribute flips.
    page.wait_for_function(
        "name => document.body.dataset.jpThemeName === name", arg=theme, timeout=TIMEOUT_MS
    )


THEMES = (("JupyterLab Light", "light"), ("JupyterLab Dark", "dark"))
WIDTHS = (900, 1280, 1400)  # px: a narrow notebook, a laptop, a wide screen


def each_theme(page: Any) -> Iterator[str]:
    """Switch to Light, then Dark, yielding ``"light"``/``"dark"``; ends in Light again.

    The server's settings outlive the test, so Light comes back also when the loop's body
    fails (the generator is closed as the failure unwinds). Example:
    ``for shade in each_theme(page): screenshot(widget, f"table-{shade}")``.
    """
    try:
        for theme, shade in THEMES:
            set_theme(page, theme)
            yield shade
    finally:
        set_theme(page, "JupyterLab Light")


def screenshot(locator: Any, name: str) -> Path:
    """Save a screenshot of one element into artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    locator.screenshot(path=str(path), animations="disabled")
    return path


# getComputedStyle colours, with the effective background found by walking up the tree.
# A 1x1 canvas turns any CSS colour syntax (rgb(), color(srgb ...), oklch()...) into RGBA.
_CONTRAST_JS = """
el => {
  const ctx = document.createElement("canvas").getContext("2d", {willReadFrequently: true});
  const rgba = css => {
    ctx.clearRect(0, 0, 1, 1);
    ctx.fillStyle = "#000";
    ctx.fillStyle = css;
    ctx.fillRect(0, 0, 1, 1);
    const [r, g, b, a] = ctx.getImageData(0, 0, 1, 1).data;
    return {r, g, b, a: a / 255};
  };
  const over = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a),
    g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a), a: 1});
  const layers = [];
  for (let node = el; node; node = node.parentElement) {
    const bg = rgba(getComputedStyle(node).backgroundColor);
    if (bg.a > 0) { layers.push(bg); if (bg.a >= 1) break; }
  }
  let bg = {r: 255, g: 255, b: 255, a: 1};
  for (const layer of layers.reverse()) bg = over(layer, bg);
  const fg = over(rgba(getComputedStyle(el).color), bg);
  const lum = c => {
    const ch = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * ch(c.r) + 0.7152 * ch(c.g) + 0.0722 * ch(c.b);
  };
  const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
  const round = c => [c.r, c.g, c.b].map(Math.round);
  return {ratio: (hi + 0.05) / (lo + 0.05), fg: round(fg), bg: round(bg),
          text: el.textContent.trim().slice(0, 40)};
}
"""


def contrast(locator: Any) -> dict[str, Any]:
    """WCAG contrast of an element's text colour against its effective background."""
    return locator.evaluate(_CONTRAST_JS)


def low_contrast(page: Any, texts: list[tuple[str, str]], shade: str) -> list[str]:
    """The texts below WCAG AA (4.5) in the page as it is, one line each, for a failure message.

    ``texts`` pairs a description with the selector of the first such element.
    """
    failures = []
    for what, selector in texts:
        found = contrast(page.locator(selector).first)
        # A theme's CSS swaps in after its attribute flips, and a widget may redraw the
        # element meanwhile (CI once read black on black): only a colour that stays counts.
        for _ in range(8):
            if found["ratio"] >= 4.5:
                break
            page.wait_for_timeout(250)
            found = contrast(page.locator(selector).first)
        if found["ratio"] < 4.5:
            failures.append(
                f"{shade}: {what} {found['text']!r} has contrast "
                f"{found['ratio']:.2f} (fg {found['fg']}, bg {found['bg']})"
            )
    return failures


def shutdown_kernels(lab: JupyterLab) -> None:
    """Delete every session on the server (stops its kernel) so tests don't pile them up."""
    headers = {"Authorization": f"token {lab.token}"}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(lab.url("api/sessions", with_token=False), headers=headers),
            timeout=10,
        ) as reply:
            sessions = json.load(reply)
        for item in sessions:
            request = urllib.request.Request(
                lab.url(f"api/sessions/{item['id']}", with_token=False),
                headers=headers,
                method="DELETE",
            )
            with urllib.request.urlopen(request, timeout=10):
                pass
    except OSError:  # the server is going away: nothing left to stop
        return
