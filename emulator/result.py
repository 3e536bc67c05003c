"""The result record of :func:`emulator.run`, shared by the integer and the float64 driver.

It lives in its own module so that :mod:`emulator.float_run` and :mod:`emulator.runner` need not
import each other.
"""
from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["RunResult"]


@dataclasses.dataclass
class RunResult:
    """Outcome of :func:`emulator.run`.  Float arrays are in physical units (mV, 1, ...).

    ``record[name]`` has shape (n_records, B, ...) taken after every global step k with
    ``(k + 1) % record_every == 0`` (times ``record_t_s``).  ``counters`` maps a variable
    to ``{'saturation': n, 'underflow': n, 'overflow': n, 'first_step': {...}}``.
    ``extremes[name]`` is ``(min, max)``, two (B,) arrays: the running minimum and maximum of
    a recordable variable over every step of each trial (over its neurons / afferents),
    counted inside the kernels whatever is recorded (the weights with their initial values);
    NaN where nothing was seen.  Integer and float64 runs fill it with the recordable
    variables; the learning-engine model with its own
    (:data:`emulator.learning.extremes.EXTREME_VARIABLES`: traces x1, x2, V, Vq, sigma, e,
    gamma_s, the post factor, the amount, the carry, the weights and tag_2's residual).
    """

    config_name: str
    steps: int
    seed: int
    trials: np.ndarray
    w_final: np.ndarray                 #: (B, M, N) float weights
    w_int: np.ndarray | None            #: (B, M, N) visible integer weights (fixed only)
    counters: dict
    record: dict
    record_t_s: np.ndarray
    output_spikes: np.ndarray | None    #: (B, M) student spike counts (fixed runs; None for float)
    teacher_spikes: np.ndarray          #: (B, M) teacher spike counts over the run
    #: the engine's final state: the datapath's :class:`emulator.datapath.State` (``kind:
    #: fixed``, and Lava path 1), the learning engine's :class:`emulator.learning.LEResult`
    #: (with its Design), Lava path 2's Vars read back (a dict), or None (float64)
    state: "datapath.State | LEResult | dict | None" = None  # noqa: F821 - names only
    extremes: dict = dataclasses.field(default_factory=dict)   #: name -> (min (B,), max (B,))
