"""The ``natgrad`` command line.

Bad input (config, argument, output folder) prints one line ``natgrad: error: ...`` and
exits with status 2; nothing is written.  SIGINT / SIGTERM print one line and exit with
status 130 / 143 within seconds, after stopping every child process and removing what the
command had written (see :mod:`natgrad.interrupt`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from natgrad import interrupt
from natgrad.errors import UsageError  # noqa: F401 - the subcommands import it from here

#: Seeds of the counter RNG are 64-bit words (fixedpoint.rng masks them to 64 bits).
SEED_MAX = 2**64 - 1
#: Emulator throughput on one core (trial-steps per second for the float reference, the
#: integer emulator and the Euclidean rule together), only to refuse a job that would run
#: for more than :data:`MAX_RUN_S` before it starts: measured 1e5 with 4 trials, 2e4 with
#: 400 (a shared 2-core machine); the lower, conservative.  The time a command shows while
#: it runs is measured in that run (:class:`natgrad.progress.Progress`), not this.
RUN_TRIAL_STEPS_PER_S = 2.0e4
#: Estimated run times beyond this are refused (no one waits for them; shorten --steps).
MAX_RUN_S = 7 * 24 * 3600.0




def nonneg_int(name):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer >= 0 (got {text!r})")
        if value < 0:
            raise argparse.ArgumentTypeError(f"{name} must be an integer >= 0 (got {value})")
        return value
    return parse


def pos_int(name):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer >= 1 (got {text!r})")
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be an integer >= 1 (got {value})")
        return value
    return parse


def seed_arg(name="--seed"):
    """A seed of the counter RNG: an integer in [0, 2**64 - 1]."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer in [0, 2**64 - 1] "
                                             f"(got {text!r})")
        if not 0 <= value <= SEED_MAX:
            raise argparse.ArgumentTypeError(f"{name} must be an integer in [0, 2**64 - 1] "
                                             f"(got {value})")
        return value
    return parse


def available_memory() -> int:
    """Bytes of memory available to a new allocation (MemAvailable of /proc/meminfo)."""
    try:
        import psutil
        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - fall back to /proc
        try:
            with open("/proc/meminfo") as fh:
                for line in fh:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
    return 2**63


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_fits(what: str, need_bytes: float, est_s: float | None = None) -> None:
    """Refuse (UsageError) a job whose estimated memory exceeds what is available, or whose
    estimated run time exceeds :data:`MAX_RUN_S`; nothing has been allocated yet."""
    have = available_memory()
    if need_bytes > 0.9 * have:
        raise UsageError(f"{what} needs about {_gib(need_bytes)} of memory, "
                         f"{_gib(have)} is available")
    if est_s is not None and est_s > MAX_RUN_S:
        raise UsageError(f"{what} would run for about {est_s / 86400:.3g} days "
                         f"(limit {MAX_RUN_S / 86400:g} days)")


def check_out_dir(path: Path) -> Path:
    """Create ``path`` if needed and make sure it is writable; UsageError otherwise.

    The folder is tracked (:func:`natgrad.interrupt.track_output`): if the command fails or
    is interrupted, a folder it created is removed, and a pre-existing one loses only what
    the command added.
    """
    if not str(path):
        raise UsageError("--out: empty path (give a folder name)")
    interrupt.track_output(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".natgrad-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out {path}: not a writable folder ({exc.strerror or exc})")
    return path


def eta_arg():
    """An argparse type: a learning rate in code units, finite and in (0, 1]."""
    from natgrad.argtypes import bounded_float
    return bounded_float("--eta", 1.0, "code units; the paper's eta_A is 5.5e-4")


def load_config(name):
    from emulator.hwconfig import ConfigError, load
    try:
        return load(name)
    except ConfigError as exc:
        raise UsageError(str(exc))


