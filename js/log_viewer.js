// LogViewer view: one <pre> per view, filled with styled spans built with textContent
// (log text is never parsed as HTML). Follow mode appends only new text from
// {kind: "append"} messages; the whole text is re-rendered only when the session, the
// search or the cap changes, or when the kept text was replaced.

import { h, isolateKeys, listen, reportVisibility, statusParts, uid, debounce, bindStatus } from "./lib/dom.js";
import { parseAnsi, stateStyle, stripAnsi, ANSI_RESET } from "./lib/ansi.js";
import {
  findMatches, logFileName, markSegments, matchCountText, splitChunks, tailLines,
} from "./lib/log_text.js";
import { copyText, downloadText } from "./lib/copy.js";

const CHUNK_LINES = 200; // lines per DOM chunk: the cap drops whole chunks from the top

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
    shown.chunks.push({ el: span, lines, matches: matches.length });
    shown.lines += lines;
    shown.matches += matches.length;
    return span;
  };

  // Drop whole chunks from the top while the rest still fills the cap.
  const trim = () => {
    if (showAll || !maxLines()) return;
    while (shown.chunks.length > 1 && shown.lines - shown.chunks[0].lines >= maxLines()) {
      const first = shown.chunks.shift();
      first.el.remove();
      shown.lines -= first.lines;
      shown.hidden += first.lines;
      shown.matches -= first.matches;
    }
  };

  const renderAll = () => {
    const id = selected();
    const text = (acc[id] && acc[id].text) || "";
    const tail = showAll ? { text, hidden: 0 } : tailLines(text, maxLines());
    shown = { id, chunks: [], lines: 0, hidden: tail.hidden, ansi: ANSI_RESET, rest: "", matches: 0 };
    currentMark = -1;
    const fragment = document.createDocumentFragment();
    for (const piece of splitChunks(tail.text, CHUNK_LINES)) fragment.append(buildChunk(piece));
    pre.replaceChildren(fragment);
    pre.setAttribute("aria-label", `Logs of ${id || "no session"}`);
    updateInfo();
    if (model.get("follow")) pre.scrollTop = pre.scrollHeight;
  };

  const appendText = (text) => {
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
    for (const piece of splitChunks(text, CHUNK_LINES)) pre.append(buildChunk(piece));
    trim();
    updateInfo();
    if (atBottom && model.get("follow")) pre.scrollTop = pre.scrollHeight;
  };

  const updateInfo = () => {
    const id = selected();
    const states = model.get("states") || {};
    const parts = [];
    if (states[id]) parts.push(states[id] === "missing" ? "Session not found" : states[id]);
    if (model.get("following")) parts.push("following");
    const dropped = (model.get("dropped") || {})[id];
    if (dropped) parts.push("older output dropped");
    if (!(acc[id] && acc[id].text)) parts.push("no output yet");
    if (shown.hidden > 0) parts.push(`showing the last ${shown.lines} lines (${shown.hidden} earlier hidden)`);
    info.textContent = parts.join(" · ");
    showAllButton.hidden = !(shown.hidden > 0 || showAll);
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
    mark.scrollIntoView({ block: "center" });
    searchCount.textContent = `${matchCountText(shown.matches)} (${currentMark + 1} shown)`;
  };

  // -- model -> view -----------------------------------------------------------------------------
  const fillSessions = () => {
    const ids = model.get("ids") || [];
    sessionSelect.replaceChildren(...ids.map((id) => h("option", { value: id }, id)));
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
    held.text += msg.text;
    held.end += msg.text.length;
    const cap = model.get("max_chars");
    if (cap && held.text.length > cap * 1.1) {
      const cut = held.text.indexOf("\n", held.text.length - cap);
      held.text = held.text.slice(cut === -1 ? held.text.length - cap : cut + 1);
    }
    if (msg.id === selected() && shown.id === msg.id) appendText(msg.text);
  };

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
  refreshButton.addEventListener("click", () => model.send({ kind: "refresh" }));
  const plainText = () => stripAnsi((acc[selected()] && acc[selected()].text) || "");
  copyButton.addEventListener("click", async () => {
    const ok = await copyText(plainText(), root);
    status.textContent = ok ? "Copied the log." : "Copy failed: select the text and copy it by hand.";
  });
  downloadButton.addEventListener("click", () => {
    downloadText(plainText(), logFileName(selected()));
    status.textContent = `Downloaded ${logFileName(selected())}.`;
  });
  showAllButton.addEventListener("click", () => {
    showAll = !showAll;
    renderAll();
    showAllButton.focus();
  });

  // -- wiring -------------------------------------------------------------------------------------------
  fillSessions();
  syncControls();
  takeTexts();
  renderAll();
  const cleanups = [
    isolateKeys(root),
    reportVisibility(model, root),
    listen(model, ["ids"], () => { fillSessions(); renderAll(); }),
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
    for (const cleanup of cleanups) cleanup();
  };
}

export default { render };
