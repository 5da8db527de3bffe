"""Decoder-only CPU cost: the default (Loop) form against the control-flow-free form
(--control-flow none), and the previous 3-D MaxPool candidates (HEAD goldens, from
/tmp/dec15/old) against the 2-D form; medians of 300 alternating runs, 1 thread."""
import sys, time, json, numpy as np, onnxruntime as ort, onnx
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from onnxpose.decoder.decoder_only import decoder_only_model
from onnxpose.spec import MultiPoseSettings
d = np.load(__import__('os').environ.get('ONNXPOSE_SHARED', '../shared') + '/reference/test_couple_353x481.npz')
feed = dict(heatmaps=d['decoder_in_heatmaps'], short_offsets=d['decoder_in_short_offsets'], displacements=d['decoder_in_mid_offsets'])
def sess(m):
    o = ort.SessionOptions(); o.intra_op_num_threads = 1; o.inter_op_num_threads = 1
    return ort.InferenceSession(m if isinstance(m, bytes) else m.SerializeToString(), o, providers=["CPUExecutionProvider"])
models = {}
for p in ("coral", "tfjs"):
    old = f"/tmp/dec15/old/multi_pose_{p}.onnx"  # the 3-D MaxPool golden of commit 3960bcb
    if __import__("os").path.exists(old):
        models[f"{p}/maxpool3d(HEAD)"] = sess(open(old, "rb").read())
    models[f"{p}/2d+scan-ties"] = sess(decoder_only_model((23, 31), 16, MultiPoseSettings.for_preset(p)))
    models[f"{p}/loop K=64"] = sess(decoder_only_model((23, 31), 16, MultiPoseSettings.for_preset(p, candidates=64)))
    models[f"{p}/none K=64"] = sess(decoder_only_model((23, 31), 16, MultiPoseSettings.for_preset(p, candidates=64, control_flow="none")))
    models[f"{p}/none K=40"] = sess(decoder_only_model((23, 31), 16, MultiPoseSettings.for_preset(p, candidates=40, control_flow="none")))
outs = {k: s.run(None, feed) for k, s in models.items()}
for p in ("coral", "tfjs"):
    a, b = outs.get(f"{p}/maxpool3d(HEAD)", outs[f"{p}/2d+scan-ties"]), outs[f"{p}/2d+scan-ties"]
    print(p, "HEAD vs new default bit-identical:", all(np.array_equal(x, y) for x, y in zip(a, b)))
    a, b = outs[f"{p}/loop K=64"], outs[f"{p}/none K=64"]
    print(p, "loop vs none K=64 bit-identical:", all(np.array_equal(x, y) for x, y in zip(a, b)))
samples = {k: [] for k in models}
for k, s in models.items():
    for _ in range(20): s.run(None, feed)
for i in range(300):
    for k, s in models.items():
        t = time.perf_counter(); s.run(None, feed); samples[k].append(time.perf_counter() - t)
res = {k: float(np.median(v) * 1e3) for k, v in samples.items()}
for k, v in res.items(): print(f"{k:22s} median {v:.3f} ms")
print(json.dumps({"medians_ms": res}))
