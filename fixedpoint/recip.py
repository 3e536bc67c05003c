"""Division-free reciprocal in W-bit words: a seed table and two Newton steps.

A neuron core has multipliers, shifters, a count-leading-zeros and small tables, not a
divider.  :func:`recip_word` returns, for a positive integer ``x < 2**(W-1)``, the pair
``(y, e)`` with

    1 / x  ~=  y * 2**-(F + e),      F = W - 2,  y in (2**(F-1), 2**F]

computed with W-bit signed words only (every product of two words is a double word that is
shifted straight back into a word, as a multiply-shift of a W-bit machine does):

1. ``e``: the position of ``x``'s leading one (count-leading-zeros);
2. ``xm = x << (F - e)``: the mantissa ``x / 2**e`` in U1.F, in ``[2**F, 2**(F+1))``;
3. a seed ``y0 ~ 2**F / (xm / 2**F)`` from a table of ``2**TABLE_BITS`` entries (each the
   reciprocal of its interval's midpoint, rounded), read at ``xm``'s top bits after the
   leading one;
4. two Newton steps written so no word exceeds W bits:
   ``t = round(xm y / 2**F)`` (about ``2**F``), ``err = 2**F - t`` (small),
   ``y += round(y err / 2**F)``; rounding half up.

The result is not exact (the exact ``floor(2**K / x)`` needs a 2W-bit remainder); its
error is bounded instead: :data:`REL_ERROR_BOUND` relative (checked on every mantissa of
W = 24 in ``tests/fixedpoint/test_fixedpoint_recip.py``).  :func:`recip_word` is the numpy version and
:func:`fixedpoint.jit.recip_word_jit` its scalar numba twin (bit-identical).
"""
from __future__ import annotations

import numpy as np

from .constants import RECIP_TABLE_BITS as TABLE_BITS

__all__ = ["TABLE_BITS", "NEWTON_STEPS", "REL_ERROR_BOUND", "recip_table", "recip_word",
           "bit_length"]

#: Newton steps after the table seed (each squares the seed's relative error; two reach
#: the word's resolution from an 8-bit table).
NEWTON_STEPS = 2
#: ``|y 2**-(F+e) x - 1| <= REL_ERROR_BOUND`` for W = 24 and every x: y is within one unit
#: of its last place of the exact ``2**(2F) / xm`` (measured: 0.97 units, 2**-21.4 relative).
REL_ERROR_BOUND = 2.0 ** -21


def recip_table(word_bits: int, bits: int = TABLE_BITS) -> np.ndarray:
    """Seeds ``round(2**F / x_mid)`` (F = word_bits - 2) for the ``2**bits`` intervals of
    ``x`` in [1, 2), each ``<= 2**F``."""
    f = word_bits - 2
    i = np.arange(2 ** bits, dtype=np.float64)
    mid = 1.0 + (i + 0.5) / 2 ** bits
    return np.floor(2.0 ** f / mid + 0.5).astype(np.int64)


def bit_length(x: np.ndarray) -> np.ndarray:
    """Position of the leading one + 1 of non-negative int64 values (integer only: a
    count-leading-zeros)."""
    x = np.asarray(x, np.int64)
    e = np.zeros(x.shape, np.int64)
    for s in (32, 16, 8, 4, 2, 1):
        big = x >= (np.int64(1) << s)
        e += np.where(big, s, 0)
        x = np.where(big, x >> s, x)
    return e + (x > 0)


def _hu(x, s):
    return (x + (np.int64(1) << (s - 1))) >> s


def recip_word(x, word_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """``(y, e)`` with ``1 / x ~= y 2**-(word_bits - 2 + e)`` for ``0 < x < 2**(word_bits-1)``
    (int64 arrays; see the module docstring).  Values ``x <= 0`` give ``(0, 0)``: callers
    treat them as saturated."""
    x = np.asarray(x, np.int64)
    f, tb = word_bits - 2, TABLE_BITS
    ok = x > 0
    xx = np.where(ok, x, 1)
    e = bit_length(xx) - 1                                   # x in [2**e, 2**(e+1))
    xm = xx << (f - e)                                       # U1.F in [2**F, 2**(F+1))
    y = recip_table(word_bits)[(xm >> (f - tb)) - (1 << tb)]
    one = np.int64(1) << f
    for _ in range(NEWTON_STEPS):
        err = one - _hu(xm * y, f)
        y = y + _hu(y * err, f)
    return np.where(ok, y, 0), np.where(ok, e, 0)
