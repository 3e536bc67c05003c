"""The ``natgrad`` command line.

Bad input (config, argument, output folder) prints one line ``natgrad: error: ...`` and
exits with status 2; nothing is written.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


class UsageError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


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


def check_out_dir(path: Path) -> Path:
    """Create ``path`` if needed and make sure it is writable; UsageError otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".natgrad-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out {path}: not a writable folder ({exc.strerror or exc})")
    return path


def load_config(name):
    from emulator.hwconfig import ConfigError, load
    try:
        return load(name)
    except ConfigError as exc:
        raise UsageError(str(exc))


def cmd_run(args) -> int:
    from natgrad.main_job import run_main_job
    cfg = load_config(args.config)
    out = check_out_dir(Path(args.out)) if args.out else None
    run_main_job(cfg, steps=args.steps, seed=args.seed, trials=args.trials, out=out,
                 lava_steps=args.lava_steps, progress=not args.quiet)
    return 0


def cmd_check_config(args) -> int:
    from natgrad.formats import describe
    cfg = load_config(args.file)
    print(describe(cfg))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="natgrad", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="teacher-student task: float reference vs integer emulator")
    r.add_argument("--config", default="loihi2",
                   help="hardware config: a file, or the name of a bundled one (default: loihi2)")
    r.add_argument("--steps", type=nonneg_int("--steps"), default=600_000,
                   help="time steps of 0.5 ms (default 600000 = 300 s)")
    r.add_argument("--seed", type=nonneg_int("--seed"), default=0)
    r.add_argument("--trials", type=pos_int("--trials"), default=4)
    r.add_argument("--lava-steps", type=nonneg_int("--lava-steps"), default=200,
                   help="steps of the Lava cross-check (0 skips it)")
    r.add_argument("--out", default=None, help="report folder (default: no report files)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("check-config", help="validate a config and print its derived formats")
    c.add_argument("file")
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


class _Parser(argparse.ArgumentParser):
    pass


def main(argv=None) -> int:
    parser = build_parser()

    def one_line_error(message):
        sys.stderr.write(f"natgrad: error: {message}\n")
        sys.exit(2)

    parser.error = one_line_error  # type: ignore[method-assign]
    for action in parser._subparsers._group_actions:  # sub-parsers share the one-line style
        for sp in action.choices.values():
            sp.error = one_line_error  # type: ignore[method-assign]
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        one_line_error(str(exc))
    except KeyboardInterrupt:
        sys.stderr.write("natgrad: interrupted\n")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
