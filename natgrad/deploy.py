"""``natgrad deploy``: everything a chip needs, exported from the *discretize* step.

In the style of nengo-loihi's discretize step: the float model (neuron constants, input
rates, learning rate) and a hardware config go through :func:`emulator.discretize.discretize`
once, and its :class:`~emulator.discretize.Discretized` record of chip integers is written to
a YAML file -- integer decay constants and spike impulses, the weight exponent and the
initial weights as mantissas, the sigmoid and gamma_s tables with their axes, every constant
as mantissa and shift, the third-factor (post-factor) scalings, and a ``discretize_info``
block with the float value, the realised value and the relative error of every constant.
The integers are taken from the record, never recomputed here.

For Loihi 2 configs the file also carries the learning-engine mapping (lava_procs path 2,
``emulator.learning``): the sum-of-products rule string, its trace, tag, weight and
third-factor constants, as run bit-exactly on Lava's ``LearningDense`` in the tests.

Conventions in the file: a value with ``mant`` and ``shift`` is ``mant * 2**-shift``; a
value with ``int`` and ``frac`` is ``int * 2**-frac``; a format ``S/U bits.frac`` holds
``round(value * 2**frac)`` in ``bits`` bits.
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from natgrad.cli import UsageError, load_config, pos_int
from natgrad.deploy_files import (CONTENT_DIGEST, FORMAT_VERSION, LIST_LIMIT,  # noqa: F401
                                  deploy_record, dump_yaml, learning_engine_record,
                                  load_deployment, loihi2_rule, third_factor_text,
                                  write_le_deployment)

def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder; UsageError on failure."""
    if path.is_dir():
        raise UsageError(f"--out {path}: is a folder (give a file name such as deploy.yaml)")
    parent = path.parent if str(path.parent) else Path(".")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)          # mkstemp makes 0600; give a normal file's mode
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise UsageError(f"--out {path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _parse_rates(text: str | None):
    if text is None:
        return (10.0, 50.0)
    try:
        rates = tuple(float(r) for r in text.split(","))
    except ValueError:
        raise UsageError(f"--rates {text!r}: expected comma-separated rates in Hz, e.g. 10,50") from None
    if not all(math.isfinite(r) and r >= 0 for r in rates):
        raise UsageError(f"--rates {text!r}: each rate must be a finite number >= 0 Hz")
    if not any(r > 0 for r in rates):
        raise UsageError(f"--rates {text!r}: at least one rate must be > 0 Hz "
                         "(with no input spikes there is nothing to learn)")
    return rates


def cmd_deploy(args) -> int:
    from natgrad.protocol import default_eta
    from natgrad.tasks import load_task_arg
    cfg = load_config(args.config)
    if cfg.is_float:
        raise UsageError(f"--config {args.config}: deploy needs a chip config (kind fixed or "
                         "learning_engine), not kind float64")
    args.spec = None
    if args.task is not None:
        if args.rates is not None or args.afferents is not None:
            raise UsageError("--task: give the task file, or --rates / --afferents, not both "
                             "(the task file names its afferents)")
        args.spec = load_task_arg(args.task, args.weight_range)
        args.eta = args.spec.eta if args.eta is None else args.eta
        args.trials = args.spec.trials if args.trials is None else args.trials
        args.seed = args.spec.seed if args.seed is None else args.seed
    args.eta = default_eta() if args.eta is None else args.eta
    args.trials = 4 if args.trials is None else args.trials
    args.seed = 0 if args.seed is None else args.seed
    args.afferents = 100 if args.afferents is None else args.afferents
    rates = _parse_rates("10,50" if args.rates is None else args.rates)
    if len(rates) > args.afferents:
        raise UsageError(f"--rates: {len(rates)} groups for --afferents {args.afferents} "
                         "(need at most one group per afferent)")
    if args.afferents % len(rates):
        raise UsageError(f"--afferents {args.afferents}: not divisible into {len(rates)} "
                         "equal-size groups of --rates")
    if cfg.is_learning_engine:
        return _deploy_learning_engine(cfg, args, rates)
    if args.out is None:
        args.out = "deploy.yaml"
    if not str(args.out):
        raise UsageError("--out: empty path (give a file name such as deploy.yaml)")
    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder (give a file name such as deploy.yaml)")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"--out {out}: cannot write (folder {parent} "
                         f"{'is not writable' if parent.is_dir() else 'does not exist'})")
    try:
        task = args.spec.build(1, args.seed) if args.spec is not None else None
        rec = deploy_record(cfg, seed=args.seed, n_afferents=args.afferents, group_rates=rates,
                            lut_format=args.lut_format, eta=args.eta, task=task)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    write_atomic(out, dump_yaml(rec))
    g = rec["luts"]["gamma_s"]
    lr = rec.get("learning_rule")
    print(f"natgrad deploy: config {cfg.name} -> {out}")
    print(f"  traces: decay {rec['traces']['decay_m']}, {rec['traces']['decay_s']} "
          f"/ 2^{rec['traces']['decay_frac']}, impulse {rec['traces']['impulse']}")
    print(f"  weights: {rec['model']['N']} mantissas, "
          f"exponent {rec['weights']['exponent']}")
    print(f"  sigmoid LUT {rec['luts']['sigmoid']['entries']} entries; gamma_s LUT "
          f"{g['shape'][0]}x{g['shape'][1]} ({g['encoding']})")
    errs = {k: c["rel_err"] for k, c in rec["discretize_info"].items()
            if isinstance(c, dict) and "rel_err" in c}
    worst = max(errs, key=errs.get)
    print(f"  constants: largest relative error {errs[worst]:.2e} ({worst})")
    if lr is not None:
        print(f"  learning rule ({lr['status']}): {lr['rule']}")
    return 0


def _deploy_learning_engine(cfg, args, rates) -> int:
    """Write the deployment folder of a learning-engine config (atomically: a temporary
    sibling folder renamed into place)."""
    import shutil
    import tempfile
    from emulator import learning
    from emulator.task import fig3_task
    out = Path(args.out if args.out is not None else "natgrad-deploy")
    if not str(args.out if args.out is not None else "x"):
        raise UsageError("--out: empty path (give a folder such as natgrad-deploy)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out}: exists and is not an empty folder (a learning-engine "
                         "deployment is a folder)")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"--out {out}: cannot write (folder {parent} "
                         f"{'is not writable' if parent.is_dir() else 'does not exist'})")
    rate_vec = rates if len(rates) == args.afferents else tuple(rates)
    # the task of `natgrad run` with the same --seed / --trials: the design is chosen over
    # all its trials, so the same invocation deploys the design run judged
    if args.spec is not None:
        task = args.spec.build(args.trials, args.seed)
    else:
        task = fig3_task(n_trials=args.trials, N=args.afferents, group_rates=rate_vec,
                         seed=args.seed)
        if args.weight_range is not None:
            task.w_range = args.weight_range
    try:
        d = learning.design_for_config(cfg, task, args.eta)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    tmp = Path(tempfile.mkdtemp(prefix=".natgrad-deploy-", dir=parent))
    try:
        write_le_deployment(cfg, d, task, args.seed, tmp)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"natgrad deploy: config {cfg.name} (learning engine) -> {out}/ "
          "(deploy.yaml, design.json, network.json, manifest.json)")
    print(f"  LearningDense: {task.N} x {task.M} weights, weight_exp {d.weight_exp}, "
          f"LSB 2^-{d.w_frac}; tags {sorted(set(d.tags.tolist()))}")
    print(f"  dw = {d.rule}")
    if d.dd_products:
        print(f"  dd = {d.rule_dd}")
    for k, (v, why) in d.choices.items():
        print(f"  auto {k} = {v}: {why}")
    print(f"  build it in Lava: lava_procs.deployment.build_from_deployment('{out}')")
    print("  what runs where: the synapses are Lava's LearningDense (on Loihi 2, the chip's "
          "learning engine); the learning neuron is a CPU ProcessModel only: on a chip its "
          "program (docs/learning_neuron_program.md: 24-bit words, no division) must be "
          "written in neuron microcode or for an embedded core")
    return 0


