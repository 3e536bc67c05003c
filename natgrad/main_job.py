"""``natgrad run``: float reference against a chip config on identical spikes.

Runs a task file (default: the Fig 3 teacher-student task, docs/model.md#teacher and
#fig3f: N = 100 afferents at 10/50 Hz, w, w* ~ U(-1, 1)/N, at the scaled learning rates x4) with
* the float64 approximate rule (the reference),
* the same rule on the chosen config (Loihi 2's learning engine, an integer datapath),
* the float64 Euclidean rule, for context,
all on the same input and teacher spikes, plus a short Lava cross-check of the config.  Prints
the learning curves; with ``out`` it also writes the quantization report (``report.md``,
``report.html``, ``report.json`` and PNG figures).  The comparison is
:mod:`natgrad.comparison`, what the config adds to the report is its backend's
(:mod:`natgrad.backends`), the printing :mod:`natgrad.console` and the provenance
:mod:`natgrad.provenance`.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from emulator import metrics
from emulator.hwconfig import HwConfig
from emulator.reference import ETA_CODE, simulate
from emulator.task import fig3_task
from natgrad import analysis, comparison, console
from natgrad.backends import backend_for
from natgrad.progress import Progress
from natgrad.protocol import chunk_steps, default_eta
from natgrad.provenance import provenance

__all__ = ["DEFAULT_STEPS", "run_main_job"]

N_AFFERENTS = 100
#: The main job runs the scaled-down Fig 3F protocol (docs/model.md#fig3f): the code learning
#: rates times 4 (:mod:`natgrad.protocol`), so that a few hundred seconds show the whole
#: story (Euclid first, then the natural-gradient rules ahead) instead of only its beginning.
#: Default length: 300 s of simulated time.
DEFAULT_STEPS = 600_000


def run_main_job(cfg: HwConfig, steps: int, seed: int, trials: int = 4, out: Path | None = None,
                 lava_steps: int = 200, progress: bool = True, eta: float | None = None,
                 task_spec=None) -> dict:
    """Run the default job and return the report dictionary (also written when ``out``,
    with the deployment of the design judged).  ``eta``: the approximate rule's learning
    rate in code units (default: the task file's, else :func:`default_eta`); the Euclidean
    context run is scaled by the same factor against the paper's code rates.  ``task_spec``:
    an :class:`emulator.taskfile.TaskSpec` (default: the paper's Fig 3 task, N = 100)."""
    t_start = time.time()
    backend = backend_for(cfg)
    if task_spec is None:
        task = fig3_task(n_trials=trials, N=N_AFFERENTS, seed=seed)
        task_info = {"name": "fig3 (built in)", "N": N_AFFERENTS, "M": 1}
    else:
        task = task_spec.build(trials, seed)
        task_info = task_spec.describe()
        eta = task_spec.eta if eta is None else eta
    every = comparison.n_records(steps)
    error_hz = metrics.evaluator(task, seed)      # weights (E, K, M, N) -> (E, K) [Hz]
    eta = default_eta() if eta is None else float(eta)
    eta_scale = eta / ETA_CODE["approx"]
    bar = Progress(3 * steps + 1, progress, prefix="natgrad run")
    bar.stage("float64 reference, chip config, Euclidean rule")
    console.print_header(cfg, steps, task.params.dt, trials, task_info, task, seed, eta, eta_scale)

    offsets = {"float64 approx": 0}
    cmp = comparison.compare(
        backend, task, steps, seed, eta, record=_float_records(), record_every=every, chunk_steps=chunk_steps(trials), error_hz=error_hz,
        progress=lambda label, d: bar(offsets.get(label, steps) + d, label))
    fl, fx = cmp.float_run, cmp.chip_run
    bar(2 * steps, "float64 Euclidean")
    eu = simulate(task, "euclid", ETA_CODE["euclid"] * eta_scale, steps, seed,
                  record_every=every, eval_every=every)
    bar(3 * steps, "float64 Euclidean")
    n_lava = min(lava_steps, steps)
    if n_lava and backend.label() is not None:
        bar.stage(f"Lava cross-check ({n_lava} steps)")
    cross = (backend.lava_crosscheck(task, seed, n_lava, eta) if n_lava else
             {"lava_bit_exact": None, "steps": 0, "detail": "skipped (--lava-steps 0)"})
    bar(3 * steps + 1, "done")
    bar.close()

    t_s = cmp.t_s
    c_float, c_chip = cmp.float_trials.mean(axis=1), cmp.chip_trials.mean(axis=1)
    if eu.rmse is not None:
        c_euclid = eu.rmse.mean(axis=(1, 2))
    else:                             # a recorded teacher: the same error as the others
        c_euclid = error_hz(eu.W_record).mean(axis=1) if len(eu.W_record) else None
    story = analysis.leader_story(t_s, c_float, c_euclid if c_euclid is not None else c_float + 1)
    console.print_curves(cfg.name, t_s, c_float, c_chip, c_euclid, story)

    sections = backend.report_sections(fl, fx, task, eta, steps, trials)
    learned = cmp.learned_rms(task)
    verdict = analysis.verdict(cmp.curves, fx.counters,
                               backend.evidence(fx, sections, steps, trials, learned))
    w_err = fx.w_final - fl.w_final
    report = {
        "config": {"name": cfg.name, "source": str(cfg.source), "kind": cfg.kind,
                   "kind_text": backend.kind_text, "lava_text": backend.lava_text,
                   "tree": cfg.tree},
        "verdict": verdict,
        "story": story,
        "steps": steps, "seed": seed, "trials": trials, "N": task.N, "M": task.M,
        "task": task_info,
        "dt_s": task.params.dt,
        "eta_code": {"approx": eta, "euclid": ETA_CODE["euclid"] * eta_scale,
                     "scale_vs_paper_code": eta_scale},
        "curves": {"t_s": t_s.tolist(),
                   "float": {"rate_rmse_hz": c_float.tolist(),
                             "per_trial": cmp.float_trials.T.tolist()},
                   "chip": {"rate_rmse_hz": c_chip.tolist(),
                            "per_trial": cmp.chip_trials.T.tolist()},
                   "euclid_float": {"rate_rmse_hz": None if c_euclid is None
                                    else c_euclid.tolist()}},
        "late_window": {"t_s": verdict["late_window_s"], **cmp.late_window()},
        "variables": sections.variables,
        "variables_note": list(backend.variables_note),
        "updates": sections.updates,
        "weights": {"final_rmse_vs_float": float(np.sqrt(np.mean(w_err**2))),
                    "final_max_abs_vs_float": float(np.max(np.abs(w_err))),
                    "learned_change_rms_float": learned},
        "counters": fx.counters,
        "third_factor": sections.third_factor,
        "crosscheck": cross,
        "provenance": {**provenance(seed, t_start), "task": task_info},
    }
    if backend.not_applicable():
        report["not_applicable"] = backend.not_applicable()
    deployment = None
    if out is not None:
        task_arg = "" if task_spec is None else f" --task {task_spec.source}"
        if task_spec is not None and isinstance(task_spec.weight_range, float):
            task_arg += f" --weight-range {task_spec.weight_range!r}"
        deployment = backend.judged_deployment(fx, task, seed, eta, task_arg)
    if deployment is not None:
        report["deployment"] = {k: v for k, v in deployment.items() if k != "write"}
    console.print_verdict(verdict, cross)
    if out is not None:
        from natgrad.progress import Heartbeat
        from natgrad.report import write_report
        with Heartbeat("natgrad run", progress) as hb:
            hb.stage("writing the report")
            write_report(report, fl, fx, out,   # atomic: a temp folder, then renames
                         extra=None if deployment is None else deployment["write"],
                         series=sections.series)
        print(f"  report written to {out}/report.html, report.md, report.json")
    return report


def _float_records() -> tuple:
    """What the float run records for the report: every datapath record (the learning
    engine's variables are compared with these too)."""
    from emulator.variables import RECORD_VARIABLE
    return tuple(RECORD_VARIABLE)
