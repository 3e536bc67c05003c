"""Fig 3D-E (weight paths and vector fields, N = 2) and Fig 3F / 9A-C (learning curves).

docs/model.md#fig3f and #fig3de.  Code-unit learning rates (β omitted, see :mod:`emulator.reference`).
"""
from __future__ import annotations

import json

import numpy as np

from emulator.metrics import test_set
from emulator.reference import ETA_CODE, delta_approx, delta_euclid, delta_natural
from emulator.spikes import sigma
from emulator.task import Task, fig3_task

from .stats import ci95, verdict
from natgrad import comparison
from natgrad.backends import backend_for
from .common import (Timer, finish, angle_deg, chip_run, config_label, counters_summary, curve_metrics,
                     first_below, float_rules, plt, preset, save_fig, scaled_etas, steps_of,
                     weight_range)

RULE_STYLE = {"euclid": ("C0", "Euclidean"), "natural": ("C3", "natural"), "approx": ("C2", "approx. natural")}

# =============================================================================== Fig 3F
FIG3F_PRESETS = {
    # validated scaled-down protocol of docs/model.md#fig3f (η ×4, K = 8, 300 s, evaluation every 20 s)
    "small": dict(n_trials=8, N=100, group_rates=(10.0, 50.0), T_s=300.0, eta_scale=4.0,
                  eval_s=20.0, n_test=50, batch=8, late_window_s=(200.0, 300.0),
                  rmse_threshold_hz=2.5, kl_threshold=2e-4, rules=("euclid", "natural", "approx"),
                  eta=None),
    # the paper: 1000 trials x 8000 s, code learning rates, evaluation every 100 s (Fig 9D: KL < 5e-5)
    "paper": dict(n_trials=1000, N=100, group_rates=(10.0, 50.0), T_s=8000.0, eta_scale=1.0,
                  eval_s=100.0, n_test=50, batch=50, late_window_s=(1000.0, 2000.0),
                  rmse_threshold_hz=1.0, kl_threshold=5e-5, rules=("euclid", "natural", "approx"),
                  eta=None),
}
# ``eta`` (every preset of every experiment): the approximate rule's learning rate in code
# units (``natgrad experiment --eta``); None: the preset's own rates (common.scaled_etas)


def fig3f_etas(p: dict) -> dict:
    """Rule -> learning rate (code units) of a Fig 3F protocol ``p``: the code rates times
    ``eta_scale``, or with ``eta`` the approximate rule's rate and the others scaled alike;
    ``'approx'`` always included (the chip runs it)."""
    return scaled_etas(p, {r: ETA_CODE[r] * p["eta_scale"]
                           for r in tuple(p["rules"]) + ("approx",)})


def _stats(c) -> dict:
    return {"kl_mean": c.kl.mean(1), "kl_min": c.kl.min(1), "kl_max": c.kl.max(1),
            "rmse_mean": c.rmse.mean(1), "rmse_min": c.rmse.min(1), "rmse_max": c.rmse.max(1),
            "wdist_mean": c.wdist.mean(1), "wdist_min": c.wdist.min(1), "wdist_max": c.wdist.max(1)}


def _stats_arrays(rm, kl, wd) -> dict:
    class _C:
        pass
    c = _C()
    c.rmse, c.kl, c.wdist = rm, kl, wd
    return _stats(c)


def _g(x) -> str:
    return "-" if x is None else f"{x:.3g}"


