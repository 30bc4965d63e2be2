// PlatformLoad view: CPU and RAM as progress bars with text ("CPU 12.5 / 64 cores"),
// a sparkline of the recent samples beside each, and an "unavailable, retrying in Ns"
// banner with a live countdown while the platform cannot give statistics.

import { h, listen, reportVisibility, statusParts, uid, bindStatus } from "./lib/dom.js";
import { formatCores } from "./lib/format.js";
import { sparklinePath, sparklineSummary } from "./lib/sparkline.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const SPARK_W = 120;
const SPARK_H = 28;

function svgEl(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function num(value, digits = 1) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  return Number.isInteger(value) ? String(value) : String(Number(value.toFixed(digits)));
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
  const refreshButton = h("button", { type: "button" }, "Refresh");
  const { alert, status } = statusParts();
  const root = h("div", { class: "canfar-w cw-load", role: "group", "aria-label": "Platform load" },
    h("div", { class: "cw-load-head" }, h("strong", {}, "Platform load"), refreshButton),
    cpu.row, ram.row, ceiling, banner, status, alert);
  el.append(root);

  const drawRow = (r, used, total, unit, series) => {
    const known = Number.isFinite(used) && Number.isFinite(total) && total > 0;
    // Requests can exceed capacity (sessions then wait as Pending): say so, but keep the bar full.
    const pct = known ? Math.max(0, (used / total) * 100) : 0;
    const words = `${r.label} requested ${r.label === "CPU" ? formatCores(used) : num(used)} of ${r.label === "CPU" ? formatCores(total) : num(total)} ${unit}`;
    r.text.textContent = known ? `${words} (${Math.round(pct)}%)` : words;
    r.fill.style.width = `${Math.min(100, pct)}%`;
    r.fill.classList.toggle("cw-load-high", pct >= 90);
    if (known) {
      r.bar.setAttribute("aria-valuenow", String(used));
      r.bar.setAttribute("aria-valuemax", String(total));
      r.bar.setAttribute("aria-valuetext", `${words}, ${Math.round(pct)}% requested`);
    } else {
      r.bar.removeAttribute("aria-valuenow");
      r.bar.setAttribute("aria-valuetext", `${r.label} unknown`);
    }
    // The sparkline shows % of capacity, scaled to its own peak so changes are visible.
    const values = series.map(([, v]) => (Number.isFinite(v) && known ? (v / total) * 100 : null));
    const peak = Math.max(0, ...values.filter((v) => v !== null));
    r.path.setAttribute("d", sparklinePath(values, SPARK_W, SPARK_H - 1, peak > 0 ? peak * 1.15 : 100));
    r.spark.style.visibility = values.length >= 2 ? "visible" : "hidden"; // one sample is no line
    const summary = `${r.label} history (${values.length} samples): ${sparklineSummary(values.map((v) => (v === null ? null : Math.round(v))), "%")}`;
    r.title.textContent = summary;
    r.spark.setAttribute("aria-label", summary);
  };

  const draw = () => {
    const history = model.get("history") || [];
    drawRow(cpu, model.get("cores_used"), model.get("cores_total"), "cores",
      history.map((s) => [s[0], s[1]]));
    drawRow(ram, model.get("ram_used_gb"), model.get("ram_total_gb"), "GB",
      history.map((s) => [s[0], s[2]]));
    const maxCores = model.get("cores_max");
    const maxRam = model.get("ram_max_gb");
    ceiling.textContent = maxCores || maxRam
      ? `Largest session allowed: ${formatCores(maxCores)} cores with ${num(maxRam, 0)} GB.`
      : "";
    root.classList.toggle("cw-load-stale", Boolean(model.get("unavailable")));
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


  refreshButton.addEventListener("click", () => model.send({ kind: "refresh" }));
  draw();
  const timer = setInterval(tick, 1000);
  const cleanups = [
    reportVisibility(model, root),
    listen(model, ["cores_used", "cores_total", "ram_used_gb", "ram_total_gb", "cores_max",
      "ram_max_gb", "history", "unavailable", "retry_at", "last_updated"], draw),
    bindStatus(model, { alert, status }),
  ];
  return () => {
    clearInterval(timer);
    for (const cleanup of cleanups) cleanup();
  };
}

export default { render };
