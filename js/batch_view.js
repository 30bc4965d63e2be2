// BatchView view: one batch. Header (name, a bar of counts by state, elapsed, time left),
// the failures grouped by reason (a group filters the table), the actions (Retry failed,
// Download logs, Delete batch: the two that change things ask first), a table with one row
// per replica (Logs and Events open below it), and "Notify me" (lib/notify.js).
//
// Data flow: rows live in a keyed store (lib/patches.js) fed by the `rows` trait (a
// snapshot) and {kind: "patch"} messages, so a poll where 3 of 1,000 replicas changed
// re-draws 3 rows. A running replica's duration is computed here from its start.
// Messages from Python: "patch", "download" (a zip in buffers[0]) and "alert".

import { h, uid, listen, reportVisibility, statusParts, bindStatus } from "./lib/dom.js";
import { duration, absoluteTime } from "./lib/format.js";
import { createStore, applySnapshot, applyPatch, touchedIds } from "./lib/patches.js";
import { createNotifier } from "./lib/notify.js";
import { kernelActions } from "./lib/busy.js";

// Bar and legend order: finished first (solid), then what is still to come (hatched).
const ORDER = ["Completed", "Failed", "Deleted", "Gone", "Terminating", "Running", "Pending", "Launching", "Unknown"];
const ACTIVE = new Set(["Launching", "Unknown", "Pending", "Running", "Terminating"]);
const COLUMNS = ["Replica", "Name", "Status", "Attempt", "Duration", "Reason", "Actions"];

function rowDuration(row, now) {
  if (row.started === null || row.started === undefined) return "";
  const end = row.ended ?? (ACTIVE.has(row.status) ? now : null);
  return end === null ? "" : duration(end - row.started);
}

