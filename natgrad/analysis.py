"""What the quantization report concludes: the verdict, per-variable error split into local
rounding and trajectory divergence, update statistics and the learning-curve story.

Pure functions of the runs of :func:`natgrad.main_job.run_main_job` (float64 and the chip
config on identical spikes); :mod:`natgrad.report` renders what they return.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import expit

#: The verdict's tolerance: the chip tracks float when its late-window excess rate RMSE is
#: within this share of what float learned (initial minus late RMSE), and at least
#: :data:`MIN_TOLERANCE_HZ`.
TOLERANCE_SHARE = 0.10
MIN_TOLERANCE_HZ = 0.1
#: Late window: the last quarter of the recorded curve.
LATE_SHARE = 0.25


def mean_ci(x, axis=0) -> tuple[float, float]:
    """Mean and the half-width of its 95 % confidence interval (normal approximation)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[axis] if x.ndim else 1
    m = float(np.mean(x))
    if n < 2:
        return m, float("nan")
    return m, float(1.96 * np.std(np.mean(x, axis=tuple(a for a in range(x.ndim) if a != axis)),
                                  ddof=1) / math.sqrt(n))


def late_slice(n_points: int) -> slice:
    return slice(max(1, int(round(n_points * (1.0 - LATE_SHARE)))), n_points)


def verdict(curves: dict, counters: dict, evidence: dict) -> dict:
    """Does the chip track float, by how much, what limits it and what to change.

    ``curves``: ``t_s`` and per-trial rate RMSE (points, trials) of ``float`` and ``chip``.
    ``evidence``: candidate bottlenecks ``{variable: (score, text, advice)}``; the largest
    score wins (scores are shares of the learning signal lost, 0..1).
    """
    fl, fx = np.asarray(curves["float_trials"]), np.asarray(curves["chip_trials"])
    late = late_slice(fl.shape[0])
    learned = float(np.mean(fl[0]) - np.mean(fl[late]))
    tol = max(MIN_TOLERANCE_HZ, TOLERANCE_SHARE * abs(learned))
    excess_trials = np.mean(fx[late] - fl[late], axis=0)            # per trial
    excess, ci = mean_ci(excess_trials)
    status, resolve = resolve_verdict(excess, ci, tol, int(excess_trials.size))
    ranked = sorted(evidence.items(), key=lambda kv: -kv[1][0])
    bottleneck, evid, advice = (ranked[0][0], ranked[0][1][1], ranked[0][1][2]) if ranked else \
        (None, "no quantizer stands out", "nothing")
    return {"status": status,
            "tracks_float": {"tracks": True, "does not track": False}.get(status),
            "resolve": resolve, "n_trials": int(excess_trials.size),
            "tolerance_hz": tol, "excess_hz": excess,
            "excess_ci95_hz": ci, "excess_pct_of_learned": 100.0 * excess / learned
            if learned > 0 else None, "learned_hz": learned,
            "late_window_s": [float(curves["t_s"][late.start]), float(curves["t_s"][-1])],
            "bottleneck": bottleneck, "evidence": evid, "advice": advice,
            "ranking": [{"variable": k, "score": v[0], "evidence": v[1], "advice": v[2]}
                        for k, v in ranked],
            "rule": f"tracks float when the 95 % interval of the late excess lies within "
                    f"+-max({MIN_TOLERANCE_HZ} Hz, {TOLERANCE_SHARE:.0%} of float's learned "
                    "improvement); does not track when it lies outside; not resolved when it "
                    "straddles the tolerance or there is one trial only"}


def resolve_verdict(excess: float, ci: float, tol: float, n_trials: int,
                    unit: str = "trial", option: str = "--trials") -> tuple[str, str]:
    """"tracks", "does not track" or "not resolved", and what would resolve it.

    The late excess is known to ``+-ci`` (95 %, over ``n_trials`` trials).  It tracks when
    the whole interval is within ``+-tol``, does not track when it is wholly outside; else
    the answer is open, and the trial count that would shrink the interval below the
    distance to the tolerance (at this spread, ``ci ~ 1/sqrt(n)``) is named."""
    if n_trials < 2 or not math.isfinite(ci):
        return "not resolved", (f"{n_trials} {unit} gives no spread: run at least 4 {unit}s "
                                f"({option}) for a usable 95 % interval")
    lo, hi = excess - ci, excess + ci
    if -tol <= lo and hi <= tol:
        return "tracks", f"the 95 % interval [{lo:+.3g}, {hi:+.3g}] Hz lies within +-{tol:.3g} Hz"
    if lo > tol or hi < -tol:
        return "does not track", (f"the 95 % interval [{lo:+.3g}, {hi:+.3g}] Hz lies outside "
                                  f"+-{tol:.3g} Hz")
    gap = abs(abs(excess) - tol)
    need = math.ceil(n_trials * (ci / gap) ** 2) if gap > 0 else None
    more = (f"about {need} {unit}s ({option}) at this spread would resolve it"
            if need is not None and need <= 10_000 else
            "the excess sits on the tolerance: no practical trial count resolves it")
    return "not resolved", (f"the 95 % interval [{lo:+.3g}, {hi:+.3g}] Hz straddles the "
                            f"tolerance +-{tol:.3g} Hz over {n_trials} {unit}s; {more}, or a "
                            "longer run (--steps) with a smaller per-trial spread")


