// The launch form's rules, shared by its view and the node tests: the name rule, resource
// limits from the platform context, environment parsing, and the equivalent Python call.
// The Python side (canfar_widgets/widgets/launch.py) applies the same rules with the same
// messages before any request; keep the two in step.

// The server accepts [A-Za-z0-9-]+, but the lower-cased name becomes the pod hostname (a
// DNS label), so longer names or a leading/trailing "-" fail later with a 500.
export const NAME_PATTERN = "^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$";
export const HEADLESS_FIELDS = ["cmd", "args", "env", "replicas"];
export const LAUNCH_KINDS = ["notebook", "desktop", "carta", "contributed", "firefly", "headless"];
// Kinds whose launch templates hard-code resources: cores/ram are ignored by the server.
export const PLATFORM_SIZED_KINDS = ["desktop", "firefly"];
export const HARD_LIMITS = { cores: [1, 256], ram: [1, 512], gpus: [1, 28], replicas: [1, 512] };

const launchNameRe = new RegExp(NAME_PATTERN);
const launchEnvKeyRe = /^[A-Za-z_][A-Za-z0-9_]*$/;

// The message for a bad name, or "" when the name is fine.
export function checkName(name) {
  const value = String(name ?? "").trim();
  if (!value) return "Name is required.";
  if (launchNameRe.test(value)) return "";
  return (
    "Name must be 1-63 letters, digits or '-', starting and ending with a letter or digit " +
    `(rule ${NAME_PATTERN}).`
  );
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

// A whole number from a form value: null when blank, NaN when not a whole number.
export function toWhole(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return Number.isInteger(value) ? value : NaN;
  const text = String(value).trim();
  if (!text) return null;
  return /^\d+$/.test(text) ? Number(text) : NaN;
}

// Check one resource against the context's options (or the client's hard limits).
export function checkResource(label, value, options, hard) {
  const n = toWhole(value);
  if (n === null) return `${label} is required.`;
  if (Number.isNaN(n)) return `${label} must be a whole number.`;
  if (options && options.length) {
    if (!options.includes(n)) return `${label} must be one of ${describeOptions(options)}.`;
  } else if (n < hard[0] || n > hard[1]) {
    return `${label} must be between ${hard[0]} and ${hard[1]}.`;
  }
  return "";
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
    if (at <= 0) return { env, error: `Environment line ${i + 1}: expected KEY=VALUE.` };
    const key = line.slice(0, at).trim();
    const value = line.slice(at + 1).trim();
    if (!launchEnvKeyRe.test(key)) {
      return { env, error: `Environment line ${i + 1}: ${key} is not a valid variable name.` };
    }
    if (value.includes("=")) {
      return { env, error: `Environment line ${i + 1}: the value cannot contain '=' (the platform splits on it).` };
    }
    env[key] = value;
  }
  return { env, error: "" };
}

// The message for a bad image reference, or "" when fine.
export function checkImage(image) {
  const value = String(image ?? "").trim();
  if (!value) return "Image is required.";
  const parts = value.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !p) || /\s/.test(value)) {
    return "Image must look like [registry/]project/name[:tag], e.g. images.canfar.net/skaha/astroml:latest.";
  }
  return "";
}

// Every problem in a launch spec, as {field: message}; {} when it can be sent.
// spec: {name, kind, image, resources: "flexible"|"fixed", cores, ram, gpus, cmd, args,
//        env (text), replicas}; limits: {cores: {options}, ram: {options}, gpus: {options}}.
export function validateSpec(spec, limits = {}) {
  const errors = {};
  const put = (field, message) => { if (message) errors[field] = message; };
  put("name", checkName(spec.name));
  if (!LAUNCH_KINDS.includes(spec.kind)) put("kind", `Kind must be one of ${LAUNCH_KINDS.join(", ")}.`);
  put("image", checkImage(spec.image));
  if (spec.resources === "fixed" && !PLATFORM_SIZED_KINDS.includes(spec.kind)) {
    put("cores", checkResource("Cores", spec.cores, limits.cores?.options, HARD_LIMITS.cores));
    put("ram", checkResource("RAM (GB)", spec.ram, limits.ram?.options, HARD_LIMITS.ram));
  }
  const gpus = toWhole(spec.gpus);
  if (gpus !== null && gpus !== 0) {
    put("gpus", checkResource("GPUs", spec.gpus, limits.gpus?.options, HARD_LIMITS.gpus));
  } else if (Number.isNaN(gpus)) {
    put("gpus", "GPUs must be a whole number.");
  }
  if (spec.kind === "headless") {
    const replicas = toWhole(spec.replicas);
    const name = String(spec.name ?? "").trim();
    if (!errors.name && replicas > 1 && name.length + `-${replicas}`.length > 63) {
      put("name", `Name is too long for ${replicas} replicas: each session is named ${name}-<n>, at most 63 characters.`);
    }
    const cmd = String(spec.cmd ?? "").trim();
    if (/\s/.test(cmd)) put("cmd", "Command is one program without spaces; put its arguments in Arguments.");
    put("env", parseEnv(spec.env).error);
    put("replicas", checkResource("Replicas", spec.replicas, null, HARD_LIMITS.replicas));
  }
  return errors;
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
function launchPyLiteral(value) {
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
  for (const [key, value] of Object.entries(kw)) lines.push(`    ${key}=${launchPyLiteral(value)},`);
  if (registry) lines.push("    registry=registry,");
  lines.push(")");
  return lines.join("\n") + "\n";
}
