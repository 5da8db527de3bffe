// onnxpose web page: load a built model (model.onnx) and its metadata sidecar (model.json,
// the model's onnxpose.* metadata_props, served by `onnxpose serve-web`), run a photo or the
// webcam through onnxruntime-web (WASM or WebGPU) and draw the skeletons.
//
// Preprocessing follows PoseSession: the image is stretched to the model's input size (here
// by the canvas's resampler, which is not PIL's bilinear; an image already of the model's size
// is copied unchanged), RGB, uint8 as is or float normalized as the metadata says, NHWC or NCHW.
//
// Backends (?ep=, or the backend menu, which reloads the page when the bundle changes):
//   wasm         onnxruntime-web's WASM EP, from ort.all.min.js
//   webgpu       the native WebGPU EP, from ort.webgpu.min.js (onnxruntime-web's "webgpu" export)
//   webgpu-jsep  the legacy JavaScript WebGPU EP (JSEP) of ort.all.min.js; its DequantizeLinear
//                is wrong for uint8 input (a value below the zero point wraps around), so a
//                uint8-quantized backbone decodes garbage there (the decoder alone is exact)
//
// Test hooks (used by tests/test_web_page.py and benchmarks/runtimes.py):
//   window.onnxposeResult   {status: "loading"|"ready"|"running"|"done"|"error", ...}
//   window.onnxposeRunRaw({model, ep, inputs: [{name, url, dtype, shape}], outputs, runs, warmup,
//                          log, budget}) runs any model on raw little-endian tensors fetched from urls
//     (ep must be served by the loaded bundle: load the page with ?ep=); returns outputs + times;
//     log: true writes onnxruntime's verbose log, node placement included, to the console.

const BUNDLES = { wasm: "ort.all.min.js", webgpu: "ort.webgpu.min.js", "webgpu-jsep": "ort.all.min.js" };
const EP_NAMES = { wasm: "wasm", webgpu: "webgpu", "webgpu-jsep": "webgpu" };
const $ = (id) => document.getElementById(id);
const NORMALIZATIONS = { none: [1, 0], minus_one_to_one: [2 / 255, -1], zero_to_one: [1 / 255, 0] };
const params = new URLSearchParams(location.search);
const modelUrl = params.get("model") || "model.onnx";
const metaUrl = params.get("meta") || "model.json";
const pageEp = BUNDLES[params.get("ep")] ? params.get("ep") : "wasm";
let ort = null;
let meta = null;
let session = null;
let sessionEp = null;
let webcamOn = false;

function setResult(r) {
  window.onnxposeResult = r;
  $("status").textContent = r.status + (r.message ? ": " + r.message : "") +
    (r.ms !== undefined ? ` (${r.ms.toFixed(1)} ms, ${r.ep})` : "");
}

function oneLine(err) {
  const text = String((err && err.message) || err);
  return text.split("\n").find((l) => l.trim()) || text;
}

function configureWasm() {
  ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
  if (!crossOriginIsolated) ort.env.wasm.numThreads = 1;  // threads need COOP/COEP
}

function loadOrt(bundle) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "ort/" + bundle;
    script.onload = () => resolve(globalThis.ort);
    script.onerror = () => reject(new Error("onnxruntime-web (ort/" + bundle + ") did not load"));
    document.head.appendChild(script);
  });
}

let ortReady = null;  // the bundle of ?ep=, loaded once (main and onnxposeRunRaw wait for it)
function ensureOrt() {
  if (!ortReady) ortReady = loadOrt(BUNDLES[pageEp]).then((o) => { ort = o; return o; });
  return ortReady;
}

function checkEp(ep) {
  if (!BUNDLES[ep]) throw new Error(`unknown backend ${ep} (one of ${Object.keys(BUNDLES).join(", ")})`);
  if (BUNDLES[ep] !== BUNDLES[pageEp]) throw new Error(`backend ${ep} needs ${BUNDLES[ep]}: load the page with ?ep=${ep}`);
  return EP_NAMES[ep];
}

async function getSession(ep) {
  if (session && sessionEp === ep) return session;
  configureWasm();
  session = null;
  session = await ort.InferenceSession.create(modelUrl, { executionProviders: [checkEp(ep)] });
  sessionEp = ep;
  return session;
}

