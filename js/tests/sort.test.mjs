// Sorting and filtering session rows.
import test from "node:test";
import assert from "node:assert/strict";
import { naturalKey, compareNatural, sortRows, firstSorted, filterRows, filterAndCount, ariaSort, nextSort, isFinishedJob, naturalCompare, hiddenAsFinished, hiddenCounts } from "../lib/sort.js";

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

test("names sort naturally: job-2 before job-10, case-insensitive", () => {
  const jobs = ["job-10", "job-2", "Job-1", "job-11", "job-1a"].map((name, i) => ({ id: String(i), name }));
  assert.deepEqual(sortRows(jobs, "name").map((r) => r.name), ["Job-1", "job-1a", "job-2", "job-10", "job-11"]);
  assert.deepEqual(sortRows(jobs, "name", true).map((r) => r.name), ["job-11", "job-10", "job-2", "job-1a", "Job-1"]);
  assert.ok(naturalCompare("img-9", "img-10") < 0);
  assert.ok(naturalCompare("b", "a") > 0);
});

test("Hide finished keeps jobs this table saw running; hiddenCounts says why rows are hidden", () => {
  const watched = { id: "w1", name: "seen", kind: "headless", status: "Completed", finished: true, watched: true };
  const list = [...rows, watched];
  assert.deepEqual(ids(filterRows(list, { hideFinished: true })), ["c3", "b2", "d4", "w1"]);
  assert.equal(hiddenAsFinished(rows[1]), true);
  assert.equal(hiddenAsFinished(watched), false);
  assert.deepEqual(hiddenCounts(list, { hideFinished: true }), { finished: 1, filtered: 0 });
  assert.deepEqual(hiddenCounts(list, { hideFinished: true, kind: "notebook" }), { finished: 0, filtered: 4 });
  assert.deepEqual(hiddenCounts(list, {}), { finished: 0, filtered: 0 });
});

// A small deterministic generator in [0, 1), so a failure names data that can be rebuilt.
function generator(seed) {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
}
// `count` strings of `length` characters drawn from `alphabet`.
function randomTexts(seed, count, length, alphabet) {
  const next = generator(seed);
  return Array.from({ length: count }, () => Array.from({ length }, () => alphabet[Math.floor(next() * alphabet.length)]).join(""));
}

function randomRows(n, seed) {
  const next = generator(seed);
  const pick = (list) => list[Math.floor(next() * list.length)];
  const out = [];
  for (let i = 0; i < n; i += 1) {
    out.push({
      id: `s${Math.floor(next() * 1e6)}-${i}`,
      name: pick(["job-1", "job-2", "Job-10", "notebook", "", "alpha", "beta-3"]),
      kind: pick(["headless", "notebook", "desktop"]),
      status: pick(["Pending", "Running", "Completed", "Failed"]),
      finished: next() < 0.3,
      watched: next() < 0.2,
      image_short: pick(["astroml:1", "terminal:2", "Carta:10", "carta:9"]),
      cpu_req: pick([1, 2, 4, null]),
      ram_req: pick([2, 8, null, NaN]),
      start: pick([100, 200, 300, null, 400 + i]),
      expiry: pick([500, 700, undefined, 900]),
    });
  }
  return out;
}

test("firstSorted gives the first k rows of sortRows, same order (ties, missing values, both directions)", () => {
  const list = randomRows(400, 7);
  for (const key of ["name", "id", "kind", "status", "image", "cpu", "ram", "start", "expiry", "nope"]) {
    for (const desc of [false, true]) {
      const full = ids(sortRows(list, key, desc));
      for (const k of [0, 1, 17, 60, 399, 400, 500]) {
        assert.deepEqual(ids(firstSorted(list, key, desc, k)), full.slice(0, k), `${key} desc=${desc} k=${k}`);
      }
    }
  }
});

test("NaN sorts last in both directions, like null", () => {
  const list = [{ id: "a", ram_req: NaN }, { id: "b", ram_req: 4 }, { id: "c", ram_req: 8 }];
  assert.deepEqual(ids(sortRows(list, "ram")), ["b", "c", "a"]);
  assert.deepEqual(ids(sortRows(list, "ram", true)), ["c", "b", "a"]);
});

test("filterAndCount: the passing rows and both counts, as each filter reads on its own", () => {
  const list = randomRows(300, 11);
  for (const f of [{}, { hideFinished: true }, { kind: "headless", hideFinished: true }, { status: "Running", search: "JOB" }, { search: " s1" }]) {
    // Each filter written out plainly, row by row: the reference the one pass must match.
    const needle = (f.search || "").trim().toLowerCase();
    const others = (r) => (!f.kind || r.kind === f.kind) && (!f.status || r.status === f.status)
      && (!needle || (r.name || "").toLowerCase().includes(needle) || (r.id || "").toLowerCase().includes(needle));
    const asFinished = (r) => Boolean(f.hideFinished) && hiddenAsFinished(r);
    const got = filterAndCount(list, f);
    assert.deepEqual(ids(got.rows), ids(list.filter((r) => others(r) && !asFinished(r))));
    assert.equal(got.filtered, list.filter((r) => !others(r)).length);
    assert.equal(got.finished, list.filter((r) => others(r) && asFinished(r)).length);
    assert.deepEqual(ids(filterRows(list, f)), ids(got.rows));
    assert.deepEqual(hiddenCounts(list, f), { finished: got.finished, filtered: got.filtered });
  }
});

test("naturalKey pads every digit run to 16 (longer runs as they are), lower-cased", () => {
  const byRegex = (text) => String(text).toLowerCase().replace(/\d+/g, (d) => (d.length >= 16 ? d : d.padStart(16, "0")));
  const samples = ["", "job", "Job-2", "9", "007", "a1b22c333", "x12345678901234567890y", "1234567890123456", "ÄBC-٣-12", "-0-",
    ...randomTexts(3, 300, 12, "aZ0123456789-_.é")];
  for (const text of samples) assert.equal(naturalKey(text), byRegex(text), text);
  assert.equal(naturalKey("job-2"), "job-0000000000000002");
  assert.equal(naturalKey(42), "0000000000000042");
});

test("compareNatural(text, key) has the sign of naturalKey(text) against key", () => {
  const texts = ["", "a", "A", "job", "job-", "job-2", "job-10", "Job-010", "job-2a", "job-0", "0", "00", "x12345678901234567890y",
    "x1234567890123456", "x999999999999999", "İx", "ÄBC-3", "straße-1", "a b", "a~", "a`", "job-2951", "job-3621",
    ...randomTexts(5, 200, 8, "aB09-~ Z5é")];
  const sign = (n) => (n < 0 ? -1 : n > 0 ? 1 : 0);
  for (const a of texts) {
    for (const b of texts) {
      const key = naturalKey(b);
      const want = naturalKey(a) < key ? -1 : naturalKey(a) > key ? 1 : 0;
      assert.equal(sign(compareNatural(a, key)), want, `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }
  }
});
