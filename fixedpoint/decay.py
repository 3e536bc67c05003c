"""Exponential decays on integer state: Loihi/Lava 12-bit form and exact multiplicative form.

Loihi / Lava form
-----------------
Lava's bit-accurate LIF (``lava/proc/lif/models.py``, ``AbstractPyLifModelFixed``) does::

    decayed = np.int64(u) * (2**12 - d)
    decayed = np.sign(decayed) * np.right_shift(np.abs(decayed), 12)

with ``d = du + 1`` for the current (``ds_offset = 1``) and ``d = dv`` for the voltage
(``dm_offset = 0``), ``du, dv`` 12-bit registers.  That is a sign-magnitude (truncating)
shift of ``x * (4096 - d)``, which :func:`decay` reproduces bit for bit with the default
``rounding='trunc'`` for every ``|x| < 2**51``.  Other rounding modes apply the chosen
rounding to the same product instead.

:func:`decay_subtractive` is the other common hardware form ``x - round(x * d / 4096)``
(the expression often quoted as ``x - (x*d >> 12)``).  It is **not** the same as Lava's:
with truncation it rounds the decayed value *away* from zero, e.g. ``x = 1, d = 1`` gives
1 where Lava gives 0.

The decay constant ``d`` is the fraction removed per step in units of ``2**-12``:
:func:`loihi_decay_constant` ``(tau, dt) = round(4096 * (1 - exp(-dt / tau)))``.

Exact multiplicative form
-------------------------
:func:`decay_factor` ``(tau, dt, frac) = round(2**frac * exp(-dt / tau))`` is an integer
factor with ``frac`` fractional bits, and :func:`decay_mul` computes
``round(x * factor / 2**frac)`` with a chosen rounding (any Q-format of ``x``: the result
keeps ``x``'s format).  Both constants are rounded half-to-even from a 60-digit decimal
evaluation of the exponential, so they are the correctly rounded values.
"""
from __future__ import annotations

import decimal
import math

import numpy as np

from ._ints import INT64_MAX, as_int64, as_int_scalar, check_product_fits
from .constants import DECAY_BITS, DECAY_UNITY
from .rounding import _shift_right


def _exp_neg_ratio(dt: float, tau: float) -> decimal.Decimal:
    """``exp(-dt/tau)`` with 60 significant digits (``dt/tau`` taken as the exact double)."""
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        return (-decimal.Decimal(float(dt) / float(tau))).exp()


def _check_tau(tau, dt):
    tau = float(tau)
    dt = float(dt)
    if not (tau > 0) or math.isnan(tau):
        raise ValueError(f"tau must be > 0, got {tau}")
    if not (dt >= 0) or math.isinf(dt):
        raise ValueError(f"dt must be finite and >= 0, got {dt}")
    return tau, dt


def _round_half_even(v: decimal.Decimal) -> int:
    return int(v.to_integral_value(rounding=decimal.ROUND_HALF_EVEN))


def loihi_decay_constant(tau: float, dt: float = 1.0) -> int:
    """Loihi-style 12-bit decay constant ``d = round(4096 * (1 - exp(-dt/tau)))``.

    Parameters
    ----------
    tau : float
        Time constant (same unit as ``dt``); ``inf`` means no decay (``d = 0``).
    dt : float
        Time step.

    Returns
    -------
    int
        ``d`` in ``[0, 4096]``; one step multiplies by ``(4096 - d) / 4096``.  In Lava's LIF
        this is ``du + 1`` (current) or ``dv`` (voltage).
    """
    tau, dt = _check_tau(tau, dt)
    if math.isinf(tau):
        return 0
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        d = _round_half_even(DECAY_UNITY * (1 - _exp_neg_ratio(dt, tau)))
    return min(max(d, 0), DECAY_UNITY)


def decay_factor(tau: float, dt: float, frac: int) -> int:
    """Integer multiplier ``round(2**frac * exp(-dt/tau))`` with ``frac`` fractional bits."""
    tau, dt = _check_tau(tau, dt)
    frac = as_int_scalar(frac, "frac")
    if not 0 <= frac <= 62:
        raise ValueError(f"frac must lie in [0, 62], got {frac}")
    if math.isinf(tau):
        return 1 << frac
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        return _round_half_even(decimal.Decimal(1 << frac) * _exp_neg_ratio(dt, tau))


