import test from "node:test";
import assert from "node:assert/strict";
import { sparklinePath, sparklineSummary } from "../lib/sparkline.js";

test("scales into the box with y down", () => {
  assert.equal(sparklinePath([0, 5, 10], 100, 20, 10), "M0,20L50,10L100,0");
});

test("auto scale uses the largest value", () => {
  assert.equal(sparklinePath([1, 2], 10, 10), "M0,5L10,0");
});

test("gaps break the line and values are clamped", () => {
  assert.equal(sparklinePath([1, null, 3, 20], 30, 10, 10), "M0,9M20,7L30,0");
});

test("empty and single samples", () => {
  assert.equal(sparklinePath([], 10, 10), "");
  assert.equal(sparklinePath([null], 10, 10), "");
  assert.equal(sparklinePath([0], 10, 10, 4), "M5,10");
});

test("summary", () => {
  assert.equal(sparklineSummary([1, 2, 3], "%"), "min 1%, max 3%, now 3%");
  assert.equal(sparklineSummary([]), "no samples yet");
  assert.equal(sparklineSummary([1.234, null]), "min 1.23, max 1.23, now 1.23");
});
