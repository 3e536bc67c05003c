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


def verdict(value, target: float, better: str, what: str, blame: str | None = None,
            ci: float | None = None) -> dict:
    """Pass / fail / not resolved of one target, with the margin, and what is responsible
    when it fails.

    Without ``ci`` the value is compared with the target.  With ``ci`` (the 95 % half-width
    of ``value`` over trials) it passes when the whole interval is on the good side, fails
    when it is wholly on the bad side, and is not resolved (``pass`` None, with the trial
    count that would resolve it) when it straddles the target."""
    if value is None:
        return {"what": what, "value": None, "target": target, "pass": False,
                "margin": None, "note": "not measured"}
    good = (lambda x: x >= target) if better == "higher" else (lambda x: x <= target)
    out = {"what": what, "value": float(value), "target": target,
           "margin": float(value - target)}
    if ci is not None and np.isfinite(ci) and ci > 0:
        out["ci95"] = float(ci)
        lo, hi = value - ci, value + ci
        if good(lo) and good(hi):
            ok = True
        elif not good(lo) and not good(hi):
            ok = False
        else:
            ok = None
            gap = abs(value - target)
            out["resolve"] = (f"the 95 % interval [{lo:.3g}, {hi:.3g}] straddles {target:g}; "
                              + (f"about {int(np.ceil((ci / gap) ** 2))}x the trials at this "
                                 "spread would resolve it" if gap > 0 else
                                 "the value sits on the target"))
    else:
        ok = bool(good(value))
    out["pass"] = ok
    if ok is not True and blame:
        out["responsible"] = blame
    return out
