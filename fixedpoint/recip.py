"""Division-free ``floor(2**K / den)``: a reciprocal table, Newton refinement, an exact
correction.

A neuron core has multipliers, shifters and small tables, not a divider.  The quotient of
a power of two by a positive integer is computed from:

1. ``e``: the position of ``den``'s leading one (a count-leading-zeros);
2. the normalized mantissa ``xm = den`` shifted to ``[2**F, 2**(F+1))`` (``F`` =
   :data:`RECIP_FRAC`), i.e. ``x = xm / 2**F`` in ``[1, 2)``;
3. a table of ``2**TABLE_BITS`` seeds ``y0 ~ 1/x`` (U0.F, read at ``x``'s top bits,
   each the reciprocal of its interval's midpoint, rounded);
4. two Newton steps ``y <- y (2 - x y)`` in U.F (products of two F+1-bit words);
5. ``q = y * 2**(K - e - F)`` (a shift), then the exact correction: ``r = 2**K - q den``,
   ``q -= 1`` while ``r < 0``, ``q += 1`` while ``r >= den``.

Step 5 makes the result *exactly* ``floor(2**K / den)`` for every input, so it replaces an
integer division without moving a bit; the estimate of step 4 is within a few units, so the
correction takes at most :data:`MAX_CORRECTIONS` round (one step down or up) (checked on every input in
``tests/test_fixedpoint_recip.py``).  A quotient of ``2**qbits`` or more is reported as
saturated (``den <= 2**(K - qbits)``, a compare, no division) and returned as
``2**qbits - 1``, as is ``den <= 0``.

:func:`floor_pow2_div` is the numpy version; :func:`fixedpoint.jit.floor_pow2_div_jit` its
scalar numba twin (bit-identical).  Requires ``K <= 61`` and ``den < 2**62``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["RECIP_FRAC", "TABLE_BITS", "MAX_CORRECTIONS", "recip_table", "floor_pow2_div"]

from .constants import RECIP_FRAC, RECIP_TABLE_BITS as TABLE_BITS

#: Correction rounds (each: one step down if ``r < 0``, one up if ``r >= den``): after two
#: Newton steps the estimate is within one unit of the quotient, so one round is exact.
MAX_CORRECTIONS = 1


def recip_table(bits: int = TABLE_BITS, frac: int = RECIP_FRAC) -> np.ndarray:
    """Seeds ``round(2**frac / x_mid)`` for the ``2**bits`` intervals of ``x`` in [1, 2)."""
    i = np.arange(2 ** bits, dtype=np.float64)
    mid = 1.0 + (i + 0.5) / 2 ** bits
    return np.floor(2.0 ** frac / mid + 0.5).astype(np.int64)


_TABLE = recip_table()


def _bit_length(den: np.ndarray) -> np.ndarray:
    """Position of the leading one + 1 of positive int64 values (exact, integer only)."""
    e = np.zeros(den.shape, np.int64)
    x = den.copy()
    for s in (32, 16, 8, 4, 2, 1):
        big = x >= (np.int64(1) << s)
        e += np.where(big, s, 0)
        x = np.where(big, x >> s, x)
    return e + (x > 0)


def floor_pow2_div(k: int, den, qbits: int) -> tuple[np.ndarray, np.ndarray]:
    """``(min(floor(2**k / den), 2**qbits - 1), saturated)`` elementwise without a division
    (``den <= 0`` counts as saturated)."""
    den = np.asarray(den, np.int64)
    f, tb = RECIP_FRAC, TABLE_BITS
    num = np.int64(1) << k
    top = (np.int64(1) << qbits) - 1
    sat = den <= (np.int64(1) << max(k - qbits, 0)) if k >= qbits else den <= 0
    sat = sat | (den <= 0)
    d = np.where(sat, 1, den)
    e = _bit_length(d) - 1                                   # d in [2**e, 2**(e+1))
    xm = np.where(e <= f, d << np.maximum(f - e, 0), d >> np.maximum(e - f, 0))
    y = _TABLE[(xm >> (f - tb)) - (1 << tb)]
    two = np.int64(2) << f
    for _ in range(2):                                       # Newton: y (2 - x y)
        y = (y * (two - ((xm * y) >> f))) >> f
    sh = k - e - f
    q = np.where(sh >= 0, y << np.maximum(sh, 0), y >> np.maximum(-sh, 0))
    r = num - q * d
    for _ in range(MAX_CORRECTIONS):                        # exact: floor(2**k / d)
        low = r < 0
        q, r = np.where(low, q - 1, q), np.where(low, r + d, r)
        high = r >= d
        q, r = np.where(high, q + 1, q), np.where(high, r - d, r)
    return np.where(sat, top, np.minimum(q, top)), sat
