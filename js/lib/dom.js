// DOM helpers shared by every widget view: an element builder, unique ids for
// <label for>, keyboard isolation for inputs, and visibility reporting for polling.
// The only module in js/lib that touches the DOM; everything here is small on purpose.

// Build an element: h("button", {class: "cw-primary", onclick: fn, "aria-label": "x"}, "Text").
// Attributes: "class", "text" (textContent), "on<event>" (listener), boolean true -> "",
// false/null/undefined -> omitted, "dataset" (object), "style" (object or string).
// Children: nodes, strings (text nodes, never HTML), arrays, null (skipped).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key === "style" && typeof value === "object") Object.assign(el.style, value);
      else if (key.startsWith("on") && typeof value === "function") {
        el.addEventListener(key.slice(2), value);
      } else if (key in PROPS) el[key] = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

// Properties set as properties (not attributes) so they reflect live state.
const PROPS = { value: 1, checked: 1, disabled: 1, selected: 1, indeterminate: 1, hidden: 1 };

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

// Ids unique in the page, so two views of one widget never share a <label for>.
let counter = 0;
export function uid(prefix = "cw") {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}`;
}

// A visually hidden <label for=...> (announced by screen readers).
export function srLabel(forId, text) {
  return h("label", { for: forId, class: "cw-sr-only" }, text);
}

// Keys typed into a text field must not trigger notebook shortcuts (in JupyterLab,
// "a"/"b"/"d d" on a cell; in VS Code, its keymap). Stop keydown from leaving inputs,
// and mark inputs for Lumino's own suppression too.
const TEXT_TAGS = new Set(["INPUT", "TEXTAREA", "SELECT"]);
export function isolateKeys(root) {
  const stop = (event) => {
    const target = event.target;
    if (target && (TEXT_TAGS.has(target.tagName) || target.isContentEditable)) {
      event.stopPropagation();
    }
  };
  root.addEventListener("keydown", stop);
  root.addEventListener("keypress", stop);
  for (const input of root.querySelectorAll("input, textarea, select")) {
    input.setAttribute("data-lm-suppress-shortcuts", "true");
  }
  return () => {
    root.removeEventListener("keydown", stop);
    root.removeEventListener("keypress", stop);
  };
}

// Tell Python whether this view is on screen, so polling pauses while nobody looks.
// Sends {kind: "visibility", visible, view} on every change (IntersectionObserver +
// document.visibilitychange); the returned cleanup sends visible: false.
export function reportVisibility(model, el, view = uid("view")) {
  let intersecting = typeof IntersectionObserver === "undefined";
  let last = null;
  const send = () => {
    const visible = intersecting && !(typeof document !== "undefined" && document.hidden);
    if (visible === last) return;
    last = visible;
    try {
      model.send({ kind: "visibility", visible, view });
    } catch (err) {
      // The comm may already be closed while the page tears down.
    }
  };
  let observer = null;
  if (!intersecting) {
    observer = new IntersectionObserver((entries) => {
      for (const entry of entries) intersecting = entry.isIntersecting;
      send();
    });
    observer.observe(el);
  } else {
    send();
  }
  const onVisibility = () => send();
  document.addEventListener("visibilitychange", onVisibility);
  return () => {
    document.removeEventListener("visibilitychange", onVisibility);
    if (observer) observer.disconnect();
    intersecting = false;
    send();
  };
}

// Run fn after `ms` of quiet (typing in a search box).
export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

// Listen to model trait changes; returns a cleanup that removes every listener.
export function listen(model, names, callback) {
  const events = names.map((n) => (n.startsWith("msg:") ? n : `change:${n}`));
  for (const ev of events) model.on(ev, callback);
  return () => {
    for (const ev of events) model.off(ev, callback);
  };
}

// The alert (role=alert) and status (role=status, aria-live=polite) lines every widget has.
export function statusParts() {
  const alert = h("div", { class: "cw-alert", role: "alert" });
  const status = h("div", { class: "cw-status-line", role: "status", "aria-live": "polite" });
  return { alert, status };
}

// Keep the alert and status lines in step with the model's `error` and `status` traits;
// returns a cleanup. Views with extra status logic (busy text, pending launches) bind their own.
export function bindStatus(model, { alert, status }) {
  const show = () => {
    status.textContent = model.get("status") || "";
    alert.textContent = model.get("error") || "";
  };
  show();
  return listen(model, ["status", "error"], show);
}