function render({ model, el }) {
  const view = uid("bv");
  const store = createStore();
  const rowEls = new Map(); // id -> <tr>
  const cleanups = [];
  let confirm = ""; // "retry" | "delete" | "" (this view only)

  // -- skeleton -------------------------------------------------------------------------
  const title = h("h3", { class: "cw-bv-title" });
  const elapsed = h("span", { class: "cw-bv-elapsed cw-muted" });
  const eta = h("span", { class: "cw-bv-eta cw-muted" });
  const refreshButton = h("button", { type: "button" }, "Refresh");
  const notifier = createNotifier(model, { what: "this batch" });
  cleanups.push(notifier.cleanup);
  const bar = h("div", { class: "cw-bv-bar", role: "progressbar", "aria-valuemin": "0" });
  const legend = h("ul", { class: "cw-bv-legend", "aria-label": "Replicas by status" });

  const failText = h("span", { class: "cw-bv-failtext" });
  const groupList = h("ul", { class: "cw-bv-groups" });
  const showAll = h("button", { type: "button", class: "cw-bv-showall", hidden: true }, "Show all replicas");
  const failures = h("section", { class: "cw-bv-failures", "aria-label": "Failures by reason", hidden: true },
    failText, groupList, showAll);

  const retryButton = h("button", { type: "button", class: "cw-primary" }, "Retry failed");
  const retryWhy = h("span", { class: "cw-bv-why cw-muted" });
  const downloadButton = h("button", { type: "button" }, "Download logs");
  const deleteButton = h("button", { type: "button", class: "cw-danger" }, "Delete batch");
  const question = h("span", { class: "cw-confirm-text" });
  const yes = h("button", { type: "button", class: "cw-danger" }, "Confirm");
  const no = h("button", { type: "button" }, "Cancel");
  const confirmBox = h("span", { class: "cw-confirm", hidden: true }, question, yes, no);
  const actions = h("div", { class: "cw-bv-actions" }, retryButton, downloadButton, deleteButton, confirmBox, retryWhy,
    h("span", { class: "cw-spacer" }), notifier.el, refreshButton);

  const messageText = h("span", {});
  const dismiss = h("button", { type: "button", class: "cw-bv-dismiss", "aria-label": "Dismiss message" }, "×");
  const message = h("div", { class: "cw-bv-message", role: "status", "aria-live": "polite", hidden: true }, messageText, dismiss);

  const caption = h("caption", { class: "cw-sr-only" });
  const tbody = h("tbody", {});
  const table = h("table", { class: "cw-bv-table" }, caption,
    h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", { scope: "col", class: `cw-bv-col-${c.toLowerCase()}` }, c)))),
    tbody);
  const scroller = h("div", { class: "cw-bv-scroll", tabindex: "0", role: "region", "aria-label": "Replicas" }, table);
  const empty = h("p", { class: "cw-muted cw-bv-empty", hidden: true });

  const detailHead = h("h4", { class: "cw-bv-detail-title" });
  const detailReload = h("button", { type: "button" }, "Reload");
  const detailClose = h("button", { type: "button", "aria-label": "Close" }, "Close");
  const detailText = h("pre", { class: "cw-bv-detail-text", tabindex: "0" });
  const detail = h("section", { class: "cw-bv-detail", hidden: true },
    h("div", { class: "cw-bv-detail-head" }, detailHead, detailReload, detailClose), detailText);

  const { alert, status } = statusParts();
  status.classList.add("cw-sr-only");
  const root = h("div", { class: "canfar-w cw-bv", role: "group" },
    h("div", { class: "cw-bv-head" }, title, elapsed, eta),
    bar, legend, notifier.inbox, failures, actions, message, scroller, empty, detail, status, alert);
  el.append(root);

  // -- header --------------------------------------------------------------------------
  const drawHead = () => {
    const total = model.get("total") || 0;
    const done = model.get("done") || 0;
    const counts = model.get("counts") || {};
    const name = model.get("name") || "";
    title.textContent = `Batch ${name}`;
    root.setAttribute("aria-label", `Batch ${name}`);
    caption.textContent = `Replicas of batch ${name}`;
    const words = model.get("finished") ? `All ${total} finished` : `${done} of ${total} finished`;
    bar.setAttribute("aria-valuenow", String(done));
    bar.setAttribute("aria-valuemax", String(total));
    bar.setAttribute("aria-valuetext", words);
    const states = Object.keys(counts).sort((a, b) => rank(a) - rank(b));
    bar.replaceChildren(...states.filter((s) => counts[s] > 0 && total > 0).map((s) =>
      h("span", { class: `cw-bv-seg cw-bv-seg-${s}${ACTIVE.has(s) ? "" : " cw-bv-final"}`, style: { width: `${(counts[s] / total) * 100}%` }, title: `${s}: ${counts[s]}` })));
    legend.replaceChildren(
      h("li", { class: "cw-bv-words" }, words),
      ...states.map((s) => h("li", { class: "cw-bv-count" },
        h("span", { class: `cw-bv-swatch cw-bv-seg-${s}`, "aria-hidden": "true" }),
        h("span", { class: `cw-state cw-state-${s}` }, s), ` ${counts[s]}`)));
    tick();
  };
  const rank = (s) => { const i = ORDER.indexOf(s); return i === -1 ? 99 : i; };

  const tick = () => {
    const now = Date.now() / 1000;
    const start = model.get("started_at");
    const end = model.get("finished_at") || now;
    elapsed.textContent = start ? `Elapsed ${duration(end - start)}` : "";
    const at = model.get("eta_at") || 0;
    if (model.get("finished")) eta.textContent = "";
    else if (at > 0) eta.textContent = at > now ? `About ${duration(at - now)} left` : "Finishing soon";
    else eta.textContent = "Time left: known once a replica completes";
    for (const id of running) {
      const row = store.rows.get(id);
      const tr = rowEls.get(id);
      if (row && tr) tr.querySelector(".cw-bv-col-duration").textContent = rowDuration(row, now);
    }
  };

  // -- failures and actions ---------------------------------------------------------------
  const drawFailures = () => {
    const groups = model.get("failures") || [];
    const chosen = model.get("group") || "";
    const total = groups.reduce((n, g) => n + g.count, 0);
    failures.hidden = total === 0;
    failText.textContent = `${total} failed:`;
    groupList.replaceChildren(...groups.map((g) => {
      const pressed = g.key === chosen;
      const tip = `${g.reason}${g.line && g.line !== g.label ? ` — ${g.line}` : ""}\nReplicas ${g.replicas.join(", ")}`;
      return h("li", {}, h("button", {
        type: "button", class: "cw-bv-group", "aria-pressed": pressed ? "true" : "false", title: tip,
        onclick: () => { model.set("group", pressed ? "" : g.key); model.save_changes(); },
      }, h("span", { class: "cw-bv-group-count" }, `${g.count} ×`), ` ${g.label}`,
      g.label !== g.reason ? h("span", { class: "cw-bv-group-reason cw-muted" }, ` (${g.reason})`) : ""));
    }));
    showAll.hidden = !chosen;
    filterRows();
  };

  const drawActions = () => {
    const failed = model.get("failed") || 0;
    const why = model.get("retry_reason") || "";
    const busy = !!model.get("busy");
    retryButton.textContent = `Retry failed (${failed})`;
    retryButton.disabled = !!why || busy;
    retryButton.title = why;
    retryWhy.textContent = why && failed ? why : (why === "Nothing failed." ? "Nothing failed, so nothing to retry." : why);
    downloadButton.disabled = busy;
    deleteButton.disabled = busy || !!model.get("destroyed");
    deleteButton.title = model.get("destroyed") ? "This batch was deleted" : "";
    confirmBox.hidden = !confirm;
    for (const b of [retryButton, downloadButton, deleteButton]) b.hidden = !!confirm;
    retryWhy.hidden = !!confirm;
    const total = model.get("total") || 0;
    question.textContent = confirm === "retry"
      ? `Re-run the ${failed} failed replica${failed === 1 ? "" : "s"}?`
      : confirm === "delete" ? `Delete all ${total} sessions of batch ${model.get("name")}? Logs and events are kept.` : "";
    yes.textContent = confirm === "retry" ? "Retry" : "Delete";
    yes.className = confirm === "retry" ? "cw-primary" : "cw-danger";
    const text = model.get("message") || "";
    message.hidden = !text;
    messageText.textContent = text;
  };

  const kernel = kernelActions(model); // says "Waiting for the kernel" if the click waits
  cleanups.push(() => kernel.dispose());
  retryButton.addEventListener("click", () => { confirm = "retry"; drawActions(); yes.focus(); });
  deleteButton.addEventListener("click", () => { confirm = "delete"; drawActions(); yes.focus(); });
  no.addEventListener("click", () => { confirm = ""; drawActions(); });
  yes.addEventListener("click", () => {
    // The note goes by the action's own button: the confirm box hides after the click.
    kernel.send(confirm === "retry" ? retryButton : deleteButton, { kind: confirm });
    confirm = "";
    drawActions();
  });
  downloadButton.addEventListener("click", () => kernel.send(downloadButton, { kind: "download" }));
  dismiss.addEventListener("click", () => kernel.send(dismiss, { kind: "dismiss" }));
  showAll.addEventListener("click", () => { model.set("group", ""); model.save_changes(); });
  refreshButton.addEventListener("click", () => kernel.send(refreshButton, { kind: "refresh" }));

  // -- table ----------------------------------------------------------------------------
  const running = new Set();
  const buildRow = (row) => {
    const now = Date.now() / 1000;
    const act = (what, text) => h("button", {
      type: "button", class: "cw-bv-act", "aria-label": `${text} of ${row.name}`,
      onclick: (event) => kernel.send(event.currentTarget, { kind: "open", view: what, replica: row.replica }),
    }, text);
    const reason = row.reason ? (row.line && !row.reason.includes(row.line) ? `${row.reason}: ${row.line}` : row.reason) : "";
    return h("tr", { dataset: { id: row.id, status: row.status } },
      h("td", { class: "cw-bv-col-replica" }, String(row.replica)),
      h("td", { class: "cw-bv-col-name" }, h("span", { title: row.session ? `${row.name}, session ${row.session}` : row.name }, row.name)),
      h("td", { class: "cw-bv-col-status" }, h("span", { class: `cw-state cw-state-${row.status}` }, row.status)),
      h("td", { class: "cw-bv-col-attempt" }, String(row.attempt)),
      h("td", { class: "cw-bv-col-duration", title: row.started ? `started ${absoluteTime(row.started)}` : "" }, rowDuration(row, now)),
      h("td", { class: "cw-bv-col-reason", title: reason }, reason),
      h("td", { class: "cw-bv-col-actions" }, act("logs", "Logs"), act("events", "Events")));
  };
  const track = (row) => { if (ACTIVE.has(row.status) && row.started) running.add(row.id); else running.delete(row.id); };
  const groupReplicas = () => {
    const key = model.get("group") || "";
    if (!key) return null;
    const g = (model.get("failures") || []).find((x) => x.key === key);
    return g ? new Set(g.replicas) : null;
  };
  const hideFor = (only, row) => !!(only && row && !only.has(row.replica));
  const setCaption = (only) => {
    const name = model.get("name");
    const shown = only ? [...rowEls.values()].filter((tr) => !tr.hidden).length : 0;
    caption.textContent = only ? `Replicas of batch ${name}: ${shown} of ${store.rows.size} (one failure group)` : `Replicas of batch ${name}`;
    empty.hidden = store.rows.size > 0;
    empty.textContent = "No replicas yet.";
  };
  const filterRows = () => { // every row: when the chosen group (or the groups) changed
    const only = groupReplicas();
    for (const [id, tr] of rowEls) {
      const hide = hideFor(only, store.rows.get(id));
      if (tr.hidden !== hide) tr.hidden = hide;
    }
    setCaption(only);
  };
  // Rows are built in chunks: the first screenful at once, the rest over the next frames,
  // so a 1,000-replica batch paints its top rows in one frame.
  const FIRST_ROWS = 60;
  let queued = new Set();
  let chunkFrame = 0;
  const renderAll = () => {
    cancelAnimationFrame(chunkFrame);
    rowEls.clear();
    running.clear();
    tbody.replaceChildren();
    const order = [...store.rows.values()].sort((a, b) => a.replica - b.replica).map((r) => r.id);
    queued = new Set(order);
    const only = groupReplicas();
    const step = (count) => {
      const frag = document.createDocumentFragment();
      for (const id of order.splice(0, count)) {
        queued.delete(id);
        const row = store.rows.get(id); // the latest, whatever patches came meanwhile
        if (!row) continue;
        const tr = buildRow(row);
        tr.hidden = hideFor(only, row);
        rowEls.set(id, tr);
        track(row);
        frag.append(tr);
      }
      tbody.append(frag);
      if (order.length) chunkFrame = requestAnimationFrame(() => step(250));
      else setCaption(only);
    };
    step(FIRST_ROWS);
  };
  const renderSome = (ids) => {
    if (ids.size > 50) return renderAll(); // many at once (the first poll): one pass
    const only = groupReplicas();
    for (const id of ids) {
      if (queued.has(id)) continue; // not built yet: its chunk reads the latest row
      const row = store.rows.get(id);
      const old = rowEls.get(id);
      if (!row) {
        if (old) old.remove();
        rowEls.delete(id);
        running.delete(id);
        continue;
      }
      const tr = buildRow(row);
      tr.hidden = hideFor(only, row);
      track(row);
      rowEls.set(id, tr);
      if (old) old.replaceWith(tr);
      else {
        // Keep replica order: before the first built row with a larger number.
        const next = [...rowEls.entries()].find(([k]) => k !== id && store.rows.get(k) && store.rows.get(k).replica > row.replica && rowEls.get(k).isConnected);
        tbody.insertBefore(tr, next ? next[1] : null);
      }
    }
    if (only) setCaption(only);
  };

  // -- detail -----------------------------------------------------------------------------
  const drawDetail = () => {
    const d = model.get("detail") || {};
    detail.hidden = !d.view;
    if (!d.view) return;
    const what = d.view === "logs" ? "Logs" : "Events";
    detailHead.textContent = `${what} of ${d.name} (replica ${d.replica})`;
    detailText.textContent = d.loading ? "Loading…" : (d.text || (d.view === "logs" ? "No log: the replica has not started, or printed nothing." : "No events recorded."));
  };
  detailClose.addEventListener("click", () => kernel.send(detailClose, { kind: "close_detail" }));
  detailReload.addEventListener("click", () => {
    const d = model.get("detail") || {};
    if (d.view) kernel.send(detailReload, { kind: "open", view: d.view, replica: d.replica });
  });

  // -- messages from Python ----------------------------------------------------------------
  const onMessage = (msg, buffers) => {
    if (!msg) return;
    if (msg.kind === "patch") {
      const result = applyPatch(store, msg);
      if (result === "applied") renderSome(touchedIds(msg));
      else if (result === "gap") model.send({ kind: "snapshot", have: store.version });
    } else if (msg.kind === "download" && buffers && buffers.length) {
      const data = buffers[0];
      const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      const blob = new Blob([bytes], { type: msg.mime || "application/zip" });
      const url = URL.createObjectURL(blob);
      const link = h("a", { href: url, download: msg.filename || "logs.zip", hidden: true });
      root.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } else if (msg.kind === "alert") {
      notifier.alert({ title: msg.title, body: msg.body, tag: msg.tag });
    }
  };
  const onSnapshot = () => {
    if (applySnapshot(store, model.get("rows") || [], model.get("rows_version"))) renderAll();
  };

  cleanups.push(
    listen(model, ["msg:custom"], onMessage),
    listen(model, ["rows", "rows_version"], onSnapshot),
    listen(model, ["counts", "total", "done", "finished", "started_at", "finished_at", "eta_at", "name"], drawHead),
    listen(model, ["failures", "group"], drawFailures),
    listen(model, ["failed", "retry_reason", "busy", "message", "destroyed"], drawActions),
    listen(model, ["detail"], drawDetail),
    bindStatus(model, { alert, status }),
    reportVisibility(model, root, view),
  );
  applySnapshot(store, model.get("rows") || [], model.get("rows_version") || 0);
  renderAll();
  drawHead();
  drawFailures();
  drawActions();
  drawDetail();
  model.send({ kind: "snapshot", have: store.version });
  const timer = setInterval(tick, 1000);
  return () => {
    clearInterval(timer);
    cancelAnimationFrame(chunkFrame);
    for (const cleanup of cleanups) cleanup();
  };
}

export default { render };
