"""Exports of built models for serving systems: a Triton model repository (triton.py)."""
