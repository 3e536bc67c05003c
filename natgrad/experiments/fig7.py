"""Fig 7B-G: homo- and heterosynaptic plasticity maps and the three sign regimes (docs/model.md#fig7).

Ten synapses, five stimulated by independent 5-Hz Poisson trains and five unstimulated, a 20-Hz
Poisson teacher, θ = 15 mV, η = 1e-3 (paper units), 60 s.  Stimulated weights all start at
w_st/10, unstimulated at w_ust/10; the metric is the relative change of the group mean.

The unstimulated afferents get rate 0 (the ε → 0 limit of the code's ε = 1e-4 Hz, which only
entered q, m and v: its effect there is < 1e-3 relative).  Then neither V nor the coefficients
depend on the unstimulated weights, and each unstimulated weight obeys the linear recurrence
w ← (1 + P γ_w) w − P γ_u (P = η γ_s (1−σ) e): w_ust(T) = A w_ust(0) + B with (A, B) from one
stimulated trajectory.  So one compiled trajectory per stimulated weight gives a whole row of
the map exactly; all cells share input and teacher spikes (the paper's cells drew their own).
Coefficients are recomputed every step (as the original Fig 7E-G script; its heat-map
script froze them, docs/spec_drift.md#frozen-coefficients).
"""
from __future__ import annotations

import numba
import numpy as np

from emulator.drive import drive
from emulator.params import NeuronParams
from emulator.reference import eta_from_paper, simulate
from emulator.rule_math import (g_matrix_scalar, homosynaptic_factor, input_q,
                                membrane_stats_row, moments_scalar, natural_terms_scalar,
                                sig_pair)
from emulator.spikes import SpikeSource
from emulator.task import Task

from .common import (Timer, _status, finish, chip_initial, chip_run, config_label, counters_summary, plt, preset, save_fig,
                     scaled_etas, steps_of, weight_range)
from .stats import paired, verdict

FIG7_PRESETS = {
    "small": dict(n_grid=24, w_lo=1.04, w_hi=5.0, T_s=60.0, eta_paper=1e-3, rate=5.0, n_stim=5,
                  n_unstim=5, teacher_rate=20.0, theta=15.0, record_s=1.0,
                  examples=((1.6, 1.6), (2.5, 2.5), (4.5, 4.5)), config_grid=4, config_seeds=32,
                  eta=None),
    # the paper's 600 x 600 grid on [0.25, 5] (plotted from index 100, i.e. [1.04, 5])
    "paper": dict(n_grid=600, w_lo=0.25, w_hi=5.0, T_s=60.0, eta_paper=1e-3, rate=5.0, n_stim=5,
                  n_unstim=5, teacher_rate=20.0, theta=15.0, record_s=1.0,
                  examples=((1.6, 1.6), (2.5, 2.5), (4.5, 4.5)), config_grid=24, config_seeds=32,
                  eta=None),
}
REGIMES = {(1, -1): "O1", (-1, 1): "O2", (-1, -1): "S", (1, 1): "same+"}


@numba.njit(cache=True, nogil=True)
def _fig7_chunk(W, A, B, x, y, rates, homo, ceps, q, beta, theta, phidt, Acoef, eta):
    """Natural rule on R rows of stimulated weights W (R, Ns) sharing USPs x (n, Ns) [mV] and
    teacher y (n,); rates (Ns,) [Hz], homo (Ns,) = c_eps / r_i [s²]; A, B (R,) carry the
    unstimulated recurrence w <- (1 + P gw) w - P gu."""
    n, Ns = x.shape
    R = W.shape[0]
    for t in range(n):
        S = 0.0
        for i in range(Ns):
            S += x[t, i]
        for j in range(R):
            V = 0.0
            for i in range(Ns):
                V += W[j, i] * x[t, i]
            mm, vv = membrane_stats_row(W[j], rates, ceps)
            s, c = sig_pair(beta * (V - theta))
            I1, c2, c3 = moments_scalar(mm, vv, beta, theta, Acoef, 3)
            g1, g2, g3, g4 = g_matrix_scalar(I1, c2, c3, mm, vv, q)
            gu, gw = natural_terms_scalar(ceps, S, V, g1, g2, g3, g4)
            P = eta * c * (y[t] - phidt * s) / I1
            for i in range(Ns):
                W[j, i] += P * (homo[i] * x[t, i] - gu + gw * W[j, i])
            A[j] *= 1.0 + P * gw
            B[j] = B[j] * (1.0 + P * gw) - P * gu


