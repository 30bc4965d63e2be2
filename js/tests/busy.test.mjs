// "Waiting for the kernel": the note shows only when the kernel's answer is late.
import test from "node:test";
import assert from "node:assert/strict";
import { kernelActions, WAITING_TEXT } from "../lib/busy.js";

// A model that records sends and delivers msg:custom; timers run by hand.
function fakeModel() {
  const handlers = new Set();
  return {
    sent: [],
    on(name, fn) { if (name === "msg:custom") handlers.add(fn); },
    off(name, fn) { handlers.delete(fn); },
    send(content) { this.sent.push(content); },
    answer(msg) { for (const fn of handlers) fn(msg); },
    get listeners() { return handlers.size; },
  };
}
function fakeTimers() {
  const queue = new Map();
  let next = 0;
  return {
    setTimeout(fn) { next += 1; queue.set(next, fn); return next; },
    clearTimeout(t) { queue.delete(t); },
    fire() { const fns = [...queue.values()]; queue.clear(); for (const fn of fns) fn(); },
  };
}
function setup() {
  const model = fakeModel();
  const timers = fakeTimers();
  const note = { textContent: "", hidden: true };
  const button = { attrs: {}, setAttribute(k, v) { this.attrs[k] = v; } };
  const actions = kernelActions(model, { note: () => note, ...timers });
  return { model, timers, note, button, actions };
}

test("a click answered in time never shows the note", () => {
  const { model, timers, note, button, actions } = setup();
  const ack = actions.send(button, { kind: "refresh" });
  assert.deepEqual(model.sent, [{ kind: "refresh", ack }]);
  model.answer({ kind: "ack", ack });
  timers.fire();
  assert.equal(note.hidden, true);
  assert.equal(note.textContent, "");
  assert.equal(actions.pending, 0);
});

test("a late answer shows the note until the answer comes", () => {
  const { model, timers, note, button, actions } = setup();
  const ack = actions.send(button, { kind: "refresh" });
  timers.fire();
  assert.equal(note.hidden, false);
  assert.equal(note.textContent, WAITING_TEXT);
  assert.equal(button.attrs["aria-busy"], "true");
  model.answer({ kind: "ack", ack: "someone-else" });
  assert.equal(note.hidden, false);
  model.answer({ kind: "ack", ack });
  assert.equal(note.hidden, true);
  assert.equal(button.attrs["aria-busy"], "false");
});

test("two late clicks: the note stays until both are answered", () => {
  const { model, timers, note, button, actions } = setup();
  const a = actions.send(button, { kind: "refresh" });
  const b = actions.send(button, { kind: "refresh" });
  timers.fire();
  model.answer({ kind: "ack", ack: a });
  assert.equal(note.hidden, false);
  model.answer({ kind: "ack", ack: b });
  assert.equal(note.hidden, true);
});

test("dispose stops listening and clears the note", () => {
  const { model, timers, note, button, actions } = setup();
  actions.send(button, { kind: "refresh" });
  timers.fire();
  actions.dispose();
  assert.equal(note.hidden, true);
  assert.equal(model.listeners, 0);
});
