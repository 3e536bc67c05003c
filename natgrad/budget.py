"""``natgrad budget``: what each quantizer of a chip config costs on the Fig 3 task.

For every quantizer of the config's kind (weights, traces, the third factors, the sigmoid
table, rounding and random-number sharing, the epoch, ...) two runs per seed, on the
spikes of float64's run:

* **on alone**: the quantizer at the chip's setting, every other one wide;
* **off**: the quantizer wide, every other one at the chip's setting;

plus the plain chip ("all on") and the all-wide config ("all off").  On a learning-engine
config "all off" is not float64: the post factor still travels as stochastic events, a
coding no setting of the kind removes, so its row measures what the events cost.  Each run's late-window
output-rate RMSE excess over float64 (Hz) and its KL ratio to float64 are reported, mean
and spread over seeds; the table is sorted by the cost of the quantizer alone.  Writes
``budget.json``, ``budget.md`` and ``budget.png`` (bar chart) into ``--out``.

"Wide" is a setting of the same config kind that removes the quantizer's loss as far as the
kind allows (more bits with the range kept, round-to-nearest or independent random
numbers, interpolation), declared per quantizer by its backend (:meth:`natgrad.backends.Backend.quantizer_table`); each wide setting is
validated by the config loader.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from emulator import metrics
from emulator import runner as R
from emulator.hwconfig import ConfigError, HwConfig
from emulator.reference import ETA_CODE
from emulator.task import fig3_task
from natgrad import comparison
from natgrad.backends import backend_for
from natgrad.protocol import ETA_SCALE  # the learning rates of natgrad run (x4), chosen once



#: Points of each budget learning curve after t = 0 (its late window: the last quarter).
BUDGET_POINTS = 20

_DELTAS = (12, 10, 8, 6, 4, 2, 1)


def _is_chip_setting(cfg: HwConfig, ov: dict) -> bool:
    """Every override already equals the config's own value."""
    for key, v in ov.items():
        sec, _, field = key.partition(".")
        if cfg[sec].get(field) != v:
            return False
    return True


def quantizers(cfg: HwConfig, task=None, eta: float | None = None) -> tuple[dict, dict]:
    """``({name: (doc, wide overrides)}, {name: why omitted})`` for the config's kind.

    Each wide setting is the largest of :data:`_DELTAS` the config loader accepts on its
    own; a quantizer whose wide setting is the chip's own (or that has none wider in the
    kind) is omitted with the reason.  Learning-engine rows that depend on the task's design
    (the level unit) need ``task`` and ``eta``."""
    out, omitted = {}, {}
    for name, (doc, make) in backend_for(cfg).quantizer_table(task, eta).items():
        for delta in _DELTAS:
            ov = make(delta)
            if ov is None:
                omitted[name] = "no wider setting in this kind (the chip's is the widest)"
                break
            try:
                cfg.with_overrides(**ov)
            except (ConfigError, ValueError):
                continue
            if _is_chip_setting(cfg, ov):
                omitted[name] = f"its wide setting {ov} is the chip's own"
            else:
                out[name] = (doc, ov)
            break
        else:
            omitted[name] = "no wide setting the config loader accepts"
    return out, omitted


def _combine(cfg: HwConfig, parts: list[dict]) -> HwConfig:
    """The config with several quantizers' wide overrides; where two wide settings do not
    fit together (64-bit products) the later ones shrink until the loader accepts them."""
    ov: dict = {}
    for part in parts:
        for k, v in part.items():
            ov[k] = v
    try:
        return cfg.with_overrides(**ov)
    except ConfigError:
        pass
    acc: dict = {}
    for part in parts:
        trial = dict(acc, **part)
        try:
            cfg.with_overrides(**trial)
            acc = trial
        except ConfigError:
            continue
    return cfg.with_overrides(**acc)


def _late_kl(w_late, task, seed) -> float:
    """Mean KL over the late weight snapshots ``w_late`` (E, K, M, N); nan for a recorded
    teacher (it has no teacher potential)."""
    if task.w_target is None:
        return float("nan")
    x_test = metrics.test_set(task, seed)
    return float(np.mean([metrics.kl_cost(wk, task.w_target, x_test, task.params)
                          for wk in w_late]))


