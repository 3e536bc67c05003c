"""Scalar numba twins of the fixedpoint ops, for use inside ``@numba.njit`` loops.

Every function here takes and returns scalars (int64, or uint64 for random words) and is
bit-identical to the vectorized numpy version it mirrors (``tests/fixedpoint/test_fixedpoint_jit.py``
checks each one element by element).  They are compiled lazily and cached on disk.

Rounding modes are passed as small integer codes (:data:`FLOOR` ... :data:`STOCHASTIC`, in
the order of :data:`fixedpoint.rounding.ROUNDING_MODES`); :func:`mode_code` converts a name.
Deterministic modes ignore the random word ``r`` (pass ``np.uint64(0)``).

The RNG words and right shifts are ``inline="always"`` (inlined at numba IR level): LLVM
does not inline them across modules by itself, and a call per rounding costs about 4 ns
inside the emulator's kernel.

Implementation notes: all integer paths use only int64 arithmetic (no float
intermediates).  Right shifts are written in the overflow-free split form
``(x >> s) + (((x & (2**s - 1)) + bias) >> s)``, which equals the numpy fast path
``(x + bias) >> s`` whenever the latter does not wrap.  uint64 arithmetic (the RNG) only
mixes uint64 operands, because numba would promote ``uint64 op int64`` to float64.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .constants import (DECAY_BITS, DECAY_UNITY, GOLDEN, RECIP_TABLE_BITS,
                        ROUNDING_MODES)
from .constants import MIX_M1 as _M1
from .constants import MIX_M2 as _M2

FLOOR, TRUNC, HALF_UP, HALF_EVEN, HALF_AWAY, STOCHASTIC = range(6)
assert ROUNDING_MODES == ("floor", "trunc", "half_up", "half_even", "half_away", "stochastic")

_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_ONE = np.uint64(1)


def mode_code(mode: str) -> int:
    """Integer code of a rounding-mode name (for passing into njit code)."""
    return ROUNDING_MODES.index(mode)


# ---- counter-based RNG ------------------------------------------------------------------

@njit(cache=True, inline="always")
def mix64(x):
    """SplitMix64 finaliser of a uint64 word (wrapping arithmetic)."""
    x = np.uint64(x)
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


@njit(cache=True)
def stream_prefix(seed, stream, step):
    """Key of the ``(seed, stream, step)`` sequence; equals :func:`fixedpoint.rng.stream_prefix`.

    ``seed`` and ``stream`` may be int64 (negative values wrap modulo 2**64, as in the numpy
    version) or uint64; pass seeds >= 2**63 as ``np.uint64`` (numba types Python ints as
    int64).
    """
    s = mix64(np.uint64(seed))
    s = mix64(s ^ np.uint64(stream))
    return mix64(s ^ np.uint64(np.int64(step)))


@njit(cache=True, inline="always")
def random_bits_from_prefix(prefix, index):
    """Word ``index`` of the sequence keyed by ``prefix`` (hoist the prefix out of loops)."""
    return mix64(prefix + (np.uint64(np.int64(index)) + _ONE) * GOLDEN)


@njit(cache=True)
def random_bits(seed, stream, step, index):
    """uint64 word equal to ``fixedpoint.rng.random_bits(seed, stream, step, index)``."""
    return random_bits_from_prefix(stream_prefix(seed, stream, step), index)


@njit(cache=True)
def bernoulli_from_bits(bits, threshold):
    """``(bits >> 11) < threshold`` with ``threshold = rng.bernoulli_threshold(p)`` (uint64)."""
    return (bits >> np.uint64(11)) < np.uint64(threshold)


# ---- rounding right shifts -----------------------------------------------------------------

@njit(cache=True, inline="always")
def shift_right_floor(x, s):
    """``floor(x / 2**s)``."""
    return np.int64(x) >> np.int64(s)


@njit(cache=True, inline="always")
def _split(x, s, bias):
    # floor((x + bias) / 2**s) without overflow, 0 <= bias < 2**(s+1)
    x = np.int64(x)
    s = np.int64(s)
    return (x >> s) + (((x & ((np.int64(1) << s) - 1)) + bias) >> s)


@njit(cache=True, inline="always")
def shift_right_trunc(x, s):
    """``trunc(x / 2**s)`` (toward zero, sign-magnitude)."""
    if s == 0:
        return np.int64(x)
    if x < 0:
        return _split(x, s, (np.int64(1) << np.int64(s)) - 1)
    return np.int64(x) >> np.int64(s)


@njit(cache=True, inline="always")
def shift_right_half_up(x, s):
    """Nearest, halves toward +inf."""
    if s == 0:
        return np.int64(x)
    return _split(x, s, np.int64(1) << np.int64(s - 1))


@njit(cache=True, inline="always")
def shift_right_half_even(x, s):
    """Nearest, halves to even."""
    if s == 0:
        return np.int64(x)
    q = np.int64(x) >> np.int64(s)
    return _split(x, s, (np.int64(1) << np.int64(s - 1)) - 1 + (q & 1))


@njit(cache=True, inline="always")
def shift_right_half_away(x, s):
    """Nearest, halves away from zero."""
    if s == 0:
        return np.int64(x)
    neg = np.int64(1) if x < 0 else np.int64(0)
    return _split(x, s, (np.int64(1) << np.int64(s - 1)) - neg)


@njit(cache=True, inline="always")
def shift_right_stochastic(x, s, r):
    """``floor((x + (r mod 2**s)) / 2**s)`` with the uint64 random word ``r``."""
    if s == 0:
        return np.int64(x)
    low = np.int64(np.uint64(r) & ((_ONE << np.uint64(s)) - _ONE))
    return _split(x, s, low)


@njit(cache=True, inline="always")
def shift_right(x, s, mode, r):
    """Dispatch on the integer ``mode`` code; ``r`` is used only by STOCHASTIC."""
    if mode == FLOOR:
        return shift_right_floor(x, s)
    if mode == TRUNC:
        return shift_right_trunc(x, s)
    if mode == HALF_UP:
        return shift_right_half_up(x, s)
    if mode == HALF_EVEN:
        return shift_right_half_even(x, s)
    if mode == HALF_AWAY:
        return shift_right_half_away(x, s)
    return shift_right_stochastic(x, s, r)


@njit(cache=True, inline="always")
def requantize(x, from_frac, to_frac, mode, r):
    """``from_frac`` -> ``to_frac`` fractional bits (left shifts are exact if they fit)."""
    d = from_frac - to_frac
    if d >= 0:
        return shift_right(x, d, mode, r)
    return np.int64(x) * (np.int64(1) << np.int64(-d))


# ---- range ------------------------------------------------------------------------------

@njit(cache=True, inline="always")
def saturate(x, lo, hi):
    """Clip to ``[lo, hi]`` (use ``QFormat.min_int``/``max_int``)."""
    if x < lo:
        return np.int64(lo)
    if x > hi:
        return np.int64(hi)
    return np.int64(x)


@njit(cache=True)
def wrap(x, bits, signed):
    """Two's-complement wrap to ``bits`` bits (signed) or modulo ``2**bits`` (unsigned)."""
    x = np.int64(x)
    if signed and bits == 64:
        return x
    mask = ((np.int64(1) << np.int64(bits - 1)) - 1) * 2 + 1  # 2**bits - 1 without overflow
    if signed:
        half = np.int64(1) << np.int64(bits - 1)
        return ((x ^ half) & mask) - half
    return x & mask


