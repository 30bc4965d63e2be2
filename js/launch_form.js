// LaunchForm view: a native <form> whose fields are synced traits. Rules are checked here
// as the user types (js/lib/launch_rules.js) and again in Python before any request.
// Registry credentials are read from their inputs only when Launch is pressed, travel in
// that one message, and are never written to the model.

import { h, isolateKeys, listen, statusParts, uid } from "./lib/dom.js";
import { copyText } from "./lib/copy.js";
import { kernelActions } from "./lib/busy.js";
import {
  HARD_LIMITS, PLATFORM_SIZED_KINDS, checkResource, launchNotes, pythonCode, toWhole, validateSpec,
} from "./lib/launch_rules.js";

const LABEL = {
  name: "Name", kind: "Kind", image: "Image", cores: "Cores", ram: "RAM (GiB)", gpus: "GPUs",
  cmd: "Command", args: "Arguments", env: "Environment", replicas: "Replicas",
  registry: "Registry", form: "Launch",
};
const NUMERIC = new Set(["cores", "ram", "gpus", "replicas"]);
const SYNCED = ["name", "kind", "image", "cores", "ram", "gpus", "cmd", "args", "env", "replicas"];
const KIND_TITLE = {
  notebook: "Notebook", desktop: "Desktop", carta: "CARTA", contributed: "Contributed app",
  firefly: "Firefly", headless: "Headless job",
};

