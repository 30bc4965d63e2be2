// Sorting and filtering session rows, client-side (no kernel round trip per click).
// Rows are the dicts Python sends: {id, name, kind, status, image, image_short,
// cpu_req, cpu_used, ram_req, ram_used, start, expiry, url, finished}.

// Statuses in lifecycle order, so sorting by status groups them sensibly.
export const STATUS_ORDER = ["Pending", "Running", "Terminating", "Succeeded", "Completed", "Failed", "Error"];

// Sortable column key -> how to read the value from a row.
export const SORT_KEYS = {
  name: (r) => (r.name || "").toLowerCase(),
  id: (r) => r.id || "",
  kind: (r) => r.kind || "",
  status: (r) => {
    const i = STATUS_ORDER.indexOf(r.status);
    return i === -1 ? STATUS_ORDER.length : i;
  },
  image: (r) => (r.image_short || r.image || "").toLowerCase(),
  cpu: (r) => r.cpu_req,
  ram: (r) => r.ram_req,
  start: (r) => r.start,
  expiry: (r) => r.expiry,
};

// Compare two values; null/undefined/NaN always sort last whatever the direction.
function sortCompare(a, b) {
  const aMissing = a === null || a === undefined || (typeof a === "number" && Number.isNaN(a));
  const bMissing = b === null || b === undefined || (typeof b === "number" && Number.isNaN(b));
  if (aMissing || bMissing) return aMissing === bMissing ? 0 : aMissing ? 1 : -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

// A new array sorted by `key` (ascending unless desc); ties broken by name then id so
// the order is stable between polls. Missing values go last in both directions.
export function sortRows(rows, key, desc = false) {
  const get = SORT_KEYS[key] || SORT_KEYS.start;
  const dir = desc ? -1 : 1;
  const decorated = rows.map((row) => [get(row), row]);
  decorated.sort((x, y) => {
    const xa = x[0];
    const ya = y[0];
    const xm = xa === null || xa === undefined;
    const ym = ya === null || ya === undefined;
    let c = xm || ym ? sortCompare(xa, ya) : dir * sortCompare(xa, ya);
    if (c === 0) c = sortCompare(SORT_KEYS.name(x[1]), SORT_KEYS.name(y[1]));
    if (c === 0) c = sortCompare(x[1].id, y[1].id);
    return c;
  });
  return decorated.map((pair) => pair[1]);
}

// Whether a row is a finished headless job (hidden by "Hide finished").
export function isFinishedJob(row) {
  return row.kind === "headless" && Boolean(row.finished);
}

// Rows passing the filters: kind ("" = any), status ("" = any), search (case-insensitive
// substring of name or id), hideFinished (drop finished headless jobs).
export function filterRows(rows, { kind = "", status = "", search = "", hideFinished = false } = {}) {
  const needle = (search || "").trim().toLowerCase();
  return rows.filter((row) => {
    if (kind && row.kind !== kind) return false;
    if (status && row.status !== status) return false;
    if (hideFinished && isFinishedJob(row)) return false;
    if (needle) {
      const name = (row.name || "").toLowerCase();
      const id = (row.id || "").toLowerCase();
      if (!name.includes(needle) && !id.includes(needle)) return false;
    }
    return true;
  });
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
