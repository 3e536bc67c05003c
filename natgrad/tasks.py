"""``--task``: the command line's side of task files (:mod:`emulator.taskfile`)."""
from __future__ import annotations

from natgrad.argtypes import bounded_float
from natgrad.errors import UsageError

__all__ = ["TASK_HELP", "add_task_argument", "add_weight_range_argument", "load_task_arg"]

WEIGHT_RANGE_HELP = ("largest |w| you expect the weights to reach while learning, in the "
                     "weights' units (code units: mV per unit of USP); the chip's automatic "
                     "ranges are fitted to it and to the initial weights, never to the "
                     "teacher's (default: the task file's expected_weight_range; fig3: 1/N "
                     "= 0.01)")

TASK_HELP = ("task file (tasks/README.md): a path, or the name of a bundled task (fig3, "
             "large_n1000_m500, recorded_inputs, recorded_teacher); default fig3, the "
             "paper's Fig 3 task")


def add_task_argument(p, default: str | None = "fig3") -> None:
    p.add_argument("--task", default=default, help=TASK_HELP)


def add_weight_range_argument(p) -> None:
    p.add_argument("--weight-range", type=_weight_range_arg, default=None, metavar="W",
                   help=WEIGHT_RANGE_HELP)


#: argparse type of --weight-range: the largest |w| expected, in (0, 1000]
_weight_range_arg = bounded_float("--weight-range", 1e3, "the largest |w| expected")


def load_task_arg(text: str, weight_range: float | None = None):
    """The validated :class:`emulator.taskfile.TaskSpec`, with its expected weight range
    replaced by ``weight_range`` when given; a bad file is a UsageError (one line, exit 2)."""
    from emulator.taskfile import TaskError, load_task, with_weight_range
    if not str(text):
        raise UsageError("--task: empty (give a task file or a bundled task's name)")
    try:
        return with_weight_range(load_task(text), weight_range)
    except TaskError as exc:
        raise UsageError(f"--task {text}: {exc}") from None


def check_chip(cfg, spec, trials: int, seed: int, eta: float) -> None:
    """Refuse (UsageError, one line) a task the chip config cannot represent: the design
    (learning engine) or the discretization (datapath) of the task names the limit."""
    from natgrad.backends import backend_for
    backend = backend_for(cfg)
    if backend.label() is None:           # the float reference runs every task
        return
    try:
        backend.check_task(spec.build(trials, seed), eta)
    except ValueError as exc:
        raise UsageError(f"task {spec.name} on config {cfg.name}: {exc}") from None
