// Relative times, durations, time left, resource numbers, image names.
import test from "node:test";
import assert from "node:assert/strict";
import { relativeTime, duration, timeLeft, clockTime, absoluteTime, formatCores, formatGiB, shortImage } from "../lib/format.js";

const NOW = 1_800_000_000_000; // ms

test("relativeTime, past and future", () => {
  const now = NOW / 1000;
  assert.equal(relativeTime(now, NOW), "just now");
  assert.equal(relativeTime(now - 42, NOW), "42 s ago");
  assert.equal(relativeTime(now - 300, NOW), "5 min ago");
  assert.equal(relativeTime(now - 3 * 3600 - 5, NOW), "3 h ago");
  assert.equal(relativeTime(now - 2 * 86400, NOW), "2 d ago");
  assert.equal(relativeTime(now + 600, NOW), "in 10 min");
  assert.equal(relativeTime(null, NOW), "");
  assert.equal(relativeTime(Number.NaN, NOW), "");
});

test("duration", () => {
  assert.equal(duration(45.9), "45 s");
  assert.equal(duration(12 * 60 + 3), "12 min");
  assert.equal(duration(3 * 3600 + 5 * 60), "3 h 05 min");
  assert.equal(duration(2 * 86400 + 4 * 3600 + 59), "2 d 4 h");
  assert.equal(duration(-5), "0 s");
  assert.equal(duration(undefined), "");
});

test("timeLeft warns under one hour and marks expiry", () => {
  const now = NOW / 1000;
  assert.deepEqual(timeLeft(now + 2 * 3600, NOW), { text: "2 h 00 min", level: "ok" });
  assert.deepEqual(timeLeft(now + 59 * 60, NOW), { text: "59 min", level: "warn" });
  assert.deepEqual(timeLeft(now - 1, NOW), { text: "expired", level: "expired" });
  assert.deepEqual(timeLeft(null, NOW), { text: "", level: "none" });
});

test("clock and absolute times are local and zero-padded", () => {
  const t = new Date(2026, 0, 2, 3, 4, 5).getTime() / 1000;
  assert.equal(clockTime(t), "03:04:05");
  assert.equal(absoluteTime(t), "2026-01-02 03:04:05");
  assert.equal(clockTime(0), "");
  assert.equal(absoluteTime(null), "");
});

test("cores and memory", () => {
  assert.equal(formatCores(2), "2");
  assert.equal(formatCores(0.25), "0.25");
  assert.equal(formatCores(1.55), "1.6");
  assert.equal(formatCores(0.001), "<0.01");
  assert.equal(formatCores(null), "–");
  assert.equal(formatGiB(16), "16 GiB");
  assert.equal(formatGiB(4.29e9 / 2 ** 30), "4 GiB"); // a 4 GiB request as reported
  assert.equal(formatGiB(1.35), "1.4 GiB");
  assert.equal(formatGiB(0.05), "51 MiB");
  assert.equal(formatGiB(0), "0 GiB");
  assert.equal(formatGiB(undefined), "–");
});

test("shortImage keeps the last path segment and tag", () => {
  assert.equal(shortImage("images.canfar.net/skaha/astroml:24.10"), "astroml:24.10");
  assert.equal(shortImage("skaha/x@sha256:abc"), "x");
  assert.equal(shortImage("plain"), "plain");
  assert.equal(shortImage(""), "");
});

test("usedOfRequested: fixed, flexible and unknown", async () => {
  const { usedOfRequested } = await import("../lib/format.js");
  assert.equal(usedOfRequested(0.5, 2, formatCores), "0.5 / 2");
  assert.equal(usedOfRequested(0.5, null, formatCores), "0.5");
  assert.equal(usedOfRequested(null, null, formatGiB), "–");
  assert.equal(usedOfRequested(null, 8, formatGiB), "– / 8 GiB");
});
