import test from "node:test";
import assert from "node:assert/strict";
import {
  NAME_PATTERN, checkField, checkImage, checkName, createKwargs, describeOptions, format,
  launchNotes, parseEnv, pythonCode, toWhole, validateSpec,
} from "../lib/launch_rules.js";

const LIMITS = {
  cores: { options: [1, 2, 4, 8, 16], default: 2 },
  ram: { options: [1, 2, 4, 8, 16, 32], default: 8 },
  gpus: { options: [1, 2] },
};
const base = {
  name: "hogg-a1b2", kind: "notebook", image: "images.canfar.net/skaha/astroml:latest",
  resources: "flexible", cores: "2", ram: "8", gpus: "", cmd: "", args: "", env: "", replicas: "1",
};

test("name rule names the field and the rule", () => {
  assert.equal(checkName("hogg-1"), "");
  assert.equal(checkName("A"), "");
  assert.equal(checkName("a".repeat(63)), "");
  for (const bad of ["-a", "a-", "a_b", "a b", "a".repeat(64), "émile"]) {
    const msg = checkName(bad);
    assert.match(msg, /^Name/, bad);
    // Plain words (issue 15 item 5): the rule, never the regex.
    assert.ok(msg.includes("letters, digits and '-'"), bad);
    assert.ok(!msg.includes(NAME_PATTERN) && !msg.includes("^"), bad);
  }
  assert.equal(checkName("  "), "Name is required.");
});

// Messages are vocabulary.LAUNCH_MESSAGES templates, filled in as Python's str.format does.
test("format fills {name} placeholders once and refuses a missing one", () => {
  assert.equal(format("{label} is required.", { label: "Cores" }), "Cores is required.");
  assert.equal(format("{a}{b}{a}", { a: "{b}", b: 0 }), "{b}0{b}"); // a value is never a template
  assert.equal(format("no fields"), "no fields");
  assert.throws(() => format("{label} must", {}), /no value for \{label\}/);
});

test("checkField takes the label, unit and bounds from the vocabulary", () => {
  assert.equal(checkField("ram", "999"), "RAM must be between 1 and 512 GiB.");
  assert.equal(checkField("gpus", "x"), "GPUs must be a whole number.");
  assert.equal(checkField("replicas", "2"), "");
  assert.ok(Number.isNaN(toWhole(-1))); // negative numbers, as Python's twin says
});

test("describeOptions compresses runs", () => {
  assert.equal(describeOptions([1, 2, 3, 4]), "1-4");
  assert.equal(describeOptions([1, 2, 4, 6, 8, 9, 10]), "1, 2, 4, 6, 8-10");
  assert.equal(describeOptions([5]), "5");
});

test("toWhole", () => {
  assert.equal(toWhole(""), null);
  assert.equal(toWhole(" 4 "), 4);
  assert.ok(Number.isNaN(toWhole("4.5")));
  assert.ok(Number.isNaN(toWhole("-1")));
  assert.ok(Number.isNaN(toWhole(2.5)));
});

test("parseEnv", () => {
  assert.deepEqual(parseEnv("A=1\n\n# note\nB_2 = two \r\n"), { env: { A: "1", B_2: "two" }, error: "" });
  assert.match(parseEnv("A=1\nnope").error, /line 2: expected KEY=VALUE/);
  assert.match(parseEnv("1A=x").error, /not a valid variable name/);
  assert.match(parseEnv("A=b=c").error, /cannot contain '='/);
  assert.deepEqual(parseEnv(""), { env: {}, error: "" });
});

test("checkImage", () => {
  assert.equal(checkImage("skaha/astroml"), "");
  assert.equal(checkImage("images.canfar.net/skaha/astroml:1.0"), "");
  assert.match(checkImage("ubuntu:latest"), /Image must look like/);
  assert.match(checkImage("a/b/c/d"), /Image must look like/);
  assert.equal(checkImage(""), "Image is required.");
});

test("a flexible notebook is valid and sends no resources", () => {
  assert.deepEqual(validateSpec(base, LIMITS), {});
  assert.deepEqual(createKwargs(base), {
    name: "hogg-a1b2", image: "images.canfar.net/skaha/astroml:latest", kind: "notebook",
  });
});

test("fixed resources are checked against the context options", () => {
  const spec = { ...base, resources: "fixed", cores: "3", ram: "1000" };
  const errors = validateSpec(spec, LIMITS);
  assert.equal(errors.cores, "Cores must be one of 1, 2, 4, 8, 16.");
  // Plain words: "RAM" and its unit (the label "RAM (GiB)" is the field's, not the sentence's).
  assert.match(errors.ram, /^RAM must be one of .* GiB\.$/);
  assert.deepEqual(validateSpec({ ...spec, cores: "4", ram: "16" }, LIMITS), {});
  assert.deepEqual(createKwargs({ ...spec, cores: "4", ram: "16" }).cores, 4);
  // Without context, the client's hard limits apply.
  assert.equal(validateSpec({ ...spec, cores: "300", ram: "8" }, {}).cores, "Cores must be between 1 and 256.");
  assert.equal(validateSpec({ ...spec, cores: "", ram: "8" }, {}).cores, "Cores is required.");
});

