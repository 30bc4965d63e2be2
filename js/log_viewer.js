// LogViewer view: one <pre> per view, filled with styled spans built with textContent
// (log text is never parsed as HTML). Follow mode appends only new text from
// {kind: "append"} messages; the whole text is re-rendered only when the session, the
// search or the cap changes, or when the kept text was replaced. Appended text is built
// into the DOM a few chunks per animation frame, and text that the max_lines cap would
// trim at once is never built at all, so a big append never stalls a frame.

import { h, isolateKeys, listen, reportVisibility, statusParts, uid, debounce, bindStatus } from "./lib/dom.js";
import { parseAnsi, stateStyle, stripAnsi, ANSI_RESET } from "./lib/ansi.js";
import {
  findMatches, logFileName, markSegments, matchCountText, sessionLabels, splitChunks, tailLines,
} from "./lib/log_text.js";
import { copyText, downloadText } from "./lib/copy.js";
import { kernelActions } from "./lib/busy.js";

const CHUNK_LINES = 200; // lines per DOM chunk: the cap drops whole chunks from the top
const FRAME_BUDGET_MS = 8; // DOM building per animation frame while appends queue up
// ... and chunks per frame: the browser's layout of new lines costs more than building them.
const FRAME_CHUNKS = 1;
// A scroll up this soon after the person's own wheel, touch, key or pointer stops following.
const USER_SCROLL_MS = 1000;

function newlines(text) {
  let n = 0;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) n++;
  return n;
}

