"""Fig 4 (democratic plasticity) and Fig 5 (variance normalisation), docs/model.md#fig4 and #fig5.

Both are single-synapse runs with a homogeneous Poisson teacher; learning rates are given in
the paper's units (β included) and converted with :func:`emulator.reference.eta_from_paper`.
Unlike the original scripts, which froze them at the start, the coefficients are recomputed
from the current weight every step and V uses the current (somatic) weight
(docs/spec_drift.md#frozen-coefficients).
"""
from __future__ import annotations

import numpy as np

from emulator.params import NeuronParams
from emulator.reference import eta_from_paper
from emulator.rule_math import coefficients, input_q, membrane_stats
from emulator.task import Attenuation, Task

from .stats import paired, verdict
from natgrad.backends import backend_for
from .common import (Timer, finish, chip_initial, chip_run, config_label, counters_summary, float_rules, plt, preset,
                     save_fig, scaled_etas, steps_of, weight_range)

# =============================================================================== Fig 4
FIG4_PRESETS = {
    # Fig 4 is cheap: the small scale *is* the paper's protocol (one run per attenuation)
    "small": dict(inv_alphas=tuple(float(a) for a in range(1, 11)), rate=5.0, teacher_rate=20.0,
                  T_s=5.0, eta_paper=0.017, w_soma0=0.05, lambda_um=200.0, record_s=0.05,
                  examples=(3.0, 7.0), eta=None),
    "paper": dict(inv_alphas=tuple(float(a) for a in range(1, 11)), rate=5.0, teacher_rate=20.0,
                  T_s=5.0, eta_paper=0.017, w_soma0=0.05, lambda_um=200.0, record_s=0.05,
                  examples=(3.0, 7.0), eta=None),
}


def fig4(scale: str = "small", config=None, seed: int = 0, out=None, **overrides) -> dict:
    """Fig 4: one synapse at distance d = λ ln(1/α) from the soma (dendritic weight w^d, somatic
    weight α w^d), 5 Hz input, 20 Hz Poisson teacher, 5 s; identical spikes for every α.

    Natural and approximate rules (dendritic coordinates, Eq. 17): Δw^d ∝ 1/α and the somatic
    change α Δw^d is the same at every distance ("democratic plasticity").  Euclidean rule in
    dendritic coordinates (Eq. 3), learning rate matched to the natural rule's homosynaptic gain
    at α = 1: its somatic change falls as α².  With a fixed-point ``config`` the approximate rule
    runs on the config in somatic coordinates (the emulator stores somatic weights; its dendritic
    view Δw^s/α is then the same at every distance by construction).
    """
    p = preset(FIG4_PRESETS, scale, overrides)
    timer = Timer()
    params = NeuronParams()
    eta_n = eta_from_paper(p["eta_paper"], params)
    r = np.array([p["rate"]])
    ws0 = p["w_soma0"]
    m0, v0 = membrane_stats(np.array([ws0]), r, params.c_eps)
    gs0 = float(coefficients(m0, v0, input_q(r, params.c_eps), params)[0])
    eta_e = eta_n * gs0 * params.c_eps / p["rate"]
    etas = scaled_etas(p, {"natural": eta_n, "approx": eta_n, "euclid": eta_e})
    eta_n = etas["approx"]
    steps, rec = steps_of(p["T_s"]), steps_of(p["record_s"])
    inv = np.asarray(p["inv_alphas"], dtype=float)
    alpha = 1.0 / inv
    dist = p["lambda_um"] * np.log(inv)
    dwd = {k: [] for k in etas}
    traces = {}
    t_rec = None
    for ia, a in zip(inv, alpha):
        task = Task(rates=r, w_init=np.full((1, 1, 1), ws0 / a), teacher_rate=p["teacher_rate"],
                    f=Attenuation(np.array([a])))
        res = float_rules(task, etas, steps, seed, record_every=rec)
        for k, c in res.items():
            dwd[k].append(c.W[0, 0, 0] - ws0 / a)
            if ia in p["examples"]:
                traces.setdefault(k, {})[f"{ia:g}"] = c.W_record[:, 0, 0, 0]
        t_rec = res["natural"].t_record_s
    dwd = {k: np.array(v) for k, v in dwd.items()}
    dws = {k: v * alpha for k, v in dwd.items()}
    rel = {k: 100.0 * dwd[k] / (ws0 / alpha) for k in dwd}
    eff = {}
    for k in dws:
        ratio = dws[k] / dws[k][0]
        eff[k] = {"somatic_change_ratio_to_proximal": ratio,
                  "max_rel_deviation_from_flat": float(np.max(np.abs(ratio - 1.0))),
                  "loglog_slope_somatic_vs_alpha": float(np.polyfit(np.log(alpha), np.log(np.abs(dws[k])), 1)[0])}
    eff["euclid"]["predicted_ratio_alpha_squared"] = alpha ** 2
    result = {"experiment": "fig4", "scale": scale, "seed": seed, "params": p, "config": config_label(config),
              "eta_approx_code": eta_n,
              "eta_code": etas, "gamma_s0": gs0, "inv_alpha": inv, "distance_um": dist,
              "dw_dendritic": dwd, "dw_somatic": dws, "relative_change_pct": rel,
              "t_s": t_rec, "example_traces_dendritic": traces, "effect": eff}
    label = config_label(config)
    if label is not None:
        task = Task(rates=r, w_init=np.full((1, 1, 1), ws0), teacher_rate=p["teacher_rate"])
        Wr, tr, wf, counters = chip_run(config, task, steps, seed, eta_n, record_every=rec)
        w0_chip = float(Wr[0, 0, 0, 0])
        dws_chip = float(wf[0, 0, 0] - w0_chip)
        result.update(
            t_config_s=tr, trace_config_somatic={f"approx@{label}": Wr[:, 0, 0, 0]},
            effect_config={f"approx@{label}": {
                "w_soma0_on_chip": w0_chip, "dw_somatic": dws_chip,
                "dw_somatic_float_approx": float(dws["approx"][0]),
                "ratio_to_float_approx": dws_chip / float(dws["approx"][0]),
                "dw_dendritic_host_view": dws_chip / alpha}},
            counters=counters_summary(counters), weight_range=weight_range(config, task, eta_n))
    return finish(result, out, "fig4", _plot_4, timer)


