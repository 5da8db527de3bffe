"""Check that the Keras rebuild of PoseNet MobileNetV1 0.75 (real weights) is Coral's network.

Prints, for the reference image (shared/reference/test_couple_353x481.npz, 353x481, stride 16):
  1. per head, max / mean abs difference between the float rebuild and Coral's dequantized uint8
     outputs (ours clipped to the uint8 output range, as the reference saturates);
  2. the same for a rebuild with TF.js's dilation (rate 2 in Conv2d_13_depthwise), for contrast;
  3. per layer, the max difference (in quantization steps) when each rebuilt layer is fed the
     TFLite model's own input to that layer (an exact rebuild gives <= 0.5: rounding only).

    python benchmarks/rebuild_check.py [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)

    from onnxpose.testing import posenet_models as pm

    start = time.perf_counter()
    model = pm.build_posenet_mobilenet((353, 481), 16, "real")
    results = {"end_to_end": pm.compare_with_reference(model=model),
               "end_to_end_tfjs_dilated": pm.compare_with_reference(atrous=True),
               "per_layer_max_steps": pm.compare_layers_with_tflite(model=model)}

    for title, key in (("float rebuild vs Coral uint8 outputs (353x481, stride 16)", "end_to_end"),
                       ("same, built with TF.js's dilation (wrong for this model)", "end_to_end_tfjs_dilated")):
        print(title)
        print(f"  {'head':18s} {'max':>9s} {'steps':>7s} {'mean':>9s} {'steps':>7s} {'step':>7s}")
        for head, s in results[key].items():
            print(f"  {head:18s} {s['max']:9.4f} {s['max_steps']:7.1f} {s['mean']:9.4f} "
                  f"{s['mean_steps']:7.2f} {s['step']:7.4f}")
    layers = results["per_layer_max_steps"]
    worst = max(layers, key=layers.get)
    print("per layer, fed the TFLite model's own input: max difference in quantization steps")
    for name, steps in layers.items():
        print(f"  {name:22s} {steps:.3f}")
    print(f"  worst: {worst} {layers[worst]:.3f} steps (<= 0.5 means exact up to rounding)")
    print(f"({time.perf_counter() - start:.1f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0 if layers[worst] <= 0.51 else 1


if __name__ == "__main__":
    sys.exit(main())
