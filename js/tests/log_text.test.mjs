import test from "node:test";
import assert from "node:assert/strict";
import {
  countLines, findMatches, logFileName, markSegments, matchCountText, sessionLabels, splitChunks, tailLines,
} from "../lib/log_text.js";

test("countLines", () => {
  assert.equal(countLines(""), 0);
  assert.equal(countLines("a"), 1);
  assert.equal(countLines("a\n"), 1);
  assert.equal(countLines("a\nb"), 2);
  assert.equal(countLines("a\nb\n"), 2);
  assert.equal(countLines("\n\n"), 2);
});

test("tailLines keeps the last lines and reports the hidden count", () => {
  assert.deepEqual(tailLines("a\nb\nc\n", 2), { text: "b\nc\n", hidden: 1 });
  assert.deepEqual(tailLines("a\nb\nc", 2), { text: "b\nc", hidden: 1 });
  assert.deepEqual(tailLines("a\nb", 5), { text: "a\nb", hidden: 0 });
  assert.deepEqual(tailLines("a\nb", 0), { text: "a\nb", hidden: 0 });
  const big = Array.from({ length: 6000 }, (_, i) => `line ${i}`).join("\n") + "\n";
  const t = tailLines(big, 5000);
  assert.equal(t.hidden, 1000);
  assert.ok(t.text.startsWith("line 1000\n"));
  assert.equal(countLines(t.text), 5000);
});

test("splitChunks joins back to the input with bounded lines", () => {
  const text = "1\n2\n3\n4\n5";
  const chunks = splitChunks(text, 2);
  assert.deepEqual(chunks, ["1\n2\n", "3\n4\n", "5"]);
  assert.equal(chunks.join(""), text);
  assert.deepEqual(splitChunks("", 3), []);
});

test("findMatches is case-insensitive, literal and non-overlapping", () => {
  assert.deepEqual(findMatches("Error error ERROR", "error"), [[0, 5], [6, 11], [12, 17]]);
  assert.deepEqual(findMatches("a.b axb", "a.b"), [[0, 3]]);
  assert.deepEqual(findMatches("aaaa", "aa"), [[0, 2], [2, 4]]);
  assert.deepEqual(findMatches("abc", ""), []);
  assert.equal(findMatches("x".repeat(50), "x", 10).length, 10);
});

test("markSegments splits styled segments at match edges", () => {
  const segs = [{ text: "hello ", cls: "a" }, { text: "world", cls: "b" }];
  const out = markSegments(segs, findMatches("hello world", "o w"));
  assert.deepEqual(out.map((s) => [s.text, s.mark, s.cls]), [
    ["hell", -1, "a"], ["o ", 0, "a"], ["w", 0, "b"], ["orld", -1, "b"],
  ]);
  const none = markSegments(segs, []);
  assert.equal(none.map((s) => s.text).join(""), "hello world");
});

test("matchCountText", () => {
  assert.equal(matchCountText(0), "No matches");
  assert.equal(matchCountText(1), "1 match");
  assert.equal(matchCountText(3), "3 matches");
  assert.equal(matchCountText(10000), "10000+ matches");
});

test("logFileName is safe", () => {
  assert.equal(logFileName("abc123"), "abc123-log.txt");
  assert.equal(logFileName("../x y"), ".._x_y-log.txt");
});

test("sessionLabels shows names, disambiguates shared names by id, falls back to ids", () => {
  assert.deepEqual(sessionLabels(["b24madfl", "k3x9ab2q", "q2w8e4r6"],
    { b24madfl: "multi2-1", k3x9ab2q: "multi2-2" }),
    { b24madfl: "multi2-1", k3x9ab2q: "multi2-2", q2w8e4r6: "q2w8e4r6" });
  assert.deepEqual(sessionLabels(["a1", "b2"], { a1: "job", b2: "job" }), { a1: "job (a1)", b2: "job (b2)" });
  assert.equal(logFileName(sessionLabels(["b24madfl"], { b24madfl: "multi2-1" }).b24madfl), "multi2-1-log.txt");
  assert.equal(logFileName("job (a1)"), "job_a1-log.txt");
});
