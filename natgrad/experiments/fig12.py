"""Fig 12: how good is the approximate (local) rule? docs/model.md#fig12.

A-B: angles between the approximate and the exact natural update, and between the Euclidean
and the exact natural update, in the Euclidean and the Fisher metric, for two afferent groups
at several rate pairs, weights w ~ U(-5, 5)/N, a fixed target w* (one draw per rate pair) and
USP samples (final values of Poisson trains).  Updates use the *expected* teacher φ(V*) dt.
C-F: learning curves of the approximate rule next to the natural and Euclidean rules (the Fig
3F task at other input rates; the paper's per-condition learning rates of its Table 1 are not
available, so the 10/50-Hz code rates are used for every condition).
"""
from __future__ import annotations

import numpy as np

from emulator.metrics import test_set
from emulator.reference import ETA_CODE, delta_approx, delta_euclid, delta_natural
from emulator.rule_math import gauss_moments, membrane_stats
from emulator.spikes import sigma
from emulator.task import fig3_task
from natgrad.backends import backend_for

from .stats import verdict
from .common import (Timer, finish, angle_deg, config_label, counters_summary, plt, preset,
                     save_fig, scaled_etas, weight_range)
from .fig3 import RULE_STYLE, _stats, _stats_arrays, fig3f_etas, lc_effects, sharded_curves

FIG12_PRESETS = {
    "small": dict(pairs=((10.0, 10.0), (10.0, 30.0), (10.0, 50.0), (20.0, 20.0), (20.0, 40.0)),
                  N=100, n_weights=30, n_samples=30, sample_steps=500, w_scale=5.0,
                  lc_pairs=((10.0, 50.0), (20.0, 40.0)), lc_trials=4, lc_T_s=300.0, lc_eta_scale=4.0,
                  lc_eval_s=20.0, lc_late_window_s=(200.0, 300.0), rmse_threshold_hz=2.5, kl_threshold=2e-4,
                  config_check_w_scale=1.0, eta=None),
    "paper": dict(pairs=((10.0, 10.0), (10.0, 30.0), (10.0, 50.0), (20.0, 20.0), (20.0, 40.0)),
                  N=100, n_weights=100, n_samples=100, sample_steps=2000, w_scale=5.0,
                  lc_pairs=((10.0, 30.0), (10.0, 50.0), (20.0, 20.0), (20.0, 40.0)), lc_trials=1000,
                  lc_T_s=8000.0, lc_eta_scale=1.0, lc_eval_s=100.0, lc_late_window_s=(1000.0, 2000.0),
                  rmse_threshold_hz=1.0, kl_threshold=5e-5, config_check_w_scale=1.0, eta=None),
}


def fisher_inner(a, b, W, r, params):
    """a^T F b with F = I1(Σ + r rᵀ) + c2(r uᵀ + u rᵀ) + c3 u uᵀ, Σ = diag(r)/c_ε, u = Σ w
    (docs/model.md#coefficients), for rows a, b (S, N) at weights W (S, N)."""
    ce = params.c_eps
    m, v = membrane_stats(W, r, ce)
    I1, c2, c3 = gauss_moments(m, v, params)
    u = W * r / ce
    ra, rb, ua, ub = a @ r, b @ r, np.sum(u * a, -1), np.sum(u * b, -1)
    return I1 * (np.sum(a * b * r, -1) / ce + ra * rb) + c2 * (ra * ub + ua * rb) + c3 * ua * ub


def fisher_angle_deg(a, b, W, r, params):
    ab = fisher_inner(a, b, W, r, params)
    aa = fisher_inner(a, a, W, r, params)
    bb = fisher_inner(b, b, W, r, params)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.clip(ab / np.sqrt(aa * bb), -1, 1)
    return np.degrees(np.arccos(c))


def _angle_eta(p) -> float:
    """The learning rate of the engine design whose direction the angles measure: the
    paper's code rate, or ``natgrad experiment --eta``."""
    return scaled_etas(p, {"approx": ETA_CODE["approx"]})["approx"]


