// SessionTable view: a real <table> of the user's sessions with filters, sorting,
// multi-select, compact row actions (icon buttons with accessible names: Connect, Logs,
// Events, Renew, Keep alive, Delete with confirmation) and a detail panel (a LogViewer /
// EventsView child widget) under the table, outside any scroll box.
//
// Data flow: rows live in a keyed store (lib/patches.js) fed by the `rows` trait
// (snapshot) and {kind: "patch"} custom messages; filters and sorting are client-side
// and mirrored to front-end-owned traits so they survive re-render and Python sees them.
// Actions are messages ({kind: "delete", ids}); Python answers through traits.
//
// Fitting the notebook: the table sizes itself by its own width (a CSS container query,
// not the window's), dropping low-value columns first (ID, Image, then Kind, Started,
// then CPU, RAM); Name, Status, Time left and the actions always stay. Below WINDOW_FROM
// shown rows every row is in the DOM and the notebook does the scrolling; from there on
// the table scrolls in its own box and only the rows on screen are in the DOM, with
// aria-rowcount/aria-rowindex telling screen readers where they are.

import { h, uid, srLabel, isolateKeys, reportVisibility, debounce, listen, statusParts } from "./lib/dom.js";
import { relativeTime, absoluteTime, timeLeft, clockTime, formatCores, formatGiB, shortImage, usedOfRequested } from "./lib/format.js";
import { createStore, applySnapshot, applyPatch } from "./lib/patches.js";
import { sortRows, firstSorted, filterAndCount, ariaSort, nextSort } from "./lib/sort.js";
import { windowRange, includeRow, WINDOW_FROM } from "./lib/rows_window.js";
import { VOCABULARY } from "./lib/vocabulary.js";
import { createNotifier, trackSessions } from "./lib/notify.js";
import { kernelActions } from "./lib/busy.js";

const KINDS = VOCABULARY.kinds;
const STATUSES = VOCABULARY.states;

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
const COLSPAN = COLUMNS.length + 1; // + the selection column
const ROW_HEIGHT_GUESS = 30; // px, until a rendered row has been measured
// A window ending further down than this is sorted in full at once (a partial sort of
// that many rows saves little).
const FIRST_SORTED_MAX = 200;
const RENEWED_HIGHLIGHT_MS = 20000;

// 16x16 line icons (currentColor, so they follow the theme). Constant strings only.
const ICONS = {
  connect: '<path d="M9 2.5h4.5V7M13.5 2.5 7.5 8.5M11.5 9.5v4h-9v-9h4"/>',
  logs: '<path d="M2.5 3.5h11M2.5 6.5h11M2.5 9.5h11M2.5 12.5h7"/>',
  events: '<circle cx="8" cy="8" r="5.75"/><path d="M8 4.75V8l2.25 1.5"/>',
  renew: '<path d="M13 8a5 5 0 1 1-1.46-3.54M13 2.5v3h-3"/>',
  keep: '<path d="M8 14s-5.5-3.2-5.5-7A3 3 0 0 1 8 5a3 3 0 0 1 5.5 2c0 3.8-5.5 7-5.5 7z"/>',
  delete: '<path d="M2.5 4.5h11M6 4.5V2.5h4v2M4 4.5l.7 9h6.6l.7-9M6.75 7v4.5M9.25 7v4.5"/>',
  close: '<path d="M4 4l8 8M12 4l-8 8"/>',
  more: '<circle cx="3.5" cy="8" r="0.9" fill="currentColor"/><circle cx="8" cy="8" r="0.9" fill="currentColor"/><circle cx="12.5" cy="8" r="0.9" fill="currentColor"/>',
};
const iconCache = new Map();
function icon(name) {
  let tpl = iconCache.get(name);
  if (!tpl) {
    tpl = document.createElement("template");
    tpl.innerHTML = `<svg class="cw-icon-svg" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true" focusable="false" fill="none" stroke="currentColor" stroke-width="1.5" stroke-linecap="round" stroke-linejoin="round">${ICONS[name]}</svg>`;
    iconCache.set(name, tpl);
  }
  return tpl.content.firstChild.cloneNode(true);
}

function connectReason(row) {
  if (row.kind === "headless") return "Headless jobs have no interface to connect to";
  if (row.status !== "Running") return `Not running (${row.status || "unknown"})`;
  return "The platform gave no address for this session";
}

// Why Renew means nothing for this row (null: it can be renewed).
function renewReason(row) {
  if (row.finished) return "Finished sessions cannot be renewed";
  if (row.status === "Terminating") return "This session is being deleted";
  if (row.kind === "headless") return "Headless jobs run until their command ends: there is nothing to renew";
  return null;
}