@njit(cache=True)
def in_range(x, lo, hi):
    """True if ``lo <= x <= hi`` (count overflows with this before wrapping)."""
    return lo <= x <= hi


# ---- decays -------------------------------------------------------------------------------

@njit(cache=True)
def decay(x, d, mode, r):
    """Lava decay ``round(x * (4096 - d) / 4096)``; mode TRUNC is Lava's LIF rule."""
    return shift_right(np.int64(x) * (DECAY_UNITY - np.int64(d)), DECAY_BITS, mode, r)


@njit(cache=True)
def decay_subtractive(x, d, mode, r):
    """``x - round(x * d / 4096)``."""
    return np.int64(x) - shift_right(np.int64(x) * np.int64(d), DECAY_BITS, mode, r)


@njit(cache=True)
def decay_mul(x, factor, frac, mode, r):
    """``round(x * factor / 2**frac)``."""
    return shift_right(np.int64(x) * np.int64(factor), frac, mode, r)


# ---- lookup tables ------------------------------------------------------------------------

@njit(cache=True)
def lut_lookup(x, table, lo, hi, s):
    """Nearest-node lookup; pass ``lut.table, lut.lo, lut.hi, lut.shift``."""
    off = saturate(x, lo, hi) - lo
    if s == 0:
        return table[off]
    return table[(off + (np.int64(1) << np.int64(s - 1))) >> np.int64(s)]


