"""Q-formats: integer codes ``q`` standing for the real values ``q * 2**-frac``.

A :class:`QFormat` ``(bits, frac, signed)`` holds integers in
``[-2**(bits-1), 2**(bits-1) - 1]`` (signed, two's complement) or ``[0, 2**bits - 1]``
(unsigned).  ``frac`` may be any integer: larger than ``bits`` (a small-range format whose
LSB is far below 1) or negative (LSB above 1).  Codes live in int64 arrays, so
``bits <= 64`` (signed) and ``bits <= 63`` (unsigned).

Out-of-range values are either *saturated* (clipped to the nearest end) or *wrapped*
(reduced modulo ``2**bits`` into the range, as two's-complement hardware does), and every
function that does so returns how many elements were affected.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ._ints import as_int64, as_int_scalar, int_range
from .rounding import check_mode, requantize, round_float

OVERFLOW_MODES = ("saturate", "wrap")


@dataclasses.dataclass(frozen=True)
class QFormat:
    """A fixed-point number format.

    Parameters
    ----------
    bits : int
        Total width including the sign bit; 1..64 signed, 1..63 unsigned.
    frac : int
        Fractional bits: the real value of code ``q`` is ``q * 2**-frac``.
    signed : bool
        Two's-complement signed (default) or unsigned.
    """

    bits: int
    frac: int
    signed: bool = True

    def __post_init__(self):
        bits = as_int_scalar(self.bits, "bits")
        frac = as_int_scalar(self.frac, "frac")
        if not isinstance(self.signed, (bool, np.bool_)):
            raise TypeError(f"signed must be a bool, got {self.signed!r}")
        limit = 64 if self.signed else 63
        if not 1 <= bits <= limit:
            raise ValueError(
                f"bits must lie in [1, {limit}] for signed={bool(self.signed)}, got {bits}")
        if not -256 <= frac <= 256:
            # keeps 2**frac and every code * 2**-frac normal doubles (exact scaling)
            raise ValueError(f"frac must lie in [-256, 256], got {frac}")
        object.__setattr__(self, "bits", bits)
        object.__setattr__(self, "frac", frac)
        object.__setattr__(self, "signed", bool(self.signed))

    # ---- range -------------------------------------------------------------------
    @property
    def min_int(self) -> int:
        """Smallest code (Python int)."""
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        """Largest code (Python int)."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def resolution(self) -> float:
        """Real value of one LSB, ``2**-frac``."""
        return float(np.ldexp(1.0, -self.frac))

    @property
    def min(self) -> float:
        """Smallest representable real value (rounded to float64 if bits > 53)."""
        return float(np.ldexp(float(self.min_int), -self.frac))

    @property
    def max(self) -> float:
        """Largest representable real value (rounded to float64 if bits > 53)."""
        return float(np.ldexp(float(self.max_int), -self.frac))

    @property
    def range(self) -> tuple[float, float]:
        """``(min, max)`` representable real values."""
        return self.min, self.max

    def __str__(self) -> str:
        return f"{'s' if self.signed else 'u'}{self.bits}.{self.frac}"

    # ---- arithmetic on formats ---------------------------------------------------------
    def __mul__(self, other: "QFormat") -> "QFormat":
        """Format of exact products, :func:`fixedpoint.product_format`."""
        if not isinstance(other, QFormat):
            return NotImplemented
        return product_format(self, other)

    def with_frac(self, frac: int) -> "QFormat":
        """Same width and signedness, different number of fractional bits."""
        return QFormat(self.bits, frac, self.signed)

    # ---- integer codes ------------------------------------------------------------------
    def contains(self, q) -> np.ndarray:
        """Boolean mask: which codes lie in ``[min_int, max_int]``."""
        q = as_int64(q)
        return (q >= self.min_int) & (q <= self.max_int)

    def wrap(self, q):
        """See :func:`wrap`."""
        return wrap(q, self)

    def saturate(self, q):
        """See :func:`saturate`."""
        return saturate(q, self)

    def fit(self, q, overflow: str = "saturate"):
        """See :func:`fit`."""
        return fit(q, self, overflow)

    # ---- floats ----------------------------------------------------------------------
    def to_float(self, q) -> np.ndarray:
        """Real values ``q * 2**-frac`` as float64 (exact whenever ``|q| < 2**53``)."""
        # one ufunc pass: int64 -> float64 (round to nearest) times an exact power of two
        return np.multiply(as_int64(q), 2.0 ** -self.frac)

    def quantize(self, x, rounding: str = "half_even", overflow: str = "saturate", *,
                 rand=None, return_count: bool = False, counters=None, name=None, step=None):
        """Float values -> int64 codes of this format.

        ``x * 2**frac`` (exact) is rounded with ``rounding`` (see
        :mod:`fixedpoint.rounding`), then values outside the range are saturated or
        wrapped.  ``+-inf`` saturates (and is counted); NaN, and inf with ``'wrap'``,
        raise ValueError.

        Parameters
        ----------
        x : array_like of float
            Real values.
        rounding : str
            Rounding mode; ``'stochastic'`` needs ``rand``.
        overflow : {'saturate', 'wrap'}
            What happens to out-of-range values.
        rand : uint64 array or (seed, stream, step, index), optional
            Random words for stochastic rounding.
        return_count : bool
            If True return ``(codes, n_out_of_range)``.
        counters, name, step : optional
            An :class:`~fixedpoint.OverflowCounters`: out-of-range values are added to
            ``name`` as ``'saturation'``/``'overflow'``, and nonzero values that rounded
            to 0 as ``'underflow'``, at time ``step``.

        Returns
        -------
        numpy.ndarray of int64, or (ndarray, int) if ``return_count``.
        """
        check_mode(rounding)
        if overflow not in OVERFLOW_MODES:
            raise ValueError(f"overflow must be one of {OVERFLOW_MODES}, got {overflow!r}")
        x = np.asarray(x, dtype=np.float64)
        # scaling by a power of two is exact (inf on overflow, which then saturates)
        v = round_float(x * 2.0 ** self.frac, rounding, rand=rand)
        # Range test on floats against exact powers of two (max_int + 1 and min_int).
        top = 2.0 ** (self.bits - 1 if self.signed else self.bits)
        bottom = -top if self.signed else 0.0
        vmin, vmax = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
        if np.isnan(vmin) or np.isnan(vmax):
            raise ValueError("cannot quantize NaN")
        if bottom <= vmin and vmax < top:  # common case: nothing out of range
            q, n = v.astype(np.int64), 0
        else:
            over = v >= top
            under = v < bottom
            n = int(np.count_nonzero(over)) + int(np.count_nonzero(under))
            if overflow == "saturate":
                # Clip to [-2**63, largest double < 2**63] so the cast is defined; in-range
                # values are untouched and the out-of-range ones are replaced below.
                q = np.asarray(np.clip(v, -(2.0**63), 2.0**63 - 1024.0).astype(np.int64))
                q[over] = self.max_int
                q[under] = self.min_int
            else:
                if np.isinf(vmin) or np.isinf(vmax):
                    raise ValueError("cannot wrap an infinite value")
                q = _wrap_float(v, self)
        if counters is not None:
            if name is None:
                raise ValueError("counters= needs name=")
            counters.add(name, "saturation" if overflow == "saturate" else "overflow", n, step)
            # underflow is judged on the rounded value, before any wrap to 0
            counters.add(name, "underflow", int(np.count_nonzero((x != 0) & (v == 0))), step)
        return (q, n) if return_count else q


