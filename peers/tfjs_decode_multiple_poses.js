#!/usr/bin/env node
// The real TF.js multi-pose decoder (@tensorflow-models/posenet's decodeMultiplePoses,
// tfjs-core on the cpu backend) on a batch of heads; one process per batch.
//
// Usage: node tfjs_decode_multiple_poses.js REQUEST.json [OUT.json]  (default: stdout)
// REQUEST.json: {"data": "heads.f32" (relative to REQUEST.json or absolute), "batch": N,
//   "height": h, "width": w, "outputStride": s, "maxPoseDetections": m,
//   "scoreThreshold": t, "nmsRadius": r}
// heads.f32: little-endian float32, per image one after the other:
//   heatmap logits [h,w,17], short offsets [h,w,34] (y 17, x 17),
//   displacementsFwd [h,w,32] (y 16, x 16), displacementsBwd [h,w,32] (y 16, x 16).
// The scores are tf.sigmoid of the logits, as PoseNet's model does in TF.js.
// Output: JSON [image][pose in decoding order] = {"score", "keypoints": [17 x {"score","y","x"}]}
// (keypoints in PoseNet's keypoint id order, numbers as JavaScript doubles).
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const posenet = require('@tensorflow-models/posenet');

const CHANNELS = {logits: 17, offsets: 34, fwd: 32, bwd: 32};

function readFloats(file) {
  const bytes = fs.readFileSync(file);
  const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
  return new Float32Array(copy);
}

function imageHeads(data, request, image) {
  const cells = request.height * request.width;
  const perImage = cells * (17 + 34 + 32 + 32);
  let start = image * perImage;
  const heads = {};
  for (const [name, channels] of Object.entries(CHANNELS)) {
    const values = data.slice(start, start + cells * channels);
    heads[name] = tf.buffer([request.height, request.width, channels], 'float32', values);
    start += cells * channels;
  }
  return heads;
}

function decodeImage(data, request, image) {
  const heads = imageHeads(data, request, image);
  const logits = heads.logits.toTensor();
  const scores = tf.sigmoid(logits);
  const poses = posenet.decodeMultiplePoses(
      scores.bufferSync(), heads.offsets, heads.fwd, heads.bwd, request.outputStride,
      request.maxPoseDetections, request.scoreThreshold, request.nmsRadius);
  tf.dispose([logits, scores]);
  return poses.map(pose => ({
    score: pose.score,
    keypoints: pose.keypoints.map((k, id) => {
      if (k.part !== posenet.partNames[id]) throw new Error(`keypoint ${id} is ${k.part}`);
      return {score: k.score, y: k.position.y, x: k.position.x};
    }),
  }));
}

async function main() {
  const requestFile = process.argv[2];
  const request = JSON.parse(fs.readFileSync(requestFile, 'utf8'));
  await tf.setBackend('cpu');
  await tf.ready();
  const data = readFloats(path.resolve(path.dirname(requestFile), request.data));
  const cells = request.height * request.width * (17 + 34 + 32 + 32);
  if (data.length !== request.batch * cells) {
    throw new Error(`${request.data}: ${data.length} floats, expected ${request.batch * cells}`);
  }
  const out = [];
  for (let image = 0; image < request.batch; image++) out.push(decodeImage(data, request, image));
  const text = JSON.stringify({backend: tf.getBackend(), images: out});
  // A file, not only stdout: tfjs-core may print notices to the console.
  if (process.argv[3]) fs.writeFileSync(process.argv[3], text); else process.stdout.write(text);
}

main().catch(err => { console.error(err.stack || String(err)); process.exit(1); });