def run_budget(cfg: HwConfig, seconds: float = 100.0, trials: int = 4, seeds: int = 2,
               progress=None, eta: float | None = None, task_spec=None) -> dict:
    """The budget table of ``cfg`` (see the module docstring) on the Fig 3 task, or on
    ``task_spec`` (a task file's :class:`emulator.taskfile.TaskSpec`; seed s draws its
    trials; ``eta`` defaults to the file's)."""
    why = backend_for(cfg).refuses("budget")
    if why:
        raise ValueError(f"{cfg.source}: {why}")

    def make_task(seed):
        if task_spec is None:
            return fig3_task(n_trials=trials, N=100, seed=seed)
        return task_spec.build(trials, seed)
    task0 = make_task(0)
    if eta is None:
        eta = ETA_CODE["approx"] * ETA_SCALE if task_spec is None else task_spec.eta
    eta = float(eta)
    qs, omitted = quantizers(cfg, task0, eta)
    names = list(qs)
    wide = _combine(cfg, [ov for _, ov in qs.values()])
    rows = {"all on (chip)": cfg, "all off (wide)": wide}
    for n in names:
        rows[f"{n}: on alone"] = _combine(cfg, [qs[m][1] for m in names if m != n])
        rows[f"{n}: off"] = _combine(cfg, [qs[n][1]])
    steps = int(round(seconds / task0.params.dt))
    every = comparison.n_records(steps, BUDGET_POINTS)
    results = {name: {"excess_hz": [], "kl_ratio": []} for name in rows}
    chip_sha = None
    total = seeds * (len(rows) + 1)
    done = 0
    for s in range(seeds):
        task = make_task(s)
        if progress is not None:
            progress(done + 1, total, f"seed {s}: float64")
        fl = R.run("float64", task, steps, s, eta=eta, record=("weights",), record_every=every)
        error_hz = metrics.evaluator(task, s)
        fl_curve = comparison.curve(task, fl.record["weights"], error_hz)
        fl_kl = _late_kl(comparison.late_weights(fl, len(fl_curve)), task, s)
        done += 1
        for name, c in rows.items():
            if progress is not None:              # says what is running, before it runs
                progress(done + 1, total, f"seed {s}: {name}")
            cmp = comparison.compare(backend_for(c), task, steps, s, eta, record_every=every,
                                     float_run=fl, error_hz=error_hz, float_trials=fl_curve)
            kl = _late_kl(comparison.late_weights(cmp.chip_run, len(cmp.t_s)), task, s)
            results[name]["excess_hz"].append(float(np.mean(comparison.late_excess(cmp))))
            results[name]["kl_ratio"].append(kl / fl_kl)
            if name == "all on (chip)" and s == 0:
                chip_sha = _sha(cmp.chip_run.w_int)
            done += 1
    table = []
    for name, r in results.items():
        ex, kr = np.array(r["excess_hz"]), np.array(r["kl_ratio"])
        table.append({"row": name, "excess_hz": float(ex.mean()),
                      "excess_sd_hz": float(ex.std(ddof=1)) if ex.size > 1 else None,
                      # no KL against a recorded teacher (it has no teacher potential)
                      "kl_ratio": float(kr.mean()) if np.all(np.isfinite(kr)) else None,
                      "kl_ratio_sd": (float(kr.std(ddof=1)) if kr.size > 1
                                      and np.all(np.isfinite(kr)) else None),
                      "per_seed_excess_hz": r["excess_hz"]})
    costs = _paired_costs(results, names)
    ranked = sorted((n for n in names if costs[n]["status"] == "resolved"),
                    key=lambda n: -costs[n]["cost_hz"]["mean"])
    return {"config": cfg.name, "kind": cfg.kind, "seconds": seconds, "trials": trials,
            "seeds": seeds, "eta_code": eta,
            "task": ({"name": "fig3 (built in)", "N": 100, "M": 1} if task_spec is None
                     else task_spec.describe()),
            "quantizers": {n: {"what": qs[n][0], "wide": qs[n][1], **costs[n]} for n in names},
            "omitted": omitted,
            "wide_config": wide.tree, "rows": table,
            "chip_w_int_sha": chip_sha,   # seed 0's final integer weights of the "all on" row
            "ranking_on_alone": ranked,
            "unresolved": [n for n in names if n not in ranked],
            "costliest": ranked[0] if ranked else None,
            "sum_vs_chip": _sum_vs_chip(results, names),
            "metric": "late-window (last quarter) output-rate RMSE excess over float64 on "
                      "identical spikes [Hz], and the late KL ratio to float64; mean and sd over "
                      "seeds; a quantizer's cost is its 'on alone' row minus 'all off', paired "
                      "by seed, with the 95 % interval over seeds"}


