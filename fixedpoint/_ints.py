"""Small int64 helpers shared by the fixedpoint modules (private)."""
from __future__ import annotations

import numpy as np

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def low_mask(s: int) -> int:
    """``2**s - 1`` as a Python int (the bits below a cut at position ``s``), 0 <= s <= 64."""
    return (1 << s) - 1


def as_int64(x, name: str = "x") -> np.ndarray:
    """``x`` as an int64 array without copying when it already is one.

    Integer and boolean arrays are accepted; floats are refused (a silent float->int cast
    would truncate, which is exactly the kind of bug this library must not hide).
    """
    a = np.asarray(x)
    if a.dtype == np.int64:
        return a
    kind = a.dtype.kind
    if kind in "bi":
        return a.astype(np.int64)
    if kind == "u":
        if a.dtype.itemsize == 8 and a.size and int(a.max()) > INT64_MAX:
            raise OverflowError(f"{name}: uint64 value {int(a.max())} does not fit int64")
        return a.astype(np.int64)
    raise TypeError(f"{name}: expected an integer array, got dtype {a.dtype}")


def int_range(x: np.ndarray) -> tuple[int, int]:
    """``(min, max)`` of a non-empty int64 array as Python ints; ``(0, 0)`` when empty."""
    if x.size == 0:
        return 0, 0
    return int(x.min()), int(x.max())


def max_abs(x: np.ndarray) -> int:
    """Largest ``|x|`` as a Python int (exact even for INT64_MIN)."""
    lo, hi = int_range(x)
    return max(-lo, hi)


def check_product_fits(x: np.ndarray, factor_max_abs: int, what: str) -> int:
    """Raise OverflowError unless ``|x| * factor_max_abs`` fits int64 for every element.

    Returns that bound on ``|x * factor|`` (a Python int).
    """
    if factor_max_abs == 0 or x.size == 0:
        return 0
    m = max_abs(x)
    if m * factor_max_abs > INT64_MAX:
        raise OverflowError(
            f"{what}: |x| up to {m} times {factor_max_abs} overflows the int64 intermediate")
    return m * factor_max_abs


def as_int_scalar(v, name: str) -> int:
    """A Python int from an int-like scalar; refuses floats and bools."""
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {v!r}")
    if isinstance(v, (int, np.integer)):
        return int(v)
    raise TypeError(f"{name} must be an integer, got {v!r}")