def fig7_eta(p: dict, params: NeuronParams) -> float:
    """The learning rate (code units) of Fig 7's natural and approximate rules: the paper's
    ``eta_paper``, or ``natgrad experiment --eta``."""
    return scaled_etas(p, {"approx": eta_from_paper(p["eta_paper"], params)})["approx"]


def stim_unstim_changes(w_st, w_ust, p: dict, seed: int, record_every: int | None = None):
    """Relative changes [%] of the stimulated / unstimulated group means on the grid
    w_st (R,) x w_ust (C,) (both in units of 10 x per-synapse weight).

    Returns (d_st (R,), d_ust (R, C), traces) where traces = (t_s, mean w_st (T, R), A (T, R),
    B (T, R)) when ``record_every`` is given.
    """
    params = NeuronParams(theta=p["theta"])
    ntot = p["n_stim"] + p["n_unstim"]
    eta = fig7_eta(p, params)
    src_task = Task(rates=np.full(p["n_stim"], p["rate"]), w_init=np.zeros((1, 1, p["n_stim"])),
                    teacher_rate=p["teacher_rate"], params=params)
    src = SpikeSource(src_task, seed)
    w_st = np.asarray(w_st, dtype=float)
    W = np.repeat((w_st / ntot)[:, None], p["n_stim"], axis=1)
    A = np.ones(w_st.size)
    B = np.zeros(w_st.size)
    steps = steps_of(p["T_s"])
    eng = _Fig7Rows(W, A, B, np.full(p["n_stim"], float(p["rate"])), params, eta,
                    bool(record_every))
    what = (f"fig7: {w_st.size} rows of the (w_st, w_ust) grid" if record_every is None
            else f"fig7: {w_st.size} example traces")

    def status(done):                  # before each chunk, as the chunk starts
        if done < steps:
            _status(f"{what}, natural rule, step {done} of {steps} "
                    f"({100 * done // steps} %)")
    status(0)
    drive(eng, src, steps, record_every or 2000, fused=False, progress=status)
    w0 = w_st / ntot
    d_st = 100.0 * (W.mean(1) / w0 - 1.0)
    wu0 = np.asarray(w_ust, dtype=float) / ntot
    d_ust = 100.0 * ((A[:, None] * wu0[None, :] + B[:, None]) / wu0[None, :] - 1.0)
    traces = tuple(np.array(a) for a in eng.rec) if record_every else None
    return d_st, d_ust, traces


class _Fig7Rows:
    """The stimulated trajectories of Fig 7 (one per grid row) and their unstimulated
    recurrence (A, B) as an engine of :func:`emulator.drive.drive`: ``W`` (R, n_stim), ``A``
    and ``B`` (R,) are advanced in place over each chunk of input spikes (with their USP),
    and, with ``record``, their group means are snapshot after every chunk."""

    def __init__(self, W, A, B, rates, params, eta, record):
        self.W, self.A, self.B, self.rates, self.params, self.eta = W, A, B, rates, params, eta
        self.homo = homosynaptic_factor(rates, params.c_eps)
        self.q = input_q(rates, params.c_eps)
        self.rec = ([0.0], [W.mean(1).copy()], [A.copy()], [B.copy()]) if record else None

    def spike_kwargs(self, n, done):
        return {"return_usp": True}

    def chunk(self, spikes, done, rows):
        _, Y, x = spikes
        pr = self.params
        _fig7_chunk(self.W, self.A, self.B, np.ascontiguousarray(x[:, 0, :]),
                    Y[:, 0, 0].astype(np.float64), self.rates, self.homo, pr.c_eps, self.q,
                    pr.beta, pr.theta, pr.phi_max * pr.dt, pr.phi_max * pr.beta ** 2, self.eta)

    def chunk_end(self, done):
        if self.rec is not None:
            for series, value in zip(self.rec, (done * self.params.dt, self.W.mean(1),
                                                self.A, self.B)):
                series.append(np.copy(value))