def error_split(fixed: np.ndarray, ref: np.ndarray, lsb: float) -> dict:
    """Bias, noise (sd) and RMS of ``fixed - ref`` in LSB, and the signal-to-noise ratio of
    the error against the reference's own spread (sd(ref) / rms(err))."""
    err = (np.asarray(fixed, np.float64) - np.asarray(ref, np.float64)) / lsb
    rms = float(np.sqrt(np.mean(err ** 2))) if err.size else 0.0
    spread = float(np.std(ref)) / lsb if np.size(ref) else 0.0
    return {"bias_lsb": float(np.mean(err)) if err.size else 0.0,
            "noise_lsb": float(np.std(err)) if err.size else 0.0, "rms_lsb": rms,
            "max_abs_lsb": float(np.max(np.abs(err))) if err.size else 0.0,
            "snr": spread / rms if rms > 0 else None}


def local_references(rec: dict, task, d, eta: float) -> dict:
    """What float arithmetic gives on the chip's OWN recorded state (physical units), per
    recorded variable: the local rounding error is ``chip - this``, free of trajectory
    divergence.  Datapath configs only (``rec`` holds every recordable variable)."""
    p = task.params
    out = {}
    if {"usp", "trace_m", "trace_s"} <= set(rec):
        out["usp"] = (rec["trace_m"] - rec["trace_s"]) * p.usp_scale
    if {"potential", "weights", "usp"} <= set(rec):
        out["potential"] = np.einsum("rbmn,rbn->rbm", rec["weights"], rec["usp"])
    if "sigma" in rec and "potential" in rec:
        out["sigma"] = expit(p.beta * (rec["potential"] - p.theta))
    if {"error", "sigma"} <= set(rec):
        phidt = p.phi_max * p.dt
        y = np.rint(rec["error"] + phidt * rec["sigma"])               # the teacher count
        out["error"] = y - phidt * rec["sigma"]
    if {"post", "gamma_s", "sigma", "error"} <= set(rec):
        out["post"] = eta * rec["gamma_s"] * (1.0 - rec["sigma"]) * rec["error"]
    if {"gamma_s", "weights"} <= set(rec):
        from emulator.rule_math import gauss_moments, membrane_stats
        m, v = membrane_stats(rec["weights"], task.rates, p.c_eps)
        out["gamma_s"] = 1.0 / gauss_moments(m, np.maximum(v, 1e-9), p)[0]
    return out


def updates(rec_fixed: dict, rec_float: dict, task, lsb_w: float) -> dict | None:
    """Weight updates at the recorded steps, in weight LSB: the chip's update before its
    final rounding, ``P * B`` from its own recorded post factor, USP, V and weights; and the
    float run's.  Returns the size histogram, the share of update magnitude carried by
    updates below half an LSB (what rounding to nearest would drop and stochastic rounding
    turns into noise), and the cosine between chip and float updates."""
    need = {"post", "usp", "potential", "weights"}
    if not need <= set(rec_fixed) or not need <= set(rec_float):
        return None
    ux, uf = float_update(rec_fixed, task) / lsb_w, float_update(rec_float, task) / lsb_w
    return update_stats(ux, uf)


