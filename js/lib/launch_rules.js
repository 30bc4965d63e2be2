// The launch form's rules, shared by its view and the node tests: the name rule, resource
// limits from the platform context, environment parsing, and the equivalent Python call.
//
// A launch rule's words live in vocabulary.LAUNCH_MESSAGES; its check is written in
// launch_rules.py and its twin launch_rules.js, kept equal by
// tests/widgets/test_launch_form.py::test_browser_rules_match_python_rules_on_a_corpus.
//
// This twin gives instant feedback as you type, even while the kernel is busy; the Python one
// (canfar_widgets/widgets/launch_rules.py) is authoritative at launch. Messages, labels,
// units, limits and patterns come from canfar_widgets/vocabulary.py through ./vocabulary.js:
// the code here is only the generic check.

import { VOCABULARY } from "./vocabulary.js";

// The server accepts [A-Za-z0-9-]+, but the lower-cased name becomes the pod hostname (a
// DNS label), so longer names or a leading/trailing "-" fail later with a 500.
export const NAME_PATTERN = VOCABULARY.namePattern;
export const HEADLESS_FIELDS = ["cmd", "args", "env", "replicas"];
export const LAUNCH_KINDS = VOCABULARY.launchKinds;
// Kinds whose launch templates hard-code resources: cores/ram are ignored by the server.
export const PLATFORM_SIZED_KINDS = VOCABULARY.interactiveOnlyKinds;
const RESOURCES = VOCABULARY.launchResources;
// Keyed by form field (the form says "gpus" where the request says "gpu").
export const HARD_LIMITS = Object.fromEntries(Object.entries(RESOURCES).map(([k, r]) => [k, r.hard]));

const nameRe = new RegExp(NAME_PATTERN);
const envKeyRe = new RegExp(VOCABULARY.envKeyPattern);
const imageRe = new RegExp(VOCABULARY.imagePattern);

// A template's {field} placeholders filled in, as Python's str.format does for the same
// template (one pass: a value is never read as a template; a missing field throws).
//   format("{label} is required.", {label: "Cores"}) -> "Cores is required."
export function format(template, fields = {}) {
  return template.replace(/\{(\w+)\}/g, (_, key) => {
    if (!(key in fields)) throw new Error(`format: no value for {${key}} in ${JSON.stringify(template)}`);
    return String(fields[key]);
  });
}

// The launch message `key` of vocabulary.LAUNCH_MESSAGES, filled in.
const say = (key, fields) => format(VOCABULARY.launchMessages[key], fields);

// The message for a bad name, or "" when the name is fine.
export function checkName(name) {
  const value = String(name ?? "").trim();
  if (!value) return say("name_required");
  if (nameRe.test(value)) return "";
  return say("name_rule"); // plain words: the pattern means nothing to most people
}

// "1-16" / "1-2, 4, 6, 8" for a sorted list of whole numbers.
export function describeOptions(options) {
  const sorted = [...new Set(options)].sort((a, b) => a - b);
  const parts = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(j > i + 1 ? `${sorted[i]}-${sorted[j]}` : j === i + 1 ? `${sorted[i]}, ${sorted[j]}` : `${sorted[i]}`);
    i = j + 1;
  }
  return parts.join(", ");
}

// A whole number from a form value: null when blank, NaN when not a whole number (negative
// numbers included, as in Python's twin).
export function toWhole(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return Number.isInteger(value) && value >= 0 ? value : NaN;
  const text = String(value).trim();
  if (!text) return null;
  return /^\d+$/.test(text) ? Number(text) : NaN;
}

// Above this many choices a list reads like developer output ("one of 1-16, 20, 24, ...").
export const LIST_AT_MOST = VOCABULARY.listAtMost;

// Check one resource against the context's options (or the client's hard limits): a few
// choices are named; of many, out of range says the range ("RAM must be between 1 and 192
// GiB.") and an in-range value not offered gets the nearest two. unit is e.g. " GiB".
export function checkResource(label, value, options, hard, unit = "") {
  const n = toWhole(value);
  if (n === null) return say("required", { label });
  if (Number.isNaN(n)) return say("not_whole", { label });
  const has = Boolean(options && options.length);
  if (has && new Set(options).size <= LIST_AT_MOST) {
    return options.includes(n) ? "" : say("one_of", { label, options: describeOptions(options), unit });
  }
  const low = has ? Math.min(...options) : hard[0];
  const high = has ? Math.max(...options) : hard[1];
  if (n < low || n > high) return say("between", { label, low, high, unit });
  if (has && !options.includes(n)) {
    const below = Math.max(...options.filter((o) => o < n));
    const above = Math.min(...options.filter((o) => o > n));
    return say("not_offered", { label, value: n, unit, below, above });
  }
  return "";
}

// checkResource for a form field of vocabulary.LAUNCH_RESOURCES (its label, unit and bounds).
export function checkField(field, value, options) {
  const { label, hard, unit } = RESOURCES[field];
  return checkResource(label, value, options, hard, unit);
}