function inputTensor(pixels, width, height) {
  // pixels: RGBA Uint8ClampedArray of the model's input size
  const inp = meta.input;
  const n = width * height;
  const nchw = inp.layout === "NCHW";
  const shape = nchw ? [1, 3, height, width] : [1, height, width, 3];
  if (inp.dtype === "uint8") {
    const data = new Uint8Array(3 * n);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++)
      data[nchw ? c * n + i : 3 * i + c] = pixels[4 * i + c];
    return new ort.Tensor("uint8", data, shape);
  }
  const [scale, offset] = NORMALIZATIONS[inp.normalization] || NORMALIZATIONS.none;
  const data = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++)
    data[nchw ? c * n + i : 3 * i + c] = Math.fround(pixels[4 * i + c] * scale + offset);
  return new ort.Tensor("float32", data, shape);
}

function decodeOutputs(out) {
  // -> {keypoints: [P][17][3] in model-input pixels, poseScores: [P]}
  const multi = meta.decoder.type === "multi";
  if (multi) {
    const count = Number(out.pose_count.data[0]);
    const kp = out.keypoints.data, sc = out.pose_scores.data;
    const poses = [], scores = [];
    for (let p = 0; p < count; p++) {
      poses.push(Array.from({ length: 17 }, (_, k) => Array.from(kp.slice((p * 17 + k) * 3, (p * 17 + k) * 3 + 3))));
      scores.push(sc[p]);
    }
    return { keypoints: poses, poseScores: scores };
  }
  const t = out.keypoints || out.output_0;
  const kp = Array.from({ length: 17 }, (_, k) => Array.from(t.data.slice(3 * k, 3 * k + 3)));
  if (out.output_0) kp.forEach((v) => { v[0] *= meta.input.height; v[1] *= meta.input.width; });
  const score = out.pose_score ? out.pose_score.data[0] : kp.reduce((a, v) => a + v[2], 0) / 17;
  return { keypoints: [kp], poseScores: [score] };
}

function draw(source, sw, sh, poses) {
  const view = $("view");
  view.width = sw; view.height = sh;
  const g = view.getContext("2d");
  g.drawImage(source, 0, 0, sw, sh);
  const min = Number($("minScore").value);
  const names = meta.keypoint_names;
  const sy = sh / meta.input.height, sx = sw / meta.input.width;
  g.lineWidth = Math.max(2, sw / 300);
  poses.keypoints.forEach((kp, p) => {
    g.strokeStyle = g.fillStyle = `hsl(${(p * 67) % 360} 90% 50%)`;
    for (const [a, b] of meta.skeleton) {
      const u = kp[names.indexOf(a)], v = kp[names.indexOf(b)];
      if (!u || !v || u[2] < min || v[2] < min) continue;
      g.beginPath(); g.moveTo(u[1] * sx, u[0] * sy); g.lineTo(v[1] * sx, v[0] * sy); g.stroke();
    }
    for (const v of kp) if (v[2] >= min) {
      g.beginPath(); g.arc(v[1] * sx, v[0] * sy, 2 * g.lineWidth, 0, 2 * Math.PI); g.fill();
    }
  });
}

async function runOn(source, sw, sh, label) {
  const ep = $("ep").value;
  const { width, height } = meta.input;
  setResult({ status: "running", ep, source: label });
  try {
    const scratch = new OffscreenCanvas(width, height);
    const g = scratch.getContext("2d", { willReadFrequently: true });
    g.imageSmoothingQuality = "high";
    g.drawImage(source, 0, 0, width, height);  // identity when the image is of the model's size
    const pixels = g.getImageData(0, 0, width, height, { colorSpace: "srgb" }).data;
    const feeds = { [meta.input.name]: inputTensor(pixels, width, height) };
    const s = await getSession(ep);
    const t0 = performance.now();
    const out = await s.run(feeds);
    const ms = performance.now() - t0;
    const poses = decodeOutputs(out);
    draw(source, sw, sh, poses);
    let checksum = 0;
    const data = feeds[meta.input.name].data;
    for (let i = 0; i < data.length; i++) checksum = (checksum + data[i] * ((i % 7) + 1)) % 1e9;
    setResult({ status: "done", ep, source: label, ms, imageSize: [sh, sw], inputChecksum: checksum,
                wasmThreads: ort.env.wasm.numThreads, ...poses });
  } catch (err) {
    setResult({ status: "error", ep, source: label, message: oneLine(err) });
  }
}

