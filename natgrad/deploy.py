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

from natgrad.cli import UsageError, load_config, pos_int
from natgrad.deploy_files import (CONTENT_DIGEST, FORMAT_VERSION, LIST_LIMIT,  # noqa: F401
                                  deploy_record, dump_yaml, learning_engine_record,
                                  load_deployment, loihi2_rule, third_factor_text,
                                  write_atomic, write_le_deployment)

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
    from natgrad.backends import backend_for
    backend = backend_for(load_config(args.config))
    why = backend.refuses("deploy")
    if why:
        raise UsageError(f"--config {args.config}: {why}")
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
    return backend.deploy(args, rates)


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