// "Sat 5 Dec 04:21" (local time): a short date a person can compare with a clock
// (the full date and time is in the cell's tooltip).
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
function dateMinutes(epoch) {
  const d = new Date(epoch * 1000);
  const p = (n) => String(n).padStart(2, "0");
  return `${DAYS[d.getDay()]} ${d.getDate()} ${MONTHS[d.getMonth()]} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

function render({ model, el, host }) {
  const view = uid("st");
  const store = createStore();
  const cleanups = [];
  const confirming = new Set(); // ids whose Delete is awaiting Confirm (this view only)
  const rowCache = new Map(); // id -> <tr> built for (row object, stamp)
  let selected = new Set(model.get("selected") || []);
  let bulkConfirm = false;
  // The rows the filters let through: `passing` all of them in the store's order, `shown`
  // the same sorted, or only its first rows until the full sort has run (see renderRows).
  let passing = [];
  let hidden = { finished: 0, filtered: 0 }; // how many rows the filters hide, and why
  let shown = [];
  let shownDone = true; // whether `shown` holds every passing row
  let sortedBy = ["start", true]; // the sort `shown` is in
  let duplicateNames = new Set();
  let namesOf = [null, -1]; // the store (rows, version) duplicateNames was counted from
  let keepFor = ""; // id whose "Keep alive until" editor is open
  let menuFor = ""; // id whose row menu is open
  const renewedAt = new Map(); // id -> Date.now() when its new expiry arrived (highlight)

  // -- skeleton -----------------------------------------------------------------------
  const ids = { kind: uid("kind"), status: uid("status"), search: uid("search"), hide: uid("hide"), all: uid("all"), detail: uid("detail"), detailTitle: uid("dtitle") };
  // Accessible names that stay unique on a whole page (a Dashboard's form has its own
  // "Kind"); the visible labels stay short.
  const kindSelect = h("select", { id: ids.kind, "aria-label": "Filter sessions by kind" },
    h("option", { value: "" }, "All kinds"),
    KINDS.map((k) => h("option", { value: k }, k)));
  const statusSelect = h("select", { id: ids.status, "aria-label": "Filter sessions by status" },
    h("option", { value: "" }, "All statuses"),
    STATUSES.map((s) => h("option", { value: s }, s)));
  const searchInput = h("input", { id: ids.search, type: "search", "aria-label": "Search sessions", placeholder: "name or id", autocomplete: "off", spellcheck: "false" });
  const hideBox = h("input", { id: ids.hide, type: "checkbox" });
  const refreshButton = h("button", { type: "button", class: "cw-refresh", "aria-label": "Refresh sessions" }, "Refresh");
  const updated = h("span", { class: "cw-updated cw-muted" });
  const toolbar = h("div", { class: "cw-toolbar", role: "group", "aria-label": "Session filters" },
    h("span", { class: "cw-field" }, h("label", { for: ids.kind }, "Kind"), kindSelect),
    h("span", { class: "cw-field" }, h("label", { for: ids.status }, "Status"), statusSelect),
    h("span", { class: "cw-field" }, h("label", { for: ids.search }, "Search"), searchInput),
    h("span", { class: "cw-field", title: "Hides finished headless jobs, except those this table saw running" }, hideBox, h("label", { for: ids.hide }, "Hide finished")));

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
  const headRow = h("tr", { "aria-rowindex": "1" }, h("th", { scope: "col", class: "cw-col-select" }, srLabel(ids.all, "Select all shown sessions"), allBox), headCells);
  const thead = h("thead", {}, headRow);
  const tbody = h("tbody", {});
  const table = h("table", { class: "cw-sessions" }, caption, thead, tbody);
  const scroller = h("div", { class: "cw-scroll" }, table);

  // Windowed mode: spacer rows stand in for the rows above and below the window.
  const spacer = () => h("tr", { class: "cw-spacer", "aria-hidden": "true" }, h("td", { colspan: COLSPAN }));
  const topSpacer = spacer();
  const bottomSpacer = spacer();

  // The detail panel (LogViewer / EventsView): under the table, never inside its scroll
  // box, so a following log's newest line is not clipped by the table.
  const detailTitle = h("span", { class: "cw-detail-title", id: ids.detailTitle });
  const detailClose = h("button", { type: "button", class: "cw-icon" }, icon("close"));
  const detailBox = h("div", { class: "cw-detail-box" });
  const detailPanel = h("section", { class: "cw-detail", id: ids.detail, hidden: true, "aria-labelledby": ids.detailTitle },
    h("div", { class: "cw-detail-head" }, detailTitle, detailClose), detailBox);
  let detailCleanup = null;
  let detailRef = null;

  // "Keep alive until ..." editor for one row: a date-time field and Start / Stop.
  const keepInput = h("input", { type: "datetime-local", id: uid("keep") });
  const keepLabel = h("label", { for: keepInput.id });
  const keepStart = h("button", { type: "button", class: "cw-primary" }, "Keep alive");
  const keepStop = h("button", { type: "button" }, "Stop keeping alive");
  const keepCancel = h("button", { type: "button" }, "Cancel");
  const keepHint = h("span", { class: "cw-muted" }, "Renewed whenever less than an hour is left, up to that time.");
  const keepForm = h("div", { class: "cw-keep", role: "group", hidden: true, "aria-label": "Keep alive" },
    keepLabel, keepInput, keepStart, keepStop, keepCancel, keepHint);

  // The row menu of narrow tables: one shared popup, placed under the row's More button.
  const menu = h("div", { class: "cw-menu", role: "menu", hidden: true });

  const root = h("div", { class: "canfar-w cw-session-table" }, toolbar, bulkbar, alert, keepForm, scroller, status, detailPanel, menu);
  el.append(root);

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
  const saveSelection = () => save({ selected: [...selected] });
  const nameOf = (row) => {
    const name = row.name || row.id;
    // Two sessions may share a name: the id keeps each button's accessible name unique.
    return row.name && duplicateNames.has(row.name) ? `${row.name} (${row.id})` : name;
  };
  const keptUntil = (id) => (model.get("kept_alive") || {})[id] || null;

  // -- rows ---------------------------------------------------------------------------
  function stampOf(row) {
    const pending = (model.get("pending") || {})[row.id] || "";
    const detail = model.get("detail_id") === row.id ? model.get("detail_kind") || "" : "";
    const renewed = (model.get("renewed") || {})[row.id] || "";
    return `${pending}|${selected.has(row.id) ? 1 : 0}|${confirming.has(row.id) ? 1 : 0}|${detail}|${nameOf(row)}|${renewed}|${keptUntil(row.id) || ""}|${keepFor === row.id ? 1 : 0}|${menuFor === row.id ? 1 : 0}`;
  }

  function buildRow(row) {
    const now = Date.now();
    const pending = (model.get("pending") || {})[row.id] || "";
    const detailOpen = model.get("detail_id") === row.id ? model.get("detail_kind") : "";
    const who = nameOf(row);
    const boxId = uid("sel");
    const check = h("input", { id: boxId, type: "checkbox", checked: selected.has(row.id), dataset: { act: "select", id: row.id } });
    // An icon button: its accessible name says what and which ("Logs of job-1"); a reason
    // makes it aria-disabled (still focusable, so the reason can be read and hovered).
    const act = (name, label, iconName, { reason = null, extra = {} } = {}) => {
      // While an action on the row runs, its buttons are aria-disabled, not disabled: a
      // disabled button drops keyboard focus, and focus must stay where the person acted.
      if (pending && !reason) reason = pending;
      const button = h("button", {
        type: "button", class: "cw-icon", "aria-label": label, title: reason ? `${label}: ${reason}` : label,
        dataset: { act: name, id: row.id }, ...extra,
      }, icon(iconName));
      if (reason) {
        button.setAttribute("aria-disabled", "true");
        button.setAttribute("aria-description", reason);
      }
      return button;
    };

    let connect;
    if (row.status === "Running" && row.url) {
      connect = h("a", { class: "cw-icon cw-linkbutton", href: row.url, target: "_blank", rel: "noopener noreferrer", "aria-label": `Connect to ${who}`, title: `Connect to ${who} (opens a new tab)`, dataset: { act: "connect", id: row.id } }, icon("connect"));
    } else {
      connect = act("connect", `Connect to ${who}`, "connect", { reason: connectReason(row) });
    }
    const expanded = (kind) => ({ "aria-expanded": detailOpen === kind ? "true" : "false", "aria-controls": ids.detail });
    const kept = keptUntil(row.id);
    // Wide tables show every action; narrow ones (a container query) keep Connect and
    // Logs and put the rest in one row menu ("More actions for job-1").
    const actions = [connect,
      act("logs", `Logs of ${who}`, "logs", { extra: expanded("logs") }),
      act("events", `Events of ${who}`, "events", { extra: { ...expanded("events"), class: "cw-icon cw-wide" } }),
      act("renew", `Renew ${who}`, "renew", { reason: renewReason(row), extra: { class: "cw-icon cw-wide" } }),
      act("keep", kept ? `Keep ${who} alive: until ${dateMinutes(kept)}` : `Keep ${who} alive until…`, "keep",
        { reason: renewReason(row), extra: { "aria-pressed": kept ? "true" : "false", class: kept ? "cw-icon cw-wide cw-on" : "cw-icon cw-wide" } })];
    if (!confirming.has(row.id)) {
      actions.push(act("menu", `More actions for ${who}`, "more", {
        extra: { class: "cw-icon cw-narrow", "aria-haspopup": "menu", "aria-expanded": menuFor === row.id ? "true" : "false" } }));
    }
    if (confirming.has(row.id)) {
      actions.push(h("span", { class: "cw-confirm" },
        h("button", { type: "button", class: "cw-danger cw-small", "aria-label": `Confirm: delete ${who}`, dataset: { act: "confirm-delete", id: row.id } }, "Confirm"),
        h("button", { type: "button", class: "cw-small", "aria-label": `Cancel deleting ${who}`, dataset: { act: "cancel-delete", id: row.id } }, "Cancel")));
    } else {
      actions.push(act("delete", `Delete ${who}`, "delete", { extra: { class: "cw-icon cw-wide cw-danger-icon" } }));
    }
    if (pending) actions.push(h("span", { class: "cw-pending" }, pending));

    const startCell = h("td", { class: "cw-col-start", title: absoluteTime(row.start) }, relativeTime(row.start, now));
    const leftCell = h("td", { class: "cw-col-expiry" });
    fillLeft(leftCell, row, now);
    const hiddenFacts = [`ID ${row.id}`, row.image ? `Image ${row.image}` : ""].filter(Boolean).join("\n");
    const tr = h("tr", { dataset: { id: row.id }, class: selected.has(row.id) ? "cw-selected" : null },
      h("td", { class: "cw-col-select" }, srLabel(boxId, `Select ${who}`), check),
      h("td", { role: "rowheader", class: "cw-col-name", title: `${row.name || row.id}\n${hiddenFacts}` }, row.name || ""),
      h("td", { class: "cw-col-id cw-mono" }, row.id),
      h("td", { class: "cw-col-kind" }, row.kind || ""),
      h("td", { class: "cw-col-status" }, h("span", { class: `cw-state cw-state-${row.status}`, title: row.status_text || row.status }, row.status)),
      h("td", { class: "cw-col-image", title: row.image || "" }, row.image_short || shortImage(row.image)),
      h("td", { class: "cw-col-cpu cw-num", title: `${formatCores(row.cpu_used)} cores in use of ${row.cpu_req === null ? "flexible (none fixed)" : formatCores(row.cpu_req)} requested` }, usedOfRequested(row.cpu_used, row.cpu_req, formatCores)),
      h("td", { class: "cw-col-ram cw-num", title: `${formatGiB(row.ram_used)} in use of ${row.ram_req === null ? "flexible (none fixed)" : formatGiB(row.ram_req)} requested` }, usedOfRequested(row.ram_used, row.ram_req, formatGiB)),
      startCell,
      leftCell,
      h("td", { class: "cw-col-actions" }, h("span", { class: "cw-actions" }, actions)));
    tr._cwRow = row;
    tr._cwStamp = stampOf(row);
    tr._cwTimes = [startCell, leftCell];
    return tr;
  }

  // Time left, plus the new expiry as a date (highlighted) just after a renew, and the
  // keep-alive date while one runs.
  function fillLeft(cell, row, now) {
    const left = timeLeft(row.expiry, now);
    const renewed = (model.get("renewed") || {})[row.id];
    const kept = keptUntil(row.id);
    cell.className = `cw-col-expiry cw-left-${left.level}`;
    cell.title = row.expiry ? `Expires ${absoluteTime(row.expiry)}` : "";
    const parts = [row.finished ? "–" : left.text];
    if (!row.finished && renewed && row.expiry) {
      if (!renewedAt.has(row.id)) renewedAt.set(row.id, now);
      parts.push(h("span", { class: "cw-renewed-date" }, `renewed to ${dateMinutes(row.expiry)}`));
      if (now - renewedAt.get(row.id) < RENEWED_HIGHLIGHT_MS) cell.classList.add("cw-renewed");
    }
    if (!row.finished && kept) parts.push(h("span", { class: "cw-kept" }, `kept alive until ${dateMinutes(kept)}`));
    cell.replaceChildren(...parts);
  }

  // The focused control's (action, id), to restore focus after its row is rebuilt.
  function focusKey() {
    const active = root.ownerDocument.activeElement;
    if (!active || !tbody.contains(active) || !active.dataset) return null;
    return { act: active.dataset.act, id: active.dataset.id };
  }
  function restoreFocus(key, preferred) {
    if (!key) return;
    const active = root.ownerDocument.activeElement;
    if (active && tbody.contains(active) && active.dataset.act === (preferred || key.act)) return;
    const tr = rowCache.get(key.id);
    if (!tr || !tr.isConnected) return;
    const pick = (act) => act && tr.querySelector(`[data-act="${act}"]:not([disabled])`);
    const target = pick(preferred) || pick(key.act) || tr.querySelector("input[type=checkbox]");
    if (target) target.focus();
  }

  // -- windowing ------------------------------------------------------------------------
  let rowHeight = 0;
  let bodyOffset = 0; // px from the scroll box's top to the first body row
  let viewport = 0;
  let windowed = false;
  const measure = () => {
    const first = tbody.querySelector("tr[data-id]");
    if (first) rowHeight = first.getBoundingClientRect().height || rowHeight;
    bodyOffset = thead.getBoundingClientRect().bottom - table.getBoundingClientRect().top;
    viewport = scroller.clientHeight;
  };
  // The box's height before it has been laid out: its max-height (styles), which costs a
  // style recalc, not a layout; 600 px if it has none.
  const viewportGuess = () => parseFloat(getComputedStyle(scroller).maxHeight) || 600;
  let scrolled = false; // whether the box has ever scrolled (until then its scrollTop is 0)
  let firstScreen = true; // until the first full sort: the screen only, no overscan
  // toEnd: the last screen of rows, whatever scrollTop the spacers gave.
  const range = (key, toEnd = false) => {
    if (!windowed) return { start: 0, end: passing.length };
    if (key) completeShown(); // the focused row may be anywhere in the sort
    const height = rowHeight || ROW_HEIGHT_GUESS;
    const seen = viewport || viewportGuess();
    // Reading scrollTop lays out the page first: before any scroll it is 0, so the first
    // paint does not pay a layout of its own.
    const top = toEnd ? passing.length * height - seen : (scrolled ? scroller.scrollTop : 0) - bodyOffset;
    const r = windowRange(top, seen, height, passing.length, firstScreen ? 0 : 20);
    if (!key) return r;
    const index = shown.findIndex((row) => row.id === key.id);
    // Keep the focused row in the DOM only when it is near: far away it is out of view anyway.
    return index >= 0 && Math.abs(index - r.start) < 200 ? includeRow(r, index) : r;
  };
  let scrollQueued = false;
  const onScroll = () => {
    scrolled = true;
    if (!windowed || scrollQueued) return;
    scrollQueued = true;
    requestAnimationFrame(() => {
      scrollQueued = false;
      // A person who went to the end wants the last row, even when the spacers were sized
      // with another row height (rows of another kind after a filter, say) and the end
      // they reached is not the rows' end: place the last screen and stay at the end.
      const atEnd = scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 1;
      measure();
      placeRows(null, atEnd);
      if (atEnd) scroller.scrollTop = scroller.scrollHeight;
    });
  };
  scroller.addEventListener("scroll", onScroll, { passive: true });
  // ResizeObserver runs after the browser's own layout, so reading sizes there is free.
  const resizeWatch = typeof ResizeObserver === "function" ? new ResizeObserver(() => {
    if (!windowed) return;
    // Against the height the rows were placed with (the guess at first): a first window
    // placed right is not placed again before it is painted.
    const before = [rowHeight || ROW_HEIGHT_GUESS, viewport || viewportGuess()];
    measure();
    if (Math.abs(before[0] - rowHeight) > 0.5 || viewport > before[1]) placeRows();
  }) : null;
  if (resizeWatch) resizeWatch.observe(scroller);

  // Names that two sessions share, counted once per store version (not per render).
  function countNames() {
    if (namesOf[0] === store.rows && namesOf[1] === store.version) return;
    const seen = new Set();
    const twice = new Set();
    for (const row of store.rows.values()) {
      if (!row.name) continue;
      if (seen.has(row.name)) twice.add(row.name);
      else seen.add(row.name);
    }
    duplicateNames = twice;
    namesOf = [store.rows, store.version];
  }

  // Sorting thousands of rows is the one step of a render that grows faster than the rows:
  // a windowed table at the top sorts only the rows in its window (firstSorted, the same
  // order as the full sort), paints them, and sorts the rest when the page is idle, or at
  // once when something needs them (a scroll, a focused row, Select all).
  let idleId = null;
  let later = 0; // bumped to drop a finish still waiting for its frames
  const idle = typeof requestIdleCallback === "function"
    ? [(fn) => requestIdleCallback(fn, { timeout: 300 }), (id) => cancelIdleCallback(id)]
    : [(fn) => setTimeout(fn, 50), (id) => clearTimeout(id)];
  const cancelIdle = () => {
    later += 1;
    if (idleId !== null) idle[1](idleId);
    idleId = null;
  };
  cleanups.push(cancelIdle);
  function completeShown() {
    if (shownDone) return;
    shown = sortRows(passing, ...sortedBy);
    shownDone = true;
    firstScreen = false;
    cancelIdle();
  }
  function finishLater() {
    cancelIdle();
    const mine = later;
    // Two frames first (the first screen is then on screen), then an idle moment.
    requestAnimationFrame(() => requestAnimationFrame(() => {
      if (mine !== later) return;
      idleId = idle[0](() => {
        idleId = null;
        completeShown();
        placeRows(); // the rows either side of the screen, for scrolling and Tab
      });
    }));
  }

  function renderRows(preferredFocus = null) {
    ({ rows: passing, ...hidden } = filterAndCount([...store.rows.values()], filters()));
    sortedBy = [model.get("sort_by") || "start", Boolean(model.get("sort_desc"))];
    countNames();
    const wasWindowed = windowed;
    windowed = passing.length >= WINDOW_FROM;
    scroller.classList.toggle("cw-windowed", windowed);
    if (windowed && !wasWindowed) viewport = 0;
    const { end } = windowed && !focusKey() ? range(null) : { end: passing.length };
    shownDone = false;
    if (end < passing.length && end <= FIRST_SORTED_MAX) {
      shown = firstSorted(passing, ...sortedBy, end);
      finishLater();
    } else {
      completeShown();
    }
    placeRows(preferredFocus);
    renderChrome();
  }

  // Put rows [start, end) of `shown` in the tbody, reusing built rows (toEnd: see range).
  function placeRows(preferredFocus = null, toEnd = false) {
    const key = focusKey();
    let { start, end } = range(key, toEnd);
    if (end > shown.length) {
      completeShown();
      ({ start, end } = range(key, toEnd));
    }
    const wanted = [];
    const live = new Set();
    const height = rowHeight || ROW_HEIGHT_GUESS;
    if (windowed) {
      topSpacer.firstChild.style.height = `${start * height}px`;
      if (start > 0) wanted.push(topSpacer);
    }
    for (let i = start; i < end; i += 1) {
      const row = shown[i];
      live.add(row.id);
      let tr = rowCache.get(row.id);
      if (!tr || tr._cwRow !== row || tr._cwStamp !== stampOf(row)) {
        const fresh = buildRow(row);
        if (tr && tr.parentNode === tbody) tbody.replaceChild(fresh, tr);
        tr = fresh;
        rowCache.set(row.id, tr);
      }
      if (tr._cwIndex !== i) {
        tr._cwIndex = i;
        tr.setAttribute("aria-rowindex", String(i + 2)); // 1 is the header row
      }
      wanted.push(tr);
    }
    if (windowed && end < passing.length) {
      bottomSpacer.firstChild.style.height = `${(passing.length - end) * height}px`;
      wanted.push(bottomSpacer);
    }
    // Rows out of the window are dropped (rebuilt when scrolled back): the DOM stays
    // bounded by the screen, not the number of sessions.
    for (const id of [...rowCache.keys()]) if (!live.has(id)) rowCache.delete(id);
    if (!passing.length) wanted.push(emptyRow());
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
    table.setAttribute("aria-rowcount", String(passing.length + 1));
    restoreFocus(key, preferredFocus);
  }

  // What an empty table says: loading, none at all, or how many the filters hide and why.
  function emptyRow() {
    const loaded = model.get("last_updated") > 0 || store.rows.size > 0;
    const cell = h("td", { colspan: COLSPAN });
    // A failed first read (a refused login, say) is "Not loaded", not loading for ever: the
    // alert (or a Dashboard's login banner) says why.
    if (!loaded) cell.append(model.get("error") ? "Not loaded." : "Loading sessions…");
    else if (!store.rows.size) cell.append("No sessions.");
    else {
      const { finished, filtered } = hidden;
      const why = [];
      if (finished) why.push(`${finished} finished job${finished === 1 ? " is" : "s are"} hidden by “Hide finished”`);
      if (filtered) why.push(`${filtered} session${filtered === 1 ? " does" : "s do"} not match the kind, status or search filter`);
      cell.append(`No sessions shown: ${why.join("; ") || "none match the filters"}.`);
      if (finished) {
        cell.append(" ", h("button", { type: "button", class: "cw-small", dataset: { act: "show-finished" } }, "Show finished"));
      }
    }
    return h("tr", { class: "cw-empty" }, cell);
  }

  function renderChrome() {
    const rows = passing;
    const total = store.rows.size;
    const { finished } = hidden;
    caption.textContent = `CANFAR sessions: ${rows.length} shown of ${total}` + (finished && rows.length ? ` (${finished} finished hidden)` : "");
    // Prune selection of rows that are gone.
    const pruned = [...selected].filter((id) => store.rows.has(id));
    const loaded = total > 0 || model.get("last_updated") > 0;
    if (pruned.length !== selected.size && loaded) {
      selected = new Set(pruned);
      saveSelection();
    }
    let shownSelected = 0;
    for (const r of rows) if (selected.has(r.id)) shownSelected += 1;
    allBox.checked = rows.length > 0 && shownSelected === rows.length;
    allBox.indeterminate = shownSelected > 0 && shownSelected < rows.length;
    const n = selected.size;
    selCount.textContent = n ? `${n} selected` : "None selected";
    const renewable = renewableSelected();
    renewSelected.disabled = renewable.length === 0;
    renewSelected.title = n && !renewable.length ? "None of the selected sessions can be renewed (headless, finished or being deleted)" : "";
    renewSelected.textContent = n && renewable.length !== n ? `Renew ${renewable.length} of ${n}` : "Renew selected";
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

  function renewableSelected() {
    const out = [];
    for (const id of selected) {
      const row = store.rows.get(id);
      if (row && !renewReason(row)) out.push(id);
    }
    return out;
  }

  function renderStatus() {
    const err = model.get("error") || "";
    alert.textContent = err;
    root.classList.toggle("cw-has-error", Boolean(err));
    const last = model.get("last_updated");
    updated.textContent = last ? `Updated ${clockTime(last)}` : "";
    updated.title = last ? absoluteTime(last) : "";
    // One message per event: an error is said once, in the alert, not again in the status.
    const text = model.get("status") || "";
    status.textContent = err && text === err ? "" : text;
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

  // -- keep alive editor ----------------------------------------------------------------
  const localInput = (epoch) => {
    const d = new Date(epoch * 1000);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  };
  function openKeep(id) {
    const row = store.rows.get(id);
    if (!row) return;
    keepFor = id;
    const kept = keptUntil(id);
    keepLabel.textContent = `Keep ${nameOf(row)} alive until`;
    keepInput.value = localInput(kept || Date.now() / 1000 + 24 * 3600);
    keepInput.min = localInput(Date.now() / 1000);
    keepStop.hidden = !kept;
    keepForm.hidden = false;
    renderRows();
    keepInput.focus();
  }
  function closeKeep(focusRow = true) {
    const id = keepFor;
    keepFor = "";
    keepForm.hidden = true;
    renderRows();
    if (focusRow && id) {
      const tr = rowCache.get(id);
      const button = tr && tr.querySelector('[data-act="keep"]');
      if (button) button.focus();
    }
  }

  // -- detail child view ----------------------------------------------------------------
  function renderDetailHead() {
    const id = model.get("detail_id") || "";
    const kind = model.get("detail_kind") || "";
    const open = Boolean(id && kind);
    detailPanel.hidden = !open;
    if (!open) return;
    const row = store.rows.get(id);
    const who = row ? nameOf(row) : id;
    const what = kind === "logs" ? "Logs" : "Events";
    detailTitle.textContent = `${what}: ${who}`;
    detailClose.setAttribute("aria-label", `Close ${what.toLowerCase()} of ${who}`);
    detailClose.title = `Close ${what.toLowerCase()} of ${who}`;
  }

  async function renderDetail() {
    renderDetailHead();
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
  // Says "Waiting for the kernel" by the clicked control if the click waits in its queue.
  const kernel = kernelActions(model);
  cleanups.push(() => kernel.dispose());
  on(refreshButton, "click", () => kernel.send(refreshButton, { kind: "refresh" }));
  on(allBox, "change", () => {
    if (allBox.checked) for (const r of passing) selected.add(r.id);
    else for (const r of passing) selected.delete(r.id);
    saveSelection();
    renderRows();
  });
  on(renewSelected, "click", () => {
    const chosen = renewableSelected();
    if (chosen.length) kernel.send(renewSelected, { kind: "renew", ids: chosen });
  });
  on(deleteSelected, "click", () => setBulkConfirm(true));
  on(bulkCancelButton, "click", () => {
    setBulkConfirm(false);
    deleteSelected.focus();
  });
  on(bulkConfirmButton, "click", () => {
    const chosen = [...selected];
    setBulkConfirm(false);
    if (chosen.length) kernel.send(deleteSelected, { kind: "delete", ids: chosen });
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
  // Focus a row's control by action (after a rebuild, or coming back from the menu).
  const focusAct = (id, ...acts) => {
    const tr = rowCache.get(id);
    for (const a of acts) {
      const target = tr && [...tr.querySelectorAll(`[data-act="${a}"]`)].find((e) => !e.disabled && e.getClientRects().length);
      if (target) {
        target.focus();
        return;
      }
    }
  };
  function doAct(actName, id, button) {
    switch (actName) {
      case "logs":
      case "events":
        // Focus stays where the person acted (the row is rebuilt when the panel opens).
        if (button && button.isConnected) button.focus();
        kernel.send(button || refreshButton, { kind: "detail", id, view: actName });
        break;
      case "menu":
        if (menuFor === id) closeMenu(true);
        else openMenu(id, button);
        break;
      case "renew":
        kernel.send(button || refreshButton, { kind: "renew", ids: [id] });
        break;
      case "keep":
        if (keepFor === id) closeKeep();
        else openKeep(id);
        break;
      case "delete":
        confirming.add(id);
        renderRows("cancel-delete");
        focusAct(id, "cancel-delete");
        break;
      case "cancel-delete":
        confirming.delete(id);
        renderRows("delete");
        focusAct(id, "delete", "menu");
        break;
      case "confirm-delete":
        confirming.delete(id);
        kernel.send(button || refreshButton, { kind: "delete", ids: [id] });
        renderRows("delete");
        focusAct(id, "delete", "menu");
        break;
      case "show-finished":
        save({ hide_finished: false });
        hideBox.focus();
        break;
      default:
    }
  }
  on(tbody, "click", (event) => {
    const button = event.target.closest("button[data-act]");
    if (!button || button.disabled || button.getAttribute("aria-disabled") === "true") return;
    doAct(button.dataset.act, button.dataset.id, button);
  });

  // -- row menu -----------------------------------------------------------------------
  function openMenu(id, button) {
    const row = store.rows.get(id);
    if (!row) return;
    const who = nameOf(row);
    const reason = renewReason(row);
    const kept = keptUntil(id);
    const item = (actName, label, why = null) => {
      const b = h("button", { type: "button", role: "menuitem", class: "cw-menuitem", dataset: { act: actName, id }, title: why || null }, label);
      if (why) {
        b.setAttribute("aria-disabled", "true");
        b.setAttribute("aria-description", why);
        b.append(h("span", { class: "cw-muted cw-why" }, why));
      }
      return b;
    };
    menu.replaceChildren(
      item("events", `Events of ${who}`),
      item("renew", `Renew ${who}`, reason),
      item("keep", kept ? `Keep ${who} alive: until ${dateMinutes(kept)}` : `Keep ${who} alive until…`, reason),
      item("delete", `Delete ${who}`));
    menu.setAttribute("aria-label", `Actions for ${who}`);
    menuFor = id;
    menu.hidden = false;
    // Under the button, right-aligned with it; above it when there is no room below inside
    // the widget (the output area would clip it, or grow a scrollbar for it).
    const box = root.getBoundingClientRect();
    const at = button.getBoundingClientRect();
    const height = menu.offsetHeight;
    const below = at.bottom - box.top + 2;
    const above = at.top - box.top - height - 2;
    menu.style.top = `${below + height <= box.height || above < 0 ? below : above}px`;
    menu.style.right = `${Math.max(0, box.right - at.right)}px`;
    renderRows();
    const first = menu.querySelector('[role="menuitem"]:not([aria-disabled="true"])');
    if (first) first.focus();
  }
  function closeMenu(returnFocus) {
    if (!menuFor) return;
    const id = menuFor;
    menuFor = "";
    menu.hidden = true;
    menu.replaceChildren();
    renderRows();
    if (returnFocus) focusAct(id, "menu");
  }
  on(menu, "click", (event) => {
    const button = event.target.closest("button[data-act]");
    if (!button || button.getAttribute("aria-disabled") === "true") return;
    const id = button.dataset.id;
    closeMenu(false);
    const rowButton = rowCache.get(id) && rowCache.get(id).querySelector('[data-act="menu"]');
    doAct(button.dataset.act, id, rowButton);
    if (button.dataset.act !== "delete" && button.dataset.act !== "keep") focusAct(id, "menu");
  });
  on(menu, "keydown", (event) => {
    const items = [...menu.querySelectorAll('[role="menuitem"]')];
    const at = items.indexOf(root.ownerDocument.activeElement);
    if (event.key === "Escape" || event.key === "Tab") {
      event.stopPropagation();
      if (event.key === "Escape") event.preventDefault();
      closeMenu(true);
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      items[(at + step + items.length) % items.length].focus();
    } else if (event.key === "Home" || event.key === "End") {
      event.preventDefault();
      items[event.key === "Home" ? 0 : items.length - 1].focus();
    }
  });
  const outside = (event) => {
    if (menuFor && !menu.contains(event.target) && !event.target.closest?.('[data-act="menu"]')) closeMenu(false);
  };
  root.ownerDocument.addEventListener("pointerdown", outside, true);
  cleanups.push(() => root.ownerDocument.removeEventListener("pointerdown", outside, true));
  on(tbody, "keydown", (event) => {
    if (event.key !== "Escape") return;
    const tr = event.target.closest("tr[data-id]");
    if (tr && confirming.has(tr.dataset.id)) {
      event.stopPropagation();
      confirming.delete(tr.dataset.id);
      renderRows("delete");
    }
  });
  on(detailClose, "click", () => {
    const id = model.get("detail_id");
    const kind = model.get("detail_kind");
    kernel.send(detailClose, { kind: "close_detail" });
    // Back to the button that opened the panel, where the person was.
    const tr = rowCache.get(id);
    const button = tr && tr.querySelector(`[data-act="${kind}"]`);
    if (button) button.focus();
  });
  on(keepStart, "click", () => {
    const when = keepInput.value ? new Date(keepInput.value).getTime() / 1000 : NaN;
    if (!Number.isFinite(when) || when <= Date.now() / 1000) {
      keepHint.textContent = "Choose a date and time in the future.";
      keepInput.setAttribute("aria-invalid", "true");
      keepInput.focus();
      return;
    }
    keepInput.removeAttribute("aria-invalid");
    model.send({ kind: "keep_alive", ids: [keepFor], until: when });
    closeKeep();
  });
  on(keepStop, "click", () => {
    model.send({ kind: "keep_alive", ids: [keepFor], until: null });
    closeKeep();
  });
  on(keepCancel, "click", () => closeKeep());
  on(keepForm, "keydown", (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      closeKeep();
    }
  });

  const onSnapshot = () => {
    if (applySnapshot(store, model.get("rows") || [], model.get("rows_version"))) renderRows();
  };
  const onMessage = (msg) => {
    if (!msg || msg.kind !== "patch") return;
    const result = applyPatch(store, msg);
    if (result === "applied") {
      renderRows();
      renderDetailHead();
    } else if (result === "gap") model.send({ kind: "snapshot", have: store.version });
  };
  cleanups.push(listen(model, ["rows", "rows_version"], onSnapshot));
  cleanups.push(() => {
    scroller.removeEventListener("scroll", onScroll);
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
  cleanups.push(listen(model, ["pending", "detail_id", "detail_kind", "renewed", "kept_alive"], () => {
    renderRows();
    renderDetailHead();
  }));
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
      fillLeft(leftCell, row, now);
    }
  }, 30000);
  cleanups.push(() => clearInterval(ticker));

  cleanups.push(isolateKeys(root));
  cleanups.push(reportVisibility(model, root, view));

  // "Notify me" (lib/notify.js, batch-view lane): a session Running, an hour before expiry.
  const notifier = createNotifier(model, { what: "your interactive sessions" });
  const noteRows = ((track) => () => track([...store.rows.values()]))(trackSessions(notifier));
  bulkbar.insertBefore(notifier.el, updated);
  root.insertBefore(notifier.inbox, scroller);
  const noteTimer = setInterval(noteRows, 60000);
  cleanups.push(notifier.cleanup, listen(model, ["msg:custom", "rows_version"], noteRows), () => clearInterval(noteTimer));

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
