// lib/notify.js: which session changes alert (the DOM control is tested in the browser).
import { test } from "node:test";
import assert from "node:assert/strict";
import { trackSessions, notificationsAvailable } from "../lib/notify.js";

const recorder = () => {
  const alerts = [];
  return { alerts, alert: (a) => { alerts.push(a); return true; } };
};

test("a session becoming Running alerts once; what was already so does not", () => {
  const n = recorder();
  const update = trackSessions(n, { now: () => 1000 });
  update([{ id: "a", name: "nb", kind: "notebook", status: "Running", expiry: 1e9 },
          { id: "b", name: "lab", kind: "notebook", status: "Pending", expiry: 1e9 }]);
  assert.equal(n.alerts.length, 0);
  update([{ id: "b", name: "lab", kind: "notebook", status: "Running", expiry: 1e9 }]);
  update([{ id: "b", name: "lab", kind: "notebook", status: "Running", expiry: 1e9 }]);
  assert.deepEqual(n.alerts.map((a) => a.title), ["Session lab is running"]);
});

test("headless jobs never alert", () => {
  const n = recorder();
  const update = trackSessions(n, { now: () => 1000 });
  update([{ id: "j", kind: "headless", status: "Pending", expiry: 1100 }]);
  update([{ id: "j", kind: "headless", status: "Running", expiry: 1100 }]);
  assert.equal(n.alerts.length, 0);
});

test("an hour before expiry alerts once, and again after a renewal", () => {
  let now = 0;
  const n = recorder();
  const update = trackSessions(n, { now: () => now });
  const row = { id: "a", name: "nb", kind: "notebook", status: "Running", expiry: 7200 };
  update([row]);
  assert.equal(n.alerts.length, 0); // two hours left
  now = 3500;
  update([row]);
  assert.equal(n.alerts.length, 0); // 3700 s left: not yet
  now = 3601;
  update([row]);
  update([row]);
  assert.deepEqual(n.alerts.map((a) => a.title), ["Session nb expires in 60 min"]);
  update([{ ...row, expiry: 20000 }]); // renewed
  now = 16500;
  update([{ ...row, expiry: 20000 }]);
  assert.equal(n.alerts.length, 2);
});

test("notifications are unavailable without the API or on an insecure page", () => {
  assert.equal(notificationsAvailable({}), false);
  assert.equal(notificationsAvailable({ Notification: function N() {}, isSecureContext: false }), false);
  assert.equal(notificationsAvailable({ Notification: function N() {}, isSecureContext: true }), true);
});
