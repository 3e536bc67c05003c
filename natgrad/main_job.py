"""``natgrad run``: float reference against the integer emulator on identical spikes.

Runs the Fig 3 teacher-student task (SPEC §1.5, §3.1: N = 100 afferents at 10/50 Hz,
w, w* ~ U(-1, 1)/N) with
* the float64 approximate rule (the reference),
* the same rule on the integer emulator of the chosen hardware config,
* the float64 Euclidean rule, for context,
all on the same input and teacher spikes, plus a short Lava cross-check of the fixed-point
process.  Prints the learning curves; with ``out`` it also writes the quantization report
(``report.md``, ``report.html``, ``report.json`` and PNG figures).
"""
from __future__ import annotations

import base64
import html
import json
import math
import platform
import time
from pathlib import Path

import numpy as np

from emulator import metrics
from emulator import runner as R
from emulator.hwconfig import HwConfig
from emulator.reference import ETA_CODE, simulate
from emulator.task import fig3_task
from emulator.variables import RECORD_VARIABLE
from natgrad.formats import variable_format
from natgrad.progress import Progress

N_AFFERENTS = 100
#: Trial-steps per emulator chunk.  The integer kernels hold the GIL while a chunk runs,
#: so a Ctrl-C is handled only between chunks: about a second of work at most.  (The
#: chunk size changes no bit of the results.)
CHUNK_TRIAL_STEPS = 100_000


