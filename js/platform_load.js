// PlatformLoad view: CPU and RAM as progress bars with the kernel's words ("CPU: 12.5 of
// 64 cores requested (20%)", "... over-committed by 3 cores"; RAM in GiB, the form's unit),
// a sparkline of the recent samples beside each, and an "unavailable, retrying in Ns"
// banner with a live countdown while the platform cannot give statistics. The history
// arrives once (asked for on render); after that only new samples travel, as messages.

import { h, listen, reportVisibility, statusParts, uid, bindStatus } from "./lib/dom.js";
import { sparklinePath, sparklineSummary } from "./lib/sparkline.js";
import { kernelActions } from "./lib/busy.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const SPARK_W = 120;
const SPARK_H = 28;

function svgEl(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

// One resource row: label, progress bar (role=progressbar), text, sparkline.
function resourceRow(base, key, label) {
  const textId = `${base}-${key}-text`;
  const fill = h("div", { class: "cw-load-fill" });
  const bar = h("div", {
    class: "cw-load-bar", role: "progressbar", "aria-valuemin": "0", "aria-labelledby": textId,
  }, fill);
  const text = h("span", { class: "cw-load-text", id: textId });
  const path = svgEl("path", { class: "cw-load-line", d: "", fill: "none" });
  const spark = svgEl("svg", {
    class: "cw-load-spark", width: SPARK_W, height: SPARK_H, viewBox: `0 0 ${SPARK_W} ${SPARK_H}`, role: "img",
  });
  const title = svgEl("title", {});
  spark.append(title, svgEl("line", { class: "cw-load-axis", x1: 0, y1: SPARK_H - 0.5, x2: SPARK_W, y2: SPARK_H - 0.5 }), path);
  const row = h("div", { class: `cw-load-row cw-load-${key}` }, text, bar, spark);
  return { row, bar, fill, text, path, spark, title, label };
}

function render({ model, el }) {
  const base = uid("cw-load");
  const cpu = resourceRow(base, "cpu", "CPU");
  const ram = resourceRow(base, "ram", "RAM");
  const banner = h("div", { class: "cw-load-unavailable", hidden: true });
  const ceiling = h("div", { class: "cw-load-ceiling cw-muted" });
  // "Refresh" alone is ambiguous beside the session table's own Refresh (issue 15, item 18).
  const refreshButton = h("button", { type: "button", "aria-label": "Refresh platform load" }, "Refresh");
  const { alert, status } = statusParts();
  const root = h("div", { class: "canfar-w cw-load", role: "group", "aria-label": "Platform load" },
    h("div", { class: "cw-load-head" }, h("strong", { class: "cw-part-title" }, "Platform load"), refreshButton),
    cpu.row, ram.row, ceiling, banner, status, alert);
  el.append(root);

  // Samples: the history sent on request, then one message per sample (numbered).
  let series = [];
  let seen = 0;
  const takeSnapshot = () => {
    series = (model.get("history_snapshot") || []).slice();
    seen = model.get("history_count") || 0;
    draw();
  };
  const onMessage = (msg) => {
    if (!msg || msg.kind !== "sample") return;
    if (msg.n <= seen) return; // the snapshot already has it
    if (msg.n !== seen + 1) {
      model.send({ kind: "history" }); // missed one: ask for the whole history again
      return;
    }
    seen = msg.n;
    series.push(msg.sample);
    const size = Math.max(1, model.get("history_size") || 60);
    if (series.length > size) series.splice(0, series.length - size);
    draw();
  };

  const drawRow = (r, used, total, text, series) => {
    const known = Number.isFinite(used) && Number.isFinite(total) && total > 0;
    // Requests can exceed capacity (sessions then wait as Pending): the words say so,
    // and the bar stays full.
    const pct = known ? Math.max(0, (used / total) * 100) : 0;
    r.text.textContent = text;
    r.fill.style.width = `${Math.min(100, pct)}%`;
    r.fill.classList.toggle("cw-load-high", pct >= 90);
    r.row.classList.toggle("cw-load-over", pct > 100);
    if (known) {
      r.bar.setAttribute("aria-valuenow", String(Math.min(used, total)));
      r.bar.setAttribute("aria-valuemax", String(total));
      r.bar.setAttribute("aria-valuetext", text);
    } else {
      r.bar.removeAttribute("aria-valuenow");
      r.bar.setAttribute("aria-valuetext", text);
    }
    // The sparkline shows % of capacity, scaled to its own peak so changes are visible.
    const values = series.map(([, v]) => (Number.isFinite(v) && known ? (v / total) * 100 : null));
    const peak = Math.max(0, ...values.filter((v) => v !== null));
    r.path.setAttribute("d", sparklinePath(values, SPARK_W, SPARK_H - 1, peak > 0 ? peak * 1.15 : 100));
    r.spark.style.visibility = values.length >= 2 ? "visible" : "hidden"; // one sample is no line
    const summary = `${r.label} history (${values.length} samples): ${sparklineSummary(values.map((v) => (v === null ? null : Math.round(v))), "% of capacity")}`;
    r.title.textContent = summary;
    r.spark.setAttribute("aria-label", summary);
  };

  const draw = () => {
    drawRow(cpu, model.get("cores_used"), model.get("cores_total"), model.get("cpu_text") || "CPU",
      series.map((s) => [s[0], s[1]]));
    drawRow(ram, model.get("ram_used_gb"), model.get("ram_total_gb"), model.get("ram_text") || "RAM",
      series.map((s) => [s[0], s[2]]));
    ceiling.textContent = model.get("ceiling_text") || "";
    root.classList.toggle("cw-load-stale", Boolean(model.get("unavailable")));
    root.classList.toggle("cw-login-refused", Boolean(model.get("login_refused")));
    tick();
  };

  // The countdown changes every second, so it lives outside the aria-live status line.
  const tick = () => {
    const message = model.get("unavailable");
    banner.hidden = !message;
    if (!message) return;
    const retryAt = model.get("retry_at");
    const left = retryAt ? Math.max(0, Math.ceil(retryAt - Date.now() / 1000)) : null;
    banner.textContent = left === null ? message : left > 0 ? `${message}, retrying in ${left}s` : `${message}, retrying now`;
  };


  const actions = kernelActions(model); // says "Waiting for the kernel" if the click waits
  refreshButton.addEventListener("click", () => actions.send(refreshButton, { kind: "refresh" }));
  // What the model already holds (another view may have asked before), then ask for the
  // current history: an unchanged snapshot fires no change event, so start from it here.
  takeSnapshot();
  model.on("msg:custom", onMessage);
  model.send({ kind: "history" });
  const timer = setInterval(tick, 1000);
  const cleanups = [
    () => actions.dispose(),
    reportVisibility(model, root),
    listen(model, ["cores_used", "cores_total", "ram_used_gb", "ram_total_gb", "cpu_text",
      "ram_text", "ceiling_text", "login_refused", "unavailable", "retry_at", "last_updated"], draw),
    listen(model, ["history_snapshot", "history_count"], takeSnapshot),
    bindStatus(model, { alert, status }),
    () => model.off("msg:custom", onMessage),
  ];
  return () => {
    clearInterval(timer);
    for (const cleanup of cleanups) cleanup();
  };
}

export default { render };
