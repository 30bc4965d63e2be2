// SessionTable view: a real <table> of the user's sessions with filters, sorting,
// multi-select, row actions (Connect, Logs, Events, Renew, Delete with confirmation)
// and inline detail (a LogViewer / EventsView child widget under the row).
//
// Data flow: rows live in a keyed store (lib/patches.js) fed by the `rows` trait
// (snapshot) and {kind: "patch"} custom messages; filters and sorting are client-side
// and mirrored to front-end-owned traits so they survive re-render and Python sees them.
// Actions are messages ({kind: "delete", ids}); Python answers through traits.

import { h, uid, srLabel, isolateKeys, reportVisibility, debounce, listen, statusParts } from "./lib/dom.js";
import { relativeTime, absoluteTime, timeLeft, clockTime, formatCores, formatGB, shortImage, usedOfRequested } from "./lib/format.js";
import { createStore, applySnapshot, applyPatch } from "./lib/patches.js";
import { sortRows, filterRows, ariaSort, nextSort } from "./lib/sort.js";

const KINDS = ["notebook", "desktop", "carta", "headless", "firefly", "contributed", "desktop-app"];
const STATUSES = ["Pending", "Running", "Terminating", "Completed", "Failed"];

// [key, header text, sort key or null, header title]
const COLUMNS = [
  ["name", "Name", "name"],
  ["id", "ID", "id"],
  ["kind", "Kind", "kind"],
  ["status", "Status", "status"],
  ["image", "Image", "image"],
  ["cpu", "CPU", "cpu", "CPU cores in use / requested"],
  ["ram", "RAM", "ram", "Memory in use / requested"],
  ["start", "Started", "start"],
  ["expiry", "Time left", "expiry", "Time left before the session expires"],
  ["actions", "Actions", null],
];
const FIRST_ROWS = 60; // the scroll box shows ~16 rows; the rest follow on later frames
const COLSPAN = COLUMNS.length + 1; // + the selection column

function tableConnectReason(row) {
  if (row.kind === "headless") return "Headless jobs have no interface to connect to";
  if (row.status !== "Running") return `Not running (${row.status || "unknown"})`;
  return "The platform gave no address for this session";
}

