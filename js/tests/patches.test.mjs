// Row store: snapshots, patches in order, stale patches, version gaps.
import test from "node:test";
import assert from "node:assert/strict";
import { createStore, applySnapshot, applyPatch, touchedIds } from "../lib/patches.js";

const row = (id, status = "Running") => ({ id, name: id, status });

test("a snapshot replaces everything", () => {
  const store = createStore();
  assert.equal(applySnapshot(store, [row("a"), row("b")], 3), true);
  assert.equal(store.version, 3);
  assert.deepEqual([...store.rows.keys()], ["a", "b"]);
  applySnapshot(store, [row("c")], 4);
  assert.deepEqual([...store.rows.keys()], ["c"]);
});

test("an older snapshot than what we hold is ignored", () => {
  const store = createStore();
  applySnapshot(store, [row("a")], 5);
  assert.equal(applySnapshot(store, [], 2), false);
  assert.equal(store.rows.size, 1);
});

test("bad snapshots are ignored", () => {
  const store = createStore();
  assert.equal(applySnapshot(store, null, 1), false);
  assert.equal(applySnapshot(store, [], undefined), false);
  assert.equal(store.version, -1);
});

test("patches apply in order: upsert and remove", () => {
  const store = createStore();
  applySnapshot(store, [row("a"), row("b")], 0);
  assert.equal(applyPatch(store, { kind: "patch", version: 1, upsert: [row("a", "Terminating"), row("c")], remove: ["b"] }), "applied");
  assert.equal(store.version, 1);
  assert.deepEqual([...store.rows.keys()].sort(), ["a", "c"]);
  assert.equal(store.rows.get("a").status, "Terminating");
});

test("the first patch applies onto an empty store at version 0", () => {
  const store = createStore();
  applySnapshot(store, [], 0);
  assert.equal(applyPatch(store, { version: 1, upsert: [row("x")], remove: [] }), "applied");
  assert.equal(store.rows.size, 1);
});

test("stale patches (already in the snapshot) are ignored", () => {
  const store = createStore();
  applySnapshot(store, [row("a")], 4);
  assert.equal(applyPatch(store, { version: 3, upsert: [row("zzz")], remove: ["a"] }), "stale");
  assert.equal(applyPatch(store, { version: 4, upsert: [], remove: ["a"] }), "stale");
  assert.deepEqual([...store.rows.keys()], ["a"]);
});

test("a gap asks for a snapshot once, then waits for it", () => {
  const store = createStore();
  applySnapshot(store, [row("a")], 1);
  assert.equal(applyPatch(store, { version: 3, upsert: [row("b")], remove: [] }), "gap");
  assert.equal(store.awaiting, true);
  assert.equal(applyPatch(store, { version: 4, upsert: [row("c")], remove: [] }), "waiting");
  assert.equal(store.rows.size, 1);
  // The snapshot arrives (possibly with a version not newer than ours): accepted.
  assert.equal(applySnapshot(store, [row("a"), row("b"), row("c")], 4), true);
  assert.equal(store.awaiting, false);
  assert.equal(applyPatch(store, { version: 5, upsert: [], remove: ["a"] }), "applied");
  assert.deepEqual([...store.rows.keys()].sort(), ["b", "c"]);
});

test("patches without a version are ignored", () => {
  const store = createStore();
  assert.equal(applyPatch(store, { upsert: [row("a")] }), "stale");
  assert.equal(applyPatch(store, null), "stale");
});

test("touchedIds lists upserted and removed ids", () => {
  assert.deepEqual([...touchedIds({ upsert: [row("a")], remove: ["b"] })].sort(), ["a", "b"]);
  assert.equal(touchedIds(null).size, 0);
});