def angles_for_pair(pair, p, seed, cfg=None, batch: int = 10):
    """Mean (over USP samples) angles per weight sample for one rate pair (weights in batches)."""
    N, K, S = p["N"], p["n_weights"], p["n_samples"]
    task = fig3_task(n_trials=K, N=N, group_rates=pair, seed=seed, w_scale=p["w_scale"] / N)
    r, params = task.rates, task.params
    wstar = task.w_target[0, 0, :]                                 # fixed target for the pair
    # the config's expected update direction (its backend's: the datapath's stages, the
    # learning engine's expectation over its events) on the task's design
    backend = None if cfg is None else backend_for(cfg)
    out = {}
    for b0 in range(0, K, batch):
        tr = np.arange(b0, min(K, b0 + batch))
        Wk = task.w_init[tr, 0, :]
        B = tr.size
        Xf = test_set(task, seed, S, trials=tr, n_steps=p["sample_steps"]).reshape(B * S, N)
        Wf = np.repeat(Wk, S, axis=0)
        y = (params.phi_max * sigma(Xf @ wstar, params) * params.dt)[:, None]
        W3 = Wf[:, None, :]
        nat = delta_natural(W3, Xf, y, r, params)[:, 0]
        euc = delta_euclid(W3, Xf, y, r, params)[:, 0]
        app = delta_approx(W3, Xf, y, r, params)[:, 0]
        part = {"nat_approx_euclidean": angle_deg(nat, app),
                "nat_euclid_euclidean": angle_deg(nat, euc),
                "nat_approx_fisher": fisher_angle_deg(nat, app, Wf, r, params),
                "nat_euclid_fisher": fisher_angle_deg(nat, euc, Wf, r, params)}
        if backend is not None:
            chip = backend.update_direction(task, _angle_eta(p), Wf, Xf, y[:, 0])
            part["nat_config_approx_euclidean"] = angle_deg(nat, chip)
            part["nat_config_approx_fisher"] = fisher_angle_deg(nat, chip, Wf, r, params)
        for k, v in part.items():
            with np.errstate(all="ignore"):
                out.setdefault(k, []).append(np.nanmean(v.reshape(B, S), axis=1))
    Wk = task.w_init[:, 0, :]
    m = Wk @ r
    info = {"m_mean_mv": float(m.mean()), "m_sd_mv": float(m.std()),
            "fraction_weights_beyond_config_range": None}
    if cfg is not None:
        info["fraction_weights_beyond_config_range"] = float(np.mean(
            np.abs(Wk) > weight_range(cfg, task, _angle_eta(p))))
    return {k: np.concatenate(v) for k, v in out.items()}, info


