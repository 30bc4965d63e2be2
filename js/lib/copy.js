// Copy text to the clipboard from a click handler, with a fallback for hosts where the
// async Clipboard API is missing or refused (plain-http servers, some webviews, Safari):
// select the text in a temporary read-only <textarea> and use execCommand("copy").
// Resolves true when the copy worked, false otherwise (the caller announces it).

export async function copyText(text, host = document.body) {
  try {
    if (typeof navigator !== "undefined" && navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (err) {
    // Denied or unavailable: fall through to the selection-based copy.
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.setAttribute("aria-hidden", "true");
  area.className = "cw-sr-only";
  host.append(area);
  const focused = document.activeElement;
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch (err) {
    ok = false;
  }
  area.remove();
  if (focused && typeof focused.focus === "function") focused.focus();
  return ok;
}

// Offer text as a downloaded .txt file through a temporary Blob URL and <a download>.
export function downloadText(text, filename) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.rel = "noopener";
  link.style.display = "none";
  document.body.append(link);
  link.click();
  link.remove();
  // Revoke later: some browsers start the download asynchronously.
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