def chip_rule_comparison(kl_nat, kl_euc, t_nat, t_euc, t_end_s: float) -> dict:
    """The approximate natural rule against Euclid on the same chip, paired per trial (same
    task, weights and spikes): late KL (log ratio) and the time to the RMSE threshold (a
    trial that never gets there counts as the run's end, ``t_end_s``, a lower bound).

    ``verdict``: 'natural wins' when both paired 95 % intervals lie on the natural side,
    'euclid wins' when one lies on Euclid's side and the other does not favour natural,
    else 'not resolved' (more trials would resolve it).
    """
    kl_nat, kl_euc = np.asarray(kl_nat, np.float64), np.asarray(kl_euc, np.float64)
    ok = (kl_nat > 0) & (kl_euc > 0)
    log_ratio = np.log(kl_nat[ok] / kl_euc[ok])
    tn = np.array([t_end_s if v is None else v for v in t_nat])
    te = np.array([t_end_s if v is None else v for v in t_euc])
    dt_ = tn - te
    lr, dd = ci95(log_ratio), ci95(dt_)

    def side(c):          # -1: natural's side (negative), +1: Euclid's, 0: unresolved
        if c["mean"] is None or c["ci95"] is None:
            return 0
        return -1 if c["mean"] + c["ci95"] < 0 else (1 if c["mean"] - c["ci95"] > 0 else 0)
    s_kl, s_t = side(lr), side(dd)
    word = {-1: "natural better", 1: "Euclid better", 0: "not resolved"}
    verdict_ = ("natural wins" if s_kl < 0 and s_t < 0 else
                "euclid wins" if (s_kl > 0 and s_t >= 0) or (s_t > 0 and s_kl >= 0) else
                "not resolved")
    return {"late_kl_log_ratio_natural_over_euclid": lr,
            "late_kl_ratio_geometric_mean": float(np.exp(lr["mean"])) if lr["mean"] is not None
            else None,
            "late_kl_natural_lower_fraction": float(np.mean(log_ratio < 0)) if ok.any() else None,
            "t_rmse_below_natural_minus_euclid_s": dd,
            "natural_first_fraction": float(np.mean(tn < te)) if tn.size else None,
            "late_kl": word[s_kl], "threshold_time": word[s_t],
            "n_trials": int(kl_nat.size), "verdict": verdict_}


def lc_effects(t, curves: dict, p: dict) -> dict:
    """Convergence numbers of mean learning curves: time to the RMSE / KL thresholds and the
    mean KL over the late window."""
    eff = {"t_rmse_below_s": {}, "t_kl_below_s": {}, "kl_late": {}, "rmse_final_hz": {}}
    for r, c in curves.items():
        eff["t_rmse_below_s"][r] = first_below(t, c["rmse_mean"], p["rmse_threshold_hz"])
        eff["t_kl_below_s"][r] = first_below(t, c["kl_mean"], p["kl_threshold"])
        late = comparison.window_mean(c["kl_mean"], t, p["late_window_s"], empty=None)
        eff["kl_late"][r] = None if late is None else float(late)
        eff["rmse_final_hz"][r] = float(c["rmse_mean"][-1])
    return eff


def fig3f_shard(p: dict, seed: int, cfg_tree: dict | None, trials) -> dict:
    """Per-trial learning curves of Fig 3F for the global ``trials`` (one shard): every float
    rule and, with a config, the approximate rule on it; the same numbers for a trial
    whatever shard it runs in.  Module-level, JSON-able arguments: a process-pool or Dask
    worker runs it, and :mod:`natgrad.experiments.shards` caches it."""
    from emulator.hwconfig import validate
    cfg = validate(cfg_tree, "<fig3f shard>") if cfg_tree else None
    trials = np.asarray(trials, np.int64)
    task = fig3_task(n_trials=p["n_trials"], N=p["N"], group_rates=tuple(p["group_rates"]), seed=seed)
    all_etas = fig3f_etas(p)
    etas = {r: all_etas[r] for r in p["rules"]}
    steps, ev = steps_of(p["T_s"]), steps_of(p["eval_s"])
    res = float_rules(task, etas, steps, seed, eval_every=ev, batch=p["batch"], n_test=p["n_test"],
                      trials=trials)
    out = {"t_s": res[p["rules"][0]].t_s,
           "rules": {r: {"rmse": c.rmse, "kl": c.kl, "wdist": c.wdist} for r, c in res.items()}}
    if cfg is not None:
        Wr, tr, _, counters = chip_run(cfg, task, steps, seed, all_etas["approx"],
                                       record_every=ev, trials=trials)
        rm, kl, wd = curve_metrics(task, Wr, seed, p["n_test"], trials)
        out["chip"] = {"t_s": tr, "rmse": rm, "kl": kl, "wdist": wd, "counters": counters}
        ecfg = backend_for(cfg).with_rule("euclid") if "euclid" in p["rules"] else None
        if ecfg is not None:
            # the same engine and coding learning the Euclidean rule: the fair comparison
            Wr, tr, _, counters = chip_run(ecfg, task, steps, seed, all_etas["euclid"],
                                           record_every=ev, trials=trials)
            rm, kl, wd = curve_metrics(task, Wr, seed, p["n_test"], trials)
            out["chip_euclid"] = {"t_s": tr, "rmse": rm, "kl": kl, "wdist": wd,
                                  "counters": counters}
    return out