def classify(d_st, d_ust):
    """Regime label of a (stimulated, unstimulated) change pair."""
    return REGIMES[(int(np.sign(d_st)) or 1, int(np.sign(d_ust)) or 1)]


def fig7(scale: str = "small", config=None, seed: int = 0, out=None, **overrides) -> dict:
    """Fig 7B-G: stimulated and unstimulated relative weight changes after 60 s on the
    (w_st, w_ust) grid, the sign map (same vs opposite), the three regimes O1 (+,-), O2 (-,+),
    S (-,-) at the example points and their traces.  With a fixed-point ``config`` the
    approximate rule runs on a coarse grid of cells on that config (and in float64 on the same
    spikes; here each cell has its own teacher train) and the sign maps are compared."""
    p = preset(FIG7_PRESETS, scale, overrides)
    timer = Timer()
    g = np.linspace(p["w_lo"], p["w_hi"], p["n_grid"])
    d_st, d_ust, _ = stim_unstim_changes(g, g, p, seed)
    ex = np.array(p["examples"], dtype=float)
    e_st, e_ustfull, tr = stim_unstim_changes(ex[:, 0], ex[:, 1], p, seed,
                                              record_every=steps_of(p["record_s"]))
    e_ust = np.diag(e_ustfull)
    ntot = p["n_stim"] + p["n_unstim"]
    t_s, wst_t, A_t, B_t = tr
    ust_t = A_t * (ex[None, :, 1] / ntot) + B_t
    examples = [{"w_st": float(a), "w_ust": float(b), "d_st_pct": float(s), "d_ust_pct": float(u),
                 "regime": classify(s, u)} for (a, b), s, u in zip(ex, e_st, e_ust)]
    opposite = np.sign(d_st)[:, None] * np.sign(d_ust) < 0
    same_neg = (d_st[:, None] < 0) & (d_ust < 0)
    eff = {"examples": examples,
           "regimes": [e["regime"] for e in examples],
           "stim_sign_switch_w_st": _zero_crossing(g, d_st),
           "fraction_opposite_sign": float(opposite.mean()),
           "fraction_S_regime": float(same_neg.mean()),
           "S_corner_min_w": _corner(g, same_neg)}
    result = {"experiment": "fig7", "scale": scale, "seed": seed, "params": p, "config": config_label(config),
              "eta_approx_code": fig7_eta(p, NeuronParams(theta=p["theta"])),
              "grid_w": g, "d_stim_pct": d_st, "d_unstim_pct": d_ust,
              "sign_map_opposite": opposite, "example_t_s": t_s,
              "example_stim_mean_w": wst_t * ntot, "example_unstim_mean_w": ust_t * ntot, "effect": eff}
    label = config_label(config)
    if label is not None:
        result.update(_fig7_config(p, config, seed, label))
    return finish(result, out, "fig7", _plot_7, timer)


def _zero_crossing(g, y):
    s = np.nonzero(np.diff(np.sign(y)) != 0)[0]
    if not s.size:
        return None
    i = s[0]
    return float(g[i] - y[i] * (g[i + 1] - g[i]) / (y[i + 1] - y[i]))


def _corner(g, mask):
    """Smallest w such that the S regime holds for all w_st, w_ust >= w inside the grid (None if
    the top-right cell is not S)."""
    if not mask[-1, -1]:
        return None
    best = None
    for k in range(len(g) - 1, -1, -1):
        if mask[k:, k:].all():
            best = float(g[k])
        else:
            break
    return best