def add_parser(sub) -> None:
    from natgrad.cli import HelpFormatter, eta_arg, seed_arg

    p = sub.add_parser("deploy", help="write the chip integers of a config (discretize step) to YAML",
                       description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    p.add_argument("--config", default="loihi2",
                   help="chip config (kind learning_engine or fixed): a file, or the name of a "
                        "bundled one")
    p.add_argument("--out", default=None,
                   help="output: a folder for a learning-engine config (default natgrad-deploy), "
                        "a YAML file for a datapath config (default deploy.yaml)")
    p.add_argument("--task", default=None,
                   help="task file (tasks/README.md) or a bundled task's name; not with "
                        "--rates / --afferents (default: the Fig 3 task of those two)")
    from natgrad.tasks import add_weight_range_argument
    add_weight_range_argument(p)
    p.add_argument("--rates", default=None, metavar="R1,R2,...",
                   help="input rates in Hz (each >= 0, at least one > 0) of equal-size afferent "
                        "groups (default 10,50: Fig 3); --afferents must be a multiple of their "
                        "number; give N values for one rate per afferent")
    p.add_argument("--afferents", type=pos_int("--afferents"), default=None,
                   help="number of afferents N (default 100)")
    p.add_argument("--seed", type=seed_arg(), default=None,
                   help="seed of the task (its trial 0's initial weights are deployed), an "
                        "integer in [0, 2**64 - 1] (default: the task file's, else 0)")
    p.add_argument("--trials", type=pos_int("--trials"), default=None,
                   help="trials of the task the design is chosen for (as natgrad run --trials; "
                        "default: the task file's, else 4)")
    p.add_argument("--eta", type=eta_arg(), default=None,
                   help="learning rate of the approximate rule in the code's units (weight "
                        "change per step per unit of the rule's bracket; the paper's eta_A is "
                        "5.5e-4); default: the task file's, else natgrad run's, 4 x 5.5e-4 = "
                        "2.2e-3")
    p.add_argument("--lut-format", choices=("auto", "list", "compact"), default="auto",
                   help=f"gamma_s table as a list, compact (zlib+base64), or auto: list up to "
                        f"{LIST_LIMIT} entries")
    p.set_defaults(func=cmd_deploy)
