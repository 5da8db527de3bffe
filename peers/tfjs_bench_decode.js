#!/usr/bin/env node
// Times the real TF.js multi-pose decoder (@tensorflow-models/posenet's decodeMultiplePoses,
// tfjs-core on the cpu backend) inside node, on image 0 of a request in the format of
// tfjs_decode_multiple_poses.js, plus "runs" and "warmup" (default 200 and 20).
//
// Usage: node tfjs_bench_decode.js REQUEST.json OUT.json
// OUT.json: {"backend", "poses": number found, "runs", "warmup",
//   "decode_ms": [runs]  decodeMultiplePoses alone on ready buffers (the sigmoid is part of
//                        the model in TF.js),
//   "sigmoid_decode_ms": [runs]  tf.sigmoid(logits) + bufferSync + decodeMultiplePoses}
// Start-up, reading the heads and building their buffers are outside both timings
// (process.hrtime.bigint around each run).
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const posenet = require('@tensorflow-models/posenet');

const CHANNELS = {logits: 17, offsets: 34, fwd: 32, bwd: 32};

function readFloats(file) {
  const bytes = fs.readFileSync(file);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

function heads(data, request) {
  const cells = request.height * request.width;
  let start = 0;
  const out = {};
  for (const [name, channels] of Object.entries(CHANNELS)) {
    out[name] = tf.buffer([request.height, request.width, channels], 'float32',
                          data.slice(start, start + cells * channels));
    start += cells * channels;
  }
  return out;
}

function timed(fn) {
  const start = process.hrtime.bigint();
  const result = fn();
  return [Number(process.hrtime.bigint() - start) / 1e6, result];
}

async function main() {
  const [requestFile, outFile] = process.argv.slice(2);
  const request = JSON.parse(fs.readFileSync(requestFile, 'utf8'));
  const runs = request.runs || 200, warmup = request.warmup || 20;
  await tf.setBackend('cpu');
  await tf.ready();
  const h = heads(readFloats(path.resolve(path.dirname(requestFile), request.data)), request);
  const logits = h.logits.toTensor();
  const scoresTensor = tf.sigmoid(logits);
  const scores = scoresTensor.bufferSync();
  const decode = s => posenet.decodeMultiplePoses(
      s, h.offsets, h.fwd, h.bwd, request.outputStride, request.maxPoseDetections,
      request.scoreThreshold, request.nmsRadius);
  const withSigmoid = () => {
    const t = tf.sigmoid(logits);
    const poses = decode(t.bufferSync());
    t.dispose();
    return poses;
  };
  let poses = decode(scores);
  for (let i = 0; i < warmup; i++) { decode(scores); withSigmoid(); }
  const decodeMs = [], sigmoidDecodeMs = [];
  // alternating blocks of 10, like onnxpose.bench.timing
  for (let done = 0; done < runs; done += 10) {
    const n = Math.min(10, runs - done);
    for (let i = 0; i < n; i++) decodeMs.push(timed(() => decode(scores))[0]);
    for (let i = 0; i < n; i++) sigmoidDecodeMs.push(timed(withSigmoid)[0]);
  }
  fs.writeFileSync(outFile, JSON.stringify({
    backend: tf.getBackend(), poses: poses.length, runs, warmup,
    decode_ms: decodeMs, sigmoid_decode_ms: sigmoidDecodeMs}));
}

main().catch(err => { console.error(err.stack || String(err)); process.exit(1); });
