import test from "node:test";
import assert from "node:assert/strict";
import { ANSI_RESET, applySgr, parseAnsi, stateStyle, stripAnsi } from "../lib/ansi.js";

const texts = (r) => r.segments.map((s) => s.text);

test("plain text is one unstyled segment", () => {
  const r = parseAnsi("hello\nworld");
  assert.deepEqual(texts(r), ["hello\nworld"]);
  assert.equal(r.segments[0].state, ANSI_RESET);
  assert.equal(r.rest, "");
});

test("colours and reset become classes", () => {
  const r = parseAnsi("\x1b[31mred\x1b[0m plain \x1b[1;92mbold green\x1b[m");
  assert.deepEqual(texts(r), ["red", " plain ", "bold green"]);
  assert.deepEqual(stateStyle(r.segments[0].state).classes, ["cw-ansi-fg-1"]);
  assert.deepEqual(stateStyle(r.segments[1].state).classes, []);
  assert.deepEqual(stateStyle(r.segments[2].state).classes, ["cw-ansi-fg-10", "cw-ansi-bold"]);
  assert.deepEqual(r.state, ANSI_RESET);
});

test("256 and true colours become inline rgb, low 256 indexes stay classes", () => {
  let s = applySgr(ANSI_RESET, [38, 5, 196]);
  assert.equal(s.fg, "rgb(255,0,0)");
  s = applySgr(ANSI_RESET, [38, 5, 3]);
  assert.equal(s.fg, 3);
  s = applySgr(ANSI_RESET, [48, 2, 1, 2, 300]);
  assert.equal(s.bg, "rgb(1,2,255)");
  assert.equal(stateStyle(s).background, "rgb(1,2,255)");
  s = applySgr(ANSI_RESET, [38, 5, 244]);
  assert.equal(s.fg, "rgb(128,128,128)");
});

test("inverse swaps colours and keeps a class", () => {
  const s = applySgr(ANSI_RESET, [7, 31]);
  const style = stateStyle(s);
  assert.ok(style.classes.includes("cw-ansi-inverse"));
  assert.ok(style.classes.includes("cw-ansi-bg-1"));
});

test("non-SGR sequences and OSC hyperlinks are dropped", () => {
  const r = parseAnsi("a\x1b[2Kb\x1b[?25lc\x1b]8;;http://x\x07link\x1b]8;;\x1b\\d\x1bce");
  assert.deepEqual(texts(r), ["abclinkde"]);
});

test("a sequence split across appends is carried in rest", () => {
  const first = parseAnsi("ok \x1b[3");
  assert.deepEqual(texts(first), ["ok "]);
  assert.equal(first.rest, "\x1b[3");
  const second = parseAnsi(first.rest + "1mred", first.state);
  assert.deepEqual(texts(second), ["red"]);
  assert.equal(second.segments[0].state.fg, 1);
  assert.equal(parseAnsi("x\x1b").rest, "\x1b");
});

test("state carries across calls", () => {
  const a = parseAnsi("\x1b[32mgreen");
  const b = parseAnsi(" still", a.state);
  assert.equal(b.segments[0].state.fg, 2);
});

test("HTML-looking text is just text (escaping is the renderer's textContent)", () => {
  assert.equal(stripAnsi("<script>\x1b[31malert(1)</script>"), "<script>alert(1)</script>");
});

test("styles toggled off merge with neighbours", () => {
  const r = parseAnsi("a\x1b[1m\x1b[22mb");
  assert.deepEqual(texts(r), ["ab"]);
});

test("malformed extended colour is ignored", () => {
  const s = applySgr(ANSI_RESET, [38, 9]);
  assert.equal(s.fg, null);
});