def fig12(scale: str = "small", config=None, seed: int = 0, out=None, curves: bool = True,
          progress=None, executor: str = "serial", workers: int = 2, scheduler: str | None = None,
          shard_trials: int | None = None, cache=None, cached_only: bool = False,
          **overrides) -> dict:
    """Fig 12A-B angle histograms and Fig 12C-F learning curves (see module doc).  With a
    fixed-point ``config``: the approximate direction as that config's datapath forms it (vs the
    exact natural update), and the approximate rule's learning curves run on the config.

    The learning curves are the Fig 3F protocol at other rates (1000 trials x 8000 s per rate
    pair at paper scale); their trials run in shards exactly as :func:`.fig3.fig3f`'s
    (``executor``, ``workers``, ``scheduler``, ``shard_trials``, ``cache``, ``cached_only``:
    see there), with the same numbers for any sharding."""
    p = preset(FIG12_PRESETS, scale, overrides)
    timer = Timer()
    label = config_label(config)
    cfg = config if label is not None else None
    # the curves first: a --cached-only report on an empty cache fails before any work
    lc = None
    if curves and p["lc_pairs"]:
        lc = _curves(p, cfg, seed, label, dict(
            executor=executor, workers=workers, scheduler=scheduler, shard_trials=shard_trials,
            cache=cache, cached_only=cached_only, progress=progress))
    angles, infos, summary = {}, {}, {}
    for pair in p["pairs"]:
        key = f"{pair[0]:g}/{pair[1]:g}"
        a, info = angles_for_pair(pair, p, seed, cfg)
        angles[key], infos[key] = a, info
        summary[key] = {k: float(np.nanmean(v)) for k, v in a.items()}
    eff = {"mean_angles_deg": summary,
           "approx_closer_than_euclid_all_pairs_euclidean": all(
               s["nat_approx_euclidean"] < s["nat_euclid_euclidean"] for s in summary.values()),
           "approx_closer_than_euclid_all_pairs_fisher": all(
               s["nat_approx_fisher"] < s["nat_euclid_fisher"] for s in summary.values()),
           "max_ratio_approx_to_euclid_angle_euclidean": max(
               s["nat_approx_euclidean"] / s["nat_euclid_euclidean"] for s in summary.values())}
    result = {"experiment": "fig12", "scale": scale, "seed": seed, "params": p, "config": label,
              "eta_approx_code": {"angles": _angle_eta(p),
                                  "learning_curves": fig3f_etas(_lc_protocol(p, None))["approx"]},
              "angles_per_weight_deg": angles, "weight_info": infos, "effect": eff}
    if label is not None:
        result["effect_config"] = {
            "mean_angle_nat_to_config_approx_deg": {k: s["nat_config_approx_euclidean"] for k, s in summary.items()},
            "mean_angle_nat_to_config_approx_fisher_deg": {k: s["nat_config_approx_fisher"] for k, s in summary.items()},
            "config_approx_closer_than_euclid_all_pairs": all(
                s["nat_config_approx_euclidean"] < s["nat_euclid_euclidean"] for s in summary.values())}
        # the same with weights inside the config's range (U(-1, 1)/N by default): precision
        # of the datapath alone, without weight saturation
        ws = p["config_check_w_scale"]
        chk = {}
        for pair in p["pairs"]:
            a, info = angles_for_pair(pair, dict(p, w_scale=ws), seed, cfg)
            chk[f"{pair[0]:g}/{pair[1]:g}"] = {k: float(np.nanmean(v)) for k, v in a.items()} | {
                "fraction_weights_beyond_config_range": info["fraction_weights_beyond_config_range"]}
        result["effect_config"][f"in_range_weights_w_scale_{ws:g}"] = chk
        diffs = [abs(s_["nat_config_approx_euclidean"] - s_["nat_approx_euclidean"])
                 for s_ in list(summary.values()) + list(chk.values())]
        ec = result["effect_config"]
        ec["max_angle_diff_to_float_deg"] = float(max(diffs))
        ec["direction"] = backend_for(cfg).update_direction_text()
        ec["targets"] = [verdict(ec["max_angle_diff_to_float_deg"], 2.0, "lower",
                                 "max |angle(chip, natural) - angle(float approx, natural)| [deg] "
                                 "at the paper's and at in-range weights",
                                 f"see `natgrad budget --config {label}`")]
    if lc is not None:
        result["learning_curves"] = lc
    return finish(result, out, "fig12", _plot_12, timer)


def _lc_protocol(p, pair):
    """The Fig 3F shard protocol of the learning curves at a rate pair (10/50-Hz code
    rates, 50 test samples)."""
    return {"n_trials": p["lc_trials"], "N": p["N"], "group_rates": pair,
            "rules": ("euclid", "natural", "approx"), "eta_scale": p["lc_eta_scale"],
            "eta": p["eta"], "T_s": p["lc_T_s"], "eval_s": p["lc_eval_s"], "batch": 50,
            "n_test": 50}