STY = {"natural": ("C3", "natural"), "approx": ("C2", "approx. natural"), "euclid": ("C0", "Euclidean")}


def _plot_4(r, out):
    if out is None:
        return
    pl = plt()
    fig, axs = pl.subplots(1, 3, figsize=(15, 4.2))
    d = r["distance_um"]
    for k, (col, lab) in STY.items():
        axs[0].plot(d, r["dw_dendritic"][k], "o-", color=col, label=lab)
        axs[1].plot(d, r["dw_somatic"][k] / r["dw_somatic"][k][0], "o-" if k != "approx" else "x--",
                    color=col, label=lab)
    axs[1].plot(d, 1.0 / np.asarray(r["inv_alpha"]) ** 2, ":", color="C0", label="α² (prediction)")
    for name, ec in r.get("effect_config", {}).items():
        axs[1].text(0.35, 0.55, f"{name} (somatic weights on chip):\n"
                    f"w^s(0) = {r['params']['w_soma0']:g} stored as {ec['w_soma0_on_chip']:.4g}\n"
                    f"Δw^s = {ec['dw_somatic']:.3g} (float approx {ec['dw_somatic_float_approx']:.3g})",
                    transform=axs[1].transAxes, fontsize=8)
    axs[0].set_ylabel("Δw^d (dendritic weight change, 5 s)")
    axs[1].set_ylabel("somatic change Δw^s, relative to proximal")
    axs[0].set_title("Fig 4C: dendritic amplitude change")
    axs[1].set_title("Fig 4: democratic plasticity (somatic)")
    for ax in axs[:2]:
        ax.set_xlabel("distance from soma [µm]")
        ax.legend(fontsize=8)
    t = r["t_s"]
    for k in ("natural", "approx", "euclid"):
        col, lab = STY[k]
        for ia, tr in r["example_traces_dendritic"][k].items():
            ls = "-" if ia == f"{r['params']['examples'][0]:g}" else "--"
            axs[2].plot(t, tr, ls, color=col, label=f"{lab}, 1/α = {ia}")
    for name, tr in r.get("trace_config_somatic", {}).items():
        axs[2].plot(r["t_config_s"], np.asarray(tr) * float(r["params"]["examples"][0]), "k:",
                    label=f"{name} ×{r['params']['examples'][0]:g} (somatic→dendritic)")
    axs[2].set_xlabel("time [s]")
    axs[2].set_ylabel("dendritic weight w^d")
    axs[2].set_title("Fig 4B: example traces")
    axs[2].legend(fontsize=7)
    fig.tight_layout()
    save_fig(fig, out, "fig4_democratic_plasticity.png", r["figures"])
    pl.close(fig)