def _merge_shards(parts: list) -> dict:
    """Concatenate per-trial arrays of shards (in trial order) and add up the counters."""
    from types import SimpleNamespace
    t = parts[0]["t_s"]
    res = {r: SimpleNamespace(t_s=t, **{k: np.concatenate([pp["rules"][r][k] for pp in parts], 1)
                                      for k in ("rmse", "kl", "wdist")})
           for r in parts[0]["rules"]}
    out = {"res": res, "chip": None, "chip_euclid": None}
    for key in ("chip", "chip_euclid"):
        if key not in parts[0]:
            continue
        counters: dict = {}
        for pp in parts:
            for var, c in pp[key]["counters"].items():
                dst = counters.setdefault(var, {"first_step": {}})
                for k, v in c.items():
                    if k != "first_step":
                        dst[k] = dst.get(k, 0) + int(v)
        out[key] = {"t_s": parts[0][key]["t_s"], "counters": counters,
                    **{k: np.concatenate([pp[key][k] for pp in parts], 1)
                       for k in ("rmse", "kl", "wdist")}}
    return out


def sharded_curves(sp: dict, seed: int, config, *, executor: str = "serial", workers: int = 2,
                   scheduler: str | None = None, shard_trials: int | None = None, cache=None,
                   cached_only: bool = False, progress=None) -> tuple[dict, dict]:
    """Per-trial learning curves of the Fig 3F protocol with shard parameters ``sp`` (the
    keys :func:`fig3f_shard` reads), run in shards of ``shard_trials`` trials on
    ``executor`` and cached in ``cache``; returns (:func:`_merge_shards` of the shards, the
    ``{"done", "total", "trials_done"}`` shard count).  ``cached_only``: only the shards
    already in ``cache``.  Shared by Fig 3F and Fig 12's learning curves."""
    from .shards import cached_shards, run_shards, shard_ranges
    shards = shard_ranges(sp["n_trials"], shard_trials or sp["n_trials"])
    sp = json.loads(json.dumps(sp, default=list))          # JSON-able: tuples -> lists
    sargs = (sp, int(seed), config.tree if config_label(config) else None)
    n_shards = len(shards)
    if cached_only:
        from natgrad.errors import InputError
        if cache is None:
            raise InputError("cached_only needs a cache folder (--cache DIR)")
        shards = cached_shards(fig3f_shard, sargs, shards, cache)
        if not shards:
            raise InputError(f"no finished shard of this run in {cache} (--cached-only reports "
                             f"on a run with the same experiment, scale, config, seed and "
                             f"trials)")
    parts = run_shards(fig3f_shard, sargs, shards, executor=executor, workers=workers,
                       scheduler=scheduler, cache=cache, progress=progress)
    return _merge_shards(parts), {"done": len(shards), "total": n_shards,
                                  "trials_done": int(sum(len(s) for s in shards))}


