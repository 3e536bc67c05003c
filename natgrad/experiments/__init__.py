"""``natgrad experiment NAME``: reproductions of the paper's figures (docs/model.md#experiments).

Each experiment is a function ``NAME(scale='small', config=None, seed=0, out=None, **overrides)``
returning a JSON-able dict (the plotted numbers, an ``effect`` section with the paper's expected
effect as numbers, and with a fixed-point ``config`` an ``effect_config`` section and the
emulator's saturation/underflow counters); with ``out`` it writes PNG figures and ``NAME.json``.
``overrides`` replace entries of the scale preset (``FIGx_PRESETS``), e.g. ``n_trials=4``;
every preset has ``eta``: the approximate rule's learning rate in code units (None: the
preset's rates; ``natgrad experiment --eta``), the other rules scaled alike, and every
result records the rate it ran as ``eta_approx_code``.

The float64 reference runs by default.  With a fixed-point config the approximate-rule parts
also run on the integer emulator (:func:`emulator.run`) on the same spikes, while the exact
natural and Euclidean parts stay float64, so both are overlaid in the figures and the JSON.
"""
from __future__ import annotations

from pathlib import Path

from .fig3 import fig3de, fig3f
from .fig4_5 import fig4, fig5
from .fig7 import fig7
from .fig12 import fig12

EXPERIMENTS = {
    "fig3de": (fig3de, "weight paths, vector fields and cost contours, N = 2 (docs/model.md#fig3de)"),
    "fig3f": (fig3f, "learning curves of Euclidean, natural, approximate rules with min/max spread (Fig 3F, 9A-C)"),
    "fig4": (fig4, "democratic plasticity: amplitude change against distance from the soma"),
    "fig5": (fig5, "weight change against USP variance, varying rate and tau_s"),
    "fig7": (fig7, "homo- and heterosynaptic heat maps and the three sign regimes"),
    "fig12": (fig12, "angles approx/Euclid vs exact natural update; approximate rule's learning curves"),
}

__all__ = ["EXPERIMENTS", "add_parser", "run_experiment"] + list(EXPERIMENTS)


