"""Paired statistics of a chip run against float64's approximate rule on identical spikes.

Every experiment that compares a chip config with float does it per seed (same spikes for
both) and summarises the pairs here, with the seed-to-seed spread next to every number, so
that a verdict can fail: a broken chip gives a low correlation or a large RMS difference, a
working one agrees within float's own noise.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["paired", "ci95", "verdict"]


def ci95(x) -> dict:
    """Mean, sd and the 95 % confidence half-width of the mean (normal approximation)."""
    x = np.asarray([v for v in np.ravel(x) if v is not None and np.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return {"mean": None, "sd": None, "ci95": None, "n": 0}
    sd = float(x.std(ddof=1)) if x.size > 1 else None
    return {"mean": float(x.mean()), "sd": sd,
            "ci95": 1.96 * sd / math.sqrt(x.size) if sd is not None else None, "n": int(x.size)}


def paired(chip: np.ndarray, ref: np.ndarray) -> dict:
    """Chip against float per seed and cell: arrays (seeds, cells) of the same quantity.

    Returns the Pearson correlation of the cell means; the RMS over cells of the mean
    paired difference (the chip's systematic error) and of every per-seed difference; the
    float's seed-to-seed sd per cell (median and RMS) and the ratio of the per-seed RMS
    difference to it; the sign agreement of the cell means on the cells whose float mean
    exceeds twice its own standard error ("resolved" cells; all others are noise).
    """
    chip, ref = np.asarray(chip, np.float64), np.asarray(ref, np.float64)
    S = chip.shape[0]
    mc, mr = chip.mean(axis=0), ref.mean(axis=0)
    diff = chip - ref
    sd_ref = ref.std(axis=0, ddof=1) if S > 1 else np.zeros_like(mr)
    sd_diff = diff.std(axis=0, ddof=1) if S > 1 else np.zeros_like(mr)
    resolved = np.abs(mr) > 2.0 * sd_ref / math.sqrt(max(S, 1))
    corr = float(np.corrcoef(mc, mr)[0, 1]) if mc.size > 1 and mc.std() > 0 and mr.std() > 0 \
        else None
    rms_sd = float(np.sqrt(np.mean(sd_ref ** 2)))
    rms_each = float(np.sqrt(np.mean(diff ** 2)))
    return {"n_seeds": int(S), "n_cells": int(mc.size),
            "correlation": corr,
            "rms_mean_difference": float(np.sqrt(np.mean((mc - mr) ** 2))),
            "rms_mean_difference_se": float(np.sqrt(np.mean(sd_diff ** 2)) / math.sqrt(max(S, 1))),
            "rms_per_seed_difference": rms_each,
            "float_seed_sd_median": float(np.median(sd_ref)),
            "float_seed_sd_rms": rms_sd,
            "ratio_per_seed_rms_to_float_sd": rms_each / rms_sd if rms_sd > 0 else None,
            "resolved_cells": int(resolved.sum()),
            "sign_agreement_resolved": float(np.mean(np.sign(mc[resolved]) == np.sign(mr[resolved])))
            if resolved.any() else None}


def verdict(value, target: float, better: str, what: str, blame: str | None = None) -> dict:
    """Pass/fail of one target, with the margin, and what is responsible when it fails."""
    if value is None:
        return {"what": what, "value": None, "target": target, "pass": False,
                "margin": None, "note": "not measured"}
    ok = value >= target if better == "higher" else value <= target
    out = {"what": what, "value": float(value), "target": target, "pass": bool(ok),
           "margin": float(value - target)}
    if not ok and blame:
        out["responsible"] = blame
    return out
