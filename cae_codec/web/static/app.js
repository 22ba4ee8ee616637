// The compare page: an image, codecs and a rate in; a table, a before/after viewer, downloads,
// progressive passes and an RD plot out. Everything is computed by the server (/api/...);
// this file only asks and shows.
import { $, el, fmt, freeUrls, b64Url, getJSON, progressUI, runJob, showError } from "./common.js";

const CAE_MAGIC = [0x89, 0x43, 0x41, 0x45, 0x0d, 0x0a, 0x1a, 0x0a];
const state = { file: null, name: "image", offers: [], rows: [], passes: {}, selected: null, originalUrl: null };

// ---------------------------------------------------------------- set-up
async function init() {
  let config;
  try {
    config = await getJSON("/api/codecs");
  } catch (e) {
    showError($("#error"), e.message);
    return;
  }
  $("#version").textContent = `caec ${config.caec}`;
  state.offers = config.codecs;
  state.limits = config.limits;
  const box = $("#codecs");
  for (const o of config.codecs.filter((c) => c.photo)) {
    const s = o.setting;
    const input = el("input", {
      type: "number", id: `setting-${o.id}`, min: s.lo, max: s.hi, step: s.step, value: s.default,
      "aria-label": `${o.label} ${s.name}`, title: `${s.name}, ${s.lo}..${s.hi}`,
    });
    const check = el("input", {
      type: "checkbox", id: `codec-${o.id}`, value: o.id, disabled: Boolean(o.unavailable),
      checked: o.default || o.id === "jpeg",
    });
    const caps = [];
    if (o.capabilities.progressive) caps.push("progressive");
    if (o.kind === "registered") caps.push(o.capabilities.learned ? "learned" : "caec");
    else caps.push("classic");
    box.append(
      el("div", { class: "codec", title: o.unavailable || o.summary },
        check,
        el("label", { for: `codec-${o.id}` }, el("b", { text: o.label }), " ",
          el("span", { class: "muted", text: `(${caps.join(", ")})` }),
          o.unavailable ? el("span", { class: "unavailable", title: o.unavailable, text: " not available here" }) : ""),
        el("label", { class: "setting" }, `${s.name} `, input)),
    );
    if (o.default) {
      $("#default-label").textContent = o.label;
      const q = $("#size-quality");
      Object.assign(q, { min: s.lo, max: s.hi, value: s.default });
    }
  }
  if (config.dataset.length) {
    $("#dataset-row").hidden = false;
    for (const name of config.dataset) $("#dataset").append(el("option", { value: name, text: name }));
  }
}

// ---------------------------------------------------------------- choosing an image
function isCae(bytes) {
  return CAE_MAGIC.every((b, i) => bytes[i] === b);
}

async function take(file, name) {
  const head = new Uint8Array(await file.slice(0, 8).arrayBuffer());
  if (isCae(head)) return decodeFile(file, name);
  state.file = file;
  state.name = (name || "image").replace(/\.[^.]*$/, "") || "image";
  $("#picked").textContent = `${name || "image"}: ${file.size} bytes`;
  $("#go").disabled = false;
  showError($("#error"), "");
}

function dropZone(zone, input, handle) {
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const f = e.dataTransfer.files[0];
    if (f) handle(f, f.name);
  });
  input.addEventListener("change", () => { if (input.files[0]) handle(input.files[0], input.files[0].name); });
}

dropZone($("#drop"), $("#file"), take);
dropZone($("#drop-cae"), $("#cae-file"), (f, n) => decodeFile(f, n));

$("#dataset").addEventListener("change", async (e) => {
  const name = e.target.value;
  if (!name) return;
  try {
    const resp = await fetch(`/api/dataset/${encodeURIComponent(name)}`);
    if (!resp.ok) throw new Error((await resp.json().catch(() => ({}))).error || `the server answered ${resp.status}`);
    await take(await resp.blob(), name);
  } catch (err) {
    showError($("#error"), err.message);
  }
});