// Parse "KEY=VALUE" lines. Blank lines and lines starting with "#" are skipped.
//   parseEnv("A=1\n\nB=two") -> {env: {A: "1", B: "two"}, error: ""}
// The platform splits each entry on "=" and silently drops entries without exactly one,
// so a value containing "=" is refused here rather than lost there.
export function parseEnv(text) {
  const env = {};
  const lines = String(text ?? "").split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line || line.startsWith("#")) continue;
    const at = line.indexOf("=");
    if (at <= 0) return { env, error: say("env_shape", { line: i + 1 }) };
    const key = line.slice(0, at).trim();
    const value = line.slice(at + 1).trim();
    if (!envKeyRe.test(key)) return { env, error: say("env_key", { line: i + 1, key }) };
    if (value.includes("=")) return { env, error: say("env_equals", { line: i + 1 }) };
    env[key] = value;
  }
  return { env, error: "" };
}

// The message for a bad image reference, or "" when fine.
export function checkImage(image) {
  const value = String(image ?? "").trim();
  if (!value) return say("image_required");
  return imageRe.test(value) ? "" : say("image_shape");
}

// Every problem in a launch spec, as {field: message}; {} when it can be sent.
// spec: {name, kind, image, resources: "flexible"|"fixed", cores, ram, gpus, cmd, args,
//        env (text), replicas}; limits: {cores: {options}, ram: {options}, gpus: {options}}.
export function validateSpec(spec, limits = {}) {
  const errors = {};
  const put = (field, message) => { if (message) errors[field] = message; };
  put("name", checkName(spec.name));
  if (!LAUNCH_KINDS.includes(spec.kind)) put("kind", say("kind_unknown"));
  put("image", checkImage(spec.image));
  if (spec.resources === "fixed" && !PLATFORM_SIZED_KINDS.includes(spec.kind)) {
    put("cores", checkField("cores", spec.cores, limits.cores?.options));
    put("ram", checkField("ram", spec.ram, limits.ram?.options));
  }
  // Blank or 0 is "no GPU"; anything else is checked (a non-number says so).
  const gpus = toWhole(spec.gpus);
  if (gpus !== null && gpus !== 0) put("gpus", checkField("gpus", spec.gpus, limits.gpus?.options));
  if (spec.kind === "headless") {
    const replicas = toWhole(spec.replicas);
    const name = String(spec.name ?? "").trim();
    if (!errors.name && replicas > 1 && name.length + `-${replicas}`.length > VOCABULARY.nameMaxLength) {
      put("name", say("name_too_long_for_replicas", { replicas, name }));
    }
    const cmd = String(spec.cmd ?? "").trim();
    if (/\s/.test(cmd)) put("cmd", say("cmd_one_program"));
    put("env", parseEnv(spec.env).error);
    put("replicas", checkField("replicas", spec.replicas));
  }
  return errors;
}

// Warnings that do not stop a launch, said before it ([] when none): a hand-typed image
// that is not one of the kind's images; headless arguments without a command (the image's
// own command gets them). images is the form's {kind: [image ids]}.
export function launchNotes(spec, images = {}) {
  const notes = [];
  const kind = String(spec.kind ?? "");
  const image = String(spec.image ?? "").trim();
  const known = (images || {})[kind];
  if (image && !checkImage(image) && known && known.length && !known.includes(image)) {
    notes.push(say("note_foreign_image", { image, kind }));
  }
  if (kind === "headless") {
    const cmd = String(spec.cmd ?? "").trim();
    const args = String(spec.args ?? "").trim();
    if (args && !cmd) notes.push(say("note_args_without_cmd", { args }));
  }
  return notes;
}

// The keyword arguments of session.create() for a valid spec, in a stable order; fields
// that do not apply (flexible resources, non-headless options, no GPU) are left out.
export function createKwargs(spec) {
  const kw = { name: String(spec.name).trim(), image: String(spec.image).trim(), kind: spec.kind };
  if (spec.resources === "fixed" && !PLATFORM_SIZED_KINDS.includes(spec.kind)) {
    kw.cores = toWhole(spec.cores);
    kw.ram = toWhole(spec.ram);
  }
  const gpus = toWhole(spec.gpus);
  if (gpus) kw.gpu = gpus;
  if (spec.kind === "headless") {
    const cmd = String(spec.cmd ?? "").trim();
    const args = String(spec.args ?? "").trim();
    const { env } = parseEnv(spec.env);
    if (cmd) kw.cmd = cmd;
    if (args) kw.args = args;
    if (Object.keys(env).length) kw.env = env;
    const replicas = toWhole(spec.replicas);
    if (replicas && replicas > 1) kw.replicas = replicas;
  }
  return kw;
}

// A Python literal for a string, int or flat str->str dict (JSON strings are valid Python).
function pyLiteral(value) {
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return JSON.stringify(value);
  const items = Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  return `{${items.join(", ")}}`;
}

// The Python that makes the same launch. Secrets never appear: with a private registry the
// snippet builds ContainerRegistry() from the CANFAR_REGISTRY__* environment variables.
export function pythonCode(spec, { registry = false } = {}) {
  const kw = createKwargs(spec);
  const lines = [];
  if (registry) {
    lines.push("from canfar_widgets import ContainerRegistry, Session");
    lines.push("");
    lines.push("# Reads CANFAR_REGISTRY__USERNAME and CANFAR_REGISTRY__SECRET from the environment.");
    lines.push("registry = ContainerRegistry()");
  } else {
    lines.push("from canfar_widgets import Session");
  }
  lines.push("");
  lines.push("session = Session()");
  lines.push("ids = session.create(");
  for (const [key, value] of Object.entries(kw)) lines.push(`    ${key}=${pyLiteral(value)},`);
  if (registry) lines.push("    registry=registry,");
  lines.push(")");
  return lines.join("\n") + "\n";
}