def _check_d(d):
    d = as_int64(d, "d")
    if d.size and (int(d.min()) < 0 or int(d.max()) > DECAY_UNITY):
        raise ValueError(f"decay constant d must lie in [0, {DECAY_UNITY}]")
    return d


def _product_bound(x: np.ndarray, factor_max_abs: int, x_fmt, what: str) -> int:
    """Bound on ``|x * factor|``, proving it fits int64 (statically from ``x_fmt`` if given)."""
    if x_fmt is None:
        return check_product_fits(x, factor_max_abs, what)
    bound = max(-x_fmt.min_int, x_fmt.max_int) * factor_max_abs
    if bound > INT64_MAX:
        raise OverflowError(f"{what}: codes of {x_fmt} times {factor_max_abs} may overflow int64")
    return bound


def decay(x, d, rounding: str = "trunc", *, rand=None, x_fmt=None) -> np.ndarray:
    """Lava/Loihi decay ``round((x * (4096 - d)) / 4096)``; ``'trunc'`` is Lava's exact rule.

    Parameters
    ----------
    x : array_like of int
        State codes (any Q-format; the result has the same format), ``|x| < 2**51``.
    d : int or array_like of int
        Decay constant(s) in ``[0, 4096]``, broadcasting with ``x``.
    rounding : str
        Rounding of the 12-bit shift; ``'stochastic'`` needs ``rand``.
    rand : uint64 array or (seed, stream, step, index), optional
        Random words for stochastic rounding.
    x_fmt : QFormat, optional
        Format of ``x``.  If given, int64 safety is proven from the format (codes are
        trusted to lie in it) instead of scanning ``x``; otherwise ``x`` is scanned and
        OverflowError is raised if ``|x| * 4096`` could leave int64.
    """
    x = as_int64(x)
    f = DECAY_UNITY - _check_d(d)
    bound = _product_bound(x, DECAY_UNITY, x_fmt, "decay")
    return _shift_right(np.multiply(x, f), DECAY_BITS, rounding, rand, owned=True, bound=bound)


def decay_subtractive(x, d, rounding: str = "trunc", *, rand=None, x_fmt=None) -> np.ndarray:
    """Subtractive 12-bit decay ``x - round(x * d / 4096)`` (differs from Lava, see module doc).

    Parameters as for :func:`decay`.
    """
    x = as_int64(x)
    d = _check_d(d)
    bound = _product_bound(x, DECAY_UNITY, x_fmt, "decay_subtractive")
    y = _shift_right(np.multiply(x, d), DECAY_BITS, rounding, rand, owned=True, bound=bound)
    if isinstance(y, np.ndarray) and y.ndim and y.shape == x.shape:
        return np.subtract(x, y, out=y)
    return np.asarray(x - y)


def decay_mul(x, factor, frac: int, rounding: str = "half_even", *, rand=None,
              x_fmt=None) -> np.ndarray:
    """Multiplicative decay ``round(x * factor / 2**frac)``.

    Parameters
    ----------
    x : array_like of int
        State codes; the result is in the same Q-format.
    factor : int or array_like of int
        Multiplier with ``frac`` fractional bits, e.g. :func:`decay_factor`.
    frac : int
        Fractional bits of ``factor`` (``0 <= frac <= 62``).
    rounding : str
        Rounding of the product back to ``x``'s grid.
    rand : uint64 array or (seed, stream, step, index), optional
        Random words for stochastic rounding.
    x_fmt : QFormat, optional
        Format of ``x``, to prove int64 safety statically (see :func:`decay`).

    Raises
    ------
    OverflowError
        If ``|x| * |factor|`` could leave int64.
    """
    x = as_int64(x)
    f = as_int64(factor, "factor")
    fmax = max(abs(int(f.min())), abs(int(f.max()))) if f.size else 0
    bound = _product_bound(x, fmax, x_fmt, "decay_mul")
    return _shift_right(np.multiply(x, f), frac, rounding, rand, owned=True, bound=bound)


def decay_exact(x, tau: float, dt: float, frac: int, rounding: str = "half_even", *,
                rand=None, x_fmt=None) -> np.ndarray:
    """``round(x * exp(-dt/tau))``: :func:`decay_mul` by :func:`decay_factor` ``(tau, dt, frac)``."""
    return decay_mul(x, decay_factor(tau, dt, frac), frac, rounding, rand=rand, x_fmt=x_fmt)