def _curves(p, cfg, seed, label, shard_kw):
    lp = {"late_window_s": p["lc_late_window_s"], "rmse_threshold_hz": p["rmse_threshold_hz"],
          "kl_threshold": p["kl_threshold"]}
    outc = {}
    for pair in p["lc_pairs"]:
        key = f"{pair[0]:g}/{pair[1]:g}"
        sp = _lc_protocol(p, pair)
        merged, shard_count = sharded_curves(sp, seed, cfg, **shard_kw)
        res = merged["res"]
        t = res["natural"].t_s
        cv = {r: _stats(c) for r, c in res.items()}
        entry = {"t_s": t, "curves": cv, "shards": shard_count}
        if label is not None:
            ch = merged["chip"]
            cv[f"approx@{label}"] = _stats_arrays(ch["rmse"], ch["kl"], ch["wdist"])
            entry["counters"] = counters_summary(ch["counters"])
        e = lc_effects(t, cv, lp)
        kle, kln, kla = e["kl_late"]["euclid"], e["kl_late"]["natural"], e["kl_late"]["approx"]
        late = None not in (kle, kln, kla)          # None: the run ends before the late window
        e["approx_between_or_better"] = bool(kla <= kle) if late else None
        e["approx_position_0nat_1euc"] = (float((kla - kln) / (kle - kln))
                                          if late and kle != kln else None)
        if label is not None:
            kc = e["kl_late"][f"approx@{label}"]
            e["config_approx_position_0nat_1euc"] = (float((kc - kln) / (kle - kln))
                                                     if late and kc is not None and kle != kln
                                                     else None)
        entry["effect"] = e
        outc[key] = entry
    return outc


def _plot_12(r, out):
    if out is None:
        return
    pl = plt()
    keys = list(r["angles_per_weight_deg"])
    fig, axs = pl.subplots(2, len(keys), figsize=(3.3 * len(keys), 6), squeeze=False)
    bins = np.arange(0, 92.5, 5)
    for j, k in enumerate(keys):
        a = r["angles_per_weight_deg"][k]
        for i, metric in enumerate(("euclidean", "fisher")):
            ax = axs[i, j]
            ax.hist(a[f"nat_euclid_{metric}"], bins=bins, color="C0", alpha=0.6, label="nat–Euclid")
            ax.hist(a[f"nat_approx_{metric}"], bins=bins, color="C2", alpha=0.6, label="nat–approx")
            if f"nat_config_approx_{metric}" in a:
                ax.hist(a[f"nat_config_approx_{metric}"], bins=bins, histtype="step", color="k", lw=1.5,
                        label=f"nat–approx@{r['config']}")
            ax.set_title(f"{k} Hz, {metric} metric", fontsize=9)
            ax.set_xlabel("angle [deg]")
    axs[0, 0].legend(fontsize=7)
    axs[0, 0].set_ylabel("Fig 12A: # weights")
    axs[1, 0].set_ylabel("Fig 12B: # weights")
    fig.tight_layout()
    save_fig(fig, out, "fig12ab_angles.png", r["figures"])
    pl.close(fig)
    lc = r.get("learning_curves")
    if lc:
        fig, axs = pl.subplots(1, len(lc), figsize=(5 * len(lc), 4), squeeze=False)
        for ax, (k, e) in zip(axs[0], lc.items()):
            t = np.asarray(e["t_s"]) / 60
            for name, c in e["curves"].items():
                if name in RULE_STYLE:
                    col, lab = RULE_STYLE[name]
                    ax.semilogy(t, c["kl_mean"], color=col, label=lab)
                    ax.fill_between(t, c["kl_min"], c["kl_max"], color=col, alpha=0.12)
                else:
                    ax.semilogy(t, c["kl_mean"], "k--", label=name)
            ax.set_title(f"Fig 12C-F: {k} Hz")
            ax.set_xlabel("time [min]")
            ax.set_ylabel("KL cost per bin")
            ax.legend(fontsize=8)
        fig.tight_layout()
        save_fig(fig, out, "fig12cf_learning_curves.png", r["figures"])
        pl.close(fig)
