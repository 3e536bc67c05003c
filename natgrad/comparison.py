"""One comparison: the float64 rule against a chip config on identical spikes.

Both runs draw the same input and teacher spikes (the counter RNG, :class:`emulator.SpikeSource`),
record their weights at the same steps, and are scored by the same error
(:func:`emulator.metrics.evaluator`: rate RMSE on the task's test set, or against a recorded
teacher).  The learning curves start at the weights as each side stores them (the chip's
rounded to its weight grid); the late window decides the verdict: by default the last
quarter of the points (:func:`natgrad.analysis.late_slice`), or a window in seconds given
by the caller (the paper's experiments fix theirs, e.g. Fig 3F's 200-300 s).  Every
experiment that compares learning curves (``run``, ``budget``, ``sweep``, Fig 3F, Fig 12,
``benchmarks/chip_vs_float.py``) takes its late window from :func:`window` and its late
means from :func:`window_mean`.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from emulator import metrics
from emulator.runner import run as emulator_run
from natgrad import analysis

__all__ = ["Comparison", "compare", "curve", "from_runs", "late_excess", "late_weights",
           "n_records", "window", "window_mean"]

#: Points of a learning curve after t = 0 (the records of ``natgrad run``).
N_POINTS = 40


def n_records(steps: int, points: int = N_POINTS) -> int:
    """Steps between two recorded points of a ``steps``-step comparison."""
    return max(1, steps // points) if steps else 1


def window(t_s, window_s=None):
    """The late window of a curve sampled at times ``t_s`` (s), as an index into its points.

    ``window_s``: None, the last quarter of the points (a slice); or ``(lo, hi)`` in seconds,
    the points with ``lo <= t <= hi`` (a boolean mask; either bound None leaves that side
    open).
    """
    t_s = np.asarray(t_s, np.float64)
    if window_s is None:
        return analysis.late_slice(t_s.size)
    lo, hi = window_s
    keep = np.ones(t_s.shape, bool)
    if lo is not None:
        keep &= t_s >= lo
    if hi is not None:
        keep &= t_s <= hi
    return keep


def window_mean(y, t_s, window_s=None, *, empty="last"):
    """Mean over the late window (:func:`window`) of ``y`` (points, ...) -> (...).

    A window without points (a run that ends before it): ``empty='last'`` gives the last
    point, ``empty=None`` gives None.
    """
    y = np.asarray(y)
    sel = window(t_s, window_s)
    if np.arange(y.shape[0])[sel].size == 0:
        return y[-1] if empty == "last" else None
    return y[sel].mean(axis=0)


@dataclasses.dataclass
class Comparison:
    """Float against chip on the same spikes.

    ``float_run`` / ``chip_run``: the two :class:`emulator.RunResult`; ``t_s`` (P,) the curve
    times from 0; ``float_trials`` / ``chip_trials`` (P, trials) the error per trial in Hz;
    ``window_s`` the late window (:func:`window`; None: the last quarter of the points).
    """

    float_run: object
    chip_run: object
    t_s: np.ndarray
    float_trials: np.ndarray
    chip_trials: np.ndarray
    window_s: tuple | None = None

    @property
    def curves(self) -> dict:
        return {"t_s": self.t_s, "float_trials": self.float_trials,
                "chip_trials": self.chip_trials}

    def late_window(self) -> dict:
        """Mean and 95 % interval over trials of each side's late-window error (Hz)."""
        late = window(self.t_s, self.window_s)
        return {"float_rmse_hz": dict(zip(("mean", "ci95"),
                                          analysis.mean_ci(self.float_trials[late], axis=1))),
                "chip_rmse_hz": dict(zip(("mean", "ci95"),
                                         analysis.mean_ci(self.chip_trials[late], axis=1)))}

    def learned_rms(self, task) -> float:
        """RMS change of the float run's weights over the run (what was learned)."""
        return float(np.sqrt(np.mean((self.float_run.w_final - task.w_init) ** 2)))


def compare(backend, task, steps: int, seed: int, eta: float, *, record=("weights",),
            record_every: int | None = None, chunk_steps: int = 4000, progress=None,
            float_run=None, error_hz=None, float_trials=None, window_s=None) -> Comparison:
    """Run the float64 approximate rule and ``backend``'s config on identical spikes.

    ``record``: the float run records these; the chip its backend's report records when more
    than the weights are asked.  ``progress(label, steps_done)``.  ``float_run``: a float
    run of the same task, seed and records to reuse (a budget compares many chips with
    one float run, and ``float_trials`` its curve); ``error_hz``: the task's evaluator, if
    already built; ``window_s``: the late window (:func:`window`)."""
    every = n_records(steps) if record_every is None else int(record_every)
    error_hz = metrics.evaluator(task, seed) if error_hz is None else error_hz
    tick = (lambda label: None) if progress is None else (
        lambda label: (lambda d: progress(label, d)))
    fl = float_run if float_run is not None else emulator_run(
        "float64", task, steps, seed, eta=eta, record=record, record_every=every,
        chunk_steps=chunk_steps, progress=tick("float64 approx"))
    chip_record = backend.report_records if tuple(record) != ("weights",) else ("weights",)
    fx = backend.run(task, steps, seed, eta=eta, record=chip_record, record_every=every,
                     chunk_steps=chunk_steps, progress=tick(f"{backend.name} emulator"))
    return from_runs(task, fl, fx, error_hz, float_trials,
                     chip_w0=backend.stored_weights(task.w_init, task, eta), window_s=window_s)


def curve(task, w_rec, error_hz, w0=None) -> np.ndarray:
    """(points, trials) error [Hz] from the initial weights ``w0`` (default the task's) on
    through the records ``w_rec`` (E, K, M, N)."""
    w0 = task.w_init if w0 is None else w0
    return error_hz(np.concatenate([np.asarray(w0, np.float64)[None], w_rec]))


def from_runs(task, fl, fx, error_hz, float_trials=None, *, chip_w0=None,
              window_s=None) -> Comparison:
    """The curves of two runs that recorded the weights at the same steps; the chip's starts
    at ``chip_w0``, its stored initial weights (default the task's)."""
    t_s = np.concatenate([[0.0], fl.record_t_s])
    ct_float = curve(task, fl.record["weights"], error_hz) if float_trials is None \
        else float_trials
    return Comparison(fl, fx, t_s, ct_float,
                      curve(task, fx.record["weights"], error_hz, chip_w0), window_s)


def late_weights(run, n_points: int) -> np.ndarray:
    """The recorded weights (E, K, M, N) at the late window's points (point p is record
    p - 1: point 0 holds the initial weights)."""
    return run.record["weights"][analysis.late_slice(n_points).start - 1:]


def late_excess(c: Comparison) -> np.ndarray:
    """Per trial, the chip's mean late-window error above float's (Hz)."""
    return window_mean(c.chip_trials - c.float_trials, c.t_s, c.window_s)