function render({ model, el }) {
  const base = uid("cw-log");
  const acc = {}; // id -> {text, end}: what this view holds (may run ahead of the trait)
  let shown = { id: null, chunks: [], lines: 0, hidden: 0, ansi: ANSI_RESET, rest: "", matches: 0 };
  let showAll = false;
  let currentMark = -1;
  let resyncAsked = 0;
  let queue = []; // appended chunks not yet in the DOM (for shown.id)
  let queuedLines = 0;
  let frame = 0;
  let stick = true; // the view is scrolled to the bottom: follow keeps it there
  let autoTop = 0; // the scrollTop this view last set itself
  let wantAll = null; // {id, purpose} while the whole log is being fetched

  // -- controls ------------------------------------------------------------------------------
  const sessionSelect = h("select", { id: `${base}-session` });
  const sessionField = h("span", { class: "cw-log-field" },
    h("label", { for: sessionSelect.id }, "Session"), sessionSelect);
  const searchInput = h("input", { type: "search", id: `${base}-search`, autocomplete: "off", spellcheck: "false", placeholder: "text in the log" });
  const searchCount = h("span", { class: "cw-log-count cw-muted", id: `${base}-count`, "aria-live": "polite" });
  searchInput.setAttribute("aria-describedby", searchCount.id);
  const followBox = h("input", { type: "checkbox", id: `${base}-follow` });
  const wrapBox = h("input", { type: "checkbox", id: `${base}-wrap` });
  const refreshButton = h("button", { type: "button" }, "Refresh");
  const copyButton = h("button", { type: "button" }, "Copy");
  const downloadButton = h("button", { type: "button" }, "Download");
  const showAllButton = h("button", { type: "button", class: "cw-log-showall", hidden: true });
  const info = h("span", { class: "cw-log-info cw-muted" });
  const pre = h("pre", { class: "cw-log-pre", tabindex: "0" });
  const { alert, status } = statusParts();

  const root = h("div", { class: "canfar-w cw-logs" },
    h("div", { class: "cw-log-toolbar" },
      sessionField,
      h("span", { class: "cw-log-field" },
        h("label", { for: searchInput.id }, "Search"), searchInput, searchCount),
      h("span", { class: "cw-log-check" }, followBox, h("label", { for: followBox.id }, "Follow")),
      h("span", { class: "cw-log-check" }, wrapBox, h("label", { for: wrapBox.id }, "Wrap lines")),
      refreshButton, copyButton, downloadButton),
    h("div", { class: "cw-log-infobar" }, info, showAllButton),
    pre, status, alert);
  el.append(root);

  const labels = () => sessionLabels(model.get("ids") || [], model.get("names") || {});
  const labelOf = (id) => labels()[id] || id || "no session";
  const selected = () => {
    const ids = model.get("ids") || [];
    const id = model.get("selected");
    return ids.includes(id) ? id : ids[0];
  };
  const maxLines = () => model.get("max_lines") || 0;
  const query = () => searchInput.value;

  // -- building the <pre> --------------------------------------------------------------------------
  // One chunk: a <span> holding styled pieces; search matches become <mark>s.
  const buildChunk = (text) => {
    const before = { ansi: shown.ansi, rest: shown.rest };
    const parsed = parseAnsi(shown.rest + text, shown.ansi);
    shown.ansi = parsed.state;
    shown.rest = parsed.rest;
    const plain = parsed.segments.map((s) => s.text).join("");
    const matches = findMatches(plain, query());
    const pieces = markSegments(parsed.segments, matches);
    const span = h("span", { class: "cw-log-chunk" });
    for (const piece of pieces) {
      const style = stateStyle(piece.state);
      let node;
      if (style.classes.length || style.color || style.background) {
        node = h("span", { class: style.classes.join(" ") || null, text: piece.text });
        if (style.color) node.style.color = style.color;
        if (style.background) node.style.backgroundColor = style.background;
      } else {
        node = document.createTextNode(piece.text);
      }
      if (piece.mark >= 0) node = h("mark", { class: "cw-log-mark" }, node);
      span.append(node);
    }
    const lines = newlines(plain);
    // A chunk is a block: a line still being written stays in the last one, rebuilt with
    // its continuation when that arrives (see takeBackPartial).
    const partial = !text.endsWith("\n");
    shown.chunks.push({ el: span, lines, matches: matches.length, partial, text, before });
    shown.lines += lines;
    shown.matches += matches.length;
    return span;
  };

  // Drop whole chunks from the top while the rest still fills the cap (and chunks of text
  // that a later append superseded, a few a frame).
  const trim = () => {
    let stale = 0;
    while (shown.chunks.length > 1 && shown.chunks[0].stale && stale++ < 4 * FRAME_CHUNKS) {
      const first = shown.chunks.shift();
      first.el.remove();
      shown.lines -= first.lines;
      shown.matches -= first.matches;
    }
    if (showAll || !maxLines()) return;
    while (shown.chunks.length > 1 && shown.lines - shown.chunks[0].lines >= maxLines()) {
      const first = shown.chunks.shift();
      first.el.remove();
      shown.lines -= first.lines;
      shown.hidden += first.lines;
      shown.matches -= first.matches;
    }
  };

  // Text the cap would trim at once: only its colour state is carried on, nothing is built.
  const skip = (text) => {
    if (text.indexOf("\x1b") !== -1 || shown.rest) {
      const parsed = parseAnsi(shown.rest + text, shown.ansi);
      shown.ansi = parsed.state;
      shown.rest = parsed.rest;
    }
    shown.hidden += newlines(text);
  };

  const dropQueued = () => {
    if (showAll || !maxLines()) return;
    while (queue.length > 1 && queuedLines - queue[0].lines >= maxLines()) {
      const first = queue.shift();
      queuedLines -= first.lines;
      skip(first.text);
    }
    // The chunks already shown go as the new ones come in (trim, a few per frame): removing
    // thousands of lines at once stalls a frame as much as adding them.
  };

  const pump = () => {
    frame = 0;
    const started = performance.now();
    const fragment = document.createDocumentFragment();
    let built = 0;
    while (queue.length && built++ < FRAME_CHUNKS && performance.now() - started < FRAME_BUDGET_MS) {
      const next = queue.shift();
      queuedLines -= next.lines;
      fragment.append(buildChunk(next.text));
    }
    pre.append(fragment);
    trim();
    updateInfo();
    if (stick && model.get("follow")) toBottom();
    if (queue.length) frame = requestAnimationFrame(pump);
  };

  const toBottom = () => {
    pre.scrollTop = pre.scrollHeight;
    autoTop = pre.scrollTop;
  };

  const clearQueue = () => {
    queue = [];
    queuedLines = 0;
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
  };

  const renderAll = (override) => {
    clearQueue();
    const id = selected();
    const text = override !== undefined ? override : (acc[id] && acc[id].text) || "";
    const tail = showAll ? { text, hidden: 0 } : tailLines(text, maxLines());
    shown = { id, chunks: [], lines: 0, hidden: tail.hidden, ansi: ANSI_RESET, rest: "", matches: 0 };
    currentMark = -1;
    const fragment = document.createDocumentFragment();
    for (const piece of splitChunks(tail.text, CHUNK_LINES)) fragment.append(buildChunk(piece));
    pre.replaceChildren(fragment);
    pre.setAttribute("aria-label", `Logs of ${labelOf(id)}`);
    pre.title = id ? `session ${id}` : "";
    updateInfo();
    if (model.get("follow")) {
      stick = true;
      toBottom();
    }
  };

  // The unfinished last line, if any, comes back out of the DOM (or the queue) so that it
  // is built again together with the rest of its line.
  const takeBackPartial = () => {
    const queued = queue[queue.length - 1];
    if (queued && !queued.text.endsWith("\n")) {
      queue.pop();
      return queued.text;
    }
    const last = shown.chunks[shown.chunks.length - 1];
    if (queue.length || !last || !last.partial) return "";
    shown.chunks.pop();
    last.el.remove();
    shown.lines -= last.lines;
    shown.matches -= last.matches;
    shown.ansi = last.before.ansi;
    shown.rest = last.before.rest;
    return last.text;
  };

  // fresh: the text does not follow what is shown (the kernel's cap left some out between).
  const appendText = (added, fresh = false) => {
    if (fresh) {
      clearQueue();
      for (const chunk of shown.chunks) chunk.stale = true;
      shown.ansi = ANSI_RESET;
      shown.rest = "";
    }
    const text = (fresh ? "" : takeBackPartial()) + added;
    for (const piece of splitChunks(text, CHUNK_LINES)) {
      const lines = newlines(piece);
      queue.push({ text: piece, lines });
      queuedLines += lines;
    }
    dropQueued();
    if (!frame) frame = requestAnimationFrame(pump);
  };

  const updateInfo = () => {
    const id = selected();
    const states = model.get("states") || {};
    const parts = [];
    // A session the platform does not know: the status line says so, once; nothing here.
    const missing = states[id] === "missing";
    if (states[id] && !missing) parts.push(states[id]);
    if (model.get("following") && !missing) parts.push("following");
    const dropped = (model.get("dropped") || {})[id];
    if (dropped && !showAll) parts.push("older output dropped");
    if (!missing && states[id] && !(acc[id] && acc[id].text)) parts.push("no output yet");
    if (wantAll && wantAll.id === id) parts.push("fetching the whole log...");
    if (shown.hidden > 0) parts.push(`showing the last ${shown.lines} lines (${shown.hidden} earlier hidden)`);
    info.textContent = parts.join(" · ");
    showAllButton.hidden = !(shown.hidden > 0 || showAll || droppedOf(id) > 0);
    showAllButton.textContent = showAll ? `Show the last ${maxLines()} lines` : "Show all";
    searchCount.textContent = query() ? matchCountText(shown.matches) : "";
  };

  // Enter / Shift+Enter in the search box walks through the matches.
  const gotoMatch = (step) => {
    const marks = pre.querySelectorAll("mark.cw-log-mark");
    if (!marks.length) return;
    if (currentMark >= 0 && marks[currentMark]) marks[currentMark].classList.remove("cw-log-current");
    currentMark = (currentMark + step + marks.length) % marks.length;
    const mark = marks[currentMark];
    mark.classList.add("cw-log-current");
    stick = false; // the person asked to see this match: follow must not pull the view away
    mark.scrollIntoView({ block: "center" });
    searchCount.textContent = `${matchCountText(shown.matches)} (${currentMark + 1} shown)`;
  };

  // -- model -> view -----------------------------------------------------------------------------
  const fillSessions = () => {
    const ids = model.get("ids") || [];
    const names = labels();
    // Names as the person gave them; the id on hover.
    sessionSelect.replaceChildren(...ids.map((id) => h("option", { value: id, title: `session ${id}` }, names[id])));
    sessionSelect.title = selected() ? `session ${selected()}` : "";
    sessionSelect.value = selected() || "";
    sessionField.hidden = ids.length < 2;
  };

  // Take the traits' texts where they differ from what this view holds.
  const takeTexts = () => {
    const texts = model.get("texts") || {};
    const ends = model.get("ends") || {};
    let redraw = false;
    for (const [id, text] of Object.entries(texts)) {
      if (!acc[id] || acc[id].end !== ends[id]) {
        acc[id] = { text, end: ends[id] };
        if (id === selected()) redraw = true;
      }
    }
    if (redraw) renderAll();
    else updateInfo();
  };

  const onMessage = (msg) => {
    if (msg && msg.kind === "all") return takeAll(msg);
    if (!msg || msg.kind !== "append") return;
    const held = acc[msg.id];
    if (!held || held.end !== msg.start) {
      // A gap (this view opened mid-stream, or a message was lost): ask for the full text.
      const now = Date.now();
      if (now - resyncAsked > 1000) {
        resyncAsked = now;
        model.send({ kind: "resync" });
      }
      return;
    }
    const skip = msg.skip || 0;
    held.text = skip ? msg.text : held.text + msg.text;
    held.end += skip + msg.text.length;
    const cap = model.get("max_chars");
    if (cap && held.text.length > cap * 1.1) {
      const cut = held.text.indexOf("\n", held.text.length - cap);
      held.text = held.text.slice(cut === -1 ? held.text.length - cap : cut + 1);
    }
    if (msg.id === selected() && shown.id === msg.id) appendText(msg.text, skip > 0);
  };

  // The whole log, read by the kernel on request (it keeps only the capped text).
  const takeAll = (msg) => {
    const asked = wantAll;
    wantAll = null;
    if (!asked || asked.id !== msg.id) return updateInfo();
    if (asked.purpose === "download") {
      saveLog(msg.id, stripAnsi(msg.text || ""));
      return updateInfo();
    }
    if (msg.id === selected() && showAll) renderAll(msg.text || "");
  };
  const saveLog = (id, text) => {
    const file = logFileName(labelOf(id));
    downloadText(text, file);
    status.textContent = `Downloaded ${file}.`;
  };
  const droppedOf = (id) => (model.get("dropped") || {})[id] || 0;

  const syncControls = () => {
    followBox.checked = Boolean(model.get("follow"));
    wrapBox.checked = Boolean(model.get("wrap"));
    pre.classList.toggle("cw-log-wrap", wrapBox.checked);
    if (document.activeElement !== searchInput && searchInput.value !== (model.get("search") || "")) {
      searchInput.value = model.get("search") || "";
      renderAll(); // another view (or Python) changed the search
    }
    const busy = Boolean(model.get("busy"));
    refreshButton.disabled = busy;
  };


  // -- view -> model --------------------------------------------------------------------------------
  sessionSelect.addEventListener("change", () => {
    sessionSelect.title = `session ${sessionSelect.value}`;
    model.set("selected", sessionSelect.value);
    model.save_changes();
    showAll = false;
    renderAll();
  });
  const saveSearch = debounce(() => {
    model.set("search", searchInput.value);
    model.save_changes();
  }, 300);
  const rerunSearch = debounce(renderAll, 150);
  searchInput.addEventListener("input", () => {
    rerunSearch();
    saveSearch();
  });
  searchInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      rerunSearch.cancel();
      if (!pre.querySelector("mark.cw-log-mark") && query()) renderAll();
      gotoMatch(event.shiftKey ? -1 : 1);
    }
  });
  followBox.addEventListener("change", () => {
    model.set("follow", followBox.checked);
    model.save_changes();
  });
  wrapBox.addEventListener("change", () => {
    model.set("wrap", wrapBox.checked);
    model.save_changes();
    pre.classList.toggle("cw-log-wrap", wrapBox.checked);
  });
  const actions = kernelActions(model); // says "Waiting for the kernel" if the click waits
  refreshButton.addEventListener("click", () => actions.send(refreshButton, { kind: "refresh" }));
  const plainText = () => stripAnsi((acc[selected()] && acc[selected()].text) || "");
  copyButton.addEventListener("click", async () => {
    const ok = await copyText(plainText(), root);
    status.textContent = ok ? "Copied the log." : "Copy failed: select the text and copy it by hand.";
  });
  downloadButton.addEventListener("click", () => {
    const id = selected();
    if (droppedOf(id) > 0) {
      // Older output was dropped by the kernel's cap: fetch the whole log for the file.
      wantAll = { id, purpose: "download" };
      actions.send(downloadButton, { kind: "show_all", id, purpose: "download" });
      updateInfo();
      return;
    }
    saveLog(id, plainText());
  });
  showAllButton.addEventListener("click", () => {
    showAll = !showAll;
    const id = selected();
    if (showAll && droppedOf(id) > 0) {
      wantAll = { id, purpose: "show" };
      actions.send(showAllButton, { kind: "show_all", id, purpose: "show" });
    } else {
      wantAll = null;
    }
    renderAll();
    showAllButton.focus();
  });
  // Scroll events arrive a frame late, maybe after more lines were appended: only a move
  // up from where this view scrolled itself means the person is reading further up.
  // A new width or theme reflows the lines: a view that was at the end stays there.
  const resized = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(() => {
    if (stick && model.get("follow")) toBottom();
  });
  if (resized) resized.observe(pre);
  // Only a person stops following: a scroll up soon after their wheel, touch, key or
  // pointer in the box. A reflow (new width or theme, lines sized as they come into view,
  // the browser's scroll anchoring) also moves scrollTop up, and must not.
  let touchedAt = -Infinity;
  const touched = () => {
    touchedAt = performance.now();
  };
  for (const kind of ["wheel", "touchmove", "keydown", "pointerdown"]) {
    pre.addEventListener(kind, touched, { passive: true });
  }
  pre.addEventListener("scroll", () => {
    if (pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8) stick = true;
    else if (pre.scrollTop < autoTop - 2 && performance.now() - touchedAt < USER_SCROLL_MS) stick = false;
    else if (stick && model.get("follow")) toBottom();
  });

  // -- wiring -------------------------------------------------------------------------------------------
  fillSessions();
  syncControls();
  takeTexts();
  renderAll();
  const cleanups = [
    () => actions.dispose(),
    isolateKeys(root),
    reportVisibility(model, root),
    listen(model, ["ids", "names"], () => { fillSessions(); renderAll(); }),
    listen(model, ["selected"], () => { sessionSelect.value = selected() || ""; renderAll(); }),
    listen(model, ["texts", "ends"], takeTexts),
    listen(model, ["states", "following", "dropped"], updateInfo),
    listen(model, ["max_lines"], renderAll),
    listen(model, ["follow", "wrap", "search", "busy"], syncControls),
    bindStatus(model, { alert, status }),
    listen(model, ["msg:custom"], onMessage),
  ];
  return () => {
    saveSearch.cancel();
    rerunSearch.cancel();
    clearQueue();
    if (resized) resized.disconnect();
    for (const cleanup of cleanups) cleanup();
  };
}

export default { render };
