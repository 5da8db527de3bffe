#!/usr/bin/env node
// Run an ONNX model with onnxruntime-node (CPU) or onnxruntime-web (WASM) in node, on raw
// little-endian input tensors; write each output as a raw file plus a JSON summary.
//
//   node peers/ort_run.js SPEC.json
//   SPEC: {"runtime": "node"|"web-wasm", "model": path, "threads": 0,
//          "inputs": [{"name", "file", "dtype", "shape"}], "runs": 5, "warmup": 1,
//          "out_dir": dir}
//   writes OUT_DIR/output<k>.bin and OUT_DIR/result.json:
//   {"ok": true, "runtime", "version", "times_ms": [...], "outputs": {name: {dtype, shape, file}}}
//   or {"ok": false, "error": "first line"} (exit 0 either way; exit 2 on a bad SPEC).
"use strict";
const fs = require("fs");
const path = require("path");

const TYPES = { float32: Float32Array, uint8: Uint8Array, int32: Int32Array, int64: BigInt64Array };

function firstLine(err) {
  const text = String((err && err.message) || err);
  return text.split("\n").find((l) => l.trim()) || text;
}

async function main() {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const outDir = spec.out_dir;
  fs.mkdirSync(outDir, { recursive: true });
  const write = (obj) => fs.writeFileSync(path.join(outDir, "result.json"), JSON.stringify(obj));
  let ort, ep, version;
  try {
    if (spec.runtime === "node") {
      ort = require("onnxruntime-node");
      ep = "cpu";
      version = require("onnxruntime-node/package.json").version;
    } else if (spec.runtime === "web-wasm") {
      ort = require("onnxruntime-web");
      ep = "wasm";
      version = ort.env.versions && ort.env.versions.web;
      if (spec.threads) ort.env.wasm.numThreads = spec.threads;
    } else {
      console.error(`unknown runtime ${spec.runtime}`);
      process.exit(2);
    }
  } catch (err) {
    write({ ok: false, runtime: spec.runtime, stage: "load", error: "cannot load the runtime: " + firstLine(err) });
    return;
  }
  let session;
  try {
    const options = { executionProviders: [ep] };
    if (spec.runtime === "node" && spec.threads) options.intraOpNumThreads = spec.threads;
    session = await ort.InferenceSession.create(fs.readFileSync(spec.model), options);
  } catch (err) {
    write({ ok: false, runtime: spec.runtime, version, stage: "load", error: firstLine(err) });
    return;
  }
  const feeds = {};
  for (const i of spec.inputs) {
    const buf = fs.readFileSync(i.file);
    const data = new TYPES[i.dtype](buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    feeds[i.name] = new ort.Tensor(i.dtype, data, i.shape);
  }
  const times = [];
  let out;
  try {
    // the budget rule of runtime_worker.py's _timed: a slow runtime warms up for at most a
    // quarter of budget_s and stops timing after budget_s once it has 3 timed runs
    let warmup = spec.warmup || 0;
    const budget = (spec.budget_s || Infinity) * 1e3;
    const start = performance.now();
    for (let r = 0; r < warmup + (spec.runs || 1); r++) {
      const t0 = performance.now();
      out = await session.run(feeds);
      const now = performance.now();
      if (r >= warmup) times.push(now - t0);
      else if (now - start > budget / 4) warmup = r + 1;
      if (times.length >= 3 && now - start > budget) break;
    }
  } catch (err) {
    write({ ok: false, runtime: spec.runtime, version, stage: "run", error: firstLine(err) });
    return;
  }
  const outputs = {};
  let k = 0;
  for (const [name, t] of Object.entries(out)) {
    const file = path.join(outDir, `output${k++}.bin`);  // by position: names may hold '/' 
    fs.writeFileSync(file, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    outputs[name] = { dtype: t.type, shape: t.dims.map(Number), file };
  }
  write({ ok: true, runtime: spec.runtime, version, times_ms: times, outputs });
}

main().then(() => process.exit(0), (err) => { console.error(firstLine(err)); process.exit(2); });
