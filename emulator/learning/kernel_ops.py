"""Word-level helpers of the learning-engine kernel (:mod:`.kernel`): integer shifts with
the neuron's rounding, a word's saturation with its count, and the running extremes
(:mod:`.extremes`) of single values, rows and the x traces at their impulses.

The scalar ones are inlined into :func:`.kernel_step.le_step`; those that hold a loop are
compiled functions of their own (they compile once, and calling them costs nothing
measurable against their loop).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from fixedpoint.jit import HALF_UP, saturate, shift_right

from .kernel_layout import C_WORD


_R0 = np.uint64(0)    #: random word for deterministic rounding modes (ignored)


@njit(cache=True, inline="always")
def hu_i(x, s):
    """Round half up of ``x / 2**s``: :func:`fixedpoint.jit.shift_right` in mode HALF_UP.

    Scalar twin of :func:`emulator.learning.neuron._hu` (same bits; see there).
    """
    return shift_right(x, s, HALF_UP, _R0)


@njit(cache=True, inline="always")
def shr_i(x, s):
    """Scalar twin of :func:`emulator.learning.neuron._shr`."""
    return shift_right(x, s, HALF_UP, _R0) if s > 0 else x << (-s)


@njit(cache=True, inline="always")
def word_i(x, lo, hi, counts):
    """Scalar twin of :func:`emulator.learning.neuron._word` (bounds given)."""
    if x < lo or x > hi:
        counts[C_WORD] += 1
        return saturate(x, lo, hi)
    return x


@njit(cache=True, inline="always")
def unit_i(word):
    """uint64 word -> float64 in [0, 1): :func:`emulator.learning.lava_replica._unit`."""
    return np.float64(word >> np.uint64(11)) * 2.0 ** -53


@njit(cache=True, inline="always")
def ext_i(ext, b, col, x):
    """Fold value ``x`` into the running extremes ``ext[0, b, col]`` (min), ``ext[1, b, col]``
    (max)."""
    if x < ext[0, b, col]:
        ext[0, b, col] = x
    if x > ext[1, b, col]:
        ext[1, b, col] = x


@njit(cache=True)
def copy_ext(src, dst, lo, hi, b, col):
    """``dst[:] = src``, folding every value into ``lo[b, col]``, ``hi[b, col]``."""
    mn = lo[b, col]
    mx = hi[b, col]
    for i in range(src.shape[0]):
        v = src[i]
        dst[i] = v
        mn = min(mn, v)
        mx = max(mx, v)
    lo[b, col] = mn
    hi[b, col] = mx


@njit(cache=True)
def ext_row(lo, hi, b, col, row):
    """Fold every value of ``row`` into ``lo[b, col]``, ``hi[b, col]``."""
    mn = lo[b, col]
    mx = hi[b, col]
    for i in range(row.shape[0]):
        mn = min(mn, row[i])
        mx = max(mx, row[i])
    lo[b, col] = mn
    hi[b, col] = mx


@njit(cache=True)
def impulse_ext(ext, b, col, before, after, spiked, n_spk, with_before):
    """Fold into ``ext[:, b, col]`` the traces ``after`` (stored after this one-step epoch) of
    the ``n_spk`` afferents ``spiked[:n_spk]`` that received an impulse, and (``with_before``:
    not the run's first step) their values ``before`` (stored the step before).  A decay never
    raises a trace nor takes it below 0, so each afferent's largest value follows an impulse
    and its smallest precedes one or ends the run: with the traces at the end of every chunk
    (:func:`_traces_ext`) these are the extremes over every step, at a cost per spike only."""
    mn = ext[0, b, col]
    mx = ext[1, b, col]
    for q in range(n_spk):
        i = spiked[q]
        v = after[i]
        mn = min(mn, v)
        mx = max(mx, v)
        if with_before:
            mn = min(mn, before[i])
    ext[0, b, col] = mn
    ext[1, b, col] = mx