def _paired_costs(results: dict, names: list) -> dict:
    """Per quantizer: cost on alone (row - all off) and saving when off (all on - row),
    paired by seed, mean and 95 % interval; 'resolved' when the cost's interval excludes 0."""
    from natgrad.analysis import mean_ci
    base = np.array(results["all off (wide)"]["excess_hz"])
    chip = np.array(results["all on (chip)"]["excess_hz"])
    out = {}
    for n in names:
        cost = np.array(results[f"{n}: on alone"]["excess_hz"]) - base
        save = chip - np.array(results[f"{n}: off"]["excess_hz"])
        (cm, cc), (sm, sc) = mean_ci(cost), mean_ci(save)
        resolved = bool(np.isfinite(cc) and abs(cm) > cc)
        out[n] = {"cost_hz": {"mean": cm, "ci95": cc}, "saving_off_hz": {"mean": sm, "ci95": sc},
                  "status": "resolved" if resolved else "not resolved"}
    return out


def _sum_vs_chip(results: dict, names: list) -> dict:
    """Does the sum of the single-row costs explain the chip's cost (all on - all off)?
    Paired by seed: the difference chip - sum, mean and 95 % interval."""
    from natgrad.analysis import mean_ci
    base = np.array(results["all off (wide)"]["excess_hz"])
    chip = np.array(results["all on (chip)"]["excess_hz"]) - base
    total = sum((np.array(results[f"{n}: on alone"]["excess_hz"]) - base for n in names),
                np.zeros_like(base))
    (cm, cc), (tm, tc), (dm, dc) = mean_ci(chip), mean_ci(total), mean_ci(chip - total)
    if not np.isfinite(dc):
        verdict = "not resolved (one seed: run --seeds 2 or more)"
    elif abs(dm) <= dc:
        verdict = "explains the chip's cost (their difference's interval includes 0)"
    else:
        verdict = ("does not explain the chip's cost: the quantizers interact "
                   f"({'more' if dm > 0 else 'less'} together than alone)")
    return {"chip_cost_hz": {"mean": cm, "ci95": cc}, "sum_of_rows_hz": {"mean": tm, "ci95": tc},
            "difference_hz": {"mean": dm, "ci95": dc}, "verdict": verdict}


def _sha(a) -> str:
    import hashlib
    return hashlib.sha256(np.ascontiguousarray(a, np.int64).tobytes()).hexdigest()[:16]


def _pm(c: dict) -> str:
    ci = c.get("ci95")
    return f"{c['mean']:+.3f}" + ("" if ci is None or not np.isfinite(ci) else f" +- {ci:.3f}")


def _markdown(rep: dict) -> str:
    lines = [f"# Error budget of {rep['config']} ({rep['kind']})", "",
             f"Task {rep.get('task', {}).get('name', 'fig3')}, N = "
             f"{rep.get('task', {}).get('N', 100)}, M = {rep.get('task', {}).get('M', 1)}, "
             f"{rep['trials']} trials, {rep['seconds']:g} s at eta "
             f"{rep['eta_code']:.4g} (code units), {rep['seeds']} seeds. {rep['metric']}.", "",
             "| row | excess RMSE [Hz] | sd | KL ratio | sd |", "|---|---|---|---|---|"]
    order = ["all on (chip)", "all off (wide)"] + [f"{n}: on alone" for n in rep["ranking_on_alone"]]
    order += [t["row"] for t in rep["rows"] if t["row"] not in order]
    by = {t["row"]: t for t in rep["rows"]}
    for name in order:
        t = by[name]
        sd = "-" if t["excess_sd_hz"] is None else f"{t['excess_sd_hz']:.3f}"
        ksd = "-" if t["kl_ratio_sd"] is None else f"{t['kl_ratio_sd']:.3f}"
        kl = "-" if t["kl_ratio"] is None else f"{t['kl_ratio']:.3f}"
        lines.append(f"| {name} | {t['excess_hz']:+.3f} | {sd} | {kl} | {ksd} |")
    lines += ["", "Cost of each quantizer on alone (minus all off, paired by seed, 95 % interval); "
              "ranked only where the interval excludes 0:", "",
              "| quantizer | cost on alone [Hz] | saving when off [Hz] | ranked |", "|---|---|---|---|"]
    for n in rep["ranking_on_alone"] + rep["unresolved"]:
        q = rep["quantizers"][n]
        rank = (str(rep["ranking_on_alone"].index(n) + 1) if n in rep["ranking_on_alone"]
                else "not resolved")
        lines.append(f"| {n} | {_pm(q['cost_hz'])} | {_pm(q['saving_off_hz'])} | {rank} |")
    sv = rep["sum_vs_chip"]
    lines += ["", (f"Costliest quantizer (on alone, resolved): **{rep['costliest']}**."
                   if rep["costliest"] else "No quantizer's cost is resolved at this run length "
                   "and seed count (run longer or with more --seeds)."),
              f"The single-row costs sum to {_pm(sv['sum_of_rows_hz'])} Hz against the chip's "
              f"{_pm(sv['chip_cost_hz'])} Hz (all on - all off): the sum {sv['verdict']}.", "",
              "| quantizer | what | wide setting |", "|---|---|---|"]
    for n, q in rep["quantizers"].items():
        lines.append(f"| {n} | {q['what']} | `{json.dumps(q['wide'])}` |")
    for n, why in rep.get("omitted", {}).items():
        lines.append(f"| {n} | omitted | {why} |")
    return "\n".join(lines) + "\n"


