// Dashboard frame: the one login banner of a Dashboard, its regions' names, and focus
// activity. It renders as the dashboard's first child and works on its container
// (`.cw-dashboard`): each part (form, load, table) becomes a named region, and while the
// platform refuses the login the parts' own copies of that message are hidden (CSS), so
// a person reads it once, with what to do.

import { h, listen } from "./lib/dom.js";
import { kernelActions } from "./lib/busy.js";

// "Run `canfar auth login`, then" -> text and <code> nodes (backticks mark commands).
function withCode(text) {
  return String(text).split("`").map((part, i) => (i % 2 ? h("code", {}, part) : part));
}

function render({ model, el }) {
  const message = h("span", { class: "cw-dash-message" });
  const detail = h("span", { class: "cw-dash-detail cw-muted" });
  const refreshButton = h("button", { type: "button", "aria-label": "Refresh after login" }, "Refresh");
  const banner = h("div", { class: "cw-dash-banner", role: "alert", hidden: true }, message, refreshButton, detail);
  const root = h("div", { class: "canfar-w cw-dash-frame" }, banner);
  el.append(root);

  const container = () => el.closest(".cw-dashboard");

  // Name the parts as regions, now and as their views appear (they render after this one).
  const label = () => {
    const box = container();
    if (!box) return;
    for (const [cls, name] of Object.entries(model.get("regions") || {})) {
      for (const part of box.querySelectorAll(`.${cls}`)) {
        if (part.getAttribute("aria-label") !== name) {
          part.setAttribute("role", "region");
          part.setAttribute("aria-label", name);
        }
        // The name on screen too, above a part that shows no title of its own (the load
        // does): without it the table's filters read as part of the load above them.
        // Only once the part's view has rendered, so its own title can be seen.
        const rendered = part.querySelector(".canfar-w");
        if (rendered && !part.querySelector(".cw-part-title, :scope > .cw-dash-title")) {
          part.prepend(h("div", { class: "cw-dash-title", "aria-hidden": "true" }, name));
        }
      }
    }
  };
  let observer = null;
  const watch = () => {
    const box = container();
    if (!box || observer || typeof MutationObserver === "undefined") return;
    observer = new MutationObserver(label);
    observer.observe(box, { childList: true, subtree: true });
    label();
  };

  const draw = () => {
    const text = model.get("login_error") || "";
    banner.hidden = !text;
    message.replaceChildren(...withCode(text));
    detail.textContent = text && model.get("login_detail") ? ` (${model.get("login_detail")})` : "";
    const box = container();
    if (box) box.classList.toggle("cw-login-refused", Boolean(text));
  };

  const actions = kernelActions(model); // says "Waiting for the kernel" if the click waits
  refreshButton.addEventListener("click", () => actions.send(refreshButton, { kind: "refresh" }));
  // The person is back (window focus): polls leave their idle interval at once.
  let lastActivity = 0;
  const onFocus = () => {
    const now = Date.now();
    if (now - lastActivity < 2000) return;
    lastActivity = now;
    try {
      model.send({ kind: "activity" });
    } catch (err) {
      // The comm may be closing with the page.
    }
  };
  window.addEventListener("focus", onFocus);

  draw();
  // The container exists once this view is attached: now, or on the next frames.
  watch();
  let tries = 0;
  const retry = setInterval(() => {
    watch();
    draw();
    tries += 1;
    if (observer || tries > 50) clearInterval(retry); // shown outside a dashboard: stop looking
  }, 200);
  const cleanups = [listen(model, ["login_error", "login_detail"], draw), listen(model, ["regions"], label),
    () => actions.dispose()];
  return () => {
    clearInterval(retry);
    window.removeEventListener("focus", onFocus);
    if (observer) observer.disconnect();
    const box = container();
    if (box) box.classList.remove("cw-login-refused");
    for (const cleanup of cleanups) cleanup();
  };
}

export default { render };
