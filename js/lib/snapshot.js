// The saved snapshot: hide a widget's static HTML output while one of its live views shows.
//
// Why: in a kernel each widget is displayed as two outputs, the live view and a static HTML
// snapshot that Python keeps up to date (canfar_widgets/widgets/_base.py, _ipython_display_),
// so a saved or exported notebook shows the last state. On a live page only the view should
// show: each view adds a style rule hiding the element marked
// data-canfar-snapshot="<the model's _snapshot_id>" (and, in JupyterLab and Notebook 7, the
// output holding it), and removes it when its last view goes. A rule, not a one-off hide,
// because every snapshot refresh renders a new element.
// The loader (canfar_widgets/widgets/_frontend.py) wraps every entry's render with this.

const shown = new Map(); // snapshot id -> {count, style}

// Hide the snapshot `id` until the returned function is called (counted per id).
export function hideSnapshot(id) {
  if (!id || typeof document === "undefined") return () => {};
  const safe = String(id).replace(/[^\w-]/g, "");
  let entry = shown.get(safe);
  if (!entry) {
    const style = document.createElement("style");
    const mark = `[data-canfar-snapshot="${safe}"]`;
    style.textContent =
      `${mark}{display:none !important}` + `.jp-OutputArea-child:has(${mark}){display:none !important}`;
    document.head.append(style);
    entry = { count: 0, style };
    shown.set(safe, entry);
  }
  entry.count += 1;
  let done = false;
  return () => {
    if (done) return;
    done = true;
    entry.count -= 1;
    if (entry.count <= 0) {
      entry.style.remove();
      shown.delete(safe);
    }
  };
}

// An entry (anywidget's {initialize, render}) whose render also hides the snapshot.
export function withSnapshot(entry) {
  if (!entry || typeof entry.render !== "function") return entry;
  const render = entry.render;
  return {
    ...entry,
    render(context) {
      const undo = hideSnapshot(context && context.model ? context.model.get("_snapshot_id") : "");
      const after = (cleanup) => () => {
        undo();
        if (typeof cleanup === "function") cleanup();
      };
      let result;
      try {
        result = render.call(entry, context);
      } catch (err) {
        undo();
        throw err;
      }
      if (result && typeof result.then === "function") {
        return result.then(after, (err) => {
          undo();
          throw err;
        });
      }
      return after(result);
    },
  };
}