def run_experiment(name: str, scale: str = "small", config=None, seed: int = 0, out=None, **overrides) -> dict:
    """Run experiment ``name`` (see :data:`EXPERIMENTS`)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r} (choose from {', '.join(EXPERIMENTS)})")
    return EXPERIMENTS[name][0](scale=scale, config=config, seed=seed, out=out, **overrides)


def _summary(res: dict) -> str:
    """A short console table: the paper's effect, float64's value, the chip's with its spread,
    each target with its verdict (every number is in NAME.json)."""
    from .common import counters_summary
    from .summary import _row, _targets_text, _verdict_word
    label = res.get("config")
    row = _row(res["experiment"], res, label)
    lines = [f"{res['experiment']} ({res['scale']}, seed {res['seed']}, config "
             f"{label or 'float64'}): {res['wall_s']:.1f} s",
             f"  paper's effect : {row['paper_effect']}",
             f"  float64        : {row['float'] or '-'}"]
    if label:
        lines.append(f"  {label:15s}: {row['chip'] or '-'}")
        if row["spread"]:
            lines.append(f"  spread         : {row['spread']}")
    for t in row["targets"]:
        lines.append(f"  target         : {_targets_text([t])}")
    if label:
        lines.append(f"  verdict        : {_verdict_word(row['verdict'])}")
    for cond, lc in res.get("learning_curves", {}).items():
        e = lc["effect"]
        t = e.get("t_rmse_below_s", {})
        lines.append(f"  curves {cond:7s}: t(RMSE < threshold) " + ", ".join(
            f"{k} {v if v is not None else 'never'}" for k, v in t.items()) + " s")
    if isinstance(res.get("counters"), dict) and res["counters"]:
        c = res["counters"] if all(isinstance(v, dict) for v in res["counters"].values()) else {}
        if c:
            lines.append(f"  counters       : {counters_summary(c)}")
    return "\n".join(lines)


def _short(o, depth=0):
    """Drop long arrays from a summary."""
    import numpy as np
    if isinstance(o, dict):
        return {k: _short(v, depth + 1) for k, v in o.items()}
    if isinstance(o, (list, tuple, np.ndarray)):
        a = np.asarray(o, dtype=object)
        if a.size > 6:
            return f"<{a.size} values>"
        return [_short(v, depth + 1) for v in o]
    if isinstance(o, (float, np.floating)):
        return float(f"{float(o):.4g}")
    return o


def cmd_experiment(args) -> int:
    import os
    import shutil
    import tempfile

    from natgrad.cli import check_out_dir, load_config
    from natgrad.progress import Heartbeat

    from . import common

    cfg = load_config(args.config) if args.config is not None else None
    if args.name == "all":
        return _cmd_all(args, cfg)
    out = Path(args.out) if args.out is not None else Path("natgrad-experiments") / args.name
    out = check_out_dir(out)
    # Write into a hidden folder first: an interrupted run leaves no partial file in ``out``.
    tmp = Path(tempfile.mkdtemp(prefix=".natgrad-experiment-", dir=out))
    try:
        with Heartbeat(f"natgrad experiment {args.name}", enabled=not args.quiet) as hb:
            hb.stage(f"scale {args.scale}, config {cfg.name if cfg else 'float64'}")
            common.set_status(hb.status, hb.stage)
            try:
                res = run_experiment(args.name, scale=args.scale, config=cfg, seed=args.seed,
                                     out=tmp, **_shard_kwargs(args), **_eta_kwargs(args))
            finally:
                common.set_status(None, None)
        for name in sorted(os.listdir(tmp)):
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(_summary(res))
    print(f"  wrote {', '.join(res['figures'] + [args.name + '.json'])} to {out}")
    return 0


def argparse_copy(args, name):
    import copy
    a = copy.copy(args)
    a.name = name
    return a


#: The experiments whose trials run in shards, and the preset entry ``--trials`` sets: the
#: Fig 3F protocol (1000 trials x 8000 s at paper scale; Fig 12's learning curves run it at
#: four more rate pairs).  The others are single runs or small grids, minutes on 2 cores.
SHARDED = {"fig3f": "n_trials", "fig12": "lc_trials"}


def _shard_kwargs(args) -> dict:
    """Sharding options (fig3f and fig12; the other experiments run in one process)."""
    from natgrad.cli import UsageError
    given = (args.executor != "serial" or args.shard_trials is not None or args.cache is not None
             or args.scheduler is not None or args.trials is not None or args.cached_only)
    if args.name not in SHARDED:
        if given and args.name != "all":
            raise UsageError(f"--executor/--shard-trials/--cache/--scheduler/--trials/"
                             f"--cached-only apply to {' and '.join(SHARDED)} only "
                             f"(got experiment {args.name})")
        return {}
    if args.scheduler is not None and args.executor != "dask":
        raise UsageError("--scheduler needs --executor dask")
    kw = {"executor": args.executor, "workers": args.workers, "scheduler": args.scheduler,
          "shard_trials": args.shard_trials, "cache": args.cache}
    if args.trials is not None:
        kw[SHARDED[args.name]] = args.trials
    if args.cached_only:
        if args.cache is None:
            raise UsageError("--cached-only needs --cache DIR")
        kw["cached_only"] = True
    return kw


def _eta_kwargs(args) -> dict:
    """``--eta`` as the preset override ``eta`` (not given: the presets' own rates)."""
    return {} if getattr(args, "eta", None) is None else {"eta": args.eta}


def _cmd_all(args, cfg) -> int:
    """The six experiments in turn (each into its own subfolder), then the summary."""
    import os
    import shutil
    import tempfile
    import time

    from natgrad.cli import check_out_dir
    from natgrad.progress import Heartbeat

    from . import common
    from .summary import ORDER, write_summary
    out = check_out_dir(Path(args.out) if args.out is not None else Path("natgrad-experiments") / "all")
    tmp = Path(tempfile.mkdtemp(prefix=".natgrad-experiment-", dir=out))
    t0 = time.time()
    results = {}
    try:
        with Heartbeat("natgrad experiment all", enabled=not args.quiet) as hb:
            for i, name in enumerate(ORDER):
                hb.stage(f"[{i + 1}/{len(ORDER)}] {name} (scale {args.scale}, config "
                         f"{cfg.name if cfg else 'float64'})")
                sub = tmp / name
                sub.mkdir()
                common.set_status(hb.status, hb.stage)
                try:
                    kw = _shard_kwargs(argparse_copy(args, name)) | _eta_kwargs(args)
                    results[name] = run_experiment(name, scale=args.scale, config=cfg,
                                                   seed=args.seed, out=sub, **kw)
                finally:
                    common.set_status(None, None)
                print(_summary(results[name]), flush=True)
            hb.stage("writing the summary")
            label = results[ORDER[0]].get("config")
            rec = write_summary(tmp, results, label, {"scale": args.scale, "seed": args.seed,
                                                      "wall_s": round(time.time() - t0, 1)})
        for name in sorted(os.listdir(tmp)):
            dst = out / name
            if dst.is_dir():
                shutil.rmtree(dst)
            os.replace(tmp / name, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print((out / "summary.md").read_text())
    print(f"  wrote summary.md, summary.html, summary.json and one folder per figure to {out} "
          f"({rec['wall_s']} s)")
    return 0


def add_parser(sub) -> None:
    from natgrad.cli import HelpFormatter, eta_arg, pos_int, seed_arg

    e = sub.add_parser("experiment", help="reproduce a figure of the paper (PNG + JSON)",
                       formatter_class=HelpFormatter,
                       description="Reproduce a figure of the paper: " +
                       "; ".join(f"{k}: {v[1]}" for k, v in EXPERIMENTS.items()))
    e.add_argument("name", choices=list(EXPERIMENTS) + ["all"], metavar="NAME",
                   help="one of " + ", ".join(EXPERIMENTS) + ", or all (the six and a summary page)")
    e.add_argument("--config", default=None,
                   help="hardware config file or bundled name (e.g. loihi2): the approximate-rule "
                        "parts also run on its integer emulator (not given: float64 reference only)")
    e.add_argument("--scale", choices=("small", "paper"), default="small",
                   help="small: minutes on 2 cores; paper: the paper's trial counts and "
                        "durations (hours)")
    e.add_argument("--out", default=None, help="output folder (not given: natgrad-experiments/NAME)")
    e.add_argument("--seed", type=seed_arg(), default=0,
                   help="seed of the counter RNG, an integer in [0, 2**64 - 1]")
    e.add_argument("--eta", type=eta_arg(), default=None,
                   help="learning rate of the approximate rule in the code's units (the "
                        "paper's eta_A is 5.5e-4); the experiment's other rules are scaled by "
                        "the same factor, and NAME.json records it as eta_approx_code "
                        "(default: each experiment's own, e.g. fig3f small: 4 x 5.5e-4)")
    e.add_argument("--quiet", action="store_true", help="no progress output")
    e.add_argument("--executor", choices=("serial", "local", "dask"), default="serial",
                   help="fig3f, fig12: where the trial shards run (a local process pool, or "
                        "Dask)")
    e.add_argument("--workers", type=pos_int("--workers"), default=2,
                   help="fig3f, fig12: processes of the local pool / Dask LocalCluster")
    e.add_argument("--scheduler", default=None,
                   help="fig3f, fig12: address of a running Dask scheduler (e.g. from "
                        "dask-jobqueue)")
    e.add_argument("--shard-trials", type=pos_int("--shard-trials"), default=None,
                   help="fig3f, fig12: trials per shard (not given: all trials in one shard)")
    e.add_argument("--trials", type=pos_int("--trials"), default=None,
                   help="fig3f, fig12 (its learning curves): number of trials (not given: the "
                        "scale's; 1000 at paper scale)")
    e.add_argument("--cached-only", action="store_true",
                   help="fig3f, fig12: run no trial, report on the shards already in "
                        "--cache (an unfinished multi-session run; fig12 still computes its "
                        "angle histograms)")
    e.add_argument("--cache", default=None,
                   help="fig3f, fig12: folder of finished shards; a rerun with the same "
                        "arguments resumes from it")
    e.set_defaults(func=cmd_experiment)
