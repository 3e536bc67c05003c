"""LUTs: table, lookups and interpolation equal a pure-Python oracle on every input code,
and the reported max error is the true maximum over the whole input domain."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fixedpoint as fp

PROP = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def o_round(v: Fraction, mode: str) -> int:
    return {"floor": math.floor, "trunc": math.trunc, "half_even": round,
            "half_up": lambda f: math.floor(f + Fraction(1, 2)),
            "half_away": lambda f: (1 if f >= 0 else -1) * math.floor(abs(f) + Fraction(1, 2))}[mode](v)


def o_table(func, fin, k, fout, rounding):
    s = fin.bits - k
    lo, hi = fin.min_int, fin.max_int
    out = []
    for i in range(2**k + 1):
        x = lo + i * 2**s
        y = float(func(np.float64(float(Fraction(x) * Fraction(2) ** -fin.frac))))
        if i == 2**k and not math.isfinite(y):
            y = float(func(np.float64(float(Fraction(hi) * Fraction(2) ** -fin.frac))))
        q = o_round(Fraction(y) * Fraction(2) ** fout.frac, rounding)
        out.append(min(max(q, fout.min_int), fout.max_int))
    return out


def o_lookup(x, table, fin, k, interp, mode):
    s = fin.bits - k
    off = min(max(x, fin.min_int), fin.max_int) - fin.min_int
    if s == 0:
        return table[off]
    if not interp:
        return table[(off + 2 ** (s - 1)) // 2**s]
    i, r = divmod(off, 2**s)
    return table[i] + o_round(Fraction((table[i + 1] - table[i]) * r, 2**s), mode)


CONFIGS = [
    (np.tanh, fp.QFormat(12, 8), 6, fp.QFormat(12, 10), "half_even", "half_up"),
    (sigmoid, fp.QFormat(10, 5), 4, fp.QFormat(11, 10, False), "half_up", "half_even"),
    (np.exp, fp.QFormat(8, 4), 5, fp.QFormat(16, 8, False), "half_even", "half_up"),  # saturates
    (np.sqrt, fp.QFormat(12, 8, False), 12, fp.QFormat(14, 10, False), "floor", "half_up"),
    (np.square, fp.QFormat(9, 3), 3, fp.QFormat(16, 2), "trunc", "floor"),
    (np.sin, fp.QFormat(7, 4), 0, fp.QFormat(10, 8), "half_even", "half_away"),
    (np.log, fp.QFormat(10, 6, False), 5, fp.QFormat(12, 8), "half_even", "trunc"),  # log(0)=-inf
]


@pytest.mark.parametrize("func,fin,k,fout,rounding,irnd", CONFIGS,
                         ids=[c[0].__name__ for c in CONFIGS])
def test_lut_matches_oracle_and_true_max_error(func, fin, k, fout, rounding, irnd):
    with np.errstate(divide="ignore"):
        if func is np.log:  # log is -inf at 0: the first node is not finite -> refused
            with pytest.raises(ValueError, match="not finite"):
                fp.LUT.build(func, fin, k, fout, rounding, interp_rounding=irnd)
            return
        lut = fp.LUT.build(func, fin, k, fout, rounding, interp_rounding=irnd)
    table = o_table(func, fin, k, fout, rounding)
    assert list(lut.table) == table
    xs = list(range(fin.min_int - 5, fin.max_int + 6))  # whole domain + clamped outside
    xarr = np.array(xs, dtype=np.int64)
    for interp in (False, True):
        want = [o_lookup(x, table, fin, k, interp, irnd) for x in xs]
        assert list(lut.lookup(xarr, interp)) == want
        # true maximum error over every representable input, in output LSBs
        dom = np.arange(fin.min_int, fin.max_int + 1)
        ref = func(dom * 2.0**-fin.frac) * 2.0**fout.frac
        errs = [abs(float(o_lookup(int(x), table, fin, k, interp, irnd)) - float(r))
                for x, r in zip(dom, ref)]
        assert lut.max_error_lsb(interp) == max(errs)
        j = lut.argmax_error(interp)
        assert errs[j - fin.min_int] == max(errs)
    i, r = lut.index(xarr)
    s = lut.shift
    np.testing.assert_array_equal(i * 2**s + r, np.clip(xarr, fin.min_int, fin.max_int) - fin.min_int)


@PROP
@given(bits=st.integers(1, 9), frac=st.integers(-2, 10), signed=st.booleans(), data=st.data(),
       out_bits=st.integers(2, 24), out_frac=st.integers(0, 16),
       fname=st.sampled_from(["tanh", "sigmoid", "cube", "cos"]),
       rounding=st.sampled_from(["floor", "trunc", "half_up", "half_even", "half_away"]),
       irnd=st.sampled_from(["floor", "trunc", "half_up", "half_even", "half_away"]))
def test_lut_random_formats(bits, frac, signed, data, out_bits, out_frac, fname, rounding, irnd):
    """60 random LUTs; every input code of each domain (<= 512) checked against the oracle."""
    func = {"tanh": np.tanh, "sigmoid": sigmoid, "cube": lambda x: x**3 / 8, "cos": np.cos}[fname]
    fin = fp.QFormat(bits, frac, signed)
    k = data.draw(st.integers(0, bits))
    fout = fp.QFormat(out_bits, out_frac)
    lut = fp.LUT.build(func, fin, k, fout, rounding, interp_rounding=irnd)
    table = o_table(func, fin, k, fout, rounding)
    assert list(lut.table) == table
    dom = np.arange(fin.min_int, fin.max_int + 1)
    ref = func(dom * 2.0**-fin.frac) * 2.0**fout.frac
    for interp in (False, True):
        got = lut.lookup(dom, interp)
        want = [o_lookup(int(x), table, fin, k, interp, irnd) for x in dom]
        assert list(got) == want
        assert lut.max_error_lsb(interp) == max(abs(float(w) - float(r)) for w, r in zip(want, ref))


def test_exact_table_error_is_rounding_only():
    """k = bits: one entry per code, so the error is at most half an LSB (no saturation)."""
    lut = fp.LUT.build(np.tanh, fp.QFormat(10, 6), 10, fp.QFormat(16, 12))
    assert lut.shift == 0
    assert lut.max_error_lsb() <= 0.5
    assert lut.max_error_lsb(interp=True) == lut.max_error_lsb()


def test_error_measured_in_chunks_is_the_same_and_interp_helps():
    lut = fp.LUT.build(sigmoid, fp.QFormat(16, 10), 8, fp.QFormat(16, 15, False))
    for interp in (False, True):
        chunked = max(float(e.max()) for _, e in lut.errors_lsb(interp, chunk=1000))
        assert chunked == lut.max_error_lsb(interp)
    assert lut.max_error_lsb(interp=True) < lut.max_error_lsb(interp=False)


def test_scalar_function_and_guard_node():
    # math.sqrt only takes scalars; the guard node sits one LSB past the domain end
    lut = fp.LUT.build(math.sqrt, fp.QFormat(8, 4, False), 4, fp.QFormat(12, 8, False))
    assert lut.table.size == 17
    assert lut.table[-1] == round(math.sqrt(16.0) * 256)
    # a function undefined past the end: the guard takes the value at hi
    g = fp.LUT.build(lambda x: np.sqrt(15.9375 - x), fp.QFormat(8, 4, False), 4,
                     fp.QFormat(12, 8, False))
    assert g.table[-1] == 0


def test_refusals():
    with pytest.raises(ValueError):
        fp.LUT.build(np.tanh, fp.QFormat(8, 4), 9, fp.QFormat(8, 4))
    with pytest.raises(ValueError):
        fp.LUT.build(np.tanh, fp.QFormat(8, 4), 4, fp.QFormat(8, 4), "stochastic")
    big = fp.LUT.build(np.tanh, fp.QFormat(30, 20), 8, fp.QFormat(16, 14))
    with pytest.raises(ValueError, match="max_points"):
        big.max_error_lsb()
    with pytest.raises(ValueError, match="int64"):
        fp.LUT.build(np.tanh, fp.QFormat(40, 20), 2, fp.QFormat(30, 14))


def test_guard_node_outside_scalar_domain():
    # math.sqrt raises past the end of its domain: the guard clamps to the value at hi
    lut = fp.LUT.build(lambda x: math.sqrt(15.9375 - x), fp.QFormat(8, 4, False), 4,
                       fp.QFormat(12, 8, False))
    assert lut.table[-1] == 0 and lut.table[0] == round(math.sqrt(15.9375) * 256)
