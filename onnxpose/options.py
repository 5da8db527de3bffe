"""Checks on build options that run before any slow work (small pure functions).

Every option either does what it says or is refused here with one line; ``build_model``
runs these before converting (on a cheap look at the source, ``convert.peek``) and once
more on the converted model's real input and Coral op.
"""

from __future__ import annotations

import math

from onnxpose.spec import MultiPoseSettings, SinglePoseSettings
from onnxpose.errors import OnnxPoseError

DECODERS = ("single", "multi")
#: MultiPoseSettings field -> the CLI flag that sets it
MULTI_FLAGS = {"max_poses": "--max-poses", "score_threshold": "--score-threshold",
               "nms_radius": "--nms-radius", "candidates": "--candidates",
               "refine_steps": "--refine-steps", "tie_order": "--tie-order",
               "coral_release": "--coral-release", "control_flow": "--control-flow"}


def check_decoder_name(decoder: str | None) -> None:
    if decoder is not None and decoder not in DECODERS:
        raise OnnxPoseError(None, f"unknown decoder {decoder!r} (choose single or multi)")


def multi_options_given(multi: MultiPoseSettings | None, preset: str | None,
                        overrides: dict | None) -> list[str]:
    """The multi-pose-only options the caller set, as CLI flags."""
    given = [MULTI_FLAGS.get(k, k) for k, v in (overrides or {}).items() if v is not None]
    if preset is not None:
        given.append("--preset")
    if multi is not None:
        given.append("multi-pose settings")
    return given


def check_decoder_options(source, decoder: str | None, has_coral_op: bool | None,
                          single: SinglePoseSettings, multi_given: list[str]) -> str:
    """The decoder to build (explicit, else multi for a model with Coral's op); refuses the
    other decoder's options."""
    resolved = decoder or ("multi" if has_coral_op else "single")
    if resolved == "single" and multi_given:
        flags = ", ".join(multi_given)
        if decoder is None:
            raise OnnxPoseError(source, f"{flags}: multi-pose options; add --decoder multi (a "
                                        "model without Coral's PosenetDecoderOp is decoded "
                                        "single-pose by default)")
        raise OnnxPoseError(source, f"{flags}: multi-pose options, not used by --decoder single")
    if resolved == "multi":
        if single.coordinates != "stride":
            raise OnnxPoseError(source, f"--coordinates {single.coordinates} is single-pose only "
                                        "(the multi-pose decoder uses stride coordinates)")
    return resolved


def multi_settings_preview(source, multi: MultiPoseSettings | None, preset: str | None,
                           overrides: dict | None) -> None:
    """Build the settings the options ask for once, so that a bad value or a conflict
    (e.g. an unsupported tie order for the preset) is refused before converting."""
    if multi is not None:
        return
    try:
        MultiPoseSettings.for_preset(preset or "coral", **(overrides or {}))
    except (ValueError, TypeError) as exc:
        raise OnnxPoseError(source, str(exc)) from exc


def check_normalization(source, normalization: str | None, input_dtype: str | None) -> None:
    if normalization is not None and input_dtype == "uint8":
        raise OnnxPoseError(source, f"--normalization {normalization}: the model's input is uint8 "
                                    "(raw 0..255 pixels, no normalization); it applies to float "
                                    "inputs only")


def check_fraction(name: str, value: float, *, upper_open: bool = False) -> float:
    """A finite number in [0, 1] (or [0, 1))."""
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 \
            or value > 1 or (upper_open and value == 1):
        interval = "[0, 1)" if upper_open else "[0, 1]"
        raise OnnxPoseError(None, f"{name} must be a number in {interval}, not {value!r}")
    return float(value)
