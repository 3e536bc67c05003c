"""Integer lookup tables for float functions over a Q-format input domain.

Layout
------
The input domain is every code of ``in_fmt``: ``[lo, hi]`` with ``hi - lo + 1 = 2**bits``.
It is split into ``2**k`` equal bins of ``2**s`` codes, ``s = bits - k``.  The table holds
the function at the bin edges ("nodes") ``x_i = lo + i * 2**s`` for ``i = 0 .. 2**k``:
``2**k`` nodes inside the domain plus one *guard node* ``x_{2**k} = hi + 1``, one LSB
past the end, so that the top bin can be interpolated too.  (If ``func`` is not finite
there, the guard takes the value at ``hi``.)  Entries are ``out_fmt.quantize(func(node),
rounding)``, saturating.

Lookup
------
Inputs outside ``[lo, hi]`` are first clamped to the ends.  With ``off = x - lo``:

* ``index(x)`` returns the bin ``i = off >> s`` and the remainder ``r = off & (2**s - 1)``.
* plain lookup returns the *nearest node*: ``table[(off + 2**(s-1)) >> s]`` (an exact
  half bin goes to the upper node), so its error is that of sampling bins at their centres.
* interpolated lookup returns ``table[i] + round((table[i+1] - table[i]) * r / 2**s)``
  with ``interp_rounding`` (default ``'half_up'``).

Error
-----
:meth:`LUT.max_error_lsb` evaluates the lookup and ``func`` (float64) at *every* code of the
input domain and reports ``max |lookup(x) - func(x) * 2**out_frac|`` in output LSBs.  This
is the true maximum, not an estimate; it includes rounding of the entries, interpolation
and output saturation.  Domains above ``max_points`` codes are refused rather than sampled.
"""
from __future__ import annotations

import warnings

import numpy as np

from ._ints import as_int64, as_int_scalar
from .constants import MAX_SHIFT
from .qformat import QFormat
from .rounding import _shift_right, check_mode


def _eval(func, xs: np.ndarray) -> np.ndarray:
    """``func`` on a float64 array; falls back to element calls for scalar-only functions.

    Floating-point warnings are silenced: non-finite results are checked explicitly.
    """
    with np.errstate(all="ignore"), warnings.catch_warnings():
        # numpy deprecates size-1 array -> scalar conversion: treat it as "scalar-only"
        warnings.simplefilter("error", DeprecationWarning)
        try:
            y = np.asarray(func(xs), dtype=np.float64)
        except (TypeError, ValueError, DeprecationWarning):
            y = None
        if y is None or y.shape != xs.shape:
            y = np.array([float(func(float(v))) for v in xs], dtype=np.float64)
    return y