function render({ model, el }) {
  const base = uid("cw-lf");
  const idOf = (key) => `${base}-${key}`;
  const inputs = {};
  const hints = {};
  const errorEls = {};
  const touched = new Set();
  let attempted = false; // after a launch attempt every problem shows, touched or not
  let pending = null; // nonce of the launch in flight: one launch per click, never two
  // Pick one of the kind's images when they arrive: at first (no image yet) and after the
  // person chooses a kind, as the Science Portal does. Typing or clearing the image stops it,
  // so a cleared field stays empty.
  let pickImage = !model.get("image");

  // One labelled field: label[for], control, optional hint, error line (aria-describedby).
  // errorsIn: where the error line goes (default: under the control). The resources row
  // shares one line below it, so a message does not widen a narrow number field.
  const field = (key, control, hint = null, errorsIn = null) => {
    control.id = idOf(key);
    const hintEl = hint === null ? null : h("div", { class: "cw-lf-hint cw-muted", id: idOf(`${key}-hint`) }, hint);
    const err = h("div", { class: "cw-lf-error", id: idOf(`${key}-err`) });
    errorEls[key] = err;
    hints[key] = hintEl;
    control.setAttribute("aria-describedby", [hintEl && hintEl.id, err.id].filter(Boolean).join(" "));
    inputs[key] = control;
    if (errorsIn) errorsIn.append(err);
    return h("div", { class: `cw-lf-field cw-lf-${key}` },
      h("label", { for: control.id }, LABEL[key]), control, hintEl, errorsIn ? null : err);
  };
  const numberInput = (attrs = {}) =>
    h("input", { type: "number", step: "1", inputmode: "numeric", autocomplete: "off", ...attrs });

  // -- controls ------------------------------------------------------------------------------
  const nameInput = h("input", { type: "text", autocomplete: "off", spellcheck: "false", maxlength: "63", required: true });
  const kindSelect = h("select", {});
  const imageInput = h("input", { type: "text", autocomplete: "off", spellcheck: "false", placeholder: "registry/project/name:tag" });
  // A real choice of the kind's images, grouped by project (not a <datalist> the browser
  // filters by what is typed); the text box above takes any image.
  const imageSelect = h("select", { id: idOf("image-choice"), class: "cw-lf-image-choice" });
  const coresList = h("datalist", { id: idOf("cores-options") });
  const ramList = h("datalist", { id: idOf("ram-options") });
  const coresInput = numberInput({ min: "1", list: coresList.id });
  const ramInput = numberInput({ min: "1", list: ramList.id, class: "cw-lf-ram-input" });
  const gpusInput = numberInput({ min: "0", placeholder: "none", title: "Leave empty for no GPU" });
  const cmdInput = h("input", { type: "text", autocomplete: "off", spellcheck: "false", placeholder: "e.g. python" });
  const argsInput = h("input", { type: "text", autocomplete: "off", spellcheck: "false", placeholder: "e.g. /arc/home/me/run.py --fast" });
  const envInput = h("textarea", { rows: "2", spellcheck: "false", placeholder: "KEY=VALUE, one per line" });
  const replicasInput = numberInput({ min: "1", max: "512" });

  const flexRadio = h("input", { type: "radio", name: idOf("resources"), value: "flexible", id: idOf("flexible") });
  const fixedRadio = h("input", { type: "radio", name: idOf("resources"), value: "fixed", id: idOf("fixed") });
  const resourcesHint = h("div", { class: "cw-lf-hint cw-muted", id: idOf("resources-hint") });
  const resourceErrors = h("div", { class: "cw-lf-row-errors" });
  const resources = h("fieldset", { class: "cw-lf-resources", "aria-describedby": resourcesHint.id },
    h("legend", {}, "Resources"),
    h("div", { class: "cw-lf-radios" },
      h("span", {}, flexRadio, h("label", { for: flexRadio.id }, "Flexible")),
      h("span", {}, fixedRadio, h("label", { for: fixedRadio.id }, "Fixed")),
      resourcesHint),
    h("div", { class: "cw-lf-row" },
      field("cores", coresInput, null, resourceErrors), field("ram", ramInput, null, resourceErrors),
      field("gpus", gpusInput, null, resourceErrors)),
    resourceErrors, coresList, ramList);

  const headless = h("fieldset", { class: "cw-lf-headless" },
    h("legend", {}, "Headless job"),
    h("div", { class: "cw-lf-row" },
      field("cmd", cmdInput, "One program (default: the image's)."),
      field("args", argsInput, "Split on spaces; no quoting."),
      field("replicas", replicasInput, "Each gets REPLICA_ID.")),
    field("env", envInput));

  const userInput = h("input", { type: "text", id: idOf("reg-user"), autocomplete: "off", spellcheck: "false" });
  const secretInput = h("input", { type: "password", id: idOf("reg-secret"), autocomplete: "new-password" });
  const registryErr = h("div", { class: "cw-lf-error", id: idOf("registry-err") });
  errorEls.registry = registryErr;
  userInput.setAttribute("aria-describedby", registryErr.id);
  secretInput.setAttribute("aria-describedby", registryErr.id);
  const registrySummary = h("summary", { id: idOf("registry-summary") }, "Private image registry");
  const registry = h("details", { class: "cw-lf-registry" },
    registrySummary,
    // A named group, so a screen reader says what these two fields are for.
    h("div", { role: "group", "aria-labelledby": registrySummary.id, class: "cw-lf-registry-body" },
      h("p", { class: "cw-lf-hint cw-muted" },
        "Only for private images. Sent with this launch only; never stored in the notebook."),
      h("div", { class: "cw-lf-row" },
        h("div", { class: "cw-lf-field" }, h("label", { for: userInput.id }, "Registry username"), userInput),
        h("div", { class: "cw-lf-field" }, h("label", { for: secretInput.id }, "Registry secret"), secretInput)),
      registryErr));

  const launchButton = h("button", { type: "submit", class: "cw-primary cw-lf-launch" }, "Launch");
  const codeId = idOf("code");
  const codeButton = h("button", { type: "button", "aria-expanded": "false", "aria-controls": codeId }, "Show code");
  const warning = h("div", { class: "cw-lf-warning", id: idOf("warning"), "aria-live": "polite", hidden: true });
  const lookAgain = h("button", { type: "button", class: "cw-lf-look-again", hidden: true }, "Look again");
  const { alert, status } = statusParts();
  const codeText = h("code", {});
  const copyButton = h("button", { type: "button" }, "Copy");
  const copyStatus = h("span", { class: "cw-muted", role: "status", "aria-live": "polite" });
  const codePanel = h("div", { class: "cw-lf-code", id: codeId, hidden: true },
    h("div", { class: "cw-lf-code-bar" },
      h("span", { class: "cw-muted" }, "The same launch in Python:"), copyButton, copyStatus),
    h("pre", { tabindex: "0", "aria-label": "Equivalent Python code" }, codeText));

  const root = h("form", { class: "canfar-w cw-launch", novalidate: true, "aria-label": "Launch a CANFAR session" },
    h("div", { class: "cw-lf-row" },
      field("name", nameInput), field("kind", kindSelect)),
    field("image", imageInput, ""),
    h("div", { class: "cw-lf-field cw-lf-image-pick" },
      h("label", { for: imageSelect.id }, "Choose an image"), imageSelect),
    resources, headless, registry, warning,
    h("div", { class: "cw-lf-actions" }, launchButton, codeButton, lookAgain),
    status, alert, codePanel);
  el.append(root);

  // -- model -> view ---------------------------------------------------------------------------
  const limits = () => model.get("limits") || {};
  const kind = () => kindSelect.value || model.get("kind");

  const fillKinds = () => {
    const current = model.get("kind");
    const kinds = model.get("kinds") || [];
    kindSelect.replaceChildren(...kinds.map((k) => h("option", { value: k }, KIND_TITLE[k] || k)));
    kindSelect.value = current;
  };

  // "registry/project/name:tag" -> project ("skaha"), as the portal groups its images.
  const projectOf = (id) => { const parts = id.split("/"); return parts.length > 1 ? parts[parts.length - 2] : ""; };
  const shortName = (id) => id.split("/").pop();
  const OTHER = ""; // the select's "type any image" entry

  const fillImages = () => {
    const images = (model.get("images") || {})[kind()];
    // Not loaded (say, the login was refused): say so, not "Loading..." for ever; the error
    // itself is in the alert, or in a Dashboard its login banner.
    const failed = (model.get("images_failed") || []).includes(kind());
    const title = KIND_TITLE[kind()] || kind();
    const groups = new Map();
    for (const id of images || []) {
      const project = projectOf(id);
      if (!groups.has(project)) groups.set(project, []);
      groups.get(project).push(id);
    }
    imageSelect.replaceChildren(
      h("option", { value: OTHER }, images !== undefined ? "Any image: type it above"
        : failed ? "Images not loaded: type any image above" : "Loading images..."),
      ...[...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([project, ids]) =>
        h("optgroup", { label: project || "other" },
          ...ids.map((id) => h("option", { value: id, title: id }, shortName(id))))));
    hints.image.textContent = images === undefined
      ? (failed ? "Images not loaded; type any image reference." : "Loading images...")
      : `${images.length} ${title} image${images.length === 1 ? "" : "s"} below; or type any image reference.`;
    if (images && images.length && pickImage) {
      pickImage = false;
      if (!images.includes(imageInput.value.trim())) {
        imageInput.value = images[0];
        push("image");
      }
    }
    // Not a default in disguise: an empty field is empty (Launch then says so).
    imageInput.placeholder = images && images.length ? "Type an image, or choose one below" : "registry/project/name:tag";
    syncImageSelect();
  };
  const syncImageSelect = () => {
    const value = imageInput.value.trim();
    const known = [...imageSelect.options].some((o) => o.value === value && value !== OTHER);
    imageSelect.value = known ? value : OTHER;
  };

  const fillOptions = (list, section) => {
    list.replaceChildren(...((section && section.options) || []).map((n) => h("option", { value: String(n) })));
  };

  const fillLimits = () => {
    const l = limits();
    fillOptions(coresList, l.cores);
    fillOptions(ramList, l.ram);
    const setRange = (input, section) => {
      const options = (section && section.options) || [];
      if (options.length) {
        input.min = String(Math.min(...options));
        input.max = String(Math.max(...options));
      }
    };
    setRange(coresInput, l.cores);
    setRange(ramInput, l.ram);
    const gpuOptions = (l.gpus && l.gpus.options) || [];
    if (gpuOptions.length) gpusInput.max = String(Math.max(...gpuOptions));
    else if (l.gpus) gpusInput.max = "0";
  };

  // Both numbers come from the platform's /context, the same values the form validates
  // Fixed against: flexible sessions share up to defaultLimit; Fixed may ask up to the
  // largest option.
  const resourcesText = () => {
    if (PLATFORM_SIZED_KINDS.includes(kind())) {
      return `${KIND_TITLE[kind()]} sessions get resources set by the platform.`;
    }
    const l = limits();
    const cores = l.cores && l.cores.defaultLimit;
    const ram = l.ram && l.ram.defaultLimit;
    const most = (section, hard) => (section && section.options && section.options.length ? Math.max(...section.options) : hard[1]);
    const fixedMost = `up to ${most(l.cores, HARD_LIMITS.cores)} cores and ${most(l.ram, HARD_LIMITS.ram)} GiB`;
    const upTo = cores && ram ? `up to ${cores} cores and ${ram} GiB` : "up to the platform's default limits";
    return fixedRadio.checked
      ? `Fixed: the cores and RAM below (${fixedMost}) are reserved for the session.`
      : `Flexible: the session shares ${upTo} as they are free. Fixed reserves ${fixedMost}.`;
  };

  const readSpec = () => {
    const spec = { resources: fixedRadio.checked ? "fixed" : "flexible" };
    for (const key of SYNCED) {
      const value = inputs[key].value;
      spec[key] = NUMERIC.has(key) ? numberOrText(value) : value;
    }
    return spec;
  };
  // A whole number when the text is one, otherwise the text (so the rules can say why).
  const numberOrText = (value) => {
    const n = toWhole(value);
    return n === null ? null : Number.isNaN(n) ? value : n;
  };

  const updateLayout = () => {
    const isHeadless = kind() === "headless";
    headless.hidden = !isHeadless;
    headless.disabled = !isHeadless;
    const sized = PLATFORM_SIZED_KINDS.includes(kind());
    fixedRadio.disabled = sized;
    flexRadio.disabled = sized;
    const fixed = fixedRadio.checked && !sized;
    coresInput.disabled = !fixed;
    ramInput.disabled = !fixed;
    resourcesHint.textContent = resourcesText();
  };

  const errorsNow = () => {
    const spec = readSpec();
    const errors = validateSpec(spec, limits());
    const user = userInput.value.trim();
    if ((user || secretInput.value) && !(user && secretInput.value)) {
      errors.registry = "Registry username and Registry secret are both needed for a private image.";
    }
    return errors;
  };

  const showErrors = () => {
    const local = errorsNow();
    const server = model.get("field_errors") || {};
    for (const [key, node] of Object.entries(errorEls)) {
      const shown = attempted || touched.has(key) ? local[key] : "";
      const message = shown || (touched.has(key) ? "" : server[key]) || "";
      node.textContent = message;
      const control = inputs[key];
      if (control) control.setAttribute("aria-invalid", message ? "true" : "false");
    }
    updateWarning();
    if (!codePanel.hidden) updateCode();
    if (checkShown || (model.get("error") || "").startsWith(CHECK)) showStatus();
    return local;
  };

  const updateWarning = () => {
    const ceiling = model.get("load_limits") || {};
    const spec = readSpec();
    const notes = [];
    // Only for values the form accepts: an invalid one already has its error line.
    const invalid = validateSpec(spec, limits());
    if (spec.resources === "fixed" && !PLATFORM_SIZED_KINDS.includes(spec.kind)) {
      if (ceiling.cores && !invalid.cores && typeof spec.cores === "number" && spec.cores > ceiling.cores) {
        notes.push(`${spec.cores} cores is more than any node can give now (${ceiling.cores})`);
      }
      if (ceiling.ram && !invalid.ram && typeof spec.ram === "number" && spec.ram > ceiling.ram) {
        notes.push(`${spec.ram} GiB is more than any node can give now (${Math.floor(ceiling.ram)} GiB)`);
      }
    }
    const lines = [];
    if (notes.length) lines.push(`Warning: ${notes.join("; ")}. The session would stay Pending.`);
    for (const note of launchNotes(spec, model.get("images") || {})) lines.push(`Note: ${note}`);
    warning.hidden = lines.length === 0;
    warning.replaceChildren(...lines.map((line) => h("div", {}, line)));
  };

  const updateCode = () => {
    const problems = Object.keys(errorsNow()).map((k) => LABEL[k] || k);
    const note = problems.length ? `# Not valid yet: check ${problems.join(", ")}.\n` : "";
    codeText.textContent = note + pythonCode(readSpec(), { registry: Boolean(userInput.value.trim()) });
  };

  const updateButton = () => {
    const busy = Boolean(pending) || model.get("busy");
    launchButton.disabled = busy;
    launchButton.setAttribute("aria-busy", busy ? "true" : "false");
  };

  const setFromModel = () => {
    for (const key of SYNCED) {
      const control = inputs[key];
      const value = model.get(key);
      if (NUMERIC.has(key)) {
        const mine = toWhole(control.value);
        if (mine === value || (document.activeElement === control && Number.isNaN(mine))) continue;
        control.value = value === null || value === undefined ? "" : String(value);
      } else if (control.value !== value && document.activeElement !== control) {
        control.value = value ?? "";
      }
    }
    const fixed = model.get("resources") === "fixed";
    fixedRadio.checked = fixed;
    flexRadio.checked = !fixed;
  };

  // -- view -> model ---------------------------------------------------------------------------
  const push = (key) => {
    const control = inputs[key];
    let value = control.value;
    if (NUMERIC.has(key)) {
      const n = toWhole(value);
      value = n === null || Number.isNaN(n) ? null : n;
    }
    model.set(key, value);
    model.save_changes();
  };

  const onEdit = (key) => {
    touched.add(key);
    if (key === "image") {
      pickImage = false;
      syncImageSelect();
    }
    push(key);
    if (key === "kind") {
      // Choosing a kind picks one of its images (kept if the current one is among them).
      pickImage = true;
      updateLayout();
      fillImages();
    }
    showErrors();
  };
  imageSelect.addEventListener("change", () => {
    if (imageSelect.value === OTHER) {
      imageInput.focus(); // "type any image": the box is where to type it
      return;
    }
    pickImage = false;
    imageInput.value = imageSelect.value;
    touched.add("image");
    push("image");
    showErrors();
  });
  for (const key of SYNCED) {
    const control = inputs[key];
    control.addEventListener(control.tagName === "SELECT" ? "change" : "input", () => onEdit(key));
  }

  const onResources = () => {
    const fixed = fixedRadio.checked;
    model.set("resources", fixed ? "fixed" : "flexible");
    if (!fixed) {
      // Flexible ignores Cores and RAM: an invalid value there is dropped rather than kept
      // (greyed out, unexplained) for the next switch to Fixed.
      const l = limits();
      for (const [key, label, section, unit] of [["cores", "Cores", l.cores, ""], ["ram", "RAM", l.ram, " GiB"]]) {
        if (inputs[key].value && checkResource(label, inputs[key].value, section && section.options, HARD_LIMITS[key], unit)) {
          inputs[key].value = "";
          model.set(key, null);
          touched.delete(key);
        }
      }
    }
    if (fixed) {
      // Start a fixed request from the platform's form defaults.
      const l = limits();
      for (const [key, section] of [["cores", l.cores], ["ram", l.ram]]) {
        if (!inputs[key].value && section && section.default) {
          inputs[key].value = String(section.default);
          model.set(key, section.default);
        }
      }
    }
    model.save_changes();
    updateLayout();
    showErrors();
  };
  flexRadio.addEventListener("change", onResources);
  fixedRadio.addEventListener("change", onResources);
  for (const input of [userInput, secretInput]) {
    input.addEventListener("input", () => { touched.add("registry"); showErrors(); });
  }

  const actions = kernelActions(model); // says "Waiting for the kernel" if the click waits
  const launch = () => {
    if (pending || model.get("busy")) return; // a second click while sending does nothing
    attempted = true;
    const errors = showErrors();
    const bad = Object.keys(errors);
    if (bad.length) {
      checkShown = true;
      showStatus();
      if (errors.registry) registry.open = true;
      const first = inputs[bad[0]] || (errors.registry ? userInput : null);
      if (first) first.focus();
      return;
    }
    const user = userInput.value.trim();
    pending = uid("launch");
    updateButton();
    status.textContent = "Launching...";
    // Registry credentials travel as a binary buffer, not in the JSON content: a kernel
    // logging comm messages at DEBUG prints the content verbatim, never the buffers.
    const buffers = user
      ? [new TextEncoder().encode(JSON.stringify({ username: user, secret: secretInput.value }))]
      : [];
    actions.send(launchButton, { kind: "launch", nonce: pending, spec: readSpec() }, buffers);
    // The secret is not kept anywhere once sent.
    secretInput.value = "";
  };
  root.addEventListener("submit", (event) => {
    event.preventDefault();
    launch();
  });

  codeButton.addEventListener("click", () => {
    const show = codePanel.hidden;
    codePanel.hidden = !show;
    codeButton.setAttribute("aria-expanded", String(show));
    codeButton.textContent = show ? "Hide code" : "Show code";
    if (show) updateCode();
  });
  lookAgain.addEventListener("click", () => {
    status.textContent = "Looking again...";
    actions.send(lookAgain, { kind: "look_again" });
  });
  copyButton.addEventListener("click", async () => {
    const ok = await copyText(codeText.textContent, root);
    copyStatus.textContent = ok ? "Copied." : "Copy failed: select the code and copy it by hand.";
  });

  // One message per event: an error shows in the alert only (the status line is for
  // progress and results). "Not launched: check ..." follows the fields: it names what is
  // still wrong and goes once the form is valid.
  let checkShown = false; // this view's own launch attempt found problems
  const CHECK = "Not launched: check ";
  const checkText = () => {
    const bad = Object.keys(errorsNow());
    return bad.length ? `${CHECK}${bad.map((k) => LABEL[k] || k).join(", ")}.` : "";
  };
  const showStatus = () => {
    let error = model.get("error") || "";
    if (error.startsWith(CHECK) || (checkShown && !error)) {
      error = checkText();
      // A server's word on a field stays until the field is edited.
      const server = model.get("field_errors") || {};
      if (!error && Object.keys(server).some((k) => !touched.has(k))) error = model.get("error") || "";
      if (!error) checkShown = false;
    }
    alert.textContent = error;
    if (error) status.textContent = "";
    else if (!pending || model.get("busy")) status.textContent = model.get("status") || "";
    const unknown = model.get("unknown_outcome") || {};
    lookAgain.hidden = !(unknown.names && unknown.names.length);
    if (lookAgain.hidden && document.activeElement === lookAgain) launchButton.focus();
  };

  // -- wiring ----------------------------------------------------------------------------------
  fillKinds();
  setFromModel();
  fillLimits();
  updateLayout();
  fillImages();
  showStatus();
  updateButton();
  showErrors();
  const cleanups = [
    () => actions.dispose(),
    isolateKeys(root),
    listen(model, SYNCED.concat(["resources"]), () => {
      setFromModel();
      updateLayout();
      fillImages();
      showErrors();
    }),
    listen(model, ["kinds"], fillKinds),
    listen(model, ["images", "images_failed"], fillImages),
    listen(model, ["limits"], () => { fillLimits(); updateLayout(); showErrors(); }),
    listen(model, ["load_limits"], updateWarning),
    listen(model, ["field_errors"], () => { attempted = false; touched.clear(); showErrors(); }),
    listen(model, ["status", "error", "unknown_outcome"], showStatus),
    listen(model, ["busy"], () => { updateButton(); showStatus(); }),
    listen(model, ["done_nonce"], () => {
      if (model.get("done_nonce") === pending) {
        pending = null;
        updateButton();
        showStatus();
      }
    }),
  ];
  return () => {
    for (const cleanup of cleanups) cleanup();
    secretInput.value = "";
  };
}

export default { render };
