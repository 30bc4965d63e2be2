// Sorting and filtering session rows, client-side (no kernel round trip per click).
// Rows are the dicts Python sends: {id, name, kind, status, image, image_short,
// cpu_req, cpu_used, ram_req, ram_used, start, expiry, url, finished}.

import { VOCABULARY } from "./vocabulary.js";

// Statuses in lifecycle order, so sorting by status groups them sensibly.
export const STATUS_ORDER = VOCABULARY.states;

// Sortable column key -> how to read the value from a row.
export const SORT_KEYS = {
  name: (r) => nameKey(r),
  id: (r) => r.id || "",
  kind: (r) => r.kind || "",
  status: (r) => {
    const i = STATUS_ORDER.indexOf(r.status);
    return i === -1 ? STATUS_ORDER.length : i;
  },
  image: (r) => naturalKey(r.image_short || r.image || ""),
  cpu: (r) => r.cpu_req,
  ram: (r) => r.ram_req,
  start: (r) => r.start,
  expiry: (r) => r.expiry,
};

// Text sorts as a person reads it: case-insensitive, digit runs as numbers, so job-2
// comes before job-10. The key pads each digit run to a fixed width, so keys compare
// with plain `<` (a collator compare per pair made sorting 5,000 rows take ~100 ms).
//
// A loop, not a regex replace with a callback: a table's first render computes this for
// every row that ties on the sort value (often all of them: a batch starts in one second),
// and the loop is ~3x faster.
const ZEROS = "0".repeat(16);
export function naturalKey(text) {
  const s = String(text).toLowerCase();
  let out = "";
  let from = 0; // s[from:] is not copied yet
  for (let i = 0; i < s.length; ) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) {
      i += 1;
      continue;
    }
    let j = i + 1;
    while (j < s.length && s.charCodeAt(j) >= 48 && s.charCodeAt(j) <= 57) j += 1;
    out += s.slice(from, i) + (j - i < 16 ? ZEROS.slice(j - i) : "") + s.slice(i, j);
    from = i = j;
  }
  return from === 0 ? s : out + s.slice(from);
}

// Compare naturalKey(text) with `key` (a naturalKey), without building the first: the
// sign of naturalKey(text) vs key. Why: a partial sort compares most rows once, with the
// last row of its window, and building a key per row (strings, then garbage) was most
// of its cost. ASCII is lower-cased here; past any other character it builds the key (a
// lower-cased string may change length).
export function compareNatural(text, key) {
  const s = String(text);
  let k = 0;
  for (let i = 0; i < s.length; ) {
    let c = s.charCodeAt(i);
    if (c > 127) {
      const whole = naturalKey(s);
      return whole < key ? -1 : whole > key ? 1 : 0;
    }
    if (c >= 48 && c <= 57) {
      let j = i + 1;
      while (j < s.length && s.charCodeAt(j) >= 48 && s.charCodeAt(j) <= 57) j += 1;
      for (let z = j - i; z < 16; z += 1) {
        if (k >= key.length) return 1;
        if (key.charCodeAt(k) !== 48) return 48 < key.charCodeAt(k) ? -1 : 1;
        k += 1;
      }
      for (; i < j; i += 1, k += 1) {
        if (k >= key.length) return 1;
        const d = s.charCodeAt(i) - key.charCodeAt(k);
        if (d) return d < 0 ? -1 : 1;
      }
      continue;
    }
    if (c >= 65 && c <= 90) c += 32;
    if (k >= key.length) return 1;
    const d = c - key.charCodeAt(k);
    if (d) return d < 0 ? -1 : 1;
    i += 1;
    k += 1;
  }
  return k < key.length ? -1 : 0;
}