async function onFile() {
  const file = $("file").files[0];
  if (!file) return;
  const bitmap = await createImageBitmap(file, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  await runOn(bitmap, bitmap.width, bitmap.height, file.name);
}

async function webcamLoop() {
  const video = $("video");
  while (webcamOn) {
    if (video.readyState >= 2) await runOn(video, video.videoWidth, video.videoHeight, "webcam");
    await new Promise((r) => requestAnimationFrame(r));
  }
}

async function toggleWebcam() {
  const video = $("video");
  if (webcamOn) {
    webcamOn = false;
    video.srcObject.getTracks().forEach((t) => t.stop());
    return;
  }
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true });
    webcamOn = true;
    webcamLoop();
  } catch (err) {
    setResult({ status: "error", source: "webcam", message: "no webcam: " + oneLine(err) });
  }
}

function fromBytes(dtype, buf) {
  const types = { float32: Float32Array, uint8: Uint8Array, int32: Int32Array, int64: BigInt64Array };
  return new types[dtype](buf);
}

window.onnxposeRunRaw = async function ({ model, ep, inputs, outputs, runs = 1, warmup = 0, log = false,
                                          budget = null }) {
  // Generic runner for the runtime matrix: any model, raw inputs, timed runs.
  let s;
  try {
    await ensureOrt();
    configureWasm();
    const options = { executionProviders: [checkEp(ep)] };
    // log: onnxruntime's verbose log on the console, which lists each node's provider
    if (log) Object.assign(options, { logSeverityLevel: 0, logVerbosityLevel: 0 });
    s = await ort.InferenceSession.create(model, options);
  } catch (err) {
    return { ok: false, stage: "load", error: oneLine(err) };
  }
  try {
    const feeds = {};
    for (const i of inputs) {
      const buf = await (await fetch(i.url)).arrayBuffer();
      feeds[i.name] = new ort.Tensor(i.dtype, fromBytes(i.dtype, buf), i.shape);
    }
    let out = null;
    const times = [];
    // budget (s): warm up for at most a quarter of it, stop timing after it once 3 runs are
    // timed (runtime_worker.py's _timed rule)
    const limit = (budget || Infinity) * 1e3;
    const start = performance.now();
    for (let r = 0; r < warmup + runs; r++) {
      const t0 = performance.now();
      out = await s.run(feeds);
      const now = performance.now();
      if (r >= warmup) times.push(now - t0);
      else if (now - start > limit / 4) warmup = r + 1;
      if (times.length >= 3 && now - start > limit) break;
    }
    const result = {};
    for (const name of outputs || Object.keys(out)) {
      const t = out[name];
      result[name] = { dtype: t.type, shape: t.dims.map(Number), data: Array.from(t.data, Number) };
    }
    await s.release();
    return { ok: true, outputs: result, times, wasmThreads: ort.env.wasm.numThreads };
  } catch (err) {
    return { ok: false, stage: "run", error: oneLine(err) };
  }
};

async function main() {
  $("ep").value = pageEp;
  try {
    await ensureOrt();
  } catch (err) {
    setResult({ status: "error", message: oneLine(err) });
    return;
  }
  try {
    meta = await (await fetch(metaUrl)).json();
  } catch (err) {
    setResult({ status: "error", message: "no model metadata at " + metaUrl + ": " + oneLine(err) });
    return;
  }
  $("file").addEventListener("change", onFile);
  $("webcam").addEventListener("click", toggleWebcam);
  $("webcam").disabled = !(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  $("ep").addEventListener("change", () => {
    session = null;
    const ep = $("ep").value;
    if (BUNDLES[ep] !== BUNDLES[pageEp]) {  // another onnxruntime-web bundle: reload with it
      params.set("ep", ep);
      location.search = params.toString();
    }
  });
  setResult({ status: "ready", message: `${meta.decoder.type}-pose model, input ${meta.input.name} ` +
              `${meta.input.dtype} ${meta.input.height}x${meta.input.width}; pick a photo`,
              webgpu: Boolean(navigator.gpu) });
}

main();
