// "Waiting for the kernel": what a button says when its click has not reached Python yet.
//
// Why: a click is a message to the kernel. While a cell blocks in a call that does not serve
// widget messages (time.sleep, a long computation, another library's wait) and the kernel
// has no comm subshell, the click waits in the kernel's queue, and a bare spinner would look
// like a hang. So an action is sent with an `ack` id; CanfarWidget answers {kind: "ack", ack}
// the moment it receives the message (canfar_widgets/widgets/_base.py, before any work), and
// if that answer has not come within `delay` ms, a note next to the control says so, until
// the answer comes.
//
// Use (in a view's render):
//   const actions = kernelActions(model);
//   button.addEventListener("click", () => actions.send(button, { kind: "refresh" }));
//   ... and call actions.dispose() in the view's cleanup.

import { h, uid } from "./dom.js";

export const WAITING_TEXT = "Waiting for the kernel (a cell is busy)...";

// The note beside `control` (made once, right after it; role=status so it is announced).
function defaultNote(control) {
  const next = control.nextElementSibling;
  if (next && next.classList && next.classList.contains("cw-kernel-wait")) return next;
  const note = h("span", { class: "cw-kernel-wait", role: "status", "aria-live": "polite", hidden: true });
  control.insertAdjacentElement("afterend", note);
  return note;
}

// Actions of one view on `model`. Options: delay (ms before the note shows), note(control)
// (returns the element to write in; tests pass their own), timers (setTimeout/clearTimeout).
export function kernelActions(model, options = {}) {
  const delay = options.delay ?? 1000;
  const noteFor = options.note || defaultNote;
  const later = options.setTimeout || ((fn, ms) => setTimeout(fn, ms));
  const cancel = options.clearTimeout || ((t) => clearTimeout(t));
  const pending = new Map(); // ack id -> {control, timer}
  const waiting = new Map(); // control -> count of its clicks past `delay` and unanswered

  const show = (control, on) => {
    const note = noteFor(control);
    note.textContent = on ? WAITING_TEXT : "";
    note.hidden = !on;
    if (control.setAttribute) control.setAttribute("aria-busy", on ? "true" : "false");
  };
  const settle = (ack) => {
    const entry = pending.get(ack);
    if (!entry) return;
    pending.delete(ack);
    cancel(entry.timer);
    if (entry.late) {
      const left = (waiting.get(entry.control) || 1) - 1;
      if (left > 0) waiting.set(entry.control, left);
      else {
        waiting.delete(entry.control);
        show(entry.control, false);
      }
    }
  };
  const onMessage = (msg) => {
    if (msg && msg.kind === "ack" && msg.ack) settle(msg.ack);
  };
  model.on("msg:custom", onMessage);

  return {
    // Send `content` for a click on `control`; returns the ack id.
    send(control, content, buffers) {
      const ack = uid("ack");
      const entry = { control, late: false, timer: null };
      entry.timer = later(() => {
        if (!pending.has(ack)) return;
        entry.late = true;
        waiting.set(control, (waiting.get(control) || 0) + 1);
        show(control, true);
      }, delay);
      pending.set(ack, entry);
      model.send({ ...content, ack }, undefined, buffers);
      return ack;
    },
    // How many clicks have not been answered yet.
    get pending() {
      return pending.size;
    },
    dispose() {
      model.off("msg:custom", onMessage);
      for (const ack of [...pending.keys()]) settle(ack);
    },
  };
}
