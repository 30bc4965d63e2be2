// EventsView view: one <table> per session (Type, Reason, Message, First seen, Last
// seen). Warning rows carry the word "Warning" with a marker and a class, never colour only.

import { h, listen, statusParts, uid } from "./lib/dom.js";
import { kernelActions } from "./lib/busy.js";
import { absoluteTime, relativeTime } from "./lib/format.js";

const COLUMNS = ["Type", "Reason", "Message", "First seen", "Last seen"];

function timeCell(epoch) {
  if (epoch === null || epoch === undefined) return h("td", { class: "cw-muted" }, "–");
  return h("td", { title: absoluteTime(epoch) },
    h("time", { datetime: new Date(epoch * 1000).toISOString() }, relativeTime(epoch)));
}

function eventRow(row) {
  const warning = String(row.type || "").toLowerCase() === "warning";
  const type = warning
    ? h("td", { class: "cw-ev-type" }, h("span", { class: "cw-ev-icon", "aria-hidden": "true" }, "⚠ "), h("strong", {}, "Warning"))
    : h("td", { class: "cw-ev-type" }, row.type || "–");
  return h("tr", { class: warning ? "cw-ev-warning" : null },
    type,
    h("td", { class: "cw-ev-reason" }, row.reason || "–"),
    h("td", { class: "cw-ev-message" }, row.message || ""),
    timeCell(row.first_time),
    timeCell(row.last_time));
}

// The heading names the session as people know it ("multi2-1"); the id is on hover and
// in the accessible description, not instead of the name (issue 15, item 15).
function sessionTable(id, name, rows, problem, headingId, empty) {
  const warnings = rows.filter((r) => String(r.type || "").toLowerCase() === "warning").length;
  const title = name && name !== id
    ? h("span", { class: "cw-ev-name", title: `id ${id}` }, name, h("span", { class: "cw-sr-only" }, ` (id ${id})`))
    : h("span", { class: "cw-mono", title: `id ${id}` }, id);
  const caption = h("caption", { id: headingId },
    "Events of ", title,
    ` · ${rows.length} event${rows.length === 1 ? "" : "s"}`,
    warnings ? h("span", { class: "cw-ev-count-warning" }, ` · ${warnings} warning${warnings === 1 ? "" : "s"}`) : null);
  const body = h("tbody", {});
  if (rows.length === 0) {
    body.append(h("tr", {}, h("td", { colspan: "5", class: problem ? "cw-ev-problem" : "cw-muted" },
      problem || empty)));
  }
  for (const row of rows) body.append(eventRow(row));
  return h("section", { class: "cw-ev-session", "aria-labelledby": headingId },
    h("table", { class: "cw-ev-table" },
      caption,
      h("thead", {}, h("tr", {}, ...COLUMNS.map((c) => h("th", { scope: "col" }, c)))),
      body));
}

function render({ model, el }) {
  const base = uid("cw-ev");
  const refreshButton = h("button", { type: "button", "aria-label": "Refresh events" }, "Refresh");
  const tables = h("div", { class: "cw-ev-tables" });
  const { alert, status } = statusParts();
  const root = h("div", { class: "canfar-w cw-events" },
    h("div", { class: "cw-ev-toolbar" }, refreshButton, status),
    alert, tables);
  el.append(root);

  const draw = () => {
    const events = model.get("events") || {};
    const problems = model.get("problems") || {};
    const ids = model.get("ids") || [];
    const names = model.get("names") || {};
    tables.replaceChildren(...ids.map((id, i) =>
      sessionTable(id, names[id], events[id] || [], problems[id], `${base}-t${i}`,
        id in events ? "No events (the platform keeps them for about an hour)."
          : model.get("busy") ? "Loading events…" : "Not loaded.")));
  };
  const showStatus = () => {
    status.textContent = model.get("busy") ? "Fetching events..." : model.get("status") || "";
    alert.textContent = model.get("error") || "";
    refreshButton.disabled = Boolean(model.get("busy"));
  };
  const actions = kernelActions(model); // says "Waiting for the kernel" if the click waits
  refreshButton.addEventListener("click", () => actions.send(refreshButton, { kind: "refresh" }));

  draw();
  showStatus();
  // Relative times ("5 min ago") age while the view is open.
  const timer = setInterval(draw, 30000);
  const cleanups = [
    () => actions.dispose(),
    listen(model, ["events", "problems", "ids", "names", "busy"], draw),
    listen(model, ["status", "error", "busy"], showStatus),
  ];
  return () => {
    clearInterval(timer);
    for (const cleanup of cleanups) cleanup();
  };
}

export default { render };