def run_preflight(steps: int, trials: int, afferents: int = 100,
                  outputs: int = 1) -> tuple[float, float]:
    """(bytes, seconds) estimated for ``natgrad run``, independent of the number of steps:
    about 0.25 GiB, plus per trial 12 MiB per 100 afferents (spike and trace chunks of 4000
    steps) and 6 KiB per synapse (the recorded variables: 41 rows of each; measured 3.05 GiB
    peak for N = 1000 afferents x M = 500 outputs, one trial); the time from
    :data:`RUN_TRIAL_STEPS_PER_S` (measured with 100 synapses)."""
    synapses = afferents * outputs
    need = 0.25 * 2**30 + trials * (afferents * 4000 * 30 + synapses * 6 * 2**10)
    return need, steps * trials * max(synapses / 100, 1.0) / RUN_TRIAL_STEPS_PER_S


def cmd_run(args) -> int:
    from natgrad.main_job import run_main_job
    if args.out is not None and not args.out:
        raise UsageError("--out: empty path (give a folder name, or leave --out out for no report)")
    from natgrad.tasks import load_task_arg
    spec = load_task_arg(args.task, args.weight_range)
    args.steps = spec.steps if args.steps is None else args.steps
    args.trials = spec.trials if args.trials is None else args.trials
    args.seed = spec.seed if args.seed is None else args.seed
    if args.lava_steps is None:          # the default: 200 steps, or the whole of a shorter run
        args.lava_steps = min(200, args.steps)
    elif args.lava_steps > args.steps:
        raise UsageError(f"--lava-steps {args.lava_steps}: at most --steps ({args.steps}); the "
                         "Lava cross-check replays the start of the run")
    if spec.inputs is not None and args.steps > spec.inputs.n_steps:
        raise UsageError(f"--steps {args.steps}: the task's recording holds "
                         f"{spec.inputs.n_steps} steps ({spec.inputs.duration_s:g} s)")
    cfg = load_config(args.config)
    need, est = run_preflight(args.steps, args.trials, spec.N, spec.M)
    check_fits(f"run --steps {args.steps} --trials {args.trials}", need, est)
    from natgrad.tasks import check_chip
    check_chip(cfg, spec, args.trials, args.seed, spec.eta if args.eta is None else args.eta)
    out = check_out_dir(Path(args.out)) if args.out else None
    run_main_job(cfg, steps=args.steps, seed=args.seed, trials=args.trials, out=out,
                 lava_steps=args.lava_steps, progress=not args.quiet, eta=args.eta,
                 task_spec=spec)
    return 0


def cmd_check_config(args) -> int:
    from natgrad.backends import describe
    cfg = load_config(args.file)
    print(describe(cfg))
    return 0