def fig3f(scale: str = "small", config=None, seed: int = 0, out=None, progress=None,
          executor: str = "serial", workers: int = 2, scheduler: str | None = None,
          shard_trials: int | None = None, cache=None, cached_only: bool = False,
          **overrides) -> dict:
    """Fig 3F (+ Fig 9A-C): mean learning curves of the Euclidean, natural and approximate rules
    with the min/max spread across trials; with a chip ``config`` also the approximate rule
    on that config (same task, same spikes).

    The trials run in shards of ``shard_trials`` (default: all in one) on ``executor``
    (``serial``, ``local`` process pool of ``workers``, or ``dask`` at ``scheduler`` / a
    LocalCluster), finished shards cached in ``cache`` (a folder: an interrupted run resumes);
    the numbers do not depend on any of these.  ``cached_only=True`` computes nothing: it
    reports on the shards already in ``cache`` (an unfinished multi-session run; the result's
    ``shards`` entry says how many of how many)."""
    p = preset(FIG3F_PRESETS, scale, overrides)
    timer = Timer()
    task = fig3_task(n_trials=p["n_trials"], N=p["N"], group_rates=p["group_rates"], seed=seed)
    all_etas = fig3f_etas(p)
    etas = {r: all_etas[r] for r in p["rules"]}
    label = config_label(config)
    merged, shard_count = sharded_curves(p, seed, config, executor=executor, workers=workers,
                                         scheduler=scheduler, shard_trials=shard_trials,
                                         cache=cache, cached_only=cached_only, progress=progress)
    res = merged["res"]
    t = res[p["rules"][0]].t_s
    curves = {r: _stats(c) for r, c in res.items()}
    window_s = p["late_window_s"]                 # the paper's late window
    per_trial_late = {r: comparison.window_mean(c.kl, t, window_s) for r, c in res.items()}
    eff = lc_effects(t, curves, p)
    kle = eff["kl_late"].get("euclid")
    if kle:
        eff["kl_late_ratio_to_euclid"] = {r: eff["kl_late"][r] / kle for r in curves}
        if "natural" in per_trial_late:
            eff["paired_win_rate_natural_vs_euclid"] = float(np.mean(per_trial_late["natural"] < per_trial_late["euclid"]))
    if "natural" in curves and "euclid" in curves:
        tn, te = eff["t_rmse_below_s"]["natural"], eff["t_rmse_below_s"]["euclid"]
        eff["natural_reaches_rmse_threshold_first"] = tn is not None and (te is None or tn < te)
    result = {"experiment": "fig3f", "scale": scale, "seed": seed, "params": p, "eta_code": etas,
              "eta_approx_code": all_etas["approx"],
              "shards": shard_count,
              "config": config_label(config), "t_s": t, "curves": curves, "effect": eff,
              "per_trial_kl_late": per_trial_late}
    if label is not None:
        ch = merged["chip"]
        tr, rm, kl, wd, counters = ch["t_s"], ch["rmse"], ch["kl"], ch["wdist"], ch["counters"]
        cc = {f"approx@{label}": _stats_arrays(rm, kl, wd)}
        ceff = lc_effects(tr, cc, p)
        fl = eff["kl_late"].get("approx")
        if fl and ceff["kl_late"][f"approx@{label}"] is not None:
            ceff["kl_late_ratio_to_float_approx"] = ceff["kl_late"][f"approx@{label}"] / fl
        if kle:
            ceff["kl_late_ratio_to_euclid"] = ceff["kl_late"][f"approx@{label}"] / kle
        # per-trial statistics (trials: independent weights, targets and spikes), paired
        # with float's approximate rule on the same trial
        chip_late = comparison.window_mean(kl, tr, window_s)
        ratio = chip_late / per_trial_late["approx"] if "approx" in per_trial_late else None
        thr = p["rmse_threshold_hz"]

        def t_first(rmse, times):          # per trial; None: never below in this run
            return [first_below(times, rmse[:, k], thr) for k in range(rmse.shape[1])]
        t_chip = t_first(rm, tr)
        t_fl = {r: t_first(np.asarray(res[r].rmse).reshape(len(t), -1), t) for r in res}
        ceff["per_trial"] = {
            "kl_late_ratio_to_float_approx": ci95(ratio) if ratio is not None else None,
            "t_rmse_below_s": {f"approx@{label}": ci95(t_chip),
                               **{r: ci95(v) for r, v in t_fl.items()}},
            "never_below_threshold": {f"approx@{label}": sum(v is None for v in t_chip),
                                      **{r: sum(v is None for v in vv) for r, vv in t_fl.items()}},
            "n_trials": int(rm.shape[1])}
        te = eff["t_rmse_below_s"].get("euclid")
        tc = ceff["t_rmse_below_s"][f"approx@{label}"]
        blame = backend_for(config).limits_text(counters_summary(counters))
        ceff["targets"] = [
            verdict(ceff.get("kl_late_ratio_to_float_approx"), 1.10, "lower",
                    "late-KL ratio to float's approximate rule", blame,
                    ci=(ceff["per_trial"]["kl_late_ratio_to_float_approx"] or {}).get("ci95")),
            {"what": "approximate rule on the chip reaches the RMSE threshold before Euclid",
             "value": tc, "euclid": te, "pass": bool(tc is not None and (te is None or tc < te))}]
        ce = merged.get("chip_euclid")
        if ce is not None:
            # Euclid and the approximate natural rule on the same chip, trial by trial
            cc[f"euclid@{label}"] = _stats_arrays(ce["rmse"], ce["kl"], ce["wdist"])
            ceff.update({k: {**ceff[k], **v} for k, v in
                         lc_effects(ce["t_s"], {f"euclid@{label}": cc[f"euclid@{label}"]},
                                    p).items()})
            euc_late = comparison.window_mean(ce["kl"], ce["t_s"], window_s)
            t_euc = t_first(ce["rmse"], ce["t_s"])
            ceff["chip_natural_vs_euclid"] = chip_rule_comparison(
                chip_late, euc_late, t_chip, t_euc, float(p["T_s"]))
            ceff["per_trial"]["t_rmse_below_s"][f"euclid@{label}"] = ci95(t_euc)
            ceff["per_trial"]["never_below_threshold"][f"euclid@{label}"] = sum(
                v is None for v in t_euc)
            cmp_ = ceff["chip_natural_vs_euclid"]
            lr, dd = (cmp_["late_kl_log_ratio_natural_over_euclid"],
                      cmp_["t_rmse_below_natural_minus_euclid_s"])
            ceff["targets"].append({
                "what": f"on {label}, the approximate natural rule beats Euclid trial by trial "
                        "(late KL lower and the RMSE threshold sooner, paired 95 % intervals)",
                "value": f"{cmp_['verdict']} (late KL natural/Euclid x{_g(cmp_['late_kl_ratio_geometric_mean'])}, "
                         f"log ratio {_g(lr['mean'])} +- {_g(lr['ci95'])}: {cmp_['late_kl']}; "
                         f"threshold time natural - Euclid {_g(dd['mean'])} +- {_g(dd['ci95'])} s: "
                         f"{cmp_['threshold_time']}; n = {cmp_['n_trials']})",
                # not resolved is neither a pass nor a fail: more trials would decide it
                "pass": {"natural wins": True, "euclid wins": False}.get(cmp_["verdict"])})
            result["counters_euclid"] = counters_summary(ce["counters"])
        ceff["all_targets_pass"] = all(t["pass"] is True for t in ceff["targets"])
        result.update(curves_config=cc, t_config_s=tr, effect_config=ceff,
                      counters=counters_summary(counters),
                      weight_range=weight_range(config, task, all_etas["approx"]),
                      max_abs_weight_task=float(max(np.abs(task.w_init).max(), np.abs(task.w_target).max())))
    return finish(result, out, "fig3f", _plot_3f, timer)


