"""Logistic function and Coral's inverse of it, in float32."""

from __future__ import annotations

import math

import numpy as np


def sigmoid(x):
    """``1 / (1 + exp(-x))`` in float32 (scalars or arrays)."""
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(over="ignore"):  # exp(-x) overflows to inf for x << 0: sigmoid is 0
        return (np.float32(1) / (np.float32(1) + np.exp(-x))).astype(np.float32)


def logit(probability: float) -> np.float32:
    """``log(p / (1 - p))`` in double, stored as float32 (-inf at 0, inf at 1)."""
    p = float(np.float32(probability))
    if p <= 0.0:
        return np.float32(-np.inf)
    if p >= 1.0:
        return np.float32(np.inf)
    return np.float32(math.log(p / (1.0 - p)))


def coral_logodds(probability: float) -> np.float32:
    """Coral's ``Logodds``: ``-log(1 / (p + 1e-6) - 1)`` in double, stored as float32."""
    return np.float32(-math.log(1.0 / (float(np.float32(probability)) + 1e-6) - 1.0))
