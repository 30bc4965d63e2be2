// BatchWatch view: a batch's progress. A stacked bar (role=progressbar, finished of
// total), counts by state in words and colour, elapsed time, and the sessions by state.

import { h, listen, reportVisibility, statusParts, bindStatus } from "./lib/dom.js";
import { kernelActions } from "./lib/busy.js";
import { duration } from "./lib/format.js";
import { VOCABULARY } from "./lib/vocabulary.js";

// "missing" is this widget's word for a session the platform no longer knows: it counts as
// finished. Finished first, then the rest from the latest state back to the first.
const DONE = new Set([...VOCABULARY.finishedStates, VOCABULARY.missing]);
const STATE_ORDER = [...VOCABULARY.finishedStates, VOCABULARY.missing,
  ...[...VOCABULARY.states].reverse().filter((s) => !DONE.has(s))];

function render({ model, el }) {
  const bar = h("div", { class: "cw-bw-bar", role: "progressbar", "aria-valuemin": "0" });
  const barText = h("span", { class: "cw-bw-bartext" });
  const elapsed = h("span", { class: "cw-bw-elapsed cw-muted" });
  const counts = h("ul", { class: "cw-bw-counts", "aria-label": "Sessions by state" });
  const list = h("div", { class: "cw-bw-list" });
  const details = h("details", { class: "cw-bw-details" }, h("summary", {}, "Sessions"), list);
  const refreshButton = h("button", { type: "button" }, "Refresh");
  const { alert, status } = statusParts();
  // The headline and legend already show the counts; the status line only announces them.
  status.classList.add("cw-sr-only");
  const root = h("div", { class: "canfar-w cw-batch", role: "group", "aria-label": "Batch progress" },
    h("div", { class: "cw-bw-head" }, barText, elapsed, refreshButton),
    bar, counts, details, status, alert);
  el.append(root);

  const draw = () => {
    const total = model.get("total") || 0;
    const done = model.get("done") || 0;
    const c = model.get("counts") || {};
    const failed = (c.Failed || 0) + (c.missing || 0);
    const words = `${done} of ${total} finished` + (failed ? ` (${c.Failed || 0} failed, ${c.missing || 0} missing)` : "");
    barText.textContent = model.get("finished") ? `All ${total} finished` + (failed ? ` (${c.Failed || 0} failed, ${c.missing || 0} missing)` : "") : words;
    bar.setAttribute("aria-valuenow", String(done));
    bar.setAttribute("aria-valuemax", String(total));
    bar.setAttribute("aria-valuetext", words);
    // Segments in state order; every state also appears as text in the list below.
    const states = Object.keys(c).sort((a, b) => {
      const ia = STATE_ORDER.indexOf(a);
      const ib = STATE_ORDER.indexOf(b);
      return (ia === -1 ? 99 : ia) - (ib === -1 ? 99 : ib);
    });
    bar.replaceChildren(...states.filter((s) => c[s] > 0 && total > 0).map((s) =>
      h("span", { class: `cw-bw-seg cw-bw-seg-${s}${DONE.has(s) ? " cw-bw-done" : ""}`, style: { width: `${(c[s] / total) * 100}%` }, title: `${s}: ${c[s]}` })));
    counts.replaceChildren(...states.filter((s) => c[s] > 0 || ["Pending", "Running", "Completed", "Failed"].includes(s)).map((s) =>
      h("li", { class: `cw-bw-count` },
        h("span", { class: `cw-bw-swatch cw-bw-seg-${s}`, "aria-hidden": "true" }),
        h("span", { class: `cw-state cw-state-${s}` }, s === "missing" ? "Missing" : s),
        ` ${c[s] || 0}`)));
    const byState = {};
    for (const [id, s] of Object.entries(model.get("states") || {})) (byState[s] ||= []).push(id);
    // Sessions by name and replica number (the id is in the tooltip), in replica order.
    const labels = model.get("labels") || {};
    const order = (id) => (labels[id] && labels[id].replica) || 0;
    const label = (id) => {
      const l = labels[id];
      if (!l || !l.name) return h("code", {}, id);
      return h("span", { class: "cw-bw-session", title: `session ${id}` },
        h("code", {}, l.name), l.replica ? ` (replica ${l.replica})` : "");
    };
    list.replaceChildren(...states.filter((s) => byState[s]).map((s) =>
      h("p", {}, h("span", { class: `cw-state cw-state-${s}` }, `${s === "missing" ? "Missing" : s}: `),
        ...byState[s].sort((a, b) => order(a) - order(b)).flatMap((id, i) => [i ? ", " : "", label(id)]))));
    tick();
  };

  const tick = () => {
    const start = model.get("started_at");
    const end = model.get("finished_at") || Date.now() / 1000;
    elapsed.textContent = start ? `Elapsed ${duration(end - start)}` : "";
  };


  const actions = kernelActions(model); // says "Waiting for the kernel" if the click waits
  refreshButton.addEventListener("click", () => actions.send(refreshButton, { kind: "refresh" }));
  draw();
  const timer = setInterval(tick, 1000);
  const cleanups = [
    reportVisibility(model, root),
    listen(model, ["counts", "states", "labels", "total", "done", "finished", "started_at", "finished_at"], draw),
    bindStatus(model, { alert, status }),
    () => actions.dispose(),
  ];
  return () => {
    clearInterval(timer);
    for (const cleanup of cleanups) cleanup();
  };
}

export default { render };