def _fig7_config(p, cfg, seed, label):
    """Approximate rule on ``cfg`` and in float64 (same spikes, per-cell teachers)."""
    params = NeuronParams(theta=p["theta"])
    ntot = p["n_stim"] + p["n_unstim"]
    g = np.linspace(p["w_lo"], p["w_hi"], p["config_grid"])
    Gs, Gu = np.meshgrid(g, g, indexing="ij")
    cells = [(a, b) for a, b in zip(Gs.ravel(), Gu.ravel())] + [tuple(e) for e in p["examples"]]
    cells = np.array(cells, dtype=float)
    M = cells.shape[0]
    w0 = np.concatenate([np.repeat(cells[:, :1] / ntot, p["n_stim"], 1),
                         np.repeat(cells[:, 1:] / ntot, p["n_unstim"], 1)], axis=1)[None]
    rates = np.concatenate([np.full(p["n_stim"], p["rate"]), np.zeros(p["n_unstim"])])
    task = Task(rates=rates, w_init=w0, teacher_rate=p["teacher_rate"], params=params)
    eta = fig7_eta(p, params)
    steps = steps_of(p["T_s"])
    top = weight_range(cfg, task, eta)
    w0c = chip_initial(cfg, w0[0], task, eta)   # initial weights as stored (saturated)

    def rel(W, W0):
        st = 100.0 * (W[:, :p["n_stim"]].mean(1) / W0[:, :p["n_stim"]].mean(1) - 1.0)
        us = 100.0 * (W[:, p["n_stim"]:].mean(1) / W0[:, p["n_stim"]:].mean(1) - 1.0)
        return st, us

    # float64 and the chip on identical spikes, seed by seed: paired statistics can fail
    fst, fus, cst, cus, counters = [], [], [], [], {}
    for s in range(p["config_seeds"]):
        _status(f"fig7 on {cfg.name}: seed {s + 1} of {p['config_seeds']}, {M} cells, float64")
        fl = simulate(task, "approx", eta, steps, seed + s).W[0]
        _, _, wf, cnt = chip_run(cfg, task, steps, seed + s, eta)
        a, b = rel(fl, w0[0])
        c, d = rel(wf[0], w0c)
        fst.append(a), fus.append(b), cst.append(c), cus.append(d)
        for var, cc in counters_summary(cnt).items():
            for k, v in cc.items():
                counters.setdefault(var, {}).setdefault(k, 0)
                counters[var][k] += v
    fst, fus, cst, cus = (np.array(x) for x in (fst, fus, cst, cus))   # (seeds, cells)
    n = p["config_grid"] ** 2
    pair = paired(np.concatenate([cst, cus], 1), np.concatenate([fst, fus], 1))
    sat0 = float(np.mean(np.abs(w0[0]) > top))
    blame = ("weight range: initial weights beyond the chip's format" if sat0 > 0 else
             "see `natgrad budget --config " + label + "` for the costliest quantizer")
    targets = [verdict(pair["correlation"], 0.85, "higher", "correlation with float's cells", blame),
               verdict(pair["rms_mean_difference"], 3.0, "lower", "RMS difference [%-points]", blame),
               verdict(pair["sign_agreement_resolved"], 0.95, "higher",
                       "sign agreement on cells resolved in float", blame)]
    mfs, mfu, mcs, mcu = fst.mean(0), fus.mean(0), cst.mean(0), cus.mean(0)
    sign_agree = (np.sign(mfs) == np.sign(mcs)) & (np.sign(mfu) == np.sign(mcu))
    ex = [{"w_st": float(a), "w_ust": float(b),
           "float_approx": [float(mfs[i]), float(mfu[i]), classify(mfs[i], mfu[i])],
           f"approx@{label}": [float(mcs[i]), float(mcu[i]), classify(mcs[i], mcu[i])]}
          for i, (a, b) in zip(range(n, len(cells)), cells[n:])]
    return {"config_grid_w": g, "config_cells": cells,
            "float_approx_d_stim_pct": mfs, "float_approx_d_unstim_pct": mfu,
            "config_d_stim_pct": mcs, "config_d_unstim_pct": mcu,
            "float_approx_d_stim_pct_per_seed": fst, "float_approx_d_unstim_pct_per_seed": fus,
            "config_d_stim_pct_per_seed": cst, "config_d_unstim_pct_per_seed": cus,
            "effect_config": {"examples": ex, "paired": pair, "targets": targets,
                              "all_targets_pass": all(t["pass"] for t in targets),
                              "fraction_cells_same_signs_as_float_approx": float(sign_agree.mean()),
                              "initial_weight_saturated_fraction": sat0,
                              "max_initial_weight": float(np.abs(w0).max())},
            "counters": counters, "weight_range": top}


