// A small ANSI SGR parser for log text: colours and styles become CSS classes on
// segments, every other escape sequence is dropped. Pure logic, no DOM: the log viewer
// turns segments into <span>s with textContent, so raw log text never meets innerHTML.
//
// Streaming: parseAnsi(text, state) returns the state after the text and any incomplete
// escape sequence at the end ("rest"), so a follow-mode append that splits "\x1b[3" | "1m"
// across two polls still colours correctly.

const ESC = "\x1b";

// The state after a reset ("\x1b[0m"): no colour, no style.
export const ANSI_RESET = Object.freeze({
  fg: null, // 0-15 (a class) or "rgb(r,g,b)" (an inline colour from 38;2 / 38;5;n>15)
  bg: null,
  bold: false,
  dim: false,
  italic: false,
  underline: false,
  inverse: false,
  strike: false,
});

// The xterm 256-colour cube and grey ramp, for 38;5;n with n >= 16.
function xterm256(n) {
  if (n < 232) {
    const i = n - 16;
    const level = (v) => (v === 0 ? 0 : 55 + v * 40);
    return `rgb(${level(Math.floor(i / 36))},${level(Math.floor(i / 6) % 6)},${level(i % 6)})`;
  }
  const grey = 8 + (n - 232) * 10;
  return `rgb(${grey},${grey},${grey})`;
}

function byte(v) {
  const n = Number(v);
  return Number.isFinite(n) ? Math.max(0, Math.min(255, Math.trunc(n))) : 0;
}

// Apply one SGR parameter list (numbers) to a state; returns a new state.
export function applySgr(state, params) {
  const s = { ...state };
  if (params.length === 0) params = [0];
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    if (p === 0) Object.assign(s, ANSI_RESET);
    else if (p === 1) s.bold = true;
    else if (p === 2) s.dim = true;
    else if (p === 3) s.italic = true;
    else if (p === 4) s.underline = true;
    else if (p === 7) s.inverse = true;
    else if (p === 9) s.strike = true;
    else if (p === 22) { s.bold = false; s.dim = false; }
    else if (p === 23) s.italic = false;
    else if (p === 24) s.underline = false;
    else if (p === 27) s.inverse = false;
    else if (p === 29) s.strike = false;
    else if (p >= 30 && p <= 37) s.fg = p - 30;
    else if (p === 39) s.fg = null;
    else if (p >= 40 && p <= 47) s.bg = p - 40;
    else if (p === 49) s.bg = null;
    else if (p >= 90 && p <= 97) s.fg = p - 90 + 8;
    else if (p >= 100 && p <= 107) s.bg = p - 100 + 8;
    else if (p === 38 || p === 48) {
      // Extended colour: 38;5;n (256 colours) or 38;2;r;g;b (true colour).
      const key = p === 38 ? "fg" : "bg";
      if (params[i + 1] === 5 && i + 2 < params.length) {
        const n = byte(params[i + 2]);
        s[key] = n < 16 ? n : xterm256(n);
        i += 2;
      } else if (params[i + 1] === 2 && i + 4 < params.length) {
        s[key] = `rgb(${byte(params[i + 2])},${byte(params[i + 3])},${byte(params[i + 4])})`;
        i += 4;
      } else {
        break; // malformed: ignore the rest of this sequence
      }
    }
    // Anything else (blink, fonts, ...) is ignored on purpose.
  }
  return s;
}

// CSS classes and inline colours for a state; the log viewer's CSS defines cw-ansi-*.
export function stateStyle(state) {
  const classes = [];
  let color = null;
  let background = null;
  let fg = state.fg;
  let bg = state.bg;
  if (state.inverse) {
    classes.push("cw-ansi-inverse");
    [fg, bg] = [bg, fg];
  }
  if (typeof fg === "number") classes.push(`cw-ansi-fg-${fg}`);
  else if (typeof fg === "string") color = fg;
  if (typeof bg === "number") classes.push(`cw-ansi-bg-${bg}`);
  else if (typeof bg === "string") background = bg;
  if (state.bold) classes.push("cw-ansi-bold");
  if (state.dim) classes.push("cw-ansi-dim");
  if (state.italic) classes.push("cw-ansi-italic");
  if (state.underline) classes.push("cw-ansi-underline");
  if (state.strike) classes.push("cw-ansi-strike");
  return { classes, color, background };
}

function sameStyle(a, b) {
  return (
    a.fg === b.fg && a.bg === b.bg && a.bold === b.bold && a.dim === b.dim &&
    a.italic === b.italic && a.underline === b.underline && a.inverse === b.inverse &&
    a.strike === b.strike
  );
}

// Where the escape sequence starting at text[i] (an ESC) ends: the index after it,
// or -1 when the text ends before the sequence does.
function sequenceEnd(text, i) {
  const next = text[i + 1];
  if (next === undefined) return -1;
  if (next === "[") {
    // CSI: parameter bytes 0x30-0x3F, intermediate 0x20-0x2F, one final byte 0x40-0x7E.
    for (let j = i + 2; j < text.length; j++) {
      const c = text.charCodeAt(j);
      if (c >= 0x40 && c <= 0x7e) return j + 1;
      if (c < 0x20 || c > 0x3f) return j; // not a CSI after all: drop the prefix only
    }
    return -1;
  }
  if (next === "]") {
    // OSC (hyperlinks, titles): ends with BEL or ESC \.
    for (let j = i + 2; j < text.length; j++) {
      if (text[j] === "\x07") return j + 1;
      if (text[j] === ESC) {
        if (j + 1 >= text.length) return -1;
        if (text[j + 1] === "\\") return j + 2;
      }
    }
    return -1;
  }
  return i + 2; // a two-byte escape such as ESC c or ESC =
}

// Parse text into styled segments.
//   parseAnsi("\x1b[31mred\x1b[0m plain") ->
//     {segments: [{text: "red", state: {fg: 1, ...}}, {text: " plain", state: RESET}],
//      state: RESET, rest: ""}
// Adjacent text with the same style is merged; empty segments are never produced.
export function parseAnsi(text, state = ANSI_RESET) {
  const segments = [];
  let current = state;
  let buf = "";
  let i = 0;
  const flush = () => {
    if (!buf) return;
    const last = segments[segments.length - 1];
    if (last && sameStyle(last.state, current)) last.text += buf;
    else segments.push({ text: buf, state: current });
    buf = "";
  };
  while (i < text.length) {
    const at = text.indexOf(ESC, i);
    if (at === -1) {
      buf += text.slice(i);
      break;
    }
    buf += text.slice(i, at);
    const end = sequenceEnd(text, at);
    if (end === -1) {
      flush();
      return { segments, state: current, rest: text.slice(at) };
    }
    const seq = text.slice(at, end);
    if (seq.length > 2 && seq[1] === "[" && seq.endsWith("m")) {
      const body = seq.slice(2, -1);
      if (!/^[0-9;:]*$/.test(body)) { i = end; continue; } // private modes like "?25m": ignore
      const params = body === "" ? [] : body.split(/[;:]/).map((p) => (p === "" ? 0 : Number(p)));
      const next = applySgr(current, params);
      if (!sameStyle(next, current)) {
        flush();
        current = next;
      }
    }
    i = end;
  }
  flush();
  return { segments, state: current, rest: "" };
}

// The text without any escape sequences (for Copy, Download and search counts).
export function stripAnsi(text) {
  return parseAnsi(text).segments.map((s) => s.text).join("");
}