def float_update(rec: dict, task) -> np.ndarray:
    """The approximate rule's weight update ``P B`` (weight units, (n_rec, B, M, N)) in float
    arithmetic from recorded ``post`` P (1), ``usp`` x (mV), ``potential`` V (mV) and
    ``weights`` w: ``P [c_eps x_i / r_i - c_eps c_u + c_w V w_i]``."""
    from emulator.rule_math import approx_terms, homosynaptic_factor, rule_bracket
    p = task.params
    homo = homosynaptic_factor(task.rates, p.c_eps)
    gamma_u, gamma_w = approx_terms(rec["potential"], p)
    b = rule_bracket((homo * rec["usp"])[:, :, None, :], gamma_u, gamma_w[..., None],
                     rec["weights"])
    return rec["post"][..., None] * b


#: Edges of the update-size histogram, weight LSB: 0, 2**-12 .. 2**6.
UPDATE_EDGES = np.concatenate([[0.0], 2.0 ** np.arange(-12, 7)])


def update_stats(ux: np.ndarray, uf: np.ndarray) -> dict:
    """Size histogram (:data:`UPDATE_EDGES`) of the chip's updates ``ux`` (weight LSB,
    (n_rec, ...)), the share below half an LSB, the median size and the mean cosine (over the
    recorded steps) between ``ux`` and the float updates ``uf`` (same shape)."""
    a = np.abs(ux).ravel()
    total = float(a.sum())
    edges = UPDATE_EDGES
    hist, _ = np.histogram(np.minimum(a, edges[-1]), bins=edges)
    cos = _cosines(ux, uf)
    return {"size_hist_edges_lsb": edges.tolist(), "size_hist_counts": hist.tolist(),
            "n_updates": int(a.size),
            "fraction_below_half_lsb": float(np.mean(a < 0.5)) if a.size else None,
            "magnitude_share_below_half_lsb": float(a[a < 0.5].sum() / total) if total > 0 else None,
            "median_size_lsb": float(np.median(a)) if a.size else None,
            "cosine_fixed_vs_float": float(np.mean(cos)) if cos.size else None}


def _cosines(ux: np.ndarray, uf: np.ndarray) -> np.ndarray:
    """Cosine between ``ux`` and ``uf`` per recorded step (axis 0), where both are nonzero."""
    fx, ff = ux.reshape(ux.shape[0], -1), uf.reshape(uf.shape[0], -1)
    num = np.sum(fx * ff, axis=1)
    den = np.linalg.norm(fx, axis=1) * np.linalg.norm(ff, axis=1)
    return num[den > 0] / den[den > 0]


def le_effective_weights(rec: dict, suffix: str = "") -> np.ndarray:
    """A learning-engine record's weights with their hidden bits: the visible weights plus
    tag_2's residual (both in weight units, as :data:`emulator.runner.LE_RECORDABLE`)."""
    return rec["weights" + suffix] + rec["tag_2" + suffix]


def le_local_references(rec: dict, rec_float: dict, task, d, eta: float) -> dict:
    """What float arithmetic gives on a learning-engine run's OWN recorded state (physical
    units), per variable that has a float counterpart; the local error is ``chip - this``.

    ``rec``: the run's records (:data:`emulator.runner.LE_RECORDABLE`); ``rec_float``: the
    float64 run's on the same spikes (its traces and USP do not depend on learning); ``d``:
    the run's :class:`emulator.learning.Design`.

    * ``x1``, ``x2``: ``k_x`` times the float traces a_m, a_s on the same spikes
    * ``potential``: the chip's visible weights one step before (those Dense used) times the
      float USP: V's error includes the filters' rounding and the weights' own recent changes
    * ``vq``: ``L V`` of the chip's V (L = the step's level, graded; 1 for events), only at
      steps that sent a level (NaN elsewhere)
    * ``sigma``: the exact sigmoid of the chip's V; ``error``: the teacher count minus
      phi_max dt times the chip's sigma
    * ``gamma_s``: the exact 1 / E[sigma (1 - sigma)^2] for V ~ N(m, v) of the chip's weights
    * ``post``: eta gamma_s (1 - sigma) e of the chip's gamma_s, sigma and e
    * ``coded``: the amount that was coded (the post factor plus the carry)
    * ``weights`` (with hidden bits): the weights one step before plus the float update
      ``P B`` from the chip's own post factor, V and weights (and the float USP)
    """
    from emulator.rule_math import gauss_moments, membrane_stats
    p = task.params
    k_x = float(d.k_x)
    v = rec["potential"]
    out = {"x1": k_x * rec_float["trace_m"], "x2": k_x * rec_float["trace_s"],
           "potential": np.einsum("rbmn,rbn->rbm", rec["weights_before"], rec_float["usp"]),
           "sigma": expit(p.beta * (v - p.theta))}
    if d.mapped_rule == "approx":
        if d.encoding == "graded":
            unit = np.where(rec["coded"] > 0, d.unit_ratio * d.e_q, d.e_q)
            level = np.rint(np.abs(rec["coded"]) / unit)
        else:
            level = np.ones(v.shape)
        out["vq"] = np.where(level > 0, level * v, np.nan)
    phidt = p.phi_max * p.dt
    y = np.rint(rec["error"] + phidt * rec["sigma"])
    out["error"] = y - phidt * rec["sigma"]
    m, var = membrane_stats(rec["weights"], task.rates, p.c_eps)
    out["gamma_s"] = 1.0 / gauss_moments(m, np.maximum(var, 1e-9), p)[0]
    gam = rec["gamma_s"] if d.mapped_rule == "approx" else 1.0
    out["post"] = eta * gam * (1.0 - rec["sigma"]) * rec["error"]
    out["coded"] = rec["amount"]
    if d.mapped_rule == "approx":            # float_update is the approximate rule's
        before = le_effective_weights(rec, "_before")
        out["weights"] = before + float_update(
            {"post": rec["post"], "usp": rec_float["usp"], "potential": v, "weights": before},
            task)
    return out