def _plot(rep: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = rep["ranking_on_alone"] + rep["unresolved"]       # resolved first, then the rest
    by = {t["row"]: t for t in rep["rows"]}
    on = [by[f"{n}: on alone"]["excess_hz"] for n in names]
    off = [by[f"{n}: off"]["excess_hz"] for n in names]
    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.8))
    ax.barh(y - 0.2, on, 0.4, label="on alone (rest wide)")
    ax.barh(y + 0.2, off, 0.4, label="off (rest at the chip)")
    ax.axvline(by["all on (chip)"]["excess_hz"], color="k", ls="--", label="chip")
    ax.axvline(by["all off (wide)"]["excess_hz"], color="gray", ls=":", label="all wide")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("late-window excess rate RMSE over float64 [Hz]")
    ax.set_title(f"Error budget: {rep['config']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_budget(rep: dict, out: Path) -> None:
    out = Path(out)
    tmp = Path(tempfile.mkdtemp(prefix=".natgrad-", dir=out))
    try:
        (tmp / "budget.json").write_text(json.dumps(rep, indent=1))
        (tmp / "budget.md").write_text(_markdown(rep))
        _plot(rep, tmp / "budget.png")
        for f in tmp.iterdir():
            shutil.move(str(f), out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cmd_budget(args) -> int:
    from natgrad.cli import UsageError, check_out_dir, load_config
    cfg = load_config(args.config)
    why = backend_for(cfg).refuses("budget")
    if why:
        raise UsageError(f"--config {args.config}: {why}")
    if args.seconds <= 0:
        raise UsageError(f"--seconds must be > 0 (got {args.seconds})")
    spec = None
    if args.task is not None or args.weight_range is not None:
        from natgrad.tasks import check_chip, load_task_arg
        spec = load_task_arg("fig3" if args.task is None else args.task, args.weight_range)
        steps = int(round(args.seconds / spec.params.dt))
        if spec.inputs is not None and steps > spec.inputs.n_steps:
            raise UsageError(f"--seconds {args.seconds:g}: the task's recording holds "
                             f"{spec.inputs.duration_s:g} s")
        check_chip(cfg, spec, args.trials, 0, spec.eta if args.eta is None else args.eta)
    out = check_out_dir(Path(args.out))
    t0 = time.time()

    def progress(done, total, name):         # progress on stderr, as every command's
        if not args.quiet:
            print(f"natgrad budget: [{done}/{total}] {name}", file=sys.stderr, flush=True)
    rep = run_budget(cfg, args.seconds, args.trials, args.seeds, progress, eta=args.eta,
                     task_spec=spec)
    rep["wall_s"] = round(time.time() - t0, 1)
    write_budget(rep, out)
    print(_markdown(rep))
    print(f"  wrote budget.json, budget.md, budget.png to {out} ({rep['wall_s']} s)")
    return 0


def add_parser(sub) -> None:
    from natgrad.cli import eta_arg, pos_int
    b = sub.add_parser("budget", help="what each quantizer of a chip config costs (Fig 3 task)")
    b.add_argument("--config", default="loihi2",
                   help="chip config: a file, or the name of a bundled one (default: loihi2)")
    b.add_argument("--task", default=None,
                   help="task file (tasks/README.md) or a bundled task's name (default: the "
                        "built-in Fig 3 task); seed s draws its trials")
    from natgrad.tasks import add_weight_range_argument
    add_weight_range_argument(b)
    b.add_argument("--seconds", type=float, default=100.0,
                   help="simulated seconds per run (default 100)")
    b.add_argument("--trials", type=pos_int("--trials"), default=4, help="trials per seed (default 4)")
    b.add_argument("--seeds", type=pos_int("--seeds"), default=2, help="seeds (default 2)")
    b.add_argument("--out", default="natgrad-budget", help="output folder (default natgrad-budget/)")
    b.add_argument("--eta", type=eta_arg(), default=None,
                   help="learning rate of the approximate rule in the code's units (default: "
                        "the task file's, else natgrad run's, 4 x 5.5e-4 = 2.2e-3)")
    b.add_argument("--quiet", action="store_true", help="no progress output (it goes to stderr)")
    b.set_defaults(func=cmd_budget)