def _plot_3f(r, out):
    if out is None:
        return
    pl = plt()
    fig, axs = pl.subplots(1, 3, figsize=(15, 4.2))
    t = np.asarray(r["t_s"]) / 60.0
    for name, c in r["curves"].items():
        col, lab = RULE_STYLE[name]
        axs[0].semilogy(t, c["kl_mean"], color=col, label=lab + " (float64)")
        axs[0].fill_between(t, c["kl_min"], c["kl_max"], color=col, alpha=0.15)
        axs[1].plot(t, c["rmse_mean"], color=col, label=lab)
        axs[2].plot(t, c["wdist_mean"], color=col, label=lab)
    for name, c in r.get("curves_config", {}).items():
        tc = np.asarray(r["t_config_s"]) / 60.0
        col = "C0" if name.startswith("euclid@") else "k"      # Euclid on the chip in its blue
        axs[0].semilogy(tc, c["kl_mean"], "--", color=col, label=name)
        axs[0].fill_between(tc, c["kl_min"], c["kl_max"], color=col, alpha=0.08)
        axs[1].plot(tc, c["rmse_mean"], "--", color=col, label=name)
        axs[2].plot(tc, c["wdist_mean"], "--", color=col, label=name)
    axs[0].set_ylabel("KL cost per bin (mean, min/max band)")
    axs[0].set_title("Fig 3F / 9A: learning curves")
    axs[1].axhline(r["params"]["rmse_threshold_hz"], color="gray", lw=0.8, ls=":")
    axs[1].set_ylabel("output-rate RMSE [Hz] (Fig 9C)")
    axs[2].set_ylabel("‖w − w*‖ (Fig 9B)")
    for ax in axs:
        ax.set_xlabel("time [min]")
    axs[0].legend(fontsize=8)
    fig.tight_layout()
    save_fig(fig, out, "fig3f_learning_curves.png", r["figures"])
    pl.close(fig)


