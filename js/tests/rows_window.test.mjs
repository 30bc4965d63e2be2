// Windowed rows: which slice of a long table is in the DOM.
import test from "node:test";
import assert from "node:assert/strict";
import { windowRange, includeRow, WINDOW_FROM } from "../lib/rows_window.js";

test("the top of a long table: the rows on screen plus the margin below", () => {
  assert.deepEqual(windowRange(0, 400, 20, 5000, 10), { start: 0, end: 31 });
});

test("scrolled to the middle: a margin both sides, bounded by the screen not the table", () => {
  const r = windowRange(50000, 400, 20, 5000, 10);
  assert.deepEqual(r, { start: 2490, end: 2531 });
  assert.ok(r.end - r.start < 60);
});

test("scrolled past the end, short tables, nonsense input", () => {
  assert.deepEqual(windowRange(1e9, 400, 20, 100, 10), { start: 89, end: 100 });
  assert.deepEqual(windowRange(0, 400, 20, 5, 10), { start: 0, end: 5 });
  assert.deepEqual(windowRange(0, 400, 20, 0, 10), { start: 0, end: 0 });
  assert.deepEqual(windowRange(NaN, 0, 0, 50, 0), { start: 0, end: 2 });
});

test("includeRow widens the slice to keep the focused row in the DOM", () => {
  assert.deepEqual(includeRow({ start: 100, end: 140 }, 5), { start: 5, end: 140 });
  assert.deepEqual(includeRow({ start: 100, end: 140 }, 200), { start: 100, end: 201 });
  assert.deepEqual(includeRow({ start: 100, end: 140 }, null), { start: 100, end: 140 });
  assert.ok(WINDOW_FROM >= 200);
});
