"""``natgrad sweep``: final accuracy against bit widths, over a grid of configs and seeds.

Each grid point is a base hardware config with some widths changed (``--vary``).  Every
point runs the Fig 3 teacher-student task (N = 100, ``--trials`` trials per seed) on the
integer emulator for ``--steps`` steps, once per seed; the float64 reference runs once per
seed on the same spikes.  A task is ``(config overrides, seed)`` and is a pure function of
its arguments (all randomness comes from the counter RNG), so results do not depend on the
executor (serial, local process pool, Dask cluster), on the number of workers or on the
order in which tasks finish.

Reported per point: the final output-rate RMSE on the test set (Hz, mean over trials, then
mean/min/max over seeds), its *excess* over the float64 reference on the same seed, and the
RMS error of the final weights against float.  The recommended minimum width of a varied
field is the smallest value whose excess over float (mean +- 95 % interval over seeds) stays within +-``--tolerance`` for
it and every larger value, with the other varied fields at their maximum (:func:`knee`).
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from natgrad.analysis import mean_ci, resolve_verdict

from natgrad.backends import backend_for
from natgrad.backends.datapath import FRIENDLY
from natgrad.cli import (HelpFormatter, UsageError, check_fits, check_out_dir,
                         eta_arg, load_config, pos_int)

N_AFFERENTS = 100
DEFAULT_STEPS = 20_000          # 10 s of simulated time
DEFAULT_TRIALS = 4
#: The default 10-s run lowers the float rate RMSE by only ~0.7 Hz (9.2 -> 8.5 Hz), so a
#: 0.5 Hz tolerance would accept almost any width; 0.1 Hz is ~15 % of what is learned.
DEFAULT_TOLERANCE_HZ = 0.1
DEFAULT_WORKERS = 2
#: Values per --vary range (widths are at most 64 bits; checked before the grid is built).
MAX_VALUES = 256
#: Points of the whole grid (each is validated before anything runs).
MAX_POINTS = 10_000



# --------------------------------------------------------------------------- grid
def allowed_fields(base=None) -> list[str]:
    """Every name ``--vary`` accepts on ``base``: for a datapath config (or None) the friendly
    names, then the integer keys of the config's schema (a learning-engine config has no
    friendly names: its keys are e.g. ``engine.trace_bits``, ``mapping.hidden_bits``)."""
    return backend_for("fxp32" if base is None else base).sweep_fields()


def parse_vary(text: str, base=None) -> tuple[str, list[int]]:
    """``FIELD=LO:HI`` or ``FIELD=LO:HI:STEP`` (inclusive) -> (field, values)."""
    field, eq, rng = text.partition("=")
    field = field.strip()
    if not eq or not field:
        raise UsageError(f"--vary {text!r}: expected FIELD=LO:HI or FIELD=LO:HI:STEP")
    allowed = allowed_fields(base)
    if field not in allowed:
        raise UsageError(f"--vary {text!r}: unknown field '{field}' (allowed: {', '.join(allowed)})")
    parts = rng.split(":")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if len(parts) not in (2, 3) or len(nums) != len(parts):
        raise UsageError(f"--vary {text!r}: expected integers LO:HI or LO:HI:STEP after '='")
    lo, hi = nums[0], nums[1]
    step = nums[2] if len(nums) == 3 else 1
    if step < 1:
        raise UsageError(f"--vary {text!r}: STEP must be >= 1 (got {step})")
    if lo > hi:
        raise UsageError(f"--vary {text!r}: LO must be <= HI (got {lo} > {hi})")
    n = len(range(lo, hi + 1, step))
    if n > MAX_VALUES:
        raise UsageError(f"--vary {text!r}: {n} values, at most {MAX_VALUES} per field")
    return field, list(range(lo, hi + 1, step))


def overrides_for(base, values: dict) -> dict:
    """Dotted config overrides realising ``{field: value}`` on the base config."""
    out: dict = {}
    for field, value in values.items():
        key, companion, _ = FRIENDLY.get(field, (field, None, ""))
        section, _, name = key.partition(".")
        out[key] = int(value)
        if companion is not None:
            c_section, _, c_name = companion.partition(".")
            out[companion] = int(base[c_section][c_name] + value - base[section][name])
    return out


def build_grid(base, varies: list[tuple[str, list[int]]]) -> list[dict]:
    """Cartesian product of the varied values -> list of ``{'values', 'overrides'}``.

    Every point is validated; a value that makes an invalid config raises UsageError with
    the config loader's one-line message (key and allowed range).
    """
    from emulator.hwconfig import ConfigError
    points = [{}]
    for field, vals in varies:
        points = [dict(p, **{field: v}) for p in points for v in vals]
    grid = []
    for values in points:
        ov = overrides_for(base, values)
        try:
            base.with_overrides(**ov)
        except ConfigError as exc:
            what = ", ".join(f"{f}={v}" for f, v in values.items())
            raise UsageError(f"--vary {what}: {exc}") from None
        grid.append({"values": values, "overrides": ov})
    return grid


# --------------------------------------------------------------------------- one task
@functools.lru_cache(maxsize=8)
def _task_and_test_set(seed: int, trials: int, task_source: str | None = None,
                       weight_range: float | None = None):
    from emulator import metrics
    from emulator.task import fig3_task
    if task_source is None:
        task = fig3_task(n_trials=trials, N=N_AFFERENTS, seed=seed)
        if weight_range is not None:
            task.w_range = float(weight_range)
    else:
        from emulator.taskfile import load_task, with_weight_range
        task = with_weight_range(load_task(task_source), weight_range).build(trials, seed)
    return task, metrics.evaluator(task, seed)


def run_point(base_tree: dict | None, source: str, overrides: dict | None, seed: int,
              steps: int, trials: int, eta: float | None = None,
              task_source: str | None = None, weight_range: float | None = None) -> dict:
    """One task of the sweep: a pure function of its arguments.

    ``base_tree`` None runs the float64 reference.  ``eta``: the approximate rule's learning
    rate in code units (None: the paper's 5.5e-4, :func:`emulator.runner.default_eta`).
    ``task_source``: a task file (None: the built-in Fig 3 task); seed s draws its trials.
    ``weight_range``: the expected largest |w| replacing the task's (None: the task's).
    Returns the final rate RMSE per trial (Hz), the final weights (trials, M, N) and the
    saturation / underflow totals.
    """
    from emulator.hwconfig import validate
    from emulator.runner import default_eta
    from natgrad.protocol import chunk_steps

    task, error_hz = _task_and_test_set(int(seed), int(trials), task_source, weight_range)
    if base_tree is None:
        cfg = "float64"
    else:
        cfg = validate(base_tree, source).with_overrides(**(overrides or {}))
    res = backend_for(cfg).run(task, int(steps), int(seed),
                               eta=default_eta() if eta is None else float(eta),
                               chunk_steps=chunk_steps(trials))
    rmse = error_hz(np.asarray(res.w_final)[None])[0]
    init = error_hz(task.w_init[None])[0]
    counters = res.counters or {}
    return {"rate_rmse_hz": [float(v) for v in rmse],
            "initial_rate_rmse_hz": [float(v) for v in init],
            "w_final": np.asarray(res.w_final, dtype=np.float64),
            "saturation": int(sum(c.get("saturation", 0) for c in counters.values())),
            "weights_underflow": int(counters.get("weights", {}).get("underflow", 0))}


def execute(tasks: list[tuple], executor: str = "local", scheduler: str | None = None,
            workers: int = DEFAULT_WORKERS, progress=None, fn=None) -> list:
    """:func:`natgrad.executors.execute` of :func:`run_point` (or ``fn``) over ``tasks``."""
    from natgrad.executors import execute as run_all
    return run_all(run_point if fn is None else fn, tasks, executor, scheduler, workers, progress)


# --------------------------------------------------------------------------- analysis
def knee(widths, excess, tolerance: float, ci=None):
    """Smallest width w such that the excess is within ``+-tolerance`` at w and at every
    larger width; with ``ci`` (95 % half-widths, parallel to ``excess``) the whole interval
    ``excess +- ci`` must lie within it (the point "tracks"; a NaN interval, e.g. one seed,
    does not).

    ``widths`` and ``excess`` (mean final rate-RMSE excess over float, Hz) are parallel
    sequences in any order.  Both signs count as a deviation from float: a coarse format
    that learns *faster* than float (negative excess, e.g. traces that stop decaying) does
    not track the reference either.  Returns None when the largest width is already
    outside the tolerance (or there are no widths).
    """
    ci = [0.0] * len(excess) if ci is None else list(ci)
    pairs = sorted(zip(widths, excess, ci), key=lambda p: p[0])
    best = None
    for w, e, c in reversed(pairs):
        if not (abs(e) + c <= tolerance):       # NaN counts as a failure
            break
        best = w
    return best


def _stats(values) -> dict:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "min": float(a.min()), "max": float(a.max())}


def summarize(grid, seeds, fixed_results, float_results, varies, tolerance) -> dict:
    """Combine raw task results into the numbers of sweep.json (executor independent)."""
    fl = {s: r for s, r in zip(seeds, float_results)}
    float_rmse = {s: float(np.mean(fl[s]["rate_rmse_hz"])) for s in seeds}
    points = []
    for i, g in enumerate(grid):
        per_seed = []
        for j, s in enumerate(seeds):
            r = fixed_results[i * len(seeds) + j]
            rm = float(np.mean(r["rate_rmse_hz"]))
            w_err = float(np.sqrt(np.mean((r["w_final"] - fl[s]["w_final"]) ** 2)))
            per_seed.append({"seed": s, "rate_rmse_hz": rm, "excess_hz": rm - float_rmse[s],
                             "w_rmse_vs_float": w_err, "saturation": r["saturation"],
                             "weights_underflow": r["weights_underflow"]})
        ex = [p["excess_hz"] for p in per_seed]
        m, ci = mean_ci(ex)
        status, why = resolve_verdict(m, ci, tolerance, len(ex), "seed", "--seeds")
        points.append({"values": g["values"], "overrides": g["overrides"],
                       "rate_rmse_hz": _stats([p["rate_rmse_hz"] for p in per_seed]),
                       "excess_hz": {**_stats(ex), "ci95": ci},
                       "status": status, "resolve": why,
                       "w_rmse_vs_float": _stats([p["w_rmse_vs_float"] for p in per_seed]),
                       "per_seed": per_seed})
    initial = {s: float(np.mean(fl[s]["initial_rate_rmse_hz"])) for s in seeds}
    recommended, why = {}, {}
    for field, vals in varies:
        series = _slice(points, varies, field)
        recommended[field] = knee([v for v, _ in series],
                                  [p["excess_hz"]["mean"] for _, p in series], tolerance,
                                  [p["excess_hz"]["ci95"] for _, p in series])
        top = series[-1][1] if series else None
        if recommended[field] is not None:
            why[field] = (f"the 95 % interval over seeds lies within +-{tolerance:g} Hz at "
                          f"{field} = {recommended[field]} and every larger width")
        elif top is not None:
            why[field] = f"{top['status']} at {field} = {series[-1][0]}: {top['resolve']}"
    return {
        "float": {"per_seed": [{"seed": s, "rate_rmse_hz": float_rmse[s],
                                "initial_rate_rmse_hz": initial[s]} for s in seeds],
                  "rate_rmse_hz": _stats(list(float_rmse.values())),
                  "initial_rate_rmse_hz": _stats(list(initial.values()))},
        "points": points,
        "recommended": recommended,
        "recommended_why": why,
    }


def _slice(points, varies, field):
    """(value, point) of ``field`` with every other varied field at its maximum."""
    tops = {f: max(vals) for f, vals in varies if f != field}
    out = [(p["values"][field], p) for p in points
           if all(p["values"][f] == v for f, v in tops.items())]
    return sorted(out, key=lambda vp: vp[0])


# --------------------------------------------------------------------------- plots
def _safe(name: str) -> str:
    return name.replace(".", "_")


def write_plots(summary: dict, varies, tolerance: float, base_name: str, folder: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fl = summary["float"]["rate_rmse_hz"]
    names = []
    for field, _ in varies:
        series = _slice(summary["points"], varies, field)
        x = np.array([v for v, _ in series])
        mean = np.array([p["rate_rmse_hz"]["mean"] for _, p in series])
        lo = np.array([p["rate_rmse_hz"]["min"] for _, p in series])
        hi = np.array([p["rate_rmse_hz"]["max"] for _, p in series])
        fig, (a1, a3, a2) = plt.subplots(1, 3, figsize=(16, 4.3))
        a1.fill_between(x, lo, hi, alpha=0.25, color="C1", label="fixed point: seed min..max")
        a1.plot(x, mean, "o-", color="C1", label=f"{base_name}: mean over seeds")
        a1.axhspan(fl["min"], fl["max"], color="C0", alpha=0.12)
        a1.axhline(fl["mean"], color="C0", lw=2, label="float64 (mean, seed band)")
        a1.axhline(fl["mean"] + tolerance, color="C0", ls="--", lw=1,
                   label=f"float +- tolerance ({tolerance:g} Hz)")
        a1.axhline(fl["mean"] - tolerance, color="C0", ls="--", lw=1)
        rec = summary["recommended"].get(field)
        if rec is not None:
            a1.axvline(rec, color="k", ls=":", label=f"recommended {field} >= {rec}")
        a1.set_xlabel(field)
        a1.set_ylabel("final output-rate RMSE [Hz]")
        others = [f for f, _ in varies if f != field]
        a1.set_title("final rate RMSE" + (f" ({', '.join(others)} at max)" if others else ""))
        a1.legend(fontsize=8)
        ex = np.array([p["excess_hz"]["mean"] for _, p in series])
        exlo = np.array([p["excess_hz"]["min"] for _, p in series])
        exhi = np.array([p["excess_hz"]["max"] for _, p in series])
        a3.errorbar(x, ex, yerr=[ex - exlo, exhi - ex], fmt="o-", capsize=3, color="C1",
                    label="mean, seed min..max")
        a3.axhspan(-tolerance, tolerance, color="C0", alpha=0.15, label=f"+-{tolerance:g} Hz")
        a3.axhline(0.0, color="C0", lw=1)
        if rec is not None:
            a3.axvline(rec, color="k", ls=":")
        a3.set_xlabel(field)
        a3.set_ylabel("excess over float64, same seed [Hz]")
        a3.set_title("rate-RMSE excess over float")
        a3.legend(fontsize=8)
        w = np.array([p["w_rmse_vs_float"]["mean"] for _, p in series])
        wlo = np.array([p["w_rmse_vs_float"]["min"] for _, p in series])
        whi = np.array([p["w_rmse_vs_float"]["max"] for _, p in series])
        a2.errorbar(x, w, yerr=[w - wlo, whi - w], fmt="o-", capsize=3, color="C2")
        if np.all(w > 0):
            a2.set_yscale("log")
        for ax_ in (a1, a2, a3):                  # widths are integers: no fractional ticks
            ax_.set_xticks(x if len(x) <= 20 else x[::max(1, len(x) // 10)])
        a2.set_xlabel(field)
        a2.set_ylabel("final weight RMS error vs float")
        a2.set_title("final weights against float64 (mean, seed min..max)")
        fig.tight_layout()
        name = f"sweep_{_safe(field)}.png"
        fig.savefig(folder / name, dpi=100)
        plt.close(fig)
        names.append(name)
    if len(varies) == 2:
        (f1, v1), (f2, v2) = varies
        grid = np.full((len(v2), len(v1)), np.nan)
        mark = {}
        for p in summary["points"]:
            i, j = v2.index(p["values"][f2]), v1.index(p["values"][f1])
            grid[i, j] = p["excess_hz"]["mean"]
            mark[i, j] = {"tracks": "ok", "does not track": "x"}.get(p.get("status"), "?")
        fig, ax = plt.subplots(figsize=(6, 4.5))
        im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis",
                       extent=(v1[0] - 0.5, v1[-1] + 0.5, v2[0] - 0.5, v2[-1] + 0.5))
        if len(v1) * len(v2) <= 400:              # each cell says its verdict
            for (i, j), m in mark.items():
                ax.text(v1[j], v2[i], m, ha="center", va="center", fontsize=7, color="k",
                        bbox=dict(boxstyle="round,pad=0.1", fc="w", ec="none", alpha=0.7))
        fig.colorbar(im, ax=ax, label="mean excess over float [Hz]")
        ax.set_xticks(v1 if len(v1) <= 20 else v1[::max(1, len(v1) // 10)])
        ax.set_yticks(v2 if len(v2) <= 20 else v2[::max(1, len(v2) // 10)])
        ax.set_xlabel(f1)
        ax.set_ylabel(f2)
        ax.set_title(f"rate-RMSE excess over float; within +-{tolerance:g} Hz: ok tracks, "
                     "x does not, ? not resolved", fontsize=9)
        fig.tight_layout()
        fig.savefig(folder / "sweep_grid.png", dpi=100)
        plt.close(fig)
        names.append("sweep_grid.png")
    return names


# --------------------------------------------------------------------------- command
def run_sweep(base, varies, seeds: int, steps: int, trials: int = DEFAULT_TRIALS,
              tolerance: float = DEFAULT_TOLERANCE_HZ, executor: str = "local",
              scheduler: str | None = None, workers: int = DEFAULT_WORKERS,
              progress=None, eta: float | None = None, task_spec=None) -> dict:
    """Run the sweep and return the sweep.json dictionary (nothing is written); ``eta``:
    the approximate rule's learning rate in code units (None: the paper's 5.5e-4);
    ``task_spec``: a task file's :class:`emulator.taskfile.TaskSpec` (None: Fig 3)."""
    from emulator.runner import default_eta
    grid = build_grid(base, varies)
    seed_list = list(range(seeds))
    tree, src = base.tree, str(base.source)
    eta = default_eta() if eta is None else float(eta)
    ts = None if task_spec is None else str(task_spec.source)
    wr = (task_spec.weight_range if task_spec is not None
          and isinstance(task_spec.weight_range, float) else None)
    float_tasks = [(None, src, None, s, steps, trials, eta, ts, wr) for s in seed_list]
    fixed_tasks = [(tree, src, g["overrides"], s, steps, trials, eta, ts, wr)
                   for g in grid for s in seed_list]
    t0 = time.time()
    results = execute(float_tasks + fixed_tasks, executor, scheduler, workers, progress)
    summary = summarize(grid, seed_list, results[len(float_tasks):], results[:len(float_tasks)],
                        varies, tolerance)
    return {
        "base_config": {"name": base.name, "source": src, "tree": tree},
        "vary": {f: vals for f, vals in varies},
        "vary_keys": {f: [FRIENDLY[f][0]] + ([FRIENDLY[f][1]] if FRIENDLY[f][1] else [])
                      if f in FRIENDLY else [f] for f, _ in varies},
        "seeds": seed_list, "steps": steps, "trials": trials,
        "N": N_AFFERENTS if task_spec is None else task_spec.N,
        "eta_code": eta,
        "dt_s": 0.0005 if task_spec is None else task_spec.params.dt,
        "task": ("fig3 teacher-student (10/50 Hz groups), final weights on the 50-sample test "
                 "set" if task_spec is None else task_spec.describe()),
        "tolerance_hz": tolerance,
        "tolerance_rule": ("smallest width whose final rate-RMSE excess over float64, mean "
                           "+- its 95 % interval over seeds, lies within +-tolerance_hz at "
                           "that width and all larger widths, other varied fields at their "
                           "max; a point whose interval straddles the tolerance (or one "
                           "seed) is 'not resolved'"),
        **summary,
        "provenance": {"executor": executor, "workers": workers, "scheduler": scheduler,
                       "tasks": len(float_tasks) + len(fixed_tasks),
                       "wall_s": round(time.time() - t0, 1)},
    }


