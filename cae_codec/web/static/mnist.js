// The MNIST page: a drawn or picked digit, coded by every fixed-size codec the server has,
// with its code, its file's bytes, and PCA's reconstruction from as many components beside it.
import { $, el, b64Url, freeUrls, getJSON, progressUI, runJob, showError } from "./common.js";

let next = 0;
const PAGE = 40;

async function init() {
  let config;
  try {
    config = await getJSON("/api/codecs");
  } catch (e) {
    return showError($("#error"), e.message);
  }
  $("#version").textContent = `caec ${config.caec}`;
  const fixed = config.codecs.filter((c) => c.fixed_size && !c.unavailable);
  if (!fixed.length) {
    showError($("#error"), "no registered codec takes fixed-size digits");
    $("#code-drawing").disabled = true;
    return;
  }
  $("#codecs-line").textContent = "Codecs of fixed-size images: " + fixed.map((c) => {
    const [w, h] = c.capabilities.fixed_size;
    return `${c.label} (${w}×${h}, ${c.paper})`;
  }).join("; ");
  const s = fixed[0].setting;
  Object.assign($("#quality"), { min: s.lo, max: s.hi, value: s.default });
  if (!config.digits_training) $("#codecs-line").textContent += ". PCA needs the MNIST training digits (caec serve --mnist DIR).";
  if (config.digits) {
    $("#pick").hidden = false;
    await more();
  }
}

async function more() {
  try {
    const data = await getJSON(`/api/digits?start=${next}&count=${PAGE}`);
    for (const d of data.digits) {
      $("#digits").append(el("button", { title: `test digit ${d.index} (a ${d.label})`, "data-index": d.index,
        onclick: () => code(`/api/digit?digit=${d.index}&quality=${$("#quality").value}`, null) },
        el("img", { src: `data:image/png;base64,${d.png}`, alt: `test digit ${d.index}` })));
    }
    next += data.digits.length;
    $("#digits-where").textContent = `${next} of ${data.total} test digits`;
    $("#more").disabled = next >= data.total;
  } catch (e) {
    showError($("#error"), e.message);
  }
}
$("#more").addEventListener("click", more);

// ---------------------------------------------------------------- the drawing pad
const pad = $("#pad");
const ctx = pad.getContext("2d");
function clear() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
}
clear();
ctx.strokeStyle = "#fff";
ctx.lineWidth = 20;
ctx.lineCap = ctx.lineJoin = "round";
let drawing = false;
function at(e) {
  const r = pad.getBoundingClientRect();
  return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
}
pad.addEventListener("pointerdown", (e) => {
  drawing = true;
  pad.setPointerCapture(e.pointerId);
  ctx.beginPath();
  ctx.moveTo(...at(e));
  ctx.lineTo(...at(e));
  ctx.stroke();
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  ctx.lineTo(...at(e));
  ctx.stroke();
});
pad.addEventListener("pointerup", () => { drawing = false; });
$("#clear").addEventListener("click", clear);
$("#code-drawing").addEventListener("click", () => {
  pad.toBlob((blob) => code(`/api/digit?quality=${$("#quality").value}`, blob), "image/png");
});

// ---------------------------------------------------------------- coding
function figure(png, caption) {
  return el("figure", {}, el("img", { src: `data:image/png;base64,${png}`, alt: caption }), el("figcaption", { text: caption }));
}

async function code(url, body) {
  showError($("#error"), "");
  delete document.body.dataset.state;
  freeUrls();
  $("#results").replaceChildren();
  const progress = progressUI($("#progress"), $("#step"));
  progress.start("Coding…");
  try {
    await runJob(url, body, (ev) => {
      progress.event(ev);
      if (ev.event !== "digit") return;
      const figs = [figure(ev.original, "the digit coded"),
        figure(ev.decoded, `${ev.label}: error ${ev.error.toFixed(2)}`)];
      if (ev.pca) figs.push(figure(ev.pca, `PCA, ${ev.pca_components} components: error ${ev.pca_error.toFixed(2)}`));
      const file = b64Url(ev.file, "application/octet-stream");
      $("#results").append(el("div", { class: "digit-result", "data-codec": ev.codec },
        el("h3", { text: ev.label }),
        el("div", { class: "side" }, ...figs),
        ev.pca_note ? el("p", { class: "muted", text: ev.pca_note }) : "",
        el("p", { class: "muted", text: "error: squared error summed over the 784 pixels in [0, 1] (Hinton & Salakhutdinov's measure). PCA is real-valued (not coded)." }),
        el("p", {}, el("b", { text: `The code: ${ev.code_values} values` }), ` (the encoder's output before quantization at ${ev.quality} bits a value)`),
        el("p", { class: "code", text: ev.code.map((v) => v.toFixed(2)).join("  ") }),
        el("p", {}, el("b", { class: "file-bytes", text: `The file: ${ev.bytes} bytes` }), " ",
          el("a", { href: file, download: `digit.${ev.codec}.cae`, text: "download" })),
        el("p", { class: "code", text: ev.file_hex.match(/.{1,2}/g).join(" ") })));
      $("#out").hidden = false;
    });
    progress.stop("Done.");
    document.body.dataset.state = "done";
  } catch (e) {
    progress.stop("");
    showError($("#error"), e.message);
    document.body.dataset.state = "error";
  }
}

init();