# =============================================================================== Fig 3D-E
FIG3DE_PRESETS = {
    "small": dict(n_trials=16, T_s=1000.0, record_s=10.0, probe_s=200.0, grid_step=0.06,
                  n_samples=500, sample_steps=2000, contour_n=61,
                  eta_euclid=7e-7, eta_natural=2.5e-4, eta_approx=2.5e-4 * 5.5 / 6.0,
                  rules=("euclid", "natural", "approx"), eta=None),
    "paper": dict(n_trials=500, T_s=6000.0, record_s=100.0, probe_s=200.0, grid_step=0.06,
                  n_samples=2000, sample_steps=2000, contour_n=167,
                  eta_euclid=7e-7, eta_natural=2.5e-4, eta_approx=2.5e-4 * 5.5 / 6.0,
                  rules=("euclid", "natural", "approx"), eta=None),
}
W_START = np.array([-0.15, 0.25])     # = (-0.3, 0.5)/N, docs/model.md#fig3de
W_STAR = np.array([0.075, 0.075])     # = (0.15, 0.15)/N
RATES_3DE = np.array([10.0, 50.0])


def _task_3de(K):
    return Task(rates=RATES_3DE, w_init=np.tile(W_START, (K, 1, 1)),
                w_target=np.tile(W_STAR, (K, 1, 1)))