def chunk_steps(trials: int) -> int:
    """Time steps per emulator chunk for ``trials`` trials (see CHUNK_TRIAL_STEPS)."""
    return max(50, min(4000, CHUNK_TRIAL_STEPS // max(1, int(trials))))
#: recorded quantities -> their datapath variable (emulator.variables)
REPORT_VARS = RECORD_VARIABLE


def _lava_crosscheck(cfg: HwConfig, task, seed: int, steps: int) -> dict:
    """Run trial 0 under Lava (path 2 for a learning-engine config, the fixed_pt process of
    path 1 for a datapath config) and compare with the emulator bit for bit."""
    if steps == 0 or cfg.is_float:
        return {"lava_bit_exact": None, "steps": 0,
                "detail": "skipped (--lava-steps 0)" if steps == 0
                else "float config: no fixed-point process"}
    emu = R.run(cfg, task, steps, seed, trials=[0])
    if cfg.is_learning_engine:        # path 2: LearningDense + the learning neuron
        import lava_procs
        lava = lava_procs.run(cfg, task, steps, seed, trial=0)
        nv, ne = lava.state["neuron"], emu.state.neuron
        pairs = {"weights": (lava.w_int, emu.w_int),
                 "trace_x1": (lava.state["x1"], emu.state.x_traces[0, 0]),
                 "trace_x2": (lava.state["x2"], emu.state.x_traces[0, 1]),
                 "potential": (nv["v"], ne.v[0]), "gamma_s": (nv["gamma"], ne.gamma[0]),
                 "counters": (lava.counters, emu.counters)}
        return _compare(pairs, steps)
    from lava_procs import run_lava
    lava = run_lava(cfg, task, steps, seed, tag="fixed_pt", trial=0)
    st = emu.state
    pairs = {"weights": (lava["w_int"], emu.w_int[0]), "trace_m": (lava["vars"]["a_m"], st.a_m[0]),
             "trace_s": (lava["vars"]["a_s"], st.a_s[0]), "potential": (lava["vars"]["v"], st.v[0]),
             "output_spikes": (lava["n_spikes"], emu.output_spikes[0]),
             "counters": (lava["vars"]["counts"], st.counts)}
    return _compare(pairs, steps)


def _compare(pairs: dict, steps: int) -> dict:
    differ = [name for name, (a, b) in pairs.items()
              if not (a == b if isinstance(a, dict) else np.array_equal(a, b))]
    return {"lava_bit_exact": not differ, "steps": steps, "trial": 0,
            "compared": sorted(pairs), "differ": differ,
            "detail": "equal: " + ", ".join(sorted(pairs)) if not differ
            else "differ: " + ", ".join(differ)}


def _variable_table(cfg, fl, fx) -> dict:
    """Per-variable error statistics in LSB of the fixed format, plus range use."""
    out = {}
    for name, var in REPORT_VARS.items():
        f = variable_format(cfg, var)
        a, b = fl.record.get(name), fx.record.get(name)
        if a is None or b is None or a.size == 0:
            continue
        err = (b - a) / f["lsb"]
        peak = float(np.max(np.abs(a)))
        top = max(abs(f["lo"]), abs(f["hi"]))
        counters = fx.counters.get(var, {})
        out[name] = {
            "format": f"{'S' if f['signed'] else 'U'}{f['bits']}.{f['frac']}",
            "lsb": f["lsb"],
            "rmse_lsb": float(np.sqrt(np.mean(err**2))),
            "mean_err_lsb": float(np.mean(err)),
            "max_abs_err_lsb": float(np.max(np.abs(err))),
            "float_min": float(np.min(a)), "float_max": float(np.max(a)),
            "range_lo": f["lo"], "range_hi": f["hi"],
            "headroom_bits": float(math.log2(top / peak)) if peak > 0 else None,
            "overflow": int(counters.get("overflow", 0)),
            "saturation": int(counters.get("saturation", 0)),
            "underflow": int(counters.get("underflow", 0)),
            "first_step": counters.get("first_step", {}),
        }
    return out


def run_main_job(cfg: HwConfig, steps: int, seed: int, trials: int = 4, out: Path | None = None,
                 lava_steps: int = 200, progress: bool = True) -> dict:
    """Run the default job and return the report dictionary (also written when ``out``)."""
    t_start = time.time()
    task = fig3_task(n_trials=trials, N=N_AFFERENTS, seed=seed)
    eval_every = max(1, steps // 40) if steps else 1
    rec_every = eval_every
    x_test = metrics.test_set(task, seed)
    bar = Progress(3 * steps + 1, progress, prefix="natgrad run")
    bar.stage("float64 reference, integer emulator, Euclidean rule")
    print(f"natgrad run: config {cfg.name}, {steps} steps ({steps * task.params.dt:g} s), "
          f"{trials} trials, N = {N_AFFERENTS}, seed {seed}")

    rec = tuple(REPORT_VARS)
    chunk = chunk_steps(trials)
    fl = R.run("float64", task, steps, seed, record=rec, record_every=rec_every, chunk_steps=chunk,
               progress=lambda d: bar(d, "float64 approx"))
    if cfg.is_learning_engine:        # the engine model records the weights only
        rec = R.LE_RECORDABLE
    fx = R.run(cfg, task, steps, seed, record=rec, record_every=rec_every, chunk_steps=chunk,
               progress=lambda d: bar(steps + d, f"{cfg.name} emulator"))
    bar(2 * steps, "float64 Euclidean")
    eu = simulate(task, "euclid", ETA_CODE["euclid"], steps, seed, record_every=eval_every,
                  eval_every=eval_every)
    bar(3 * steps, "float64 Euclidean")
    n_lava = min(lava_steps, steps)
    if n_lava and not cfg.is_float:
        bar.stage(f"Lava cross-check ({n_lava} steps)")
    cross = _lava_crosscheck(cfg, task, seed, n_lava)
    bar(3 * steps + 1, "done")
    bar.close()

    def curve(w_rec):
        w_all = np.concatenate([task.w_init[None], w_rec])
        return np.array([metrics.rate_rmse_hz(w, task.w_target, x_test, task.params).mean()
                         for w in w_all])

    t_s = np.concatenate([[0.0], fl.record_t_s])
    c_float = curve(fl.record["weights"])
    c_fixed = curve(fx.record["weights"]) if not cfg.is_float else c_float
    c_euclid = eu.rmse.mean(axis=(1, 2)) if eu.rmse is not None else None

    print(f"\n  {'t [s]':>7s} {'float RMSE [Hz]':>16s} {cfg.name + ' RMSE [Hz]':>18s} {'Euclid [Hz]':>12s}")
    for n in range(0, len(t_s), max(1, len(t_s) // 10)):
        eu_v = f"{c_euclid[n]:12.3f}" if c_euclid is not None and n < len(c_euclid) else ""
        print(f"  {t_s[n]:7.2f} {c_float[n]:16.3f} {c_fixed[n]:18.3f} {eu_v}")

    print("  (code learning rates of Fig 3F; the Euclidean rule leads during the first few hundred\n"
          "   seconds and the natural rules overtake it later -- SPEC §3.1; see\n"
          "   `natgrad experiment fig3f` for the full comparison)")
    variables = _variable_table(cfg, fl, fx) if cfg.is_fixed else {}
    w_err = fx.w_final - fl.w_final
    learned = np.sqrt(np.mean((fl.w_final - task.w_init) ** 2))
    report = {
        "config": {"name": cfg.name, "source": str(cfg.source), "kind": cfg.kind, "tree": cfg.tree},
        "steps": steps, "seed": seed, "trials": trials, "N": N_AFFERENTS,
        "dt_s": task.params.dt,
        "eta_code": {"approx": ETA_CODE["approx"], "euclid": ETA_CODE["euclid"]},
        "curves": {"t_s": t_s.tolist(),
                   "float": {"rate_rmse_hz": c_float.tolist()},
                   "fixed": {"rate_rmse_hz": c_fixed.tolist()},
                   "euclid_float": {"rate_rmse_hz": None if c_euclid is None else c_euclid.tolist()}},
        "variables": variables,
        "weights": {"final_rmse_vs_float": float(np.sqrt(np.mean(w_err**2))),
                    "final_max_abs_vs_float": float(np.max(np.abs(w_err))),
                    "learned_change_rms_float": float(learned)},
        "counters": fx.counters,
        "crosscheck": cross,
        "provenance": {"python": platform.python_version(), "numpy": np.__version__,
                       "natgrad": _version(), "lava": _lava_version(), "seed": seed,
                       "wall_s": round(time.time() - t_start, 1)},
    }
    print(f"\n  final weights: RMS error vs float {report['weights']['final_rmse_vs_float']:.3g} "
          f"(learned change RMS {learned:.3g})")
    if variables:
        w = variables["weights"]
        print(f"  weights: saturation {w['saturation']}, updates rounded to zero {w['underflow']}")
    print(f"  Lava cross-check: {_verdict(cross)}")
    if out is not None:
        from natgrad.progress import Heartbeat
        from natgrad.report import write_report
        with Heartbeat("natgrad run", progress) as hb:
            hb.stage("writing the report")
            write_report(report, fl, fx, out)   # atomic: a temp folder, then renames
        print(f"  report written to {out}/report.html, report.md, report.json")
    return report


def _verdict(cross) -> str:
    if cross.get("lava_bit_exact") is None:
        return cross.get("detail", "not run")
    return (f"bit-exact over {cross['steps']} steps" if cross["lava_bit_exact"]
            else f"MISMATCH over {cross['steps']} steps: {cross.get('detail', '')}")


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("natgrad")
    except Exception:  # noqa: BLE001 - provenance only
        return "unknown"


def _lava_version() -> str:
    try:
        from importlib.metadata import version
        return version("lava-nc")
    except Exception:  # noqa: BLE001
        return "unavailable"