class LUT:
    """Integer lookup table of a float function; build with :meth:`LUT.build`.

    Attributes
    ----------
    in_fmt, out_fmt : QFormat
        Input and output formats.
    k : int
        log2 of the number of bins.
    shift : int
        Codes per bin are ``2**shift``; ``shift = in_fmt.bits - k``.
    table : numpy.ndarray of int64
        ``2**k + 1`` output codes at the nodes (the last is the guard node).
    lo, hi : int
        Input code range.
    """

    def __init__(self, table, in_fmt: QFormat, k: int, out_fmt: QFormat,
                 interp_rounding: str = "half_up", func=None):
        self.in_fmt = in_fmt
        self.out_fmt = out_fmt
        self.k = as_int_scalar(k, "k")
        if in_fmt.bits > 62:
            raise ValueError("LUT input formats are limited to 62 bits")
        if not 0 <= self.k <= in_fmt.bits:
            raise ValueError(f"k must lie in [0, in_fmt.bits={in_fmt.bits}], got {k}")
        if self.k > 26:
            raise ValueError("at most 2**26 LUT entries")
        self.shift = in_fmt.bits - self.k
        if self.shift > MAX_SHIFT:
            raise ValueError(f"bins of 2**{self.shift} codes are too wide")
        self.table = as_int64(table, "table").copy()
        if self.table.shape != ((1 << self.k) + 1,):
            raise ValueError(f"table must have 2**k + 1 = {(1 << self.k) + 1} entries")
        self.lo = in_fmt.min_int
        self.hi = in_fmt.max_int
        self.interp_rounding = check_mode(interp_rounding)
        if self.interp_rounding == "stochastic":
            raise ValueError("interp_rounding must be deterministic")
        # (t[i+1]-t[i]) * r needs out bits + 1 + shift bits
        if self.shift and out_fmt.bits + 1 + self.shift > 63:
            raise ValueError("interpolation product would not fit int64; use a larger k")
        self.func = func
        self._err = {}

    @classmethod
    def build(cls, func, in_fmt: QFormat, k: int, out_fmt: QFormat,
              rounding: str = "half_even", *, interp_rounding: str = "half_up") -> "LUT":
        """Tabulate ``func`` (float -> float, vectorized or scalar) at the nodes.

        Parameters
        ----------
        func : callable
            Real function of the real input value ``x * 2**-in_fmt.frac``.
        in_fmt : QFormat
            Input domain: every code of this format.
        k : int
            ``2**k`` bins (``0 <= k <= in_fmt.bits``, ``k <= 26``).
        out_fmt : QFormat
            Output format; entries saturate to it.
        rounding : str
            Rounding of the entries (deterministic modes only).
        interp_rounding : str
            Rounding of the interpolation term in :meth:`lookup` ``(interp=True)``.
        """
        check_mode(rounding)
        if rounding == "stochastic":
            raise ValueError("LUT entries need a deterministic rounding")
        k = as_int_scalar(k, "k")
        if not 0 <= k <= min(in_fmt.bits, 26) or in_fmt.bits > 62:
            raise ValueError(f"need 0 <= k <= min(in_fmt.bits, 26) and in_fmt.bits <= 62, "
                             f"got k={k} for {in_fmt}")
        s = in_fmt.bits - k
        nodes = in_fmt.min_int + (np.arange((1 << k) + 1, dtype=np.int64) << s)
        xs = np.ldexp(nodes.astype(np.float64), -in_fmt.frac)
        ys = np.empty(xs.shape)
        ys[:-1] = _eval(func, xs[:-1])
        try:  # guard node, one LSB past the end: may lie outside func's domain
            ys[-1] = _eval(func, xs[-1:])[0]
        except (ValueError, ArithmeticError):
            ys[-1] = np.nan
        if not np.isfinite(ys[-1]):  # then clamp: take the value at hi
            ys[-1] = _eval(func, np.array([np.ldexp(float(in_fmt.max_int), -in_fmt.frac)]))[0]
        if not np.isfinite(ys).all():
            raise ValueError("func is not finite at every LUT node")
        table = out_fmt.quantize(ys, rounding, "saturate")
        return cls(table, in_fmt, k, out_fmt, interp_rounding, func=func)

    def index(self, x):
        """Bin index ``i`` and remainder ``r`` (in input LSBs) of codes ``x`` (clamped)."""
        off = np.clip(as_int64(x), self.lo, self.hi) - self.lo
        return off >> self.shift, off & ((1 << self.shift) - 1)

    def lookup(self, x, interp: bool = False, below: bool = False) -> np.ndarray:
        """Output codes for input codes ``x`` (clamped to the domain); see module docstring.

        Without ``interp`` the entry of the nearest node is returned, or with ``below`` the
        entry of the node at or below ``x`` (a table indexed by the high bits of the input,
        as hardware does without an adder).  ``below`` does not change ``interp``.
        """
        off = np.clip(as_int64(x), self.lo, self.hi)
        off -= self.lo
        s = self.shift
        if s == 0:
            return self.table[off]
        if not interp:
            if not below:
                off += 1 << (s - 1)
            off >>= s
            return self.table[off]
        i = off >> s
        r = off & ((1 << s) - 1)
        t0 = self.table[i]
        dy = self.table[i + 1] - t0
        dy *= r
        y = _shift_right(dy, s, self.interp_rounding, None, owned=True)
        y += t0
        return y

    def errors_lsb(self, interp: bool = False, *, max_points: int = 1 << 24,
                   chunk: int = 1 << 20):
        """Yield ``(codes, |lookup - func * 2**out_frac|)`` over the whole domain in chunks."""
        if self.func is None:
            raise ValueError("this LUT was not built from a function")
        n = self.hi - self.lo + 1
        if n > max_points:
            raise ValueError(f"input domain has {n} codes > max_points={max_points}; "
                             "measure over a narrower input format")
        for start in range(self.lo, self.hi + 1, chunk):
            x = np.arange(start, min(start + chunk, self.hi + 1), dtype=np.int64)
            exact = np.ldexp(_eval(self.func, np.ldexp(x.astype(np.float64), -self.in_fmt.frac)),
                             self.out_fmt.frac)
            yield x, np.abs(self.lookup(x, interp).astype(np.float64) - exact)

    def max_error_lsb(self, interp: bool = False, *, max_points: int = 1 << 24) -> float:
        """True maximum error over every input code, in output LSBs (cached).

        The reference is ``func`` evaluated in float64; the lookup output code is compared
        with ``func(x) * 2**out_frac``, so entry rounding, interpolation and saturation are
        all included.
        """
        key = (bool(interp), self.interp_rounding, self.table.tobytes())
        if key not in self._err:
            self._err[key] = max(float(e.max()) for _, e in
                                 self.errors_lsb(interp, max_points=max_points))
        return self._err[key]

    def argmax_error(self, interp: bool = False, *, max_points: int = 1 << 24) -> int:
        """An input code at which :meth:`max_error_lsb` is attained."""
        best, arg = -1.0, self.lo
        for x, e in self.errors_lsb(interp, max_points=max_points):
            j = int(np.argmax(e))
            if e[j] > best:
                best, arg = float(e[j]), int(x[j])
        return arg

    def __repr__(self) -> str:
        return (f"LUT(in={self.in_fmt}, k={self.k}, out={self.out_fmt}, "
                f"entries={self.table.size})")
