// Which rows of a long table to put in the DOM: the ones on screen plus a margin.
// Pure arithmetic, so the view stays simple and node can test it.

// Below this many shown rows every row is in the DOM and the table has no scroll box
// of its own (the notebook scrolls); at or above it, rows are windowed in a scroll box.
export const WINDOW_FROM = 300;

// The slice [start, end) of `total` rows of height `rowHeight` to render when the box
// shows `viewport` pixels from `scrollTop` (both measured from the first body row), with
// `overscan` extra rows each side so fast scrolling or Tab does not reach an empty edge.
//
// windowRange(0, 400, 20, 5000, 10) -> {start: 0, end: 30}
export function windowRange(scrollTop, viewport, rowHeight, total, overscan = 20) {
  if (total <= 0) return { start: 0, end: 0 };
  const height = rowHeight > 0 ? rowHeight : 24;
  const top = Math.max(0, Number.isFinite(scrollTop) ? scrollTop : 0);
  const first = Math.min(total - 1, Math.floor(top / height));
  const visible = Math.ceil(Math.max(viewport, height) / height) + 1;
  const start = Math.max(0, first - overscan);
  const end = Math.min(total, first + visible + overscan);
  return { start, end };
}

// The same slice, widened to include row `index` (the focused one, say) if it is given.
export function includeRow(range, index) {
  if (index === null || index === undefined || index < 0) return range;
  return { start: Math.min(range.start, index), end: Math.max(range.end, index + 1) };
}
