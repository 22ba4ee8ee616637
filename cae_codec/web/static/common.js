// What both pages share: running a job on the server (its events arrive as JSON lines),
// turning base64 into downloadable blobs, one-sentence errors, number formats.

export const $ = (sel) => document.querySelector(sel);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) node.append(c);
  return node;
}

export async function getJSON(url) {
  const resp = await fetch(url);
  const data = await resp.json().catch(() => null);
  if (!resp.ok) throw new Error(data && data.error ? data.error : `the server answered ${resp.status}`);
  return data;
}

// POST ``body`` to ``url`` and call ``onEvent`` for each event of the job; an error event, an
// error status (503 busy, 413 too large...) or a stream cut short rejects with one sentence.
export async function runJob(url, body, onEvent) {
  let resp;
  try {
    resp = await fetch(url, { method: "POST", body, headers: { "Content-Type": "application/octet-stream" } });
  } catch {
    throw new Error("the server cannot be reached (is caec serve still running?)");
  }
  if (!resp.ok) {
    const data = await resp.json().catch(() => null);
    throw new Error(data && data.error ? data.error : `the server answered ${resp.status} ${resp.statusText}`);
  }
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let cut;
    while ((cut = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, cut);
      buffered = buffered.slice(cut + 1);
      if (!line) continue;
      const event = JSON.parse(line);
      if (event.event === "error") throw new Error(event.message);
      if (event.event === "end") return;
      onEvent(event);
    }
  }
  throw new Error("the server closed the connection before the work was done");
}

export function b64Blob(b64, type) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Blob([bytes], { type });
}

const urls = [];
// an object URL for base64 data; the page's URLs are freed when a new job starts
export function b64Url(b64, type) {
  const url = URL.createObjectURL(b64Blob(b64, type));
  urls.push(url);
  return url;
}
export function freeUrls() {
  while (urls.length) URL.revokeObjectURL(urls.pop());
}

// The sentence as the page shows it: a capital first letter and a full stop.
export function sentence(message) {
  const text = String(message || "something went wrong").trim();
  const cap = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(cap) ? cap : cap + ".";
}

export function showError(node, message) {
  node.textContent = message ? sentence(message) : "";
  node.hidden = !message;
}

// Number formats shared with the tests (tests/test_web_browser.py reads the table with them)
export const fmt = {
  bytes: (v) => (v === null || v === undefined ? "–" : String(v)),
  bpp: (v) => (v === null || v === undefined ? "–" : v.toFixed(4)),
  psnr: (v) => (v === null || v === undefined ? "–" : v.toFixed(2)),
  msssim: (v) => (v === null || v === undefined ? "–" : v.toFixed(4)),
  seconds: (v) => (v === null || v === undefined ? "–" : v.toFixed(3)),
};

export function progressUI(bar, text) {
  return {
    start(what) {
      bar.hidden = false;
      bar.removeAttribute("value");
      text.textContent = what;
    },
    event(ev) {
      if (ev.event === "queued") text.textContent = `Waiting for a free worker (${ev.ahead} ahead)…`;
      else if (ev.event === "started") text.textContent = "Working…";
      else if (ev.event === "progress") {
        if (ev.total > 0) {
          bar.max = ev.total;
          bar.value = ev.done;
        }
        text.textContent = ev.step === "done" ? "Done." : `${ev.step}… (${ev.done} of ${ev.total})`;
      }
    },
    stop(message) {
      bar.hidden = true;
      text.textContent = message || "";
    },
  };
}