def _fields(p, seed):
    """Mean update directions on the grid and the Poisson-KL cost surface (expected teacher)."""
    N = 2
    task1 = Task(rates=RATES_3DE, w_init=W_START.reshape(1, 1, 2), w_target=W_STAR.reshape(1, 1, 2))
    X = test_set(task1, seed, p["n_samples"], n_steps=p["sample_steps"])[0]        # (S, 2)
    S = X.shape[0]
    params = task1.params
    g = np.arange(-0.4, 0.6 - 1e-9, p["grid_step"])
    G1, G2 = np.meshgrid(g, g, indexing="xy")
    grid_w = np.stack([G1.ravel(), G2.ravel()], -1) / N                              # (G, 2)
    Vt = X @ W_STAR                                                                   # (S,)
    y = params.phi_max * sigma(Vt, params) * params.dt                                # expected teacher count
    fields = {}
    for name, fn in (("euclid", delta_euclid), ("natural", delta_natural), ("approx", delta_approx)):
        vec = np.zeros_like(grid_w)
        for i0 in range(0, grid_w.shape[0], 32):
            wg = grid_w[i0:i0 + 32]
            W = np.repeat(wg, S, axis=0)[:, None, :]
            Xr = np.tile(X, (wg.shape[0], 1))
            yr = np.tile(y, wg.shape[0])[:, None]
            d = fn(W, Xr, yr, RATES_3DE, params, eta=1.0)[:, 0, :]
            vec[i0:i0 + 32] = d.reshape(wg.shape[0], S, N).mean(1)
        fields[name] = vec

    def cost(wpts):
        V = wpts @ X.T                                                                # (P, S)
        lphi = np.log(params.phi_max) + np.log(sigma(V, params))
        lphit = np.log(params.phi_max) + np.log(sigma(Vt, params))[None]
        phi, phit = np.exp(lphi), np.exp(lphit)
        return np.mean(phit * (lphit - lphi) + phi - phit, axis=1) * params.dt

    cg = np.linspace(-0.4, 0.6, p["contour_n"])
    C1, C2 = np.meshgrid(cg, cg, indexing="xy")
    cpts = np.stack([C1.ravel(), C2.ravel()], -1) / N
    C = np.concatenate([cost(cpts[i:i + 2000]) for i in range(0, cpts.shape[0], 2000)]).reshape(C1.shape)
    # numerical -grad of the cost at the field points (central differences)
    h = 1e-6
    grad = np.zeros_like(grid_w)
    for j in range(N):
        e = np.zeros(N)
        e[j] = h
        grad[:, j] = (cost(grid_w + e) - cost(grid_w - e)) / (2 * h)
    to_target = W_STAR[None] - grid_w
    ang_nat = angle_deg(fields["natural"], to_target)
    ang_app = angle_deg(fields["approx"], to_target)
    ang_euc_t = angle_deg(fields["euclid"], to_target)
    cos_euc_grad = np.cos(np.radians(angle_deg(fields["euclid"], -grad)))
    eff = {"natural_to_target_angle_median_deg": float(np.nanmedian(ang_nat)),
           "natural_to_target_angle_max_deg": float(np.nanmax(ang_nat)),
           "approx_to_target_angle_median_deg": float(np.nanmedian(ang_app)),
           "euclid_to_target_angle_median_deg": float(np.nanmedian(ang_euc_t)),
           "euclid_cos_with_neg_grad_cost_min": float(np.nanmin(cos_euc_grad)),
           "euclid_cos_with_neg_grad_cost_median": float(np.nanmedian(cos_euc_grad))}
    return {"grid_g": g, "vectors": fields, "contour_g": cg, "cost": C}, eff


def _path_effects(t, mean_path, probe_s):
    """Displacement at ``probe_s`` from the path's own start (a fixed-point config may store
    a saturated start) and its angle to the straight line from there to w*."""
    i = int(np.argmin(np.abs(t - probe_s)))
    start = mean_path[0]
    d = mean_path[i] - start
    s = W_STAR - start
    frac = d / s
    end = mean_path[-1]
    return {"probe_s": float(t[i]), "start": start, "displacement": d, "angle_to_straight_line_deg": float(angle_deg(d, s)),
            "fraction_of_way_w1_w2": frac, "final_w": end,
            "final_distance_to_target": float(np.linalg.norm(end - W_STAR))}