test("desktop ignores fixed resources", () => {
  const spec = { ...base, kind: "desktop", resources: "fixed", cores: "999" };
  assert.deepEqual(validateSpec(spec, LIMITS), {});
  assert.equal(createKwargs(spec).cores, undefined);
});

test("GPUs: blank or 0 means none, otherwise an option", () => {
  assert.deepEqual(validateSpec({ ...base, gpus: "0" }, LIMITS), {});
  assert.equal(validateSpec({ ...base, gpus: "3" }, LIMITS).gpus, "GPUs must be one of 1, 2.");
  assert.equal(validateSpec({ ...base, gpus: "x" }, LIMITS).gpus, "GPUs must be a whole number.");
  assert.equal(createKwargs({ ...base, gpus: "2" }).gpu, 2);
});

test("headless fields apply to headless only", () => {
  const nb = { ...base, cmd: "echo", args: "hi", env: "A=1", replicas: "3" };
  assert.deepEqual(validateSpec(nb, LIMITS), {});
  assert.deepEqual(Object.keys(createKwargs(nb)), ["name", "image", "kind"]);
  const job = { ...nb, kind: "headless" };
  assert.deepEqual(createKwargs(job), {
    name: "hogg-a1b2", image: "images.canfar.net/skaha/astroml:latest", kind: "headless",
    cmd: "echo", args: "hi", env: { A: "1" }, replicas: 3,
  });
  const bad = validateSpec({ ...job, cmd: "echo hi", env: "A", replicas: "600" }, LIMITS);
  assert.deepEqual(Object.keys(bad).sort(), ["cmd", "env", "replicas"]);
  assert.equal(bad.replicas, "Replicas must be between 1 and 512.");
  const long = validateSpec({ ...job, name: "a".repeat(61), replicas: "10" }, LIMITS);
  assert.match(long.name, /too long for 10 replicas/);
  assert.deepEqual(validateSpec({ ...job, name: "a".repeat(61), replicas: "9" }, LIMITS), {});
});

test("pythonCode is the equivalent call, without secrets", () => {
  const job = { ...base, kind: "headless", resources: "fixed", cores: "2", ram: "8", cmd: "echo",
    args: 'say "hi"', env: "A=1", replicas: "2" };
  assert.equal(pythonCode(job), [
    "from canfar_widgets import Session",
    "",
    "session = Session()",
    "ids = session.create(",
    '    name="hogg-a1b2",',
    '    image="images.canfar.net/skaha/astroml:latest",',
    '    kind="headless",',
    "    cores=2,",
    "    ram=8,",
    '    cmd="echo",',
    '    args="say \\"hi\\"",',
    '    env={"A": "1"},',
    "    replicas=2,",
    ")",
    "",
  ].join("\n"));
  const withRegistry = pythonCode(base, { registry: true });
  assert.match(withRegistry, /registry = ContainerRegistry\(\)/);
  assert.match(withRegistry, /registry=registry,/);
  assert.doesNotMatch(withRegistry, /secret=/);
});

// The real platform offers 28 RAM sizes: a message lists none of them (issue 15 item 5).
const MANY = {
  cores: { options: Array.from({ length: 16 }, (_, i) => i + 1) },
  ram: { options: [1, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 26, 28, 30, 32, 36, 40, 44, 48, 56, 64, 80, 92, 112, 128, 140, 160, 192] },
};

test("many choices: the range, or the nearest two", () => {
  const spec = { ...base, resources: "fixed", cores: "2" };
  assert.equal(validateSpec({ ...spec, ram: "500" }, MANY).ram, "RAM must be between 1 and 192 GiB.");
  assert.equal(validateSpec({ ...spec, ram: "3" }, MANY).ram, "RAM 3 GiB is not offered by the platform: the nearest are 2 and 4 GiB.");
  assert.equal(validateSpec({ ...spec, cores: "17", ram: "8" }, MANY).cores, "Cores must be between 1 and 16.");
  assert.deepEqual(validateSpec({ ...spec, ram: "192" }, MANY), {});
});

test("launchNotes: a foreign image, arguments without a command", () => {
  const images = { desktop: ["images.canfar.net/skaha/desktop:1"] };
  assert.deepEqual(launchNotes({ kind: "desktop", image: "images.canfar.net/skaha/astroml:latest" }, images), [
    "images.canfar.net/skaha/astroml:latest is not one of the platform's desktop images: it may not start as a desktop session.",
  ]);
  assert.deepEqual(launchNotes({ kind: "desktop", image: "images.canfar.net/skaha/desktop:1" }, images), []);
  assert.deepEqual(launchNotes({ kind: "headless", image: "p/x", args: "-v" }, {}), [
    "No command: the image's own command gets these arguments (-v).",
  ]);
  assert.deepEqual(launchNotes({ kind: "headless", image: "p/x", args: "-v", cmd: "python" }, {}), []);
});
