// Sorting and filtering session rows.
import test from "node:test";
import assert from "node:assert/strict";
import { sortRows, filterRows, ariaSort, nextSort, isFinishedJob } from "../lib/sort.js";

const rows = [
  { id: "c3", name: "beta", kind: "notebook", status: "Running", start: 300, expiry: 900, cpu_req: 2, ram_req: 8, image_short: "astroml:1" },
  { id: "a1", name: "Alpha", kind: "headless", status: "Completed", finished: true, start: 100, expiry: null, cpu_req: 1, ram_req: null, image_short: "terminal:1" },
  { id: "b2", name: "gamma", kind: "headless", status: "Pending", start: null, expiry: 500, cpu_req: 4, ram_req: 16, image_short: "Carta:4" },
  { id: "d4", name: "delta", kind: "desktop", status: "Failed", finished: true, start: 200, expiry: 700, cpu_req: null, ram_req: 2, image_short: "desktop:1" },
];
const ids = (list) => list.map((r) => r.id);

test("sort by name is case-insensitive, both directions", () => {
  assert.deepEqual(ids(sortRows(rows, "name")), ["a1", "c3", "d4", "b2"]);
  assert.deepEqual(ids(sortRows(rows, "name", true)), ["b2", "d4", "c3", "a1"]);
});

test("missing values sort last in both directions", () => {
  assert.deepEqual(ids(sortRows(rows, "start")), ["a1", "d4", "c3", "b2"]);
  assert.deepEqual(ids(sortRows(rows, "start", true)), ["c3", "d4", "a1", "b2"]);
  assert.deepEqual(ids(sortRows(rows, "cpu", true)), ["b2", "c3", "a1", "d4"]);
  assert.deepEqual(ids(sortRows(rows, "ram")), ["d4", "c3", "b2", "a1"]);
});

test("status sorts in lifecycle order", () => {
  assert.deepEqual(ids(sortRows(rows, "status")), ["b2", "c3", "a1", "d4"]);
});

test("ties break by name then id (stable between polls)", () => {
  const same = [{ id: "2", name: "x", kind: "a" }, { id: "1", name: "x", kind: "a" }, { id: "3", name: "w", kind: "a" }];
  assert.deepEqual(ids(sortRows(same, "kind")), ["3", "1", "2"]);
  assert.deepEqual(ids(sortRows(same, "kind", true)), ["3", "1", "2"]);
});

test("unknown sort key falls back to start", () => {
  assert.deepEqual(ids(sortRows(rows, "nope")), ids(sortRows(rows, "start")));
});

test("sorting does not mutate the input", () => {
  const before = ids(rows);
  sortRows(rows, "name", true);
  assert.deepEqual(ids(rows), before);
});

test("filters: kind, status, search on name or id, hide finished headless only", () => {
  assert.deepEqual(ids(filterRows(rows, { kind: "headless" })), ["a1", "b2"]);
  assert.deepEqual(ids(filterRows(rows, { status: "Running" })), ["c3"]);
  assert.deepEqual(ids(filterRows(rows, { search: "ALP" })), ["a1"]);
  assert.deepEqual(ids(filterRows(rows, { search: " b2 " })), ["b2"]);
  // d4 is finished but not headless: "Hide finished" is about batch jobs.
  assert.deepEqual(ids(filterRows(rows, { hideFinished: true })), ["c3", "b2", "d4"]);
  assert.deepEqual(ids(filterRows(rows, {})), ids(rows));
  assert.deepEqual(ids(filterRows(rows, { kind: "headless", hideFinished: true })), ["b2"]);
});

test("isFinishedJob", () => {
  assert.equal(isFinishedJob(rows[1]), true);
  assert.equal(isFinishedJob(rows[3]), false);
  assert.equal(isFinishedJob(rows[2]), false);
});

test("aria-sort and header clicks", () => {
  assert.equal(ariaSort("name", "name", false), "ascending");
  assert.equal(ariaSort("name", "name", true), "descending");
  assert.equal(ariaSort("id", "name", true), "none");
  assert.deepEqual(nextSort("name", "name", false), { sortBy: "name", desc: true });
  assert.deepEqual(nextSort("name", "start", true), { sortBy: "name", desc: false });
  assert.deepEqual(nextSort("start", "name", false), { sortBy: "start", desc: true });
});