def fig3de(scale: str = "small", config=None, seed: int = 0, out=None, fields: bool = True, **overrides) -> dict:
    """Fig 3D-E: mean weight paths (N = 2, 10/50 Hz) of the Euclidean, natural and approximate
    rules from w_start = (-0.15, 0.25) to w* = (0.075, 0.075), with the rules' mean update
    directions and the cost contours; with a fixed-point ``config`` also the approximate rule's
    path on that config."""
    p = preset(FIG3DE_PRESETS, scale, overrides)
    timer = Timer()
    task = _task_3de(p["n_trials"])
    steps, rec = steps_of(p["T_s"]), steps_of(p["record_s"])
    all_etas = scaled_etas(p, {r: p[f"eta_{r}"] for r in ("euclid", "natural", "approx")})
    etas = {r: all_etas[r] for r in p["rules"]}
    res = float_rules(task, etas, steps, seed, eval_every=rec, record_every=rec, batch=64)
    t = res[p["rules"][0]].t_record_s
    paths = {r: c.W_record[:, :, 0, :].mean(1) for r, c in res.items()}
    eff = {"paths": {r: _path_effects(t, paths[r], p["probe_s"]) for r in paths},
           "kl_final": {r: float(c.kl[-1].mean()) for r, c in res.items()}}
    result = {"experiment": "fig3de", "scale": scale, "seed": seed, "params": p, "config": config_label(config),
              "eta_code": etas, "eta_approx_code": all_etas["approx"],
              "w_start": W_START, "w_target": W_STAR, "rates": RATES_3DE, "t_s": t, "paths": paths,
              "effect": eff}
    if fields:
        fd, feff = _fields(p, seed)
        result["fields"] = fd
        eff.update(feff)
    label = config_label(config)
    if label is not None:
        Wr, tr, _, counters = chip_run(config, task, steps, seed, all_etas["approx"],
                                       record_every=rec)
        cpath = Wr[:, :, 0, :].mean(1)
        ce = {f"approx@{label}": _path_effects(tr, cpath, p["probe_s"])}
        fa = eff["paths"].get("approx", {}).get("angle_to_straight_line_deg")
        ca = ce[f"approx@{label}"]["angle_to_straight_line_deg"]
        ce["angle_diff_to_float_approx_deg"] = abs(ca - fa) if fa is not None else None
        ce["targets"] = [verdict(ce["angle_diff_to_float_approx_deg"], 3.0, "lower",
                                 "|angle of the chip's path - float approx's| to the straight line "
                                 "[deg]", f"see `natgrad budget --config {label}`")]
        result.update(t_config_s=tr, path_config={f"approx@{label}": cpath},
                      effect_config=ce,
                      counters=counters_summary(counters),
                      weight_range=weight_range(config, task, all_etas["approx"]))
    return finish(result, out, "fig3de", _plot_3de, timer)


def _plot_3de(r, out):
    if out is None:
        return
    pl = plt()
    N = 2
    panels = ["euclid", "natural", "approx"]
    fig, axs = pl.subplots(1, 3, figsize=(15, 5))
    for ax, name in zip(axs, panels):
        col, lab = RULE_STYLE[name]
        ax.set_title(f"Fig 3D-E: {lab}")
        if "fields" in r:
            fd = r["fields"]
            cg = fd["contour_g"]
            ax.contour(cg, cg, fd["cost"], levels=[0.001, 0.003, 0.005, 0.009, 0.015, 0.02, 0.03, 0.04],
                       colors="0.6", linewidths=0.7)
            g = fd["grid_g"]
            G1, G2 = np.meshgrid(g, g, indexing="xy")
            v = fd["vectors"][name]
            nrm = np.linalg.norm(v, axis=1, keepdims=True)
            u = v / np.where(nrm > 0, nrm, 1)
            ax.quiver(G1.ravel(), G2.ravel(), u[:, 0], u[:, 1], color=col, alpha=0.6,
                      angles="xy", scale_units="xy", scale=1 / 0.04, width=0.003)
        if name in r["paths"]:
            path = np.asarray(r["paths"][name]) * N
            ax.plot(path[:, 0], path[:, 1], color=col, lw=2.2, label=f"{lab} path (float64)")
        if name == "approx":
            for cname, cp in r.get("path_config", {}).items():
                cp = np.asarray(cp) * N
                ax.plot(cp[:, 0], cp[:, 1], "--", color="k", lw=2, label=f"{cname} path")
        ax.plot(*(W_START * N), "ko", ms=5)
        ax.plot(*(W_STAR * N), "*", color="gold", ms=14, mec="k")
        ax.set_xlim(-0.3, 0.5)
        ax.set_ylim(-0.3, 0.5)
        ax.set_aspect("equal")
        ax.set_xlabel("N·w1 (10 Hz)")
        ax.set_ylabel("N·w2 (50 Hz)")
        ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    save_fig(fig, out, "fig3de_paths_fields.png", r["figures"])
    pl.close(fig)