def plain(text: str) -> str:
    """Docstring markup (``code``, *emphasis*) as plain text for the terminal."""
    import re
    return re.sub(r"(?<![\w*])\*(\w[^*\n]*?)\*(?![\w*])", r"\1", text.replace("``", ""))


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help with the default of every option that has one, and without docstring markup."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)

    def _format_text(self, text):
        return super()._format_text(plain(text))

    def _expand_help(self, action):
        return plain(super()._expand_help(action))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="natgrad", description=__doc__.splitlines()[0],
                                formatter_class=HelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="teacher-student task: float reference vs integer emulator",
                       description="Teacher-student task (Fig 3): the float64 reference against "
                       "the integer emulator of a hardware config, on identical spikes, plus a "
                       "short Lava cross-check.", formatter_class=HelpFormatter)
    r.add_argument("--config", default="loihi2",
                   help="hardware config: a file, or the name of a bundled one")
    r.add_argument("--task", default="fig3",
                   help="task file (tasks/README.md): a path, or the name of a bundled task "
                        "(fig3, large_n1000_m500, recorded_inputs, recorded_teacher)")
    from natgrad.tasks import add_weight_range_argument
    add_weight_range_argument(r)
    r.add_argument("--steps", type=pos_int("--steps"), default=None,
                   help="time steps of dt (default: the task's duration; fig3: 600000 = 300 s)")
    r.add_argument("--seed", type=seed_arg(), default=None,
                   help="seed of the counter RNG, an integer in [0, 2**64 - 1] (default: the "
                        "task's, 0)")
    r.add_argument("--trials", type=pos_int("--trials"), default=None,
                   help="independent teacher-student trials, about 12 MiB of memory each per "
                        "100 synapses (default: the task's, fig3: 4)")
    r.add_argument("--lava-steps", type=nonneg_int("--lava-steps"), default=None,
                   help="time steps of the Lava cross-check, at most --steps (0 skips it; "
                        "default 200, or --steps if fewer)")
    r.add_argument("--eta", type=eta_arg(), default=None,
                   help="learning rate of the approximate rule in the code's units (the "
                        "paper's eta_A is 5.5e-4; the Euclidean context run is scaled alike); "
                        "default: the task's (fig3: 4 x 5.5e-4 = 2.2e-3, the scaled 300-s "
                        "protocol)")
    r.add_argument("--out", default=None,
                   help="report folder, with the deployment of the design judged (not given: "
                        "no files)")
    r.add_argument("--quiet", action="store_true", help="no progress output")
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("check-config", help="validate a config and print its derived formats",
                       formatter_class=HelpFormatter)
    c.add_argument("file", help="config file, or the name of a bundled config")
    c.set_defaults(func=cmd_check_config)

    # Further subcommands live in their own modules; each exposes add_parser(sub), whose
    # handler raises UsageError for bad input.
    import importlib
    for module in ("natgrad.sweep", "natgrad.deploy", "natgrad.experiments", "natgrad.budget"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.add_parser(sub)
    return p


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--opt -10,50`` -> ``--opt=-10,50``: argparse takes a value starting with '-' (other
    than a plain negative number) for an option and reports a missing argument; joined,
    the value reaches the option's own check and its message."""
    out, argv = [], list(argv)
    i = 0
    while i < len(argv):
        a = argv[i]
        if (a.startswith("--") and "=" not in a and i + 1 < len(argv)
                and len(argv[i + 1]) > 1 and argv[i + 1][0] == "-"
                and (argv[i + 1][1].isdigit() or argv[i + 1][1] == ".")):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def main(argv=None) -> int:
    """Run the command line (``argv`` None: ``sys.argv``, and an interrupted command ends
    the process at once after its cleanup, skipping exit handlers such as Dask's, which
    may wait for a cluster that is gone)."""
    interrupt.install()
    try:
        code = _main(argv)
        if argv is None:               # done: a late signal must not kill the exit
            interrupt.ignore_signals()
        return code
    except KeyboardInterrupt:          # SIGINT, or SIGTERM (interrupt.Terminated)
        code = interrupt.finish()
        if argv is None:
            interrupt.hard_exit(code)
        return code


def _main(argv) -> int:
    parser = build_parser()

    def one_line_error(message):
        sys.stderr.write(f"natgrad: error: {message}\n")
        sys.exit(2)

    parser.error = one_line_error  # type: ignore[method-assign]
    for action in parser._subparsers._group_actions:  # sub-parsers share the one-line style
        for sp in action.choices.values():
            sp.error = one_line_error  # type: ignore[method-assign]
    args = parser.parse_args(_join_negative_values(sys.argv[1:] if argv is None else argv))
    try:
        code = args.func(args)
    except UsageError as exc:
        interrupt.discard_outputs()
        one_line_error(str(exc))
    except OSError as exc:
        # a disk that fills up, a folder that turns read-only, a vanished mount: every file
        # is written under a temporary name and renamed into place, so discarding the
        # outputs leaves the old content or nothing; one line names the path and the reason
        interrupt.discard_outputs()
        where = exc.filename if exc.filename is not None else "output"
        sys.stderr.write(f"natgrad: error: cannot write {where}: "
                         f"{exc.strerror or type(exc).__name__}\n")
        return 1
    except BaseException:
        interrupt.discard_outputs()    # a failed or interrupted command leaves no debris
        raise
    interrupt.keep_outputs()
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