@njit(cache=True, inline="always")
def lut_lookup_below(x, table, lo, hi, s):
    """Entry of the node at or below ``x``: ``LUT.lookup(x, below=True)``."""
    off = saturate(x, lo, hi) - lo
    return table[off >> np.int64(s)]


@njit(cache=True, inline="always")
def lut_lookup_interp(x, table, lo, hi, s, mode):
    """Linear interpolation between nodes; ``mode`` is ``mode_code(lut.interp_rounding)``."""
    off = saturate(x, lo, hi) - lo
    if s == 0:
        return table[off]
    i = off >> np.int64(s)
    rem = off & ((np.int64(1) << np.int64(s)) - 1)
    t0 = table[i]
    return t0 + shift_right((table[i + 1] - t0) * rem, s, mode, np.uint64(0))


# ---- array kernels built on the twins ---------------------------------------------------

@njit(cache=True)
def bernoulli_steps_kernel(thr, seed, stream, k0, index, out):
    """out[t, u] = (random_bits(seed, stream, k0 + t, index[u]) >> 11) < thr[t or 0, u]."""
    n, n_units = out.shape
    row_step = 1 if thr.shape[0] > 1 else 0
    for t in range(n):
        prefix = stream_prefix(seed, stream, k0 + t)
        for u in range(n_units):
            bits = random_bits_from_prefix(prefix, index[u]) >> np.uint64(11)
            out[t, u] = 1 if bits < thr[t * row_step, u] else 0


# ---- row kernels ----------------------------------------------------------------------------

@njit(cache=True, inline="always")
def shift_right_row(out, vals, s, mode, prefix, base, stride):
    """``out[i] = shift_right(vals[i], s, mode, random_bits_from_prefix(prefix, base + stride * i))``
    for s > 0, an exact left shift for s <= 0 (the random word is
    drawn only for the stochastic mode), with the mode dispatch hoisted out of the loop so
    that it is a simple loop LLVM can vectorize.  ``out`` may be ``vals``.

    For s > 0 every deterministic mode of :func:`shift_right` is ``_split(x, s, bias)`` with
    ``bias = b0 + bneg * (x < 0) + bodd * ((x >> s) & 1)`` (floor: 0; trunc: 2**s - 1 for
    x < 0; half_up: 2**(s-1); half_even: 2**(s-1) - 1 + odd(x >> s); half_away:
    2**(s-1) - (x < 0)), so one branch-free loop serves them all.
    """
    n = out.shape[0]
    if s <= 0:
        for i in range(n):
            out[i] = vals[i] << (-s)
    elif mode == STOCHASTIC:
        mask = (_ONE << np.uint64(s)) - _ONE
        for i in range(n):
            r = random_bits_from_prefix(prefix, base + stride * i)
            out[i] = _split(vals[i], s, np.int64(r & mask))
    else:
        one = np.int64(1)
        b0 = np.int64(0)
        bneg = np.int64(0)
        bodd = np.int64(0)
        if mode == TRUNC:
            bneg = (one << s) - 1
        elif mode == HALF_UP:
            b0 = one << (s - 1)
        elif mode == HALF_EVEN:
            b0 = (one << (s - 1)) - 1
            bodd = one
        elif mode == HALF_AWAY:
            b0 = one << (s - 1)
            bneg = -one
        m = (one << s) - 1
        for i in range(n):
            xv = vals[i]
            bias = b0 + (bneg & (xv >> 63)) + (bodd & (xv >> s))
            out[i] = (xv >> s) + (((xv & m) + bias) >> s)


@njit(cache=True, inline="always")
def recip_word_jit(x, word_bits, table):
    """Scalar twin of :func:`fixedpoint.recip.recip_word`: ``(y, e)`` with
    ``1 / x ~= y 2**-(word_bits - 2 + e)``; ``(0, 0)`` for ``x <= 0``.  ``table`` is
    :func:`fixedpoint.recip.recip_table` ``(word_bits)``."""
    if x <= 0:
        return np.int64(0), np.int64(0)
    f = word_bits - 2
    tb = RECIP_TABLE_BITS
    e = np.int64(0)
    v = x
    while v > 1:
        v >>= 1
        e += 1
    xm = x << (f - e)
    y = table[(xm >> (f - tb)) - (np.int64(1) << tb)]
    one = np.int64(1) << f
    half = np.int64(1) << (f - 1)
    for _ in range(2):                  # fixedpoint.recip.NEWTON_STEPS
        err = one - ((xm * y + half) >> f)
        y = y + ((y * err + half) >> f)
    return y, e