function render({ model, el, host }) {
  const view = uid("st");
  const store = createStore();
  const cleanups = [];
  const confirming = new Set(); // ids whose Delete is awaiting Confirm (this view only)
  const rowCache = new Map(); // id -> <tr> built for (row object, stamp)
  let selected = new Set(model.get("selected") || []);
  let bulkConfirm = false;

  // -- skeleton -----------------------------------------------------------------------
  const ids = { kind: uid("kind"), status: uid("status"), search: uid("search"), hide: uid("hide"), all: uid("all") };
  const kindSelect = h("select", { id: ids.kind },
    h("option", { value: "" }, "All kinds"),
    KINDS.map((k) => h("option", { value: k }, k)));
  const statusSelect = h("select", { id: ids.status },
    h("option", { value: "" }, "All statuses"),
    STATUSES.map((s) => h("option", { value: s }, s)));
  const searchInput = h("input", { id: ids.search, type: "search", placeholder: "name or id", autocomplete: "off", spellcheck: "false" });
  const hideBox = h("input", { id: ids.hide, type: "checkbox" });
  const refreshButton = h("button", { type: "button", class: "cw-refresh" }, "Refresh");
  const updated = h("span", { class: "cw-updated cw-muted" });
  const toolbar = h("div", { class: "cw-toolbar" },
    h("span", { class: "cw-field" }, h("label", { for: ids.kind }, "Kind"), kindSelect),
    h("span", { class: "cw-field" }, h("label", { for: ids.status }, "Status"), statusSelect),
    h("span", { class: "cw-field" }, h("label", { for: ids.search }, "Search"), searchInput),
    h("span", { class: "cw-field" }, hideBox, h("label", { for: ids.hide }, "Hide finished")));

  const selCount = h("span", { class: "cw-selcount" });
  const renewSelected = h("button", { type: "button" }, "Renew selected");
  const deleteSelected = h("button", { type: "button", class: "cw-danger" }, "Delete selected");
  const bulkQuestion = h("span", { class: "cw-confirm-text" });
  const bulkConfirmButton = h("button", { type: "button", class: "cw-danger" }, "Confirm");
  const bulkCancelButton = h("button", { type: "button" }, "Cancel");
  const bulkConfirmBox = h("span", { class: "cw-confirm", hidden: true }, bulkQuestion, bulkConfirmButton, bulkCancelButton);
  const bulkbar = h("div", { class: "cw-bulkbar" }, selCount, renewSelected, deleteSelected, bulkConfirmBox,
    h("span", { class: "cw-spacer" }), updated, refreshButton);

  const { alert, status } = statusParts();
  const caption = h("caption", {});
  const allBox = h("input", { id: ids.all, type: "checkbox" });
  const headCells = COLUMNS.map(([key, text, sortKey, title]) => {
    const th = h("th", { scope: "col", class: `cw-col-${key}`, title: title || null });
    if (sortKey) {
      th.append(h("button", { type: "button", class: "cw-sort", dataset: { sort: sortKey } }, text, h("span", { class: "cw-sort-icon", "aria-hidden": "true" })));
    } else {
      th.append(text);
    }
    return th;
  });
  const thead = h("thead", {}, h("tr", {}, h("th", { scope: "col", class: "cw-col-select" }, srLabel(ids.all, "Select all shown sessions"), allBox), headCells));
  const tbody = h("tbody", {});
  const table = h("table", { class: "cw-sessions" }, caption, thead, tbody);
  const scroller = h("div", { class: "cw-scroll" }, table);
  const root = h("div", { class: "canfar-w cw-session-table" }, toolbar, bulkbar, alert, scroller, status);
  el.append(root);

  // In a narrow notebook the table scrolls sideways under the sticky Actions column; a
  // shadow on that column's edge says there is more to see while any of it is hidden.
  const markOverflow = () => {
    const hidden = scroller.scrollWidth - scroller.clientWidth - scroller.scrollLeft > 1;
    scroller.classList.toggle("cw-more-right", hidden);
  };
  scroller.addEventListener("scroll", markOverflow, { passive: true });
  // ResizeObserver runs after the browser's own layout, so reading widths there is free;
  // reading them straight after changing rows would force a layout of the whole table.
  const resizeWatch = typeof ResizeObserver === "function" ? new ResizeObserver(markOverflow) : null;
  if (resizeWatch) {
    resizeWatch.observe(scroller);
    resizeWatch.observe(table);
  }

  // The detail row: one <tr> holding the child view container, placed under its row.
  const detailBox = h("div", { class: "cw-detail-box" });
  const detailRow = h("tr", { class: "cw-detail-row" }, h("td", { colspan: COLSPAN }, detailBox));
  let detailCleanup = null;
  let detailRef = null;

  // -- state helpers ------------------------------------------------------------------
  // What the user is typing, ahead of the debounced `search` trait.
  let typedSearch = null;
  const filters = () => ({
    kind: model.get("kind_filter") || "",
    status: model.get("status_filter") || "",
    search: typedSearch ?? (model.get("search") || ""),
    hideFinished: Boolean(model.get("hide_finished")),
  });
  const save = (values) => {
    for (const [k, v] of Object.entries(values)) model.set(k, v);
    model.save_changes();
  };
  const shownRows = () => {
    const rows = filterRows([...store.rows.values()], filters());
    return sortRows(rows, model.get("sort_by") || "start", Boolean(model.get("sort_desc")));
  };
  const saveSelection = () => save({ selected: [...selected] });

  // -- rows ---------------------------------------------------------------------------
  function stampOf(row) {
    const pending = (model.get("pending") || {})[row.id] || "";
    const detail = model.get("detail_id") === row.id ? model.get("detail_kind") || "" : "";
    return `${pending}|${selected.has(row.id) ? 1 : 0}|${confirming.has(row.id) ? 1 : 0}|${detail}`;
  }

  function buildRow(row) {
    const now = Date.now();
    const pending = (model.get("pending") || {})[row.id] || "";
    const detailOpen = model.get("detail_id") === row.id ? model.get("detail_kind") : "";
    const nameId = uid("name");
    const boxId = uid("sel");
    const check = h("input", { id: boxId, type: "checkbox", checked: selected.has(row.id), dataset: { act: "select", id: row.id } });
    const act = (name, text, extra = {}) => h("button", {
      type: "button", "aria-describedby": nameId, disabled: Boolean(pending), dataset: { act: name, id: row.id }, ...extra,
    }, text);

    let connect;
    if (row.status === "Running" && row.url) {
      connect = h("a", { class: "cw-linkbutton", href: row.url, target: "_blank", rel: "noopener noreferrer", "aria-describedby": nameId, dataset: { act: "connect", id: row.id } }, "Connect");
    } else {
      connect = h("button", { type: "button", disabled: true, title: tableConnectReason(row), "aria-describedby": nameId }, "Connect");
    }
    const actions = [connect,
      act("logs", "Logs", { "aria-expanded": detailOpen === "logs" ? "true" : "false" }),
      act("events", "Events", { "aria-expanded": detailOpen === "events" ? "true" : "false" }),
      act("renew", "Renew", { disabled: Boolean(pending) || row.finished, title: row.finished ? "Finished sessions cannot be renewed" : null })];
    if (confirming.has(row.id)) {
      actions.push(h("span", { class: "cw-confirm" },
        act("confirm-delete", "Confirm", { class: "cw-danger" }),
        act("cancel-delete", "Cancel")));
    } else {
      actions.push(act("delete", "Delete", { class: "cw-danger" }));
    }
    if (pending) actions.push(h("span", { class: "cw-pending" }, pending));

    const left = timeLeft(row.expiry, now);
    const startCell = h("td", { class: "cw-col-start", title: absoluteTime(row.start) }, relativeTime(row.start, now));
    const leftCell = h("td", { class: `cw-col-expiry cw-left-${left.level}`, title: absoluteTime(row.expiry) }, row.finished ? "–" : left.text);
    const tr = h("tr", { dataset: { id: row.id }, class: selected.has(row.id) ? "cw-selected" : null },
      h("td", { class: "cw-col-select" }, srLabel(boxId, `Select ${row.name || row.id}`), check),
      h("td", { class: "cw-col-name", id: nameId }, row.name || ""),
      h("td", { class: "cw-col-id cw-mono" }, row.id),
      h("td", { class: "cw-col-kind" }, row.kind || ""),
      h("td", { class: "cw-col-status" }, h("span", { class: `cw-state cw-state-${row.status}`, title: row.status_text || row.status }, row.status)),
      h("td", { class: "cw-col-image", title: row.image || "" }, row.image_short || shortImage(row.image)),
      h("td", { class: "cw-col-cpu cw-num", title: `${formatCores(row.cpu_used)} cores in use of ${row.cpu_req === null ? "flexible (none fixed)" : formatCores(row.cpu_req)} requested` }, usedOfRequested(row.cpu_used, row.cpu_req, formatCores)),
      h("td", { class: "cw-col-ram cw-num", title: `${formatGB(row.ram_used)} in use of ${row.ram_req === null ? "flexible (none fixed)" : formatGB(row.ram_req)} requested` }, usedOfRequested(row.ram_used, row.ram_req, formatGB)),
      startCell,
      leftCell,
      h("td", { class: "cw-col-actions" }, h("span", { class: "cw-actions" }, actions)));
    tr._cwRow = row;
    tr._cwStamp = stampOf(row);
    tr._cwTimes = [startCell, leftCell];
    return tr;
  }

  // The focused control's (action, id), to restore focus after its row is rebuilt.
  function focusKey() {
    const active = root.ownerDocument.activeElement;
    if (!active || !tbody.contains(active) || !active.dataset) return null;
    return { act: active.dataset.act, id: active.dataset.id };
  }
  function restoreFocus(key, preferred) {
    if (!key) return;
    const tr = rowCache.get(key.id);
    if (!tr) return;
    const pick = (act) => act && tr.querySelector(`[data-act="${act}"]:not([disabled])`);
    const target = pick(preferred) || pick(key.act) || tr.querySelector("input[type=checkbox]");
    if (target) target.focus();
  }

  // A first render of many rows is dominated by table layout of every cell, so the first
  // FIRST_ROWS rows paint at once and the rest follow in growing chunks on later frames.
  let renderLimit = FIRST_ROWS;
  let moreRowsQueued = false;
  const renderMoreRows = () => {
    moreRowsQueued = false;
    renderLimit *= 3;
    renderRows();
  };

  function renderRows(preferredFocus = null) {
    const key = focusKey();
    const allRows = shownRows();
    const rows = allRows.length > renderLimit ? allRows.slice(0, renderLimit) : allRows;
    if (rows.length < allRows.length && !moreRowsQueued) {
      moreRowsQueued = true;
      requestAnimationFrame(renderMoreRows);
    }
    const wanted = [];
    const live = new Set();
    for (const row of rows) {
      live.add(row.id);
      let tr = rowCache.get(row.id);
      if (!tr || tr._cwRow !== row || tr._cwStamp !== stampOf(row)) {
        const fresh = buildRow(row);
        if (tr && tr.parentNode === tbody) tbody.replaceChild(fresh, tr);
        tr = fresh;
        rowCache.set(row.id, tr);
      }
      wanted.push(tr);
      if (model.get("detail_id") === row.id && model.get("detail_kind")) wanted.push(detailRow);
    }
    for (const id of [...rowCache.keys()]) if (!live.has(id)) rowCache.delete(id);
    if (!rows.length) {
      const loaded = model.get("last_updated") > 0 || store.rows.size > 0;
      const text = !loaded ? "Loading sessions…" : store.rows.size ? "No sessions match the filters." : "No sessions.";
      wanted.push(h("tr", { class: "cw-empty" }, h("td", { colspan: COLSPAN }, text)));
    }
    // Move only nodes that are out of place: moving a node would drop keyboard focus.
    let cursor = tbody.firstChild;
    for (const node of wanted) {
      if (node === cursor) cursor = cursor.nextSibling;
      else tbody.insertBefore(node, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      tbody.removeChild(cursor);
      cursor = next;
    }
    restoreFocus(key, preferredFocus);
    renderChrome(allRows);
  }

  function renderChrome(rows = shownRows()) {
    const total = store.rows.size;
    caption.textContent = `CANFAR sessions: ${rows.length} shown of ${total}`;
    // Prune selection of rows that are gone.
    const pruned = [...selected].filter((id) => store.rows.has(id));
    const loaded = total > 0 || model.get("last_updated") > 0;
    if (pruned.length !== selected.size && loaded) {
      selected = new Set(pruned);
      saveSelection();
    }
    const shownSelected = rows.filter((r) => selected.has(r.id)).length;
    allBox.checked = rows.length > 0 && shownSelected === rows.length;
    allBox.indeterminate = shownSelected > 0 && shownSelected < rows.length;
    const n = selected.size;
    selCount.textContent = n ? `${n} selected` : "None selected";
    renewSelected.disabled = n === 0;
    deleteSelected.disabled = n === 0;
    if (!n && bulkConfirm) setBulkConfirm(false);
    bulkQuestion.textContent = `Delete ${n} session${n === 1 ? "" : "s"}?`;
    for (const th of headCells) {
      const button = th.querySelector("button.cw-sort");
      if (!button) continue;
      const sort = ariaSort(button.dataset.sort, model.get("sort_by"), model.get("sort_desc"));
      if (sort === "none") th.removeAttribute("aria-sort");
      else th.setAttribute("aria-sort", sort);
      button.querySelector(".cw-sort-icon").textContent = sort === "ascending" ? " ▲" : sort === "descending" ? " ▼" : "";
    }
  }

  function renderStatus() {
    const err = model.get("error") || "";
    alert.textContent = err;
    root.classList.toggle("cw-has-error", Boolean(err));
    const last = model.get("last_updated");
    updated.textContent = last ? `Updated ${clockTime(last)}` : "";
    updated.title = last ? absoluteTime(last) : "";
    status.textContent = model.get("status") || "";
    refreshButton.disabled = Boolean(model.get("busy"));
  }

  function syncControls() {
    kindSelect.value = model.get("kind_filter") || "";
    statusSelect.value = model.get("status_filter") || "";
    if (root.ownerDocument.activeElement !== searchInput) searchInput.value = model.get("search") || "";
    hideBox.checked = Boolean(model.get("hide_finished"));
  }

  function setBulkConfirm(on) {
    bulkConfirm = on;
    bulkConfirmBox.hidden = !on;
    deleteSelected.hidden = on;
    if (on) bulkCancelButton.focus();
  }

  // -- detail child view ----------------------------------------------------------------
  async function renderDetail() {
    const ref = model.get("detail") || null;
    if (ref === detailRef) return;
    detailRef = ref;
    if (detailCleanup) {
      detailCleanup();
      detailCleanup = null;
    }
    detailBox.replaceChildren();
    if (!ref) return;
    const controller = new AbortController();
    detailCleanup = () => controller.abort();
    const container = h("div", { class: "cw-detail-child" });
    detailBox.append(container);
    try {
      if (typeof ref === "string" && ref.startsWith("anywidget:") && host && host.getWidget) {
        const child = await host.getWidget(ref);
        if (!controller.signal.aborted) await child.render({ el: container, signal: controller.signal });
      } else {
        // Older anywidget front ends: ask the widget manager for a view directly.
        const id = String(ref).replace(/^anywidget:|^IPY_MODEL_/, "");
        const childModel = await model.widget_manager.get_model(id);
        const childView = await model.widget_manager.create_view(childModel);
        if (controller.signal.aborted) {
          childView.remove();
          return;
        }
        container.append(childView.el);
        controller.signal.addEventListener("abort", () => childView.remove());
      }
    } catch (err) {
      container.replaceChildren(h("p", { class: "cw-alert", role: "alert" }, `Could not show the ${model.get("detail_kind") || "detail"} view: ${err && err.message ? err.message : err}`));
    }
  }

  // -- events -------------------------------------------------------------------------
  const on = (target, type, fn) => {
    target.addEventListener(type, fn);
    cleanups.push(() => target.removeEventListener(type, fn));
  };
  on(kindSelect, "change", () => save({ kind_filter: kindSelect.value }));
  on(statusSelect, "change", () => save({ status_filter: statusSelect.value }));
  const pushSearch = debounce(() => {
    typedSearch = null;
    save({ search: searchInput.value });
  }, 250);
  cleanups.push(() => pushSearch.cancel());
  on(searchInput, "input", () => {
    // Filter locally at once; the trait (and the kernel) follow after a pause in typing.
    typedSearch = searchInput.value;
    pushSearch();
    renderRows();
  });
  on(hideBox, "change", () => save({ hide_finished: hideBox.checked }));
  on(refreshButton, "click", () => model.send({ kind: "refresh" }));
  on(allBox, "change", () => {
    const rows = shownRows();
    if (allBox.checked) for (const r of rows) selected.add(r.id);
    else for (const r of rows) selected.delete(r.id);
    saveSelection();
    renderRows();
  });
  on(renewSelected, "click", () => {
    if (selected.size) model.send({ kind: "renew", ids: [...selected] });
  });
  on(deleteSelected, "click", () => setBulkConfirm(true));
  on(bulkCancelButton, "click", () => {
    setBulkConfirm(false);
    deleteSelected.focus();
  });
  on(bulkConfirmButton, "click", () => {
    const chosen = [...selected];
    setBulkConfirm(false);
    if (chosen.length) model.send({ kind: "delete", ids: chosen });
    selected = new Set();
    saveSelection();
    renderRows();
    deleteSelected.focus();
  });
  on(bulkConfirmBox, "keydown", (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      setBulkConfirm(false);
      deleteSelected.focus();
    }
  });
  on(thead, "click", (event) => {
    const button = event.target.closest("button.cw-sort");
    if (!button) return;
    const next = nextSort(button.dataset.sort, model.get("sort_by"), model.get("sort_desc"));
    save({ sort_by: next.sortBy, sort_desc: next.desc });
  });
  on(tbody, "change", (event) => {
    const box = event.target;
    if (box.dataset.act !== "select") return;
    if (box.checked) selected.add(box.dataset.id);
    else selected.delete(box.dataset.id);
    saveSelection();
    renderRows("select");
  });
  on(tbody, "click", (event) => {
    const button = event.target.closest("button[data-act]");
    if (!button || button.disabled) return;
    const id = button.dataset.id;
    switch (button.dataset.act) {
      case "logs":
      case "events":
        model.send({ kind: "detail", id, view: button.dataset.act });
        break;
      case "renew":
        model.send({ kind: "renew", ids: [id] });
        break;
      case "delete":
        confirming.add(id);
        renderRows("cancel-delete");
        break;
      case "cancel-delete":
        confirming.delete(id);
        renderRows("delete");
        break;
      case "confirm-delete":
        confirming.delete(id);
        model.send({ kind: "delete", ids: [id] });
        renderRows("delete");
        break;
      default:
    }
  });
  on(tbody, "keydown", (event) => {
    if (event.key !== "Escape") return;
    const tr = event.target.closest("tr[data-id]");
    if (tr && confirming.has(tr.dataset.id)) {
      event.stopPropagation();
      confirming.delete(tr.dataset.id);
      renderRows("delete");
    }
  });

  const onSnapshot = () => {
    if (applySnapshot(store, model.get("rows") || [], model.get("rows_version"))) renderRows();
  };
  const onMessage = (msg) => {
    if (!msg || msg.kind !== "patch") return;
    const result = applyPatch(store, msg);
    if (result === "applied") renderRows();
    else if (result === "gap") model.send({ kind: "snapshot", have: store.version });
  };
  cleanups.push(listen(model, ["rows", "rows_version"], onSnapshot));
  cleanups.push(() => {
    scroller.removeEventListener("scroll", markOverflow);
    if (resizeWatch) resizeWatch.disconnect();
  });
  cleanups.push(listen(model, ["msg:custom"], onMessage));
  cleanups.push(listen(model, ["kind_filter", "status_filter", "search", "hide_finished", "sort_by", "sort_desc"], () => {
    syncControls();
    renderRows();
  }));
  cleanups.push(listen(model, ["selected"], () => {
    selected = new Set(model.get("selected") || []);
    renderRows();
  }));
  cleanups.push(listen(model, ["pending", "detail_id", "detail_kind"], () => renderRows()));
  cleanups.push(listen(model, ["detail"], () => {
    renderDetail();
    renderRows();
  }));
  cleanups.push(listen(model, ["error", "status", "busy", "last_updated"], () => {
    renderStatus();
    if (!store.rows.size) renderRows();
  }));

  // Relative times drift: refresh their text every 30 s without any kernel traffic.
  const ticker = setInterval(() => {
    const now = Date.now();
    for (const tr of rowCache.values()) {
      const row = tr._cwRow;
      const [startCell, leftCell] = tr._cwTimes;
      startCell.textContent = relativeTime(row.start, now);
      const left = timeLeft(row.expiry, now);
      leftCell.textContent = row.finished ? "–" : left.text;
      leftCell.className = `cw-col-expiry cw-left-${left.level}`;
    }
  }, 30000);
  cleanups.push(() => clearInterval(ticker));

  cleanups.push(isolateKeys(root));
  cleanups.push(reportVisibility(model, root, view));

  // First paint from the traits we have, then ask for a current snapshot.
  applySnapshot(store, model.get("rows") || [], model.get("rows_version") || 0);
  syncControls();
  renderStatus();
  renderRows();
  renderDetail();
  model.send({ kind: "snapshot", have: store.version });

  return () => {
    for (const fn of cleanups.splice(0)) fn();
    if (detailCleanup) detailCleanup();
    el.replaceChildren();
  };
}

export default { render };
