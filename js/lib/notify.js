// "Notify me": a control any widget mounts, and the alerts it delivers.
//
// Why one helper: BatchView, SessionTable and the Dashboard all offer the same choice, and
// the rules are the browser's, not the widget's: permission may only be asked from a click
// (a user gesture); it may be refused, or absent (VS Code's webviews, nbclient, an http page).
// The choice is a synced Bool trait of the widget (default "notify"), so it is remembered
// with the notebook. When the choice is on and the browser allows, an alert is a browser
// notification; otherwise it shows inside the widget (role=alert). While the tab is in the
// background, its title carries a badge ("(2) ...") until the tab is seen again.
//
//   const notifier = createNotifier(model, { what: "this batch" });
//   toolbar.append(notifier.el);
//   notifier.alert({ title: "Batch scan finished", body: "8 Completed, 4 Failed", tag: "scan" });
//   cleanup: notifier.cleanup();
//
// Interactive sessions: trackSessions(notifier) returns update(rows) to call with the rows a
// table holds; it alerts when a session becomes Running and one hour before one expires.

import { h, listen } from "./dom.js";

const HOUR = 3600;

// Whether this page can show browser notifications at all.
export function notificationsAvailable(win = globalThis) {
  return typeof win.Notification === "function" && win.isSecureContext !== false;
}

// Tab-title badge shared by every widget of the page: one count, cleared when seen.
const badge = { count: 0, base: null, bound: false };
function bumpBadge() {
  if (typeof document === "undefined" || !document.hidden) return;
  if (badge.base === null) badge.base = document.title;
  badge.count += 1;
  document.title = `(${badge.count}) ${badge.base}`;
  if (!badge.bound) {
    badge.bound = true;
    document.addEventListener("visibilitychange", () => {
      if (document.hidden || badge.base === null) return;
      document.title = badge.base;
      badge.base = null;
      badge.count = 0;
    });
  }
}

export function createNotifier(model, { trait = "notify", what = "this widget" } = {}) {
  const button = h("button", { type: "button", class: "cw-notify-button", "aria-pressed": "false" });
  const note = h("span", { class: "cw-notify-note cw-muted", role: "status", "aria-live": "polite" });
  const inbox = h("div", { class: "cw-notify-inbox", role: "alert" });
  const el = h("span", { class: "cw-notify" }, button, note);

  const permission = () => (notificationsAvailable() ? globalThis.Notification.permission : "unavailable");
  const explain = () => {
    const on = !!model.get(trait);
    const state = permission();
    if (!on) return "";
    if (state === "granted") return "";
    if (state === "denied") return "Browser notifications are blocked for this page: alerts show here.";
    if (state === "unavailable") return "This page cannot show browser notifications: alerts show here.";
    return "The browser has not allowed notifications: alerts show here.";
  };
  const draw = () => {
    const on = !!model.get(trait);
    button.textContent = on ? "Notifications on" : "Notify me";
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.title = on ? `Stop alerts for ${what}` : `Alert me about ${what} (asks the browser first)`;
    note.textContent = explain();
  };

  button.addEventListener("click", async () => {
    if (model.get(trait)) {
      model.set(trait, false);
      model.save_changes();
      return;
    }
    // Asked here, inside the click: browsers refuse a request that no gesture started.
    if (notificationsAvailable() && globalThis.Notification.permission === "default") {
      try {
        await globalThis.Notification.requestPermission();
      } catch (err) {
        // Old Safari takes a callback and returns undefined: the permission is read below.
      }
    }
    model.set(trait, true);
    model.save_changes();
    draw();
  });

  const shown = new Set(); // tags already announced in this view (two polls, one alert)
  const alert = ({ title, body = "", tag = "" }) => {
    if (!model.get(trait)) return false;
    if (tag && shown.has(`${tag}\n${title}\n${body}`)) return false;
    if (tag) shown.add(`${tag}\n${title}\n${body}`);
    bumpBadge();
    if (permission() === "granted") {
      try {
        new globalThis.Notification(title, { body, tag: tag || undefined });
        return true;
      } catch (err) {
        // Some browsers only allow notifications from a service worker: fall through.
      }
    }
    inbox.replaceChildren(
      h("strong", {}, title), body ? ` ${body}` : "",
      h("button", { type: "button", class: "cw-notify-dismiss", "aria-label": "Dismiss alert", onclick: () => inbox.replaceChildren() }, "×"));
    return true;
  };

  draw();
  const stop = listen(model, [trait], draw);
  return { el, inbox, alert, cleanup: stop };
}

// Alerts for interactive sessions from a table's rows ({id, name, kind, status, expiry}):
// one when a session becomes Running (the first call only learns the states: what was
// already so is not news), one when it has an hour or less left. Call it after each change
// and on a timer (time passes without a row changing).
export function trackSessions(notifier, { now = () => Date.now() / 1000 } = {}) {
  const states = new Map();
  const warned = new Set();
  let primed = false;
  return (rows) => {
    for (const row of rows) {
      if (!row || row.kind === "headless") continue;
      const before = states.get(row.id);
      states.set(row.id, row.status);
      const label = row.name || row.id;
      if (primed && before && before !== "Running" && row.status === "Running") {
        notifier.alert({ title: `Session ${label} is running`, body: "It is ready to connect.", tag: `run-${row.id}` });
      }
      const left = Number.isFinite(row.expiry) ? row.expiry - now() : Infinity;
      if (row.status === "Running" && left > 0 && left <= HOUR && !warned.has(row.id)) {
        warned.add(row.id);
        notifier.alert({ title: `Session ${label} expires in ${Math.ceil(left / 60)} min`, body: "Renew it to keep it.", tag: `expiry-${row.id}` });
      } else if (left > HOUR) {
        warned.delete(row.id); // renewed: warn again next time
      }
    }
    primed = true;
  };
}
