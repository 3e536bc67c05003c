"""Products and multiply-accumulate with explicit formats, accumulator widths and shifts.

Product format rule
-------------------
``QFormat(ba, fa, sa) * QFormat(bb, fb, sb) = QFormat(ba + bb, fa + fb, sa or sb)``.
Every exact product of two in-range codes fits this format (for two signed operands one
bit fewer would do except for ``min * min``), so forming the product never overflows and
never rounds.  A product format wider than int64 (65+ bits, or 64 unsigned) is refused.

Accumulation
------------
:func:`mac`  ``acc + round(a*b / 2**shift)`` elementwise, then saturate or wrap to the
             accumulator format.  The rounding is applied to each product separately.
:func:`dot`  ``round(sum_j a[..., j] * b[j, ...] / 2**shift)`` with the sum formed exactly
             (order-independent), rounded once and then saturated or wrapped once.

The accumulator format must have ``frac == fa + fb - shift`` (stated, not inferred, so a
mismatched shift is an error rather than a silent rescaling).  Int64 safety is checked
statically from the formats; the codes themselves are trusted to lie inside their
formats unless ``check=True``.
"""
from __future__ import annotations

import numpy as np

from ._ints import INT64_MAX, as_int64, as_int_scalar
from .qformat import QFormat, _fit, product_format  # product_format: re-exported
from .rounding import _shift_right


def _max_abs_product(a: QFormat, b: QFormat) -> int:
    return max(abs(x * y) for x in (a.min_int, a.max_int) for y in (b.min_int, b.max_int))


def _check_in(x: np.ndarray, fmt: QFormat, what: str) -> None:
    if x.size and (int(x.min()) < fmt.min_int or int(x.max()) > fmt.max_int):
        raise ValueError(f"{what} has codes outside {fmt}")


def multiply(a, b, a_fmt: QFormat, b_fmt: QFormat, *, check: bool = False):
    """Exact elementwise product.

    Returns
    -------
    (numpy.ndarray of int64, QFormat)
        Products and their format :func:`product_format` ``(a_fmt, b_fmt)``.
    """
    p_fmt = product_format(a_fmt, b_fmt)
    a = as_int64(a, "a")
    b = as_int64(b, "b")
    if check:
        _check_in(a, a_fmt, "a")
        _check_in(b, b_fmt, "b")
    return np.multiply(a, b), p_fmt


def _record(counters, name, step, overflow, n, underflow):
    if counters is None:
        return
    if name is None:
        raise ValueError("counters= needs name=")
    counters.add(name, "saturation" if overflow == "saturate" else "overflow", n, step)
    if underflow is not None:
        counters.add(name, "underflow", underflow, step)


def _acc_check(a_fmt, b_fmt, acc_fmt, shift):
    p_fmt = product_format(a_fmt, b_fmt)
    shift = as_int_scalar(shift, "shift")
    if acc_fmt.frac != p_fmt.frac - shift:
        raise ValueError(
            f"accumulator {acc_fmt} must have frac = {a_fmt.frac} + {b_fmt.frac} - shift "
            f"= {p_fmt.frac - shift}")
    return p_fmt, shift