def product_format(a: QFormat, b: QFormat) -> QFormat:
    """Format of exact products of codes of ``a`` and ``b`` .

    ``QFormat(ba, fa, sa) * QFormat(bb, fb, sb) = QFormat(ba + bb, fa + fb, sa or sb)``;
    also available as ``a * b``.
    """
    signed = a.signed or b.signed
    bits = a.bits + b.bits
    if bits > (64 if signed else 63):
        raise ValueError(f"product of {a} and {b} needs {bits} bits, more than int64 holds")
    return QFormat(bits, a.frac + b.frac, signed)


def _wrap_float(v: np.ndarray, fmt: QFormat) -> np.ndarray:
    """Integer-valued finite floats -> wrapped int64 codes (exact)."""
    r = np.fmod(v, 2.0 ** fmt.bits)  # exact; |r| < 2**bits
    if fmt.bits == 64:
        # bring into [-2**63, 2**63) before the cast (the subtractions are exact)
        r = np.where(r >= 2.0**63, r - 2.0**64, r)
        r = np.where(r < -(2.0**63), r + 2.0**64, r)
    return _wrap(r.astype(np.int64), fmt, owned=True)[0]


def wrap(q, fmt: QFormat):
    """Reduce int64 codes modulo ``2**bits`` into ``fmt``'s range (two's complement).

    Returns
    -------
    (numpy.ndarray of int64, int)
        The wrapped codes (a new array) and the number of elements that were out of range.
    """
    return _wrap(as_int64(q), fmt, owned=False)


