// Log text logic for the log viewer, without DOM: the display cap, chunking for cheap
// appends, plain-text search and splitting styled segments around search matches.

// How many matches a search reports at most; beyond it the count reads "10000+".
export const LOG_MAX_MATCHES = 10000;

// Number of lines in text as a viewer shows them (a trailing newline ends the last line).
//   countLines("a\nb\n") === 2, countLines("a\nb") === 2, countLines("") === 0
export function countLines(text) {
  if (!text) return 0;
  let n = 0;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) n++;
  return text.endsWith("\n") ? n : n + 1;
}

// The last maxLines lines of text and how many lines were left out.
//   tailLines("a\nb\nc\n", 2) -> {text: "b\nc\n", hidden: 1}
export function tailLines(text, maxLines) {
  const total = countLines(text);
  if (!maxLines || maxLines <= 0 || total <= maxLines) return { text, hidden: 0 };
  let skip = total - maxLines;
  let i = -1;
  while (skip > 0) {
    i = text.indexOf("\n", i + 1);
    skip--;
  }
  return { text: text.slice(i + 1), hidden: total - maxLines };
}

// Split text into pieces of at most `lines` lines each, so the viewer can drop whole
// pieces from the top when the display cap is reached instead of re-rendering.
export function splitChunks(text, lines) {
  const out = [];
  let start = 0;
  let n = 0;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) {
    n++;
    if (n === lines) {
      out.push(text.slice(start, i + 1));
      start = i + 1;
      n = 0;
    }
  }
  if (start < text.length) out.push(text.slice(start));
  return out;
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// Case-insensitive, non-overlapping matches of a plain query: [[start, end], ...].
//   findMatches("Error error", "error") -> [[0, 5], [6, 11]]
export function findMatches(text, query, limit = LOG_MAX_MATCHES) {
  if (!query) return [];
  const re = new RegExp(escapeRegExp(query), "gi");
  const out = [];
  for (let m = re.exec(text); m !== null && out.length < limit; m = re.exec(text)) {
    out.push([m.index, m.index + m[0].length]);
  }
  return out;
}

// Split styled segments ({text, ...}) at match boundaries; pieces inside a match get
// mark: <match number>. `matches` are offsets into the segments' joined text.
//   markSegments([{text: "abcd"}], [[1, 3]]) ->
//     [{text: "a", mark: -1}, {text: "bc", mark: 0}, {text: "d", mark: -1}]
export function markSegments(segments, matches) {
  const out = [];
  let pos = 0;
  let m = 0;
  for (const seg of segments) {
    const end = pos + seg.text.length;
    let at = pos;
    while (at < end) {
      while (m < matches.length && matches[m][1] <= at) m++;
      const match = matches[m];
      if (!match || match[0] >= end) {
        out.push({ ...seg, text: seg.text.slice(at - pos), mark: -1 });
        at = end;
      } else if (match[0] > at) {
        out.push({ ...seg, text: seg.text.slice(at - pos, match[0] - pos), mark: -1 });
        at = match[0];
      } else {
        const stop = Math.min(match[1], end);
        out.push({ ...seg, text: seg.text.slice(at - pos, stop - pos), mark: m });
        at = stop;
      }
    }
    pos = end;
  }
  return out;
}

// "3 matches", "1 match", "No matches", "10000+ matches".
export function matchCountText(count, limit = LOG_MAX_MATCHES) {
  if (count === 0) return "No matches";
  if (count >= limit) return `${limit}+ matches`;
  return count === 1 ? "1 match" : `${count} matches`;
}

// A safe download name for a session's log: "<name>-log.txt" (pass the session's label).
//   logFileName("multi2-1") === "multi2-1-log.txt"
export function logFileName(label) {
  const safe = String(label || "session").replace(/[^A-Za-z0-9_.-]+/g, "_").replace(/^_+|_+$/g, "");
  return `${safe || "session"}-log.txt`;
}

// What the session selector shows for each id: its name; "name (id)" where two sessions
// share a name; the id while the name is unknown.
//   sessionLabels(["a1", "b2"], {a1: "job-1", b2: "job-1"}) -> {a1: "job-1 (a1)", b2: "job-1 (b2)"}
export function sessionLabels(ids, names) {
  const count = {};
  for (const id of ids) {
    const name = names[id];
    if (name) count[name] = (count[name] || 0) + 1;
  }
  const out = {};
  for (const id of ids) {
    const name = names[id];
    out[id] = !name ? id : count[name] > 1 ? `${name} (${id})` : name;
  }
  return out;
}
