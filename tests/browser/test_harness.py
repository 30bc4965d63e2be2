"""The harness itself: JupyterLab + Chromium + a kernel with the platform's environment.

If this fails, the problem is the test machinery (server, browser, kernel, widget
manager), not a canfar widget.
"""

from __future__ import annotations

from jlab import open_and_run

WIDGET = '''
import os
import anywidget
import traitlets

class Probe(anywidget.AnyWidget):
    _esm = """
    export default { render({ model, el }) {
      const button = document.createElement("button");
      button.textContent = "Press";
      const out = document.createElement("output");
      out.setAttribute("aria-label", "Presses");
      const show = () => { out.textContent = `kernel saw ${model.get("seen")}`; };
      button.addEventListener("click", () => {
        model.set("presses", model.get("presses") + 1);
        model.save_changes();
      });
      model.on("change:seen", show);
      show();
      el.append(button, out);
    } };
    """
    presses = traitlets.Int(0).tag(sync=True)
    seen = traitlets.Int(0).tag(sync=True)

    @traitlets.observe("presses")
    def _echo(self, change):
        self.seen = change["new"]

probe = Probe()
print("platform in env:", os.environ["CANFAR_URL"] == PLATFORM_URL)
probe
'''


def test_anywidget_round_trip(page, lab, platform, notebook):
    name = notebook(f"PLATFORM_URL = {platform.url!r}", WIDGET)
    open_and_run(page, lab, name)
    page.get_by_text("platform in env: True").wait_for()
    page.get_by_role("button", name="Press").click()
    # The click went to the kernel and the kernel's answer came back to the page.
    page.get_by_label("Presses").filter(has_text="kernel saw 1").wait_for()