# =============================================================================== Fig 5
FIG5_PRESETS = {
    "small": dict(tau_s_ms=(1.0, 3.0, 5.0, 8.0, 15.0, 20.0), tau_rate=10.0,
                  rates=(10.0, 20.0, 30.0, 40.0, 50.0), rate_tau_s_ms=20.0, teacher_rate=80.0,
                  T_s=5.0, eta_paper=1e-4, w0=0.01, n_seeds=32, eta=None),
    # the paper: one run per condition (32 seeds when a chip config is compared)
    "paper": dict(tau_s_ms=(1.0, 3.0, 5.0, 8.0, 15.0, 20.0), tau_rate=10.0,
                  rates=(10.0, 20.0, 30.0, 40.0, 50.0), rate_tau_s_ms=20.0, teacher_rate=80.0,
                  T_s=5.0, eta_paper=1e-4, w0=0.01, n_seeds=1, config_seeds=32, eta=None),
}


def fig5(scale: str = "small", config=None, seed: int = 0, out=None, **overrides) -> dict:
    """Fig 5: relative weight change of one synapse (80 Hz Poisson teacher, 5 s) against the USP
    standard deviation, varying τ_s at 10 Hz and the rate at τ_s = 20 ms.

    The paper normalises the kernel by ε0 = 1/r (mean USP 1 mV for every rate, variance
    σ² = ∫ε²/r).  That run is exactly the standard somatic rule with weight w/r: m, v, q,
    γ_s, γ_u/r and γ_w coincide, so we run the standard rule from w_s(0) = w0/r and report the
    relative change (coordinate-free).  The natural rule's change follows q/(1+q) = 1/(1+σ²)
    (σ in mV, mean 1 mV): ∝ 1/σ² for σ² ≫ 1; its homosynaptic gain c_ε/r is exactly 1/σ².
    Runs with the same seed share spikes across τ_s at equal rate (as in the paper).
    """
    p = preset(FIG5_PRESETS, scale, overrides)
    timer = Timer()
    eta = scaled_etas(p, {"approx": eta_from_paper(p["eta_paper"])})["approx"]
    conds = [("tau_s", p["tau_rate"], ts) for ts in p["tau_s_ms"]] + \
            [("rate", r, p["rate_tau_s_ms"]) for r in p["rates"]]
    steps = steps_of(p["T_s"])
    label = config_label(config)
    rows = []
    counters_all = {}
    for sweep, r, ts in conds:
        # the kernel is symmetric in (τ_m, τ_s): τ_s > τ_m = 10 ms runs as τ_m' = τ_s, τ_s' = τ_m
        tm, tsyn = max(0.010, ts * 1e-3), min(0.010, ts * 1e-3)
        params = NeuronParams(tau_m=tm, tau_s=tsyn)
        var = params.int_eps_sq / r                     # USP variance with eps0 = 1/r [mV^2]
        task = Task(rates=np.array([r]), w_init=np.full((1, 1, 1), p["w0"] / r),
                    teacher_rate=p["teacher_rate"], params=params)
        ch = {"natural": [], "approx": [], "chip": []}
        n_seeds = max(p["n_seeds"], p.get("config_seeds", 0)) if label is not None else p["n_seeds"]
        for s in range(n_seeds):
            res = float_rules(task, {"natural": eta, "approx": eta}, steps, seed + s)
            for k in ("natural", "approx"):
                ch[k].append(100.0 * (res[k].W[0, 0, 0] / task.w_init[0, 0, 0] - 1.0))
            if label is not None:
                Wr, _, wf, counters = chip_run(config, task, steps, seed + s, eta, record_every=None)
                w0c = float(chip_initial(config, task.w_init, task, eta)[0, 0, 0])
                ch["chip"].append(100.0 * (wf[0, 0, 0] / w0c - 1.0) if w0c != 0 else float("nan"))
                for var_, c in counters_summary(counters).items():
                    for kk, vv in c.items():
                        counters_all.setdefault(var_, {}).setdefault(kk, 0)
                        counters_all[var_][kk] += vv
        row = {"sweep": sweep, "rate_hz": r, "tau_s_ms": ts, "usp_var_mv2": var, "usp_sd_mv": np.sqrt(var),
               "q": params.c_eps * r, "w_soma0": p["w0"] / r,
               "natural_pct": float(np.mean(ch["natural"])), "natural_pct_seeds": ch["natural"],
               "approx_pct": float(np.mean(ch["approx"])), "approx_pct_seeds": ch["approx"]}
        if label is not None:
            row["config_pct"] = float(np.mean(ch["chip"]))
            row["config_pct_seeds"] = ch["chip"]
        rows.append(row)
    var = np.array([rw["usp_var_mv2"] for rw in rows])
    eff = {}
    keys = ["natural", "approx"] + (["config"] if label is not None else [])
    for k in keys:
        y = np.array([rw[f"{k}_pct"] for rw in rows])
        e = {}
        for sweep in ("tau_s", "rate"):
            sel = np.array([rw["sweep"] == sweep for rw in rows])
            order = np.argsort(var[sel])
            ys = y[sel][order]
            e[f"monotone_decreasing_in_variance_{sweep}"] = bool(np.all(np.diff(ys) < 0))
        pos = y > 0
        e["loglog_slope_vs_variance"] = float(np.polyfit(np.log(var[pos]), np.log(y[pos]), 1)[0]) if pos.sum() > 1 else None
        prod1 = y * (1.0 + var)
        prodv = y * var
        e["cv_change_times_1_plus_var"] = float(np.std(prod1) / abs(np.mean(prod1)))
        e["cv_change_times_var"] = float(np.std(prodv) / abs(np.mean(prodv)))
        e["change_ratio_lowest_to_highest_variance"] = float(y[np.argmin(var)] / y[np.argmax(var)])
        e["variance_ratio_highest_to_lowest"] = float(var.max() / var.min())
        eff[k] = e
    result = {"experiment": "fig5", "scale": scale, "seed": seed, "params": p, "config": label,
              "eta_approx_code": eta,
              "eta_code": eta, "conditions": rows, "effect": eff}
    if label is not None:
        lsb = backend_for(config).weight_lsb(task, eta)
        chip = np.array([rw["config_pct_seeds"] for rw in rows]).T       # (seeds, conditions)
        ref = np.array([rw["approx_pct_seeds"] for rw in rows]).T
        pair = paired(chip, ref)
        blame = (f"weight resolution: the initial weights are {p['w0'] / max(p['rates']):.3g}.."
                 f"{p['w0'] / min(p['rates'] + (p['tau_rate'],)):.3g} against an LSB of {lsb:.3g}; "
                 f"see `natgrad budget --config {label}`")
        tgt = verdict(pair["ratio_per_seed_rms_to_float_sd"], 1.5, "lower",
                      "paired RMS difference / float's seed-to-seed sd", blame)
        result.update(counters=counters_all, weight_range=weight_range(config, task, eta),
                      weight_lsb=lsb, effect_config_paired={"paired": pair, "targets": [tgt],
                                                            "all_targets_pass": tgt["pass"]})
    return finish(result, out, "fig5", _plot_5, timer)