def mac(acc, a, b, a_fmt: QFormat, b_fmt: QFormat, acc_fmt: QFormat, shift: int = 0,
        rounding: str = "floor", overflow: str = "saturate", *, rand=None, check: bool = False,
        counters=None, name=None, step=None):
    """Multiply-accumulate ``acc + round(a * b / 2**shift)`` into ``acc_fmt``.

    Parameters
    ----------
    acc : array_like of int
        Accumulator codes in ``acc_fmt``.
    a, b : array_like of int
        Operand codes in ``a_fmt`` and ``b_fmt``; ``acc``, ``a``, ``b`` broadcast.
    acc_fmt : QFormat
        Accumulator format; ``acc_fmt.frac`` must equal ``a_fmt.frac + b_fmt.frac - shift``.
    shift : int
        Fractional bits dropped from each product (``0 <= shift <= 62``).
    rounding : str
        Rounding mode of the shift; ``'stochastic'`` needs ``rand`` of the result's shape.
    overflow : {'saturate', 'wrap'}
        Treatment of sums outside ``acc_fmt``.
    counters, name, step : optional
        Record out-of-range sums (``'saturation'``/``'overflow'``) and nonzero products that
        rounded to a zero increment (``'underflow'``).

    Returns
    -------
    (numpy.ndarray of int64, int)
        New accumulator codes and the number of out-of-range sums.
    """
    p_fmt, shift = _acc_check(a_fmt, b_fmt, acc_fmt, shift)
    inc_abs = -(-_max_abs_product(a_fmt, b_fmt) >> shift)  # ceil: rounding may round up
    acc_abs = max(-acc_fmt.min_int, acc_fmt.max_int)
    if acc_abs + inc_abs > INT64_MAX:
        raise ValueError(f"mac into {acc_fmt} of {a_fmt}*{b_fmt} >> {shift} may overflow int64")
    acc = as_int64(acc, "acc")
    if check:
        _check_in(acc, acc_fmt, "acc")
    p, _ = multiply(a, b, a_fmt, b_fmt, check=check)
    full = np.broadcast_shapes(p.shape, acc.shape)
    if p.shape != full:  # so that rand and the rounding see the result's shape
        p = np.array(np.broadcast_to(p, full))
    under = None
    if counters is not None:
        nonzero = p != 0
    # p is overwritten; its bound comes from the (trusted) formats, sparing a max() scan
    inc = _shift_right(p, shift, rounding, rand, owned=True,
                       bound=_max_abs_product(a_fmt, b_fmt))
    if counters is not None:
        under = int(np.count_nonzero(nonzero & (inc == 0)))
    if isinstance(inc, np.ndarray) and inc.ndim:
        inc += acc
    else:
        inc = np.asarray(inc + acc)
    out, n = _fit(inc, acc_fmt, overflow, owned=True)
    _record(counters, name, step, overflow, n, under)
    return out, n


def dot(a, b, a_fmt: QFormat, b_fmt: QFormat, acc_fmt: QFormat, shift: int = 0,
        rounding: str = "floor", overflow: str = "wrap", *, rand=None, check: bool = False,
        counters=None, name=None, step=None):
    """Matrix product ``round((a @ b) / 2**shift)`` fitted into ``acc_fmt``.

    The sum of products is exact (checked statically: ``n_terms * max|a*b|`` fits int64),
    so the result does not depend on summation order; it is rounded once and saturated or
    wrapped once.  With ``overflow='wrap'`` and ``shift=0`` this equals a two's-complement
    accumulator of ``acc_fmt.bits`` bits adding the products in any order.

    Returns
    -------
    (numpy.ndarray of int64, int)
        Results (shape of ``a @ b``) and the number of out-of-range sums.
    """
    a = as_int64(a, "a")
    b = as_int64(b, "b")
    n_terms = a.shape[-1] if a.ndim else 1
    p_fmt, shift = _acc_check(a_fmt, b_fmt, acc_fmt, shift)
    if n_terms * _max_abs_product(a_fmt, b_fmt) > INT64_MAX:
        raise ValueError(f"sum of {n_terms} products {a_fmt}*{b_fmt} may overflow int64")
    if check:
        _check_in(a, a_fmt, "a")
        _check_in(b, b_fmt, "b")
    s = np.matmul(a, b)
    nonzero = (s != 0) if counters is not None else None
    r = _shift_right(s, shift, rounding, rand, owned=True,
                     bound=n_terms * _max_abs_product(a_fmt, b_fmt))
    under = int(np.count_nonzero(nonzero & (r == 0))) if counters is not None else None
    out, n = _fit(r, acc_fmt, overflow, owned=True)
    _record(counters, name, step, overflow, n, under)
    return out, n