def saturate(q, fmt: QFormat):
    """Clip int64 codes to ``[fmt.min_int, fmt.max_int]``.

    Returns
    -------
    (numpy.ndarray of int64, int)
        The clipped codes (a new array) and the number of elements that were clipped.
    """
    return _saturate(as_int64(q), fmt, owned=False)


def fit(q, fmt: QFormat, overflow: str = "saturate"):
    """:func:`saturate` or :func:`wrap` according to ``overflow``; returns ``(codes, count)``."""
    return _fit(as_int64(q), fmt, overflow, owned=False)


def _fit(q: np.ndarray, fmt: QFormat, overflow: str, owned: bool):
    if overflow == "saturate":
        return _saturate(q, fmt, owned)
    if overflow == "wrap":
        return _wrap(q, fmt, owned)
    raise ValueError(f"overflow must be one of {OVERFLOW_MODES}, got {overflow!r}")


def _in_range(q: np.ndarray, fmt: QFormat) -> bool:
    lo, hi = int_range(q)
    return lo >= fmt.min_int and hi <= fmt.max_int


def _saturate(q: np.ndarray, fmt: QFormat, owned: bool):
    """:func:`saturate` on an int64 array; may return/overwrite ``q`` itself if ``owned``."""
    owned = owned and isinstance(q, np.ndarray) and q.ndim > 0
    if _in_range(q, fmt):  # common case: two cheap reductions, no clip
        return (q if owned else np.array(q, copy=True)), 0
    y = np.clip(q, fmt.min_int, fmt.max_int)
    n = int(np.count_nonzero(y != q))
    if owned:
        q[...] = y
        y = q
    return y, n


def _wrap(q: np.ndarray, fmt: QFormat, owned: bool):
    """:func:`wrap` on an int64 array; may return/overwrite ``q`` itself if ``owned``."""
    owned = owned and isinstance(q, np.ndarray) and q.ndim > 0
    if _in_range(q, fmt) or (fmt.signed and fmt.bits == 64):
        return (q if owned else np.array(q, copy=True)), 0
    mask = (fmt.max_int << 1) | 1 if fmt.signed else fmt.max_int  # 2**bits - 1
    if fmt.signed:
        # ((q + 2**(b-1)) mod 2**b) - 2**(b-1); adding 2**(b-1) mod 2**b flips bit b-1,
        # so an xor does it without any intermediate overflow.
        half = 1 << (fmt.bits - 1)
        y = np.bitwise_xor(q, half)
        y &= mask
        y -= half
    else:
        y = np.bitwise_and(q, mask)
    n = int(np.count_nonzero(y != q))  # wrapping changes exactly the out-of-range values
    return y, n


def quantize(x, fmt: QFormat, rounding: str = "half_even", overflow: str = "saturate", **kw):
    """Function form of :meth:`QFormat.quantize`."""
    return fmt.quantize(x, rounding, overflow, **kw)


def to_float(q, fmt: QFormat) -> np.ndarray:
    """Function form of :meth:`QFormat.to_float`."""
    return fmt.to_float(q)


def convert(q, from_fmt: QFormat, to_fmt: QFormat, rounding: str = "floor",
            overflow: str = "saturate", *, rand=None, counters=None, name=None, step=None):
    """Re-express codes of ``from_fmt`` in ``to_fmt``: requantize, then saturate or wrap.

    Returns ``(codes, n_out_of_range)``.  With ``counters``/``name`` the out-of-range
    count is recorded as ``'saturation'`` or ``'overflow'`` and nonzero inputs that
    became 0 as ``'underflow'``.
    """
    q = as_int64(q)
    r = requantize(q, from_fmt.frac, to_fmt.frac, rounding, rand=rand)
    y, n = fit(r, to_fmt, overflow)
    if counters is not None:
        if name is None:
            raise ValueError("counters= needs name=")
        counters.add(name, "saturation" if overflow == "saturate" else "overflow", n, step)
        counters.add(name, "underflow", int(np.count_nonzero((q != 0) & (r == 0))), step)
    return y, n
