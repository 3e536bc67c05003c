"""Rounding of right-shifts and requantization on int64 arrays, and of floats to integers.

All integer functions compute ``round(x / 2**s)`` *exactly* for every int64 ``x`` (no
intermediate overflow: when ``x`` is so close to ``2**63`` that adding the rounding bias
would wrap, a slower split formula is used) and every shift ``0 <= s <= 62``.

Rounding modes (the string names used everywhere in natgrad; examples are the exact
quotient ``x / 2**s`` and its rounded value)
-------------------------------------------------------------------------------------
``'floor'``      toward -inf: ``x >> s`` (arithmetic shift).  -2.5 -> -3, 2.5 -> 2.
``'trunc'``      toward zero, i.e. sign-magnitude shift ``sign(x) * (|x| >> s)`` as in
                 Loihi/Lava decays.  -2.5 -> -2, -2.7 -> -2, 2.7 -> 2.
``'half_up'``    nearest, exact halves toward +inf: ``floor(x/2**s + 1/2)``.
                 2.5 -> 3, **-2.5 -> -2**, -2.6 -> -3.
``'half_even'``  nearest, exact halves to the even neighbour (IEEE / ``np.rint``).
                 2.5 -> 2, 3.5 -> 4, -2.5 -> -2, -3.5 -> -4.
``'half_away'``  nearest, exact halves away from zero (C ``round``; sign-magnitude
                 hardware).  2.5 -> 3, -2.5 -> -3.
``'stochastic'`` unbiased: ``floor((x + r) / 2**s)`` where ``r`` is uniform on
                 ``[0, 2**s)``, taken as the low ``s`` bits of a random uint64 word.
                 P(round up) = (x mod 2**s) / 2**s exactly, so E[result] = x / 2**s.

Random words for ``'stochastic'`` are passed as ``rand``: either a uint64 array that
broadcasts to ``x`` (pre-drawn, e.g. by a compiled backend), or a tuple
``(seed, stream, step, index)`` handed to :func:`fixedpoint.rng.random_bits`.  Element
``i`` of the result uses only word ``i``, so chunking or reordering the array changes
nothing as long as each element keeps its ``index``.  ``rand`` is ignored by the
deterministic modes (so callers may pass it unconditionally).
"""
from __future__ import annotations

import numpy as np

from . import rng as _rng
from ._ints import INT64_MAX, INT64_MIN, as_int64, as_int_scalar, int_range, low_mask
from .constants import MAX_SHIFT, ROUNDING_MODES


def check_mode(mode: str) -> str:
    """Return ``mode`` if it is a known rounding mode, else raise ValueError."""
    if mode not in ROUNDING_MODES:
        raise ValueError(f"unknown rounding mode {mode!r}; expected one of {ROUNDING_MODES}")
    return mode


def _check_shift(s) -> int:
    s = as_int_scalar(s, "shift")
    if not 0 <= s <= MAX_SHIFT:
        raise ValueError(f"shift must lie in [0, {MAX_SHIFT}], got {s}")
    return s


def random_words(rand, shape) -> np.ndarray:
    """uint64 random words for stochastic rounding, broadcast-compatible with ``shape``.

    ``rand`` is a uint64 array or a ``(seed, stream, step, index)`` tuple for
    :func:`fixedpoint.rng.random_bits`.
    """
    if rand is None:
        raise ValueError(
            "stochastic rounding needs rand= (uint64 words or (seed, stream, step, index))")
    if isinstance(rand, tuple):
        if len(rand) != 4:
            raise ValueError("rand tuple must be (seed, stream, step, index)")
        r = _rng.random_bits(*rand)
    else:
        r = np.asarray(rand)
        if r.dtype != np.uint64:
            raise TypeError(f"rand must be a uint64 array, got dtype {r.dtype}")
    shape = tuple(shape)
    if r.shape != shape and np.broadcast_shapes(r.shape, shape) != shape:
        raise ValueError(f"rand of shape {r.shape} does not broadcast to {shape}")
    return r


def _low_bits(r: np.ndarray, s: int) -> np.ndarray:
    """Low ``s`` bits of uint64 words as int64 (always in [0, 2**s))."""
    if r.ndim == 0:
        return np.int64(int(r) & low_mask(s))
    return (r & np.uint64(low_mask(s))).view(np.int64)


def _shift_into(x: np.ndarray, s: int, mode: str, rand, owned: bool, bound=None) -> np.ndarray:
    """``round(x / 2**s)`` for ``1 <= s <= 62``; overwrites ``x`` when ``owned``.

    Every biased mode is ``floor((x + bias) / 2**s)`` with ``0 <= bias <= bias_max``:
    fast path ``(x + bias) >> s`` when no element can wrap, else the split form
    ``(x >> s) + (((x & (2**s - 1)) + bias) >> s)`` whose partial sum stays below 2**63.
    Temporaries are reused as the output so that at most one new array is allocated.
    ``bound``, if given, is a caller-proven bound on ``x`` that spares the max() scan.
    """
    m = low_mask(s)
    h = 1 << (s - 1)
    if mode == "floor":
        return np.right_shift(x, s, out=x) if owned else np.right_shift(x, s)
    if mode == "trunc":
        # 2**s - 1 added to negatives only: floor((x + 2**s - 1) / 2**s) = ceil(x / 2**s);
        # it can never wrap because it is added to negative values only.
        bias = np.right_shift(x, 63)
        bias &= m
        bias_max = 0
    elif mode == "half_up":
        bias, bias_max = h, h
    elif mode == "half_even":
        # bias h - 1 + (bit s of x): an exact half then rounds up only from an odd quotient
        bias = np.right_shift(x, s)
        bias &= 1
        bias += h - 1
        bias_max = h
    elif mode == "half_away":
        # bias h for x >= 0 and h - 1 for x < 0 (x >> 63 is -1 for negatives)
        bias = np.right_shift(x, 63)
        bias += h
        bias_max = h
    else:  # stochastic
        bias, bias_max = _low_bits(random_words(rand, x.shape), s), m
    if owned:
        y = x
    elif isinstance(bias, np.ndarray) and bias.shape == x.shape:
        y = bias  # a fresh temporary of the right shape: use it as the output buffer
    else:
        y = np.empty(x.shape, dtype=np.int64)
    if bound is None:
        bound = int(x.max()) if x.size else 0
    if bound <= INT64_MAX - bias_max:
        np.add(x, bias, out=y)
        np.right_shift(y, s, out=y)
        return y
    q = np.right_shift(x, s)
    if y is bias:
        y += x & m
    else:
        np.bitwise_and(x, m, out=y)
        y += bias
    np.right_shift(y, s, out=y)
    y += q
    return y