def le_updates(rec: dict, rec_float: dict, task, d) -> dict:
    """Weight updates of a learning-engine run at its recorded steps, in weight LSB.

    The histogram and shares (:func:`update_stats`) are of the update the step asks for,
    before the engine's roundings: ``P B`` in float from the chip's own post factor, V and
    weights (with hidden bits) one step before, and the float USP; the cosine is against the
    float run's own updates.  ``realised``: the change of the weights with hidden bits over
    the step (weights and tag_2 before and after it; multiples of 2**-hidden_bits LSB), its
    histogram, its error against the update asked for and its cosine against float.
    """
    lsb = d.lsb_w
    before = le_effective_weights(rec, "_before")
    asked = float_update({"post": rec["post"], "usp": rec_float["usp"],
                          "potential": rec["potential"], "weights": before}, task) / lsb
    uf = float_update(rec_float, task) / lsb
    out = update_stats(asked, uf)
    out["rule"] = d.mapped_rule
    if d.mapped_rule != "approx":
        out["note"] = ("the engine runs the Euclidean rule: the update asked for and the float "
                       "run's are the approximate rule's, so the cosines compare two rules")
    done = (le_effective_weights(rec) - before) / lsb
    hist, _ = np.histogram(np.minimum(np.abs(done).ravel(), UPDATE_EDGES[-1]), bins=UPDATE_EDGES)
    cos = _cosines(done, uf)
    out["realised"] = {
        "quantum_lsb": 2.0 ** -d.hidden_bits,
        "size_hist_counts": hist.tolist(),
        "fraction_zero": float(np.mean(done == 0)) if done.size else None,
        "error_vs_asked": error_split(done, asked, 1.0) if done.size else None,
        "mean_asked_lsb": float(np.mean(asked)) if asked.size else None,
        "mean_realised_lsb": float(np.mean(done)) if done.size else None,
        "cosine_realised_vs_float": float(np.mean(cos)) if cos.size else None}
    return out


def leader_story(t_s, approx, euclid) -> dict:
    """Which rule leads when: the last time the float Euclidean curve is below the float
    approximate one, and the sentence that says so."""
    t_s, approx, euclid = (np.asarray(a, dtype=np.float64) for a in (t_s, approx, euclid))
    n = min(len(t_s), len(approx), len(euclid))
    t_s, approx, euclid = t_s[:n], approx[:n], euclid[:n]
    ahead = euclid < approx
    if not ahead.any():
        cross, text = 0.0, ("The approximate natural-gradient rule leads the Euclidean rule "
                            "throughout.")
    elif ahead[-1]:
        cross = None
        text = ("The Euclidean rule still leads at the end of this run: its larger effective "
                "step on the fast afferents wins early; the natural-gradient rules overtake it "
                "later (run longer, e.g. `natgrad experiment fig3f`).")
    else:
        last = int(np.nonzero(ahead)[0][-1])
        cross = float(t_s[last + 1])
        text = (f"The Euclidean rule leads until about {cross:g} s (its larger effective step on "
                "the 50-Hz afferents wins early); from then on the approximate natural-gradient "
                "rule is ahead, because it scales each synapse's step by its input statistics "
                "(the paper's Fig 3F).")
    return {"euclid_leads_until_s": cross, "sentence": text}