// ---------------------------------------------------------------- compressing
function request() {
  const codecs = [...document.querySelectorAll("#codecs input[type=checkbox]:checked")].map((c) => c.value);
  const mode = document.querySelector("input[name=mode]:checked").value;
  const params = new URLSearchParams({ codecs: codecs.join(","), mode });
  const settings = [];
  if (mode === "quality") for (const id of codecs) settings.push(`${id}:${$(`#setting-${id}`).value}`);
  if (mode === "size") {
    const def = state.offers.find((o) => o.default);
    settings.push(`${def.id}:${$("#size-quality").value}`);
  }
  if (settings.length) params.set("settings", settings.join(","));
  if (mode === "bpp") params.set("bpp", $("#bpp").value.replace(/\s+/g, ""));
  return { params, codecs, mode };
}

function settingText(r, mode) {
  if (r.reference) return `reference, quality ${r.knob}`;
  if (mode === "bpp") return `≤ ${r.target_bpp} bpp`;
  if (mode === "size") return `≤ ${r.target_bytes} bytes`;
  const o = state.offers.find((x) => x.id === r.codec);
  return `${o ? o.setting.name : "setting"} ${r.knob}`;
}

function addRow(r, mode) {
  const row = {
    ...r,
    pngUrl: r.png ? b64Url(r.png, "image/png") : null,
    fileUrl: r.file ? b64Url(r.file, "application/octet-stream") : null,
  };
  const index = state.rows.push(row) - 1;
  const tag = r.target_bpp !== null && mode === "bpp" ? `.${r.target_bpp}bpp` : "";
  const downloads = el("td", { class: "downloads" });
  if (row.fileUrl) {
    downloads.append(
      el("a", { href: row.fileUrl, download: `${state.name}.${r.codec}${tag}${r.suffix}`, class: "dl-file", text: r.suffix }),
      " ",
      el("a", { href: row.pngUrl, download: `${state.name}.${r.codec}${tag}.png`, class: "dl-png", text: "PNG" }),
    );
  }
  const cells = r.note
    ? [el("td", { colspan: 7, class: "note", text: r.note })]
    : [
      el("td", { class: "num bytes", text: fmt.bytes(r.bytes) }),
      el("td", { class: "num bpp", text: fmt.bpp(r.bpp) }),
      el("td", { class: "num psnr", text: fmt.psnr(r.psnr) }),
      el("td", { class: "num msssim", text: fmt.msssim(r.ms_ssim) }),
      el("td", { class: "num enc", text: fmt.seconds(r.encoding_time) }),
      el("td", { class: "num dec", text: fmt.seconds(r.decoding_time) }),
    ];
  const tr = el("tr", { "data-codec": r.codec, "data-index": index, onclick: () => select(index) },
    el("td", { class: "label", text: r.label }),
    el("td", { class: "setting", text: settingText(r, mode) }),
    ...cells,
    downloads,
  );
  $("#table tbody").append(tr);
  if (state.selected === null && row.pngUrl) select(index);
}

function select(index) {
  const row = state.rows[index];
  if (!row || !row.pngUrl) return;
  state.selected = index;
  for (const tr of document.querySelectorAll("#table tbody tr")) tr.classList.toggle("selected", Number(tr.dataset.index) === index);
  viewer.show(state.originalUrl, row.pngUrl, `${row.label}, ${fmt.bpp(row.bpp)} bpp`);
  showPasses(row.codec);
}

function showPasses(codec) {
  const list = state.passes[codec];
  $("#passes").hidden = !list || !list.length;
  if (!list || !list.length) return;
  $("#passes-codec").textContent = list[0].label;
  const slider = $("#pass");
  slider.max = list.length;
  slider.value = list.length;
  slider.dataset.codec = codec;
  showPass(codec, list.length - 1);
}

function showPass(codec, i) {
  const p = state.passes[codec][i];
  $("#pass-info").textContent =
    `${p.chunks} of ${p.of} chunks: ${p.bytes} bytes, ${fmt.bpp(p.bpp)} bpp, PSNR ${fmt.psnr(p.psnr)} dB`;
  viewer.show(state.originalUrl, p.url, `${p.label}, ${p.chunks} of ${p.of} chunks`);
}

$("#pass").addEventListener("input", (e) => showPass(e.target.dataset.codec, Number(e.target.value) - 1));

$("#go").addEventListener("click", async () => {
  if (!state.file) return showError($("#error"), "choose an image first");
  const { params, codecs } = request();
  if (!codecs.length) return showError($("#error"), "choose at least one codec");
  const mode = params.get("mode");
  showError($("#error"), "");
  delete document.body.dataset.state;
  $("#warnings").hidden = true;
  freeUrls();
  Object.assign(state, { rows: [], passes: {}, selected: null, originalUrl: null });
  $("#table tbody").replaceChildren();
  $("#results").hidden = false;
  $("#passes").hidden = true;
  $("#plot-fig").hidden = true;
  $("#go").disabled = true;
  const progress = progressUI($("#progress"), $("#step"));
  progress.start("Uploading…");
  try {
    await runJob(`/api/compress?${params}`, state.file, (ev) => {
      progress.event(ev);
      if (ev.event === "image") {
        state.originalUrl = b64Url(ev.png, "image/png");
        if (ev.warnings.length) {
          $("#warnings").textContent = ev.warnings.join("; ");
          $("#warnings").hidden = false;
        }
      } else if (ev.event === "result") addRow(ev, mode);
      else if (ev.event === "pass") {
        (state.passes[ev.codec] ||= []).push({ ...ev, url: b64Url(ev.png, "image/png") });
        const sel = state.rows[state.selected];
        if (sel && sel.codec === ev.codec) showPasses(ev.codec);
      } else if (ev.event === "plot") {
        $("#plot").src = b64Url(ev.png, "image/png");
        $("#plot-fig").hidden = false;
      }
    });
    progress.stop("Done.");
    document.body.dataset.state = "done";
  } catch (e) {
    progress.stop("");
    showError($("#error"), e.message);
    document.body.dataset.state = "error";
  } finally {
    $("#go").disabled = false;
  }
});

// ---------------------------------------------------------------- decoding a .cae file
async function decodeFile(file, name) {
  showError($("#decode-error"), "");
  delete document.body.dataset.decoded;
  $("#decoded").hidden = true;
  const progress = progressUI($("#decode-progress"), $("#decode-step"));
  progress.start("Uploading…");
  const passes = [];
  const stem = (name || "file").replace(/\.[^.]*$/, "");
  try {
    await runJob("/api/decode", file, (ev) => {
      progress.event(ev);
      if (ev.event === "info") {
        const rows = Object.entries(ev.info).map(([k, v]) =>
          el("tr", {}, el("th", { text: k }), el("td", { text: typeof v === "object" && v !== null ? JSON.stringify(v) : String(v) })));
        $("#info").replaceChildren(...rows);
      } else if (ev.event === "decoded") {
        const url = b64Url(ev.png, "image/png");
        $("#decoded-img").src = url;
        const link = $("#decoded-png");
        link.href = url;
        link.download = `${stem}.decoded.png`;
        $("#decoded").hidden = false;
      } else if (ev.event === "pass") {
        passes.push({ ...ev, url: b64Url(ev.png, "image/png") });
        const slider = $("#decode-pass");
        slider.max = passes.length;
        slider.value = passes.length;
        $("#decode-passes").hidden = false;
        showDecodedPass(passes, passes.length - 1);
      }
    });
    progress.stop("Decoded.");
    document.body.dataset.decoded = "done";
  } catch (e) {
    progress.stop("");
    showError($("#decode-error"), e.message);
    document.body.dataset.decoded = "error";
  }
  $("#decode-pass").oninput = (e) => showDecodedPass(passes, Number(e.target.value) - 1);
}

function showDecodedPass(passes, i) {
  const p = passes[i];
  $("#decode-pass-info").textContent = `${p.chunks} of ${p.of} chunks: ${p.bytes} bytes, ${fmt.bpp(p.bpp)} bpp`;
  $("#decoded-img").src = p.url;
}

// ---------------------------------------------------------------- the before/after viewer
const viewer = (() => {
  const frame = $("#viewer");
  const stage = $("#stage");
  const before = $("#before");
  const after = $("#after");
  const divider = $("#divider");
  const split = $("#split");
  let zoom = 1, x = 0, y = 0, drag = null;

  function apply() {
    stage.style.transform = `translate(${x}px, ${y}px) scale(${zoom})`;
    stage.classList.toggle("pixelated", zoom >= 2);
    $("#zoom-level").textContent = `${Math.round(zoom * 100)}%`;
    const at = (Number(split.value) / 1000) * frame.clientWidth; // the divider, in the frame
    divider.style.left = `${at}px`;
    after.style.clipPath = `inset(0 0 0 ${Math.max(0, (at - x) / zoom)}px)`; // the image's own pixels
  }
  function fit() {
    const w = after.naturalWidth || before.naturalWidth || 1;
    const h = after.naturalHeight || before.naturalHeight || 1;
    zoom = Math.min(frame.clientWidth / w, frame.clientHeight / h, 1);
    x = (frame.clientWidth - w * zoom) / 2;
    y = (frame.clientHeight - h * zoom) / 2;
    apply();
  }
  function zoomAt(factor, cx, cy) {
    const next = Math.min(32, Math.max(0.05, zoom * factor));
    x = cx - ((cx - x) * next) / zoom;
    y = cy - ((cy - y) * next) / zoom;
    zoom = next;
    apply();
  }
  frame.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = frame.getBoundingClientRect();
    zoomAt(e.deltaY < 0 ? 1.25 : 0.8, e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  frame.addEventListener("pointerdown", (e) => {
    drag = { px: e.clientX, py: e.clientY, x, y };
    frame.setPointerCapture(e.pointerId);
  });
  frame.addEventListener("pointermove", (e) => {
    if (!drag) return;
    x = drag.x + e.clientX - drag.px;
    y = drag.y + e.clientY - drag.py;
    apply();
  });
  frame.addEventListener("pointerup", () => { drag = null; });
  split.addEventListener("input", apply);
  $("#zoom-in").addEventListener("click", () => zoomAt(1.5, frame.clientWidth / 2, frame.clientHeight / 2));
  $("#zoom-out").addEventListener("click", () => zoomAt(1 / 1.5, frame.clientWidth / 2, frame.clientHeight / 2));
  $("#zoom-fit").addEventListener("click", fit);
  $("#zoom-1").addEventListener("click", () => zoomAt(1 / zoom, frame.clientWidth / 2, frame.clientHeight / 2));
  window.addEventListener("resize", apply);

  let first = true;
  return {
    show(beforeUrl, afterUrl, label) {
      $("#viewer-section").hidden = false;
      $("#after-label").textContent = label;
      if (beforeUrl && before.src !== beforeUrl) before.src = beforeUrl;
      const sameSize = after.src && after.naturalWidth;
      after.src = afterUrl;
      after.onload = () => { if (first || !sameSize) { first = false; fit(); } else apply(); };
    },
  };
})();

init();