def shift_right(x, s: int, mode: str = "floor", *, rand=None) -> np.ndarray:
    """Divide int64 values by ``2**s`` and round: ``round_mode(x / 2**s)``.

    Parameters
    ----------
    x : array_like of int
        Integers on any grid (converted to int64; floats are refused).
    s : int
        Number of fractional bits dropped, ``0 <= s <= 62``.  ``s = 0`` is exact.
    mode : str
        One of :data:`ROUNDING_MODES` (see module docstring for halves of negatives).
    rand : uint64 array or (seed, stream, step, index), optional
        Random words, required for ``mode='stochastic'``; only their low ``s`` bits are used.

    Returns
    -------
    numpy.ndarray of int64
        A new array (never a view of ``x``), with ``s`` fewer fractional bits.
    """
    return _shift_right(as_int64(x), s, mode, rand, owned=False)


def _shift_right(x: np.ndarray, s, mode: str, rand, owned: bool, bound=None) -> np.ndarray:
    """:func:`shift_right` on an int64 array; may overwrite ``x`` if ``owned``."""
    s = _check_shift(s)
    check_mode(mode)
    if s == 0:
        if mode == "stochastic":
            random_words(rand, x.shape)  # still validate the argument
        return x if owned else np.array(x, dtype=np.int64, copy=True)
    if owned and x.ndim == 0:
        owned = False  # numpy scalars from 0-d arithmetic are immutable
    return _shift_into(x, s, mode, rand, owned, bound)


def shift_left(x, s: int) -> np.ndarray:
    """Exact ``x * 2**s`` for ``0 <= s <= 62``; raises OverflowError if a value leaves int64."""
    x = as_int64(x)
    s = _check_shift(s)
    lo, hi = int_range(x)
    if lo < (INT64_MIN >> s) or hi > (INT64_MAX >> s):
        raise OverflowError(f"shift_left by {s}: values in [{lo}, {hi}] overflow int64")
    return np.multiply(x, 1 << s, dtype=np.int64)


def requantize(x, from_frac: int, to_frac: int, mode: str = "floor", *, rand=None) -> np.ndarray:
    """Move integers from ``from_frac`` to ``to_frac`` fractional bits.

    Fewer fractional bits: :func:`shift_right` with ``mode`` (and ``rand``).
    More fractional bits: exact left shift (OverflowError if int64 would overflow).
    Range limits of a target format are applied separately (:func:`fixedpoint.saturate`,
    :func:`fixedpoint.wrap`, or :func:`fixedpoint.convert` which does both steps).
    """
    d = as_int_scalar(from_frac, "from_frac") - as_int_scalar(to_frac, "to_frac")
    if d >= 0:
        return _shift_right(as_int64(x), d, mode, rand, owned=False)
    return shift_left(x, -d)


def underflow_mask(raw, rounded) -> np.ndarray:
    """Boolean mask of *underflows*: a nonzero value (``raw``) that rounded to zero."""
    return (np.asarray(raw) != 0) & (np.asarray(rounded) == 0)


def count_underflow(raw, rounded) -> int:
    """Number of nonzero ``raw`` values whose ``rounded`` version is zero."""
    return int(np.count_nonzero(underflow_mask(raw, rounded)))


def round_float(v, mode: str = "half_even", *, rand=None) -> np.ndarray:
    """Round float64 values to integer-valued float64 with the given mode.

    Exact for every finite double (halves are detected exactly: the fractional part
    ``v - floor(v)`` compared with 0.5 is never misjudged).  Stochastic mode rounds up iff
    ``(word >> 11) * 2**-53 < v - floor(v)`` (the fraction computed in float64), so the
    bias is below 2**-53 per value.  NaN stays NaN, +-inf stay +-inf.
    """
    v = np.asarray(v, dtype=np.float64)
    check_mode(mode)
    if mode == "floor":
        return np.floor(v)
    if mode == "trunc":
        return np.trunc(v)
    if mode == "half_even":
        return np.rint(v)
    f = np.floor(v)
    with np.errstate(invalid="ignore"):
        frac = v - f  # in [0, 1); NaN for +-inf, handled by np.where below
    if mode == "half_up":
        up = frac >= 0.5
    elif mode == "half_away":
        up = np.where(v >= 0, frac >= 0.5, frac > 0.5)
    else:
        r = random_words(rand, v.shape)
        up = (r >> np.uint64(11)).astype(np.float64) < np.ldexp(frac, 53)
    out = f + up
    return np.where(np.isfinite(v), out, v)