// Natural order of two strings ("job-2" < "job-10"; "Alpha" = "alpha" ties go by code point).
export function naturalCompare(a, b) {
  const x = naturalKey(a);
  const y = naturalKey(b);
  if (x !== y) return x < y ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

// Rows are immutable (a change replaces the object), so a row's name key is computed once.
const NAME_KEYS = new WeakMap();
function nameKey(row) {
  let key = NAME_KEYS.get(row);
  if (key === undefined) {
    key = naturalKey(row.name || "");
    NAME_KEYS.set(row, key);
  }
  return key;
}

// Whether a sort value is missing (sorts last in both directions).
function missing(v) {
  return v === null || v === undefined || (typeof v === "number" && Number.isNaN(v));
}

// Compare two values; null/undefined/NaN always sort last whatever the direction.
function compare(a, b) {
  const aMissing = missing(a);
  const bMissing = missing(b);
  if (aMissing || bMissing) return aMissing === bMissing ? 0 : aMissing ? 1 : -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

// Sort entries are [value, name key (filled in on the first tie), id, row]: the value is
// read once per row, and the natural-order name key only for rows that tie on it.
const entryOf = (value, row) => [value, undefined, row.id || "", row];

// The one order of sortRows and firstSorted: a total order (ids are unique), so the first k
// rows of a full sort and of a partial one are the same rows in the same order.
const valueOrder = (a, b, dir) => (missing(a) || missing(b) ? compare(a, b) : dir * compare(a, b));
const nameOfEntry = (x) => (x[1] === undefined ? (x[1] = nameKey(x[3])) : x[1]);
function entryOrder(dir) {
  return (x, y) => {
    let c = valueOrder(x[0], y[0], dir);
    if (c === 0) {
      const xn = nameOfEntry(x);
      const yn = nameOfEntry(y);
      c = xn < yn ? -1 : xn > yn ? 1 : 0;
    }
    if (c === 0) c = x[2] < y[2] ? -1 : x[2] > y[2] ? 1 : 0;
    return c;
  };
}

// A new array sorted by `key` (ascending unless desc); ties broken by name then id so
// the order is stable between polls. Missing values go last in both directions.
export function sortRows(rows, key, desc = false) {
  const get = SORT_KEYS[key] || SORT_KEYS.start;
  const decorated = rows.map((row) => entryOf(get(row), row));
  decorated.sort(entryOrder(desc ? -1 : 1));
  return decorated.map((item) => item[3]);
}

// The first `k` rows of sortRows(rows, key, desc), without sorting them all: one pass that
// keeps the best k in order (O(n log k)). Why: a table's first screenful needs only its first
// rows; the full sort can follow after they are painted.
//
// firstSorted(rows, "start", true, 20) -> the 20 newest, as sortRows(...).slice(0, 20)
export function firstSorted(rows, key, desc = false, k = 0) {
  if (k >= rows.length) return sortRows(rows, key, desc);
  const get = SORT_KEYS[key] || SORT_KEYS.start;
  const dir = desc ? -1 : 1;
  const order = entryOrder(dir);
  const top = [];
  if (k <= 0) return top;
  for (const row of rows) {
    const value = get(row);
    if (top.length === k) {
      // entryOrder against the window's last row, building nothing for a row that loses.
      const last = top[k - 1];
      let c = valueOrder(value, last[0], dir);
      if (c === 0) c = compareNatural(row.name || "", nameOfEntry(last));
      if (c === 0) c = (row.id || "") < last[2] ? -1 : (row.id || "") > last[2] ? 1 : 0;
      if (c >= 0) continue;
      top.pop();
    }
    const item = entryOf(value, row);
    let lo = 0;
    let hi = top.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (order(top[mid], item) <= 0) lo = mid + 1;
      else hi = mid;
    }
    top.splice(lo, 0, item);
  }
  return top.map((item) => item[3]);
}

// Whether a row is a finished headless job (hidden by "Hide finished").
export function isFinishedJob(row) {
  return row.kind === "headless" && Boolean(row.finished);
}

// Whether "Hide finished" hides this row: a finished job, unless this table saw it run
// (`watched`): a job the person watched must not vanish the moment it completes.
export function hiddenAsFinished(row) {
  return isFinishedJob(row) && !row.watched;
}

function passesOthers(row, kind, status, needle) {
  if (kind && row.kind !== kind) return false;
  if (status && row.status !== status) return false;
  if (needle) {
    const name = (row.name || "").toLowerCase();
    const id = (row.id || "").toLowerCase();
    if (!name.includes(needle) && !id.includes(needle)) return false;
  }
  return true;
}

// The filters over rows in one pass: {rows: those passing (in their given order), finished:
// how many "Hide finished" alone hides, filtered: how many kind/status/search hide}. Filters:
// kind ("" = any), status ("" = any), search (case-insensitive substring of name or id),
// hideFinished (drop finished headless jobs not seen running). The table needs the rows and
// the counts (the empty state's "3 finished jobs hidden") on every render.
export function filterAndCount(rows, { kind = "", status = "", search = "", hideFinished = false } = {}) {
  const needle = (search || "").trim().toLowerCase();
  const out = [];
  let finished = 0;
  let filtered = 0;
  for (const row of rows) {
    if (!passesOthers(row, kind, status, needle)) filtered += 1;
    else if (hideFinished && hiddenAsFinished(row)) finished += 1;
    else out.push(row);
  }
  return { rows: out, finished, filtered };
}

// Rows passing the filters (filterAndCount's rows).
export function filterRows(rows, filters = {}) {
  return filterAndCount(rows, filters).rows;
}

// How many rows the filters hide, and why (filterAndCount's counts).
export function hiddenCounts(rows, filters = {}) {
  const { finished, filtered } = filterAndCount(rows, filters);
  return { finished, filtered };
}

// The aria-sort value of a column given the current sort.
export function ariaSort(column, sortBy, desc) {
  if (column !== sortBy) return "none";
  return desc ? "descending" : "ascending";
}

// The next sort after clicking a column header: same column flips direction; a new
// column starts ascending, except times, which start newest first.
export function nextSort(column, sortBy, desc) {
  if (column === sortBy) return { sortBy: column, desc: !desc };
  return { sortBy: column, desc: column === "start" };
}
