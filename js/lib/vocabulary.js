// The platform's words: session states, kinds, the name rule and the resource limits.
// They are defined once, in canfar_widgets/vocabulary.py. In the browser this file is never
// read: the front-end loader (canfar_widgets/widgets/_frontend.py) serves
//   export const VOCABULARY = <that module's JSON>;
// in its place. Under node (the unit tests) the same JSON comes from the CANFAR_VOCABULARY
// environment variable, which tests/widgets/test_js.py sets.
//
// Fields (see vocabulary.as_json): kinds, launchKinds, interactiveOnlyKinds, states,
// finishedStates, activeStates, busyStates, statusAliases, namePattern, nameRule,
// nameMaxLength, limits {cores, ram, gpu, replicas: [min, max]}, and the launch form's
// launchMessages {key: "template with {field}s"}, launchResources {cores, ram, gpus,
// replicas: {label, unit, hard: [min, max]}}, listAtMost, imagePattern, envKeyPattern.

const text = globalThis.process?.env?.CANFAR_VOCABULARY;
if (!text) {
  throw new Error(
    "CANFAR_VOCABULARY is not set: run `CANFAR_VOCABULARY=\"$(python -m canfar_widgets.vocabulary)\" node --test js/tests/`",
  );
}
export const VOCABULARY = Object.freeze(JSON.parse(text));
