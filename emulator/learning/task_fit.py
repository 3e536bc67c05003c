"""A design fitted to a task: the weight LSB and the V range 'auto' chosen from what a user
knows before learning (the initial weights and the stated expected weight range, never the
teacher's weights), then :func:`~emulator.learning.derivation.design`."""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from emulator.rule_math import membrane_stats
from emulator.task import Task

from .constants import DEFAULT_MAPPING, EngineSpec, MappingSpec, NeuronSpec
from .derivation import _MAPPING_KW, design
from .design_record import Design, e_bits
from .unit_choice import default_w_frac


def design_for_task(task: Task, eta: float, w_frac: int | None = None, *,
                    mapping: MappingSpec | None = None, engine: EngineSpec | None = None,
                    neuron: NeuronSpec | None = None, **kw) -> Design:
    """:func:`design` with ``w_frac`` and the V range 'auto' fitted to what a user knows
    before learning: the initial weights and the stated expected range ``task.w_range``.

    'auto' picks the finest LSB 2**-w_frac with the larger of max |w_init| and ``w_range``
    within 128 LSB (2x headroom to 255); ``Design.choices['w_frac']`` says so.  The
    teacher's weights are never read: a user deploying for real does not have them.
    """
    if not getattr(task.f, "is_identity", False):
        raise ValueError(f"the learning engine stores somatic weights only (parametrization "
                         f"identity); this task's weights are {type(task.f).__name__}")
    mp = dataclasses.replace(mapping or DEFAULT_MAPPING,
                             **{k: kw.pop(k) for k in list(kw) if k in _MAPPING_KW})
    if w_frac is not None:
        mp = dataclasses.replace(mp, w_frac=int(w_frac))
    choices = {}
    if mp.w_frac == "auto":
        wmax, source = expected_max_abs_weight(task)
        wf = default_w_frac(wmax)
        if not 0 <= wf <= 40:
            raise ValueError(
                f"the task's weights (largest |w| {wmax:.4g}, {source}) are beyond the engine's "
                f"weight range at every exponent: {e_bits(engine)}-bit weights with an LSB "
                f"2**-w_frac, w_frac in [0, 40], hold |w| in [{2.0 ** -40 * 128:.3g}, 128]")
        choices["w_frac"] = (wf, f"largest |w| {wmax:.4g} ({source}) uses "
                                 f"{wmax * 2.0 ** wf:.0f} of 255 LSB (<= 128: 2x headroom)")
        mp = dataclasses.replace(mp, w_frac=wf)
    if mp.v_range_mv == "auto":
        vr, why = auto_v_range(task)
        choices["v_range_mv"] = (vr, why)
        mp = dataclasses.replace(mp, v_range_mv=vr)
    return design(task.params, task.rates, eta, mapping=mp, engine=engine, neuron=neuron,
                  choices=choices, **kw)


def expected_max_abs_weight(task: Task) -> tuple[float, str]:
    """(largest |w| the design must hold, where it comes from): the larger of the initial
    weights' and the stated expected range ``task.w_range``; the teacher's weights are
    never read."""
    w0 = float(np.max(np.abs(task.w_init)))
    if task.w_range is None:
        return w0, "initial weights; no expected weight range stated"
    if task.w_range >= w0:
        return float(task.w_range), "the stated expected weight range"
    return w0, "initial weights, beyond the stated expected weight range"


def auto_v_range(task: Task, n_sd: float = 4.0, floor_mv: float = 10.0) -> tuple[float, str]:
    """|V| range that y3 = 64 + Vq must cover for ``task``, from what a user knows before
    learning (never the teacher's weights), rounded up to 1 mV and at least ``floor_mv``:

    - at the initial weights of every trial, the largest ``|m| + n_sd sqrt(v)`` of the
      membrane potential's Gaussian (docs/model.md#membrane-potential-statistics:
      m = sum f(w) r, v = sum f(w)^2 r / c_eps);
    - with a stated expected range ``w_range``, ``n_sd`` standard deviations of V over
      weights spread uniformly in [-w_range, w_range] and the input noise:
      ``sqrt(sum_i f(w_range)_i^2 / 3 * (r_i^2 + r_i / c_eps))``.

    A wider range makes Vq coarser (64 levels per sign), so the smallest covering one is
    chosen.
    """
    p = task.params
    ws = task.f.f(np.asarray(task.w_init, dtype=np.float64))
    m, v = membrane_stats(ws, task.rates, p.c_eps)
    worst = float(np.max(np.abs(m) + n_sd * np.sqrt(v)))
    why = f"|m| + {n_sd:g} sd of V at the initial weights reaches {worst:.3g} mV"
    if task.w_range is not None:
        r = np.asarray(task.rates, dtype=np.float64)
        fr = np.abs(task.f.f(np.full(r.shape, task.w_range)))      # per afferent
        spread = n_sd * math.sqrt(float(np.sum(fr * fr / 3.0 * (r * r + r / p.c_eps))))
        why += (f", {n_sd:g} sd of V over weights uniform in +-{task.w_range:.3g} "
                f"{spread:.3g} mV")
        worst = max(worst, spread)
    vr = float(max(floor_mv, math.ceil(worst)))
    return vr, f"{why}; Vq's 64 levels per sign cover +-{vr:g} mV"

