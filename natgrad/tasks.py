"""``--task``: the command line's side of task files (:mod:`emulator.taskfile`)."""
from __future__ import annotations

from natgrad.errors import UsageError

__all__ = ["TASK_HELP", "add_task_argument", "load_task_arg"]

TASK_HELP = ("task file (tasks/README.md): a path, or the name of a bundled task (fig3, "
             "large_n1000_m500, recorded_inputs); default fig3, the paper's Fig 3 task")


def add_task_argument(p, default: str | None = "fig3") -> None:
    p.add_argument("--task", default=default, help=TASK_HELP)


def load_task_arg(text: str):
    """The validated :class:`emulator.taskfile.TaskSpec`; a bad file is a UsageError (one
    line, exit 2)."""
    from emulator.taskfile import TaskError, load_task
    if not str(text):
        raise UsageError("--task: empty (give a task file or a bundled task's name)")
    try:
        return load_task(text)
    except TaskError as exc:
        raise UsageError(f"--task {text}: {exc}") from None


def check_chip(cfg, spec, trials: int, seed: int, eta: float) -> None:
    """Refuse (UsageError, one line) a task the chip config cannot represent: the design
    (learning engine) or the discretization (datapath) of the task names the limit."""
    if cfg.is_float:
        return
    task = spec.build(trials, seed)
    try:
        if cfg.is_learning_engine:
            from emulator import learning
            learning.design_for_config(cfg, task, eta)
        else:
            from emulator.discretize import discretize
            discretize(cfg, task.params, task.rates, eta)
    except ValueError as exc:
        raise UsageError(f"task {spec.name} on config {cfg.name}: {exc}") from None