def _plot_5(r, out):
    if out is None:
        return
    pl = plt()
    rows = r["conditions"]
    fig, axs = pl.subplots(1, 2, figsize=(11, 4.2))
    keys = [("natural", "C3", "natural (float64)"), ("approx", "C2", "approx. natural (float64)")]
    if r["config"]:
        keys.append(("config", "k", f"approx. natural ({r['config']})"))
    for sweep, mk in (("tau_s", "o"), ("rate", "s")):
        sel = [rw for rw in rows if rw["sweep"] == sweep]
        sd = np.array([rw["usp_sd_mv"] for rw in sel])
        for k, col, lab in keys:
            y = np.array([rw[f"{k}_pct"] for rw in sel])
            axs[0].plot(sd, y, mk + "-", color=col, label=f"{lab}, vary {'τ_s' if sweep == 'tau_s' else 'rate'}")
    var = np.array([rw["usp_var_mv2"] for rw in rows])
    vv = np.linspace(var.min(), var.max(), 100)
    for k, col, lab in keys:
        y = np.array([rw[f"{k}_pct"] for rw in rows])
        ok = np.isfinite(y) & (y != 0)
        if not ok.any():
            continue
        axs[1].loglog(var[ok], np.abs(y[ok]), "o", color=col, label=lab)
        if k == "natural":
            scale = np.exp(np.mean(np.log(np.abs(y[ok]) * (1 + var[ok]))))
            axs[1].loglog(vv, scale / (1 + vv), ":", color=col, label="∝ 1/(1+σ²)")
        scale = np.exp(np.mean(np.log(np.abs(y[ok]) * var[ok])))
        axs[1].loglog(vv, scale / vv, "--", color=col, lw=0.7, label="∝ 1/σ²")
    axs[0].set_xlabel("USP s.d. σ [mV]")
    axs[0].set_ylabel("weight change after 5 s [%]")
    axs[0].set_title("Fig 5: variance normalisation")
    axs[0].legend(fontsize=7)
    axs[1].set_xlabel("USP variance σ² [mV²]")
    axs[1].set_ylabel("|weight change| [%]")
    axs[1].legend(fontsize=7)
    fig.tight_layout()
    save_fig(fig, out, "fig5_variance.png", r["figures"])
    pl.close(fig)
