// Formatting for tables and status lines: relative times, durations, resource numbers.
// Pure functions (no DOM); times are epoch seconds, "now" is passed in milliseconds
// so tests are deterministic.

// "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago"; future: "in 5 min".
export function relativeTime(epochSeconds, nowMs = Date.now()) {
  if (epochSeconds === null || epochSeconds === undefined || !Number.isFinite(epochSeconds)) return "";
  const diff = nowMs / 1000 - epochSeconds;
  const ahead = diff < 0;
  const text = age(Math.abs(diff));
  if (text === "just now") return text;
  return ahead ? `in ${text}` : `${text} ago`;
}

function age(seconds) {
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${Math.floor(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86400)} d`;
}

// A compact duration: "45 s", "12 min", "3 h 05 min", "2 d 4 h". Negative -> "0 s".
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  let s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) {
    const hours = Math.floor(s / 3600);
    const minutes = Math.floor((s % 3600) / 60);
    return `${hours} h ${String(minutes).padStart(2, "0")} min`;
  }
  const days = Math.floor(s / 86400);
  s %= 86400;
  return `${days} d ${Math.floor(s / 3600)} h`;
}

// Time left until expiry: {text, level} with level "expired" (<= 0), "warn" (< 1 h), "ok".
export const EXPIRY_WARNING_SECONDS = 3600;
export function timeLeft(expiry, nowMs = Date.now()) {
  if (expiry === null || expiry === undefined || !Number.isFinite(expiry)) return { text: "", level: "none" };
  const left = expiry - nowMs / 1000;
  if (left <= 0) return { text: "expired", level: "expired" };
  return { text: duration(left), level: left < EXPIRY_WARNING_SECONDS ? "warn" : "ok" };
}

// Local wall-clock time "hh:mm:ss" for "Updated ..." lines.
export function clockTime(epochSeconds) {
  if (!epochSeconds) return "";
  const d = new Date(epochSeconds * 1000);
  const p = (n) => String(n).padStart(2, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// Absolute local date and time for title attributes: "2026-11-23 16:04:05".
export function absoluteTime(epochSeconds) {
  if (epochSeconds === null || epochSeconds === undefined || !Number.isFinite(epochSeconds)) return "";
  const d = new Date(epochSeconds * 1000);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${clockTime(epochSeconds)}`;
}

// Cores: integers as they are, fractions to 2 significant-ish decimals ("0.25", "1.5").
export function formatCores(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  if (Number.isInteger(value)) return String(value);
  if (value < 0.01 && value > 0) return "<0.01";
  return String(Number(value.toFixed(value < 1 ? 2 : 1)));
}

// Memory in GiB, the form's unit, as capacity.format_gib writes it: "32 GiB", "1.5 GiB",
// "512 MiB" under 1 GiB. Within 1% of a whole number is whole: a 4 GiB request comes back
// from the platform as "4.29" GB, 3.995 GiB after its rounding, and the person asked for 4.
export function formatGiB(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  if (value > 0 && value < 1) return `${Math.round(value * 1024)} MiB`;
  const nearest = Math.round(value);
  if (nearest && Math.abs(value - nearest) <= 0.01 * nearest) return `${nearest} GiB`;
  return `${Number(value.toFixed(1))} GiB`;
}

// "used / requested" for a resource cell, e.g. "0.5 / 2" or "1.2 GiB / 8 GiB"; a flexible
// session (nothing requested) shows only what it uses; nothing known at all is "–".
export function usedOfRequested(used, requested, fmt) {
  const known = (v) => v !== null && v !== undefined && Number.isFinite(v);
  if (!known(used) && !known(requested)) return "–";
  if (!known(requested)) return fmt(used);
  return `${fmt(used)} / ${fmt(requested)}`;
}

// The short form of a container image: "images.canfar.net/skaha/astroml:24.10" -> "astroml:24.10".
export function shortImage(image) {
  if (!image) return "";
  const at = image.split("@")[0];
  const last = at.slice(at.lastIndexOf("/") + 1);
  return last || image;
}