def _nonneg_float(name):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number >= 0 (got {text!r})")
        if not (value >= 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{name} must be a number >= 0 (got {text})")
        return value
    return parse


def _progress_printer(enabled: bool, total: int):
    """Progress of the runs: a bar on a terminal, a line every 10 s otherwise."""
    from natgrad.progress import Progress
    bar = Progress(total, enabled, prefix="natgrad sweep")
    bar(0, "runs")

    def show(done, total):
        bar(done, "runs")
        if done >= total:
            bar.close()
    return show


def preflight(n_points: int, seeds: int, steps: int, trials: int, workers: int,
              executor: str) -> float:
    """Refuse (UsageError) a sweep that cannot fit in memory or would run for more than a
    week; returns the estimated wall time in seconds.

    Memory: the parent keeps every task and result (final weights and a few numbers,
    about 2 KiB + 8 bytes per weight); each worker needs about 0.25 GiB plus 12 MiB per
    trial (see :func:`natgrad.cli.run_preflight`).
    """
    from natgrad.cli import RUN_TRIAL_STEPS_PER_S, run_preflight
    n_tasks = seeds * (n_points + 1)
    per_worker, _ = run_preflight(steps, trials)
    n_workers = 1 if executor == "serial" else min(workers, n_tasks)
    need = n_tasks * (2048 + 8 * trials * N_AFFERENTS) + n_workers * per_worker
    # one emulator run per task (the float reference is of the same cost)
    est = n_tasks * steps * trials / (3 * RUN_TRIAL_STEPS_PER_S) / max(1, n_workers)
    check_fits(f"sweep of {n_tasks} runs ({n_points + 1} configs x {seeds} seeds, "
               f"{trials} trials, {n_workers} workers)", need, est)
    return est


def _print_summary(rep: dict, varies) -> None:
    fields = [f for f, _ in varies]
    head = " ".join(f"{f:>14s}" for f in fields)
    print(f"\n  {head} {'rate RMSE [Hz] mean (min..max)':>32s} {'excess [Hz]':>12s} {'w RMS err':>10s}")
    for p in rep["points"]:
        vals = " ".join(f"{p['values'][f]:>14d}" for f in fields)
        r, e, w = p["rate_rmse_hz"], p["excess_hz"], p["w_rmse_vs_float"]
        print(f"  {vals} {r['mean']:12.3f} ({r['min']:.3f}..{r['max']:.3f}) {e['mean']:12.3f} "
              f"{w['mean']:10.3g}")
    fl = rep["float"]
    print(f"  float64: {fl['rate_rmse_hz']['mean']:.3f} Hz ({fl['rate_rmse_hz']['min']:.3f}.."
          f"{fl['rate_rmse_hz']['max']:.3f}); initial weights: {fl['initial_rate_rmse_hz']['mean']:.3f} Hz")
    print(f"\n  recommended minimum widths (the 95 % interval over seeds of the final rate-RMSE "
          f"excess over float64 within +-{rep['tolerance_hz']:g} Hz at this and every larger "
          "width; other fields at their max):")
    for f, w in rep["recommended"].items():
        why = rep.get("recommended_why", {}).get(f, "")
        text = str(w) if w is not None else f"none resolved in the range ({why})"
        print(f"    {f}: {text}")


def cmd_sweep(args) -> int:
    base = load_config(args.config)
    why = backend_for(base).refuses("sweep")
    if why:
        raise UsageError(f"--config {args.config}: {why}")
    spec = None
    if args.task is not None or args.weight_range is not None:
        from natgrad.tasks import check_chip, load_task_arg
        spec = load_task_arg("fig3" if args.task is None else args.task, args.weight_range)
        if spec.inputs is not None and args.steps > spec.inputs.n_steps:
            raise UsageError(f"--steps {args.steps}: the task's recording holds "
                             f"{spec.inputs.n_steps} steps")
        from emulator.runner import default_eta
        check_chip(base, spec, args.trials, 0, default_eta() if args.eta is None else args.eta)
    varies = [parse_vary(v, base) for v in args.vary]
    seen = set()
    for f, _ in varies:
        keys = {FRIENDLY[f][0], FRIENDLY[f][1]} - {None} if f in FRIENDLY else {f}
        if keys & seen:
            raise UsageError(f"--vary {f}: varies config key {sorted(keys & seen)[0]} twice")
        seen |= keys
    n_grid = math.prod(len(vals) for _, vals in varies)
    if n_grid > MAX_POINTS:
        raise UsageError(f"--vary: {n_grid} grid points, at most {MAX_POINTS} (narrow a range "
                         "or use LO:HI:STEP)")
    build_grid(base, varies)            # every point validated before anything runs
    if args.executor != "dask" and args.scheduler:
        raise UsageError("--scheduler needs --executor dask")
    n_points = len(build_grid(base, varies))
    preflight(n_points, args.seeds, args.steps, args.trials, args.workers, args.executor)
    if not str(args.out):
        raise UsageError("--out: empty path (give a folder name)")
    out = Path(args.out)
    existed = out.exists()
    check_out_dir(out)
    tmp = Path(tempfile.mkdtemp(prefix=".natgrad-sweep-", dir=out))
    try:
        if not args.quiet:
            # the time left is shown once the first run has finished, at the measured rate
            print(f"natgrad sweep: {args.seeds * (n_points + 1)} runs on executor "
                  f"{args.executor}", file=sys.stderr)
        what = (f"N = {N_AFFERENTS}" if spec is None
                else f"task {spec.name}, N = {spec.N}, M = {spec.M}")
        print(f"natgrad sweep: base {base.name}, {n_points} configs x {args.seeds} seeds "
              f"({args.trials} trials each, {what}), {args.steps} steps "
              f"({args.steps * 0.0005:g} s), executor {args.executor}")
        rep = run_sweep(base, varies, args.seeds, args.steps, args.trials, args.tolerance,
                        args.executor, args.scheduler, args.workers,
                        _progress_printer(not args.quiet, args.seeds * (n_points + 1)),
                        eta=args.eta, task_spec=spec)
        if not args.quiet:
            print("natgrad sweep: writing sweep.json and plots", file=sys.stderr)
        _print_summary(rep, varies)
        (tmp / "sweep.json").write_text(json.dumps(rep, indent=1) + "\n")
        names = ["sweep.json"] + write_plots(rep, varies, args.tolerance, base.name, tmp)
        for name in names:
            os.replace(tmp / name, out / name)
        print(f"  wrote {', '.join(str(out / n) for n in names)}")
        print(f"  wall time {rep['provenance']['wall_s']:.1f} s")
    except BaseException:
        if not existed:
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def add_parser(sub) -> None:
    s = sub.add_parser("sweep", help="final accuracy against bit widths over configs x seeds",
                       description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    s.add_argument("--config", default="fxp16",
                   help="base hardware config: a file, or the name of a bundled one")
    s.add_argument("--vary", action="append", required=True, metavar="FIELD=LO:HI[:STEP]",
                   help="inclusive integer range of a field, in bits; repeat for a grid. Fields: "
                        + ", ".join(FRIENDLY) + ", or any integer config key (e.g. potential.bits)")
    s.add_argument("--task", default=None,
                   help="task file (tasks/README.md) or a bundled task's name (default: the "
                        "built-in Fig 3 task); seed s draws its trials; the learning rate stays "
                        "--eta's (the task file's rate is run's, budget's and deploy's)")
    from natgrad.tasks import add_weight_range_argument
    add_weight_range_argument(s)
    s.add_argument("--seeds", type=pos_int("--seeds"), default=4,
                   help="number of seeds: 0..S-1")
    s.add_argument("--steps", type=pos_int("--steps"), default=DEFAULT_STEPS,
                   help=f"time steps of 0.5 ms per run ({DEFAULT_STEPS} = 10 s of simulated time)")
    s.add_argument("--trials", type=pos_int("--trials"), default=DEFAULT_TRIALS,
                   help="teacher-student trials per seed")
    s.add_argument("--eta", type=eta_arg(), default=None,
                   help="learning rate of the approximate rule in the code's units (default: "
                        "the paper's eta_A = 5.5e-4)")
    s.add_argument("--tolerance", type=_nonneg_float("--tolerance"), default=DEFAULT_TOLERANCE_HZ,
                   help="allowed |mean final rate-RMSE excess over float64|, in Hz")
    s.add_argument("--executor", choices=("local", "dask", "serial"), default="local",
                   help="local process pool, a Dask cluster, or serial in-process")
    s.add_argument("--scheduler", default=None,
                   help="Dask scheduler address (not given, with --executor dask: a LocalCluster)")
    s.add_argument("--workers", type=pos_int("--workers"), default=DEFAULT_WORKERS,
                   help="processes of the local pool / LocalCluster")
    s.add_argument("--out", default="natgrad-sweep", help="output folder")
    s.add_argument("--quiet", action="store_true", help="no progress output")
    s.set_defaults(func=cmd_sweep)