def _plot_7(r, out):
    if out is None:
        return
    pl = plt()
    from matplotlib.colors import ListedColormap, TwoSlopeNorm
    g = np.asarray(r["grid_w"])
    ncol = 4 if "config_d_stim_pct" not in r else 5
    fig, axs = pl.subplots(1, ncol, figsize=(4.6 * ncol, 4.3))
    ext = [g[0], g[-1], g[0], g[-1]]
    dst = np.repeat(np.asarray(r["d_stim_pct"])[None, :], len(g), 0)       # rows: w_ust, cols: w_st
    dus = np.asarray(r["d_unstim_pct"]).T
    for ax, data, title in ((axs[0], dst, "Fig 7B: stimulated [%]"), (axs[1], dus, "Fig 7C: unstimulated [%]")):
        lim = float(np.nanmax(np.abs(data))) or 1.0
        im = ax.imshow(data, origin="lower", extent=ext, cmap="seismic_r", norm=TwoSlopeNorm(0, -lim, lim),
                       aspect="auto")
        fig.colorbar(im, ax=ax)
        ax.set_title(title)
    axs[2].imshow(np.asarray(r["sign_map_opposite"]).T, origin="lower", extent=ext, aspect="auto",
                  cmap=ListedColormap(["darkgreen", "lightgreen"]), vmin=0, vmax=1)
    axs[2].set_title("Fig 7D: light = opposite signs")
    for ax in axs[:3]:
        ax.set_xlabel("w_st (10 × weight)")
        ax.set_ylabel("w_ust (10 × weight)")
        for e in r["effect"]["examples"]:
            ax.plot(e["w_st"], e["w_ust"], "k^", ms=7)
            ax.annotate(e["regime"], (e["w_st"], e["w_ust"]), xytext=(4, 4), textcoords="offset points")
    t = r["example_t_s"]
    for i, e in enumerate(r["effect"]["examples"]):
        st = np.asarray(r["example_stim_mean_w"])[:, i]
        us = np.asarray(r["example_unstim_mean_w"])[:, i]
        axs[3].plot(t, 100 * (st / st[0] - 1), color=f"C{i}", label=f"stim ({e['w_st']:g}, {e['w_ust']:g}) {e['regime']}")
        axs[3].plot(t, 100 * (us / us[0] - 1), "--", color=f"C{i}", label="unstim")
    axs[3].set_xlabel("time [s]")
    axs[3].set_ylabel("mean weight change [%]")
    axs[3].set_title("Fig 7E-G: example traces")
    axs[3].legend(fontsize=7)
    if ncol == 5:
        ax = axs[4]
        n = len(r["config_grid_w"]) ** 2
        cells = np.asarray(r["config_cells"])[:n]
        for key, mk, cols, lab in (("float_approx", "o", ("lightgreen", "darkgreen"), "float64"),
                                   ("config", "x", ("orange", "k"), r["config"])):
            st = np.asarray(r[f"{key}_d_stim_pct"])[:n]
            us = np.asarray(r[f"{key}_d_unstim_pct"])[:n]
            opp = np.sign(st) * np.sign(us) < 0
            ax.scatter(cells[:, 0], cells[:, 1], c=np.where(opp, *cols), marker=mk,
                       s=110 if mk == "o" else 40, label=f"approx, {lab} ({cols[0]} = opposite)")
        ax.set_title("approx rule: sign maps, float64 vs config")
        ax.set_xlabel("w_st (10 × weight)")
        ax.set_ylabel("w_ust (10 × weight)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_fig(fig, out, "fig7_homo_hetero.png", r["figures"])
    pl.close(fig)
