// Sparkline geometry for the platform-load history: an SVG path "d" from samples.
// Pure logic; the widget builds the <svg> with createElementNS.

// Path through values (numbers or null for a gap) scaled into width x height, with y = 0
// at the top (SVG). `max` fixes the vertical scale (e.g. capacity); otherwise the largest
// value is used. A gap starts a new subpath, so an unavailable sample shows as a break.
//   sparklinePath([0, 5, 10], 100, 20, 10) === "M0,20L50,10L100,0"
export function sparklinePath(values, width, height, max = null) {
  const finite = values.filter((v) => typeof v === "number" && Number.isFinite(v));
  if (finite.length === 0) return "";
  const top = max !== null && max > 0 ? max : Math.max(...finite, 0) || 1;
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  let d = "";
  let pen = false;
  values.forEach((v, i) => {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      pen = false;
      return;
    }
    const x = values.length > 1 ? i * step : width / 2;
    const clamped = Math.max(0, Math.min(v, top));
    const y = height - (clamped / top) * height;
    d += `${pen ? "L" : "M"}${round(x)},${round(y)}`;
    pen = true;
  });
  return d;
}

function round(n) {
  return Math.round(n * 100) / 100;
}

// A one-line text summary of a series for screen readers and the static fallback.
//   sparklineSummary([1, 2, 3], "%") === "min 1%, max 3%, now 3%"
export function sparklineSummary(values, unit = "") {
  const finite = values.filter((v) => typeof v === "number" && Number.isFinite(v));
  if (finite.length === 0) return "no samples yet";
  const fmt = (v) => `${round(v)}${unit}`;
  return `min ${fmt(Math.min(...finite))}, max ${fmt(Math.max(...finite))}, now ${fmt(finite[finite.length - 1])}`;
}
