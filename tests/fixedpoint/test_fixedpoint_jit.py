"""The scalar numba twins in fixedpoint.jit are bit-identical to the numpy versions.

Each twin is looped inside an ``@njit`` function over an int64 array and compared with
``np.testing.assert_array_equal`` against the vectorized numpy result.  Arrays mix the
full int64 range, every magnitude, format edges and exact rounding ties.
"""
from __future__ import annotations

import numpy as np
import pytest
from numba import njit

import fixedpoint as fp
from fixedpoint import jit as J
from fixedpoint import rng

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
MODES = fp.ROUNDING_MODES


def values(seed, n=4000, lo=I64_MIN, hi=I64_MAX, s=0):
    g = np.random.default_rng(seed)
    parts = [
        g.integers(lo, hi, n, endpoint=True, dtype=np.int64),
        g.integers(lo, hi, n, endpoint=True, dtype=np.int64) >> g.integers(0, 64, n),
        np.array([lo, lo + 1, lo + 2, hi - 2, hi - 1, hi, 0, 1, -1], dtype=np.int64),
    ]
    if s:
        q = g.integers(-(2 ** (62 - s)), 2 ** (62 - s), n // 4)
        ties = (q << s) + (1 << (s - 1))
        parts += [ties - 1, ties, ties + 1]
    x = np.concatenate(parts)
    return np.clip(x, lo, hi)


# ---- njit loops over the scalar twins ------------------------------------------------------

@njit(cache=True)
def loop_random_bits(seed, stream, steps, idx):
    out = np.empty(idx.size, dtype=np.uint64)
    for i in range(idx.size):
        out[i] = J.random_bits(seed, stream, steps[i], idx[i])
    return out


@njit(cache=True)
def loop_bits_from_prefix(seed, stream, step, idx):
    out = np.empty(idx.size, dtype=np.uint64)
    prefix = J.stream_prefix(seed, stream, step)
    for i in range(idx.size):
        out[i] = J.random_bits_from_prefix(prefix, idx[i])
    return out


@njit(cache=True)
def loop_bernoulli(bits, threshold):
    out = np.empty(bits.size, dtype=np.bool_)
    for i in range(bits.size):
        out[i] = J.bernoulli_from_bits(bits[i], threshold)
    return out


@njit(cache=True)
def loop_shift(x, s, mode, r):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = J.shift_right(x[i], s, mode, r[i])
    return out


@njit(cache=True)
def loop_shift_named(f, x, s):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = f(x[i], s)
    return out


@njit(cache=True)
def loop_shift_stochastic(x, s, r):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = J.shift_right_stochastic(x[i], s, r[i])
    return out


@njit(cache=True)
def loop_requantize(x, from_frac, to_frac, mode, r):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = J.requantize(x[i], from_frac, to_frac, mode, r[i])
    return out


@njit(cache=True)
def loop_saturate(x, lo, hi):
    out = np.empty_like(x)
    n = 0
    for i in range(x.size):
        n += not J.in_range(x[i], lo, hi)
        out[i] = J.saturate(x[i], lo, hi)
    return out, n


@njit(cache=True)
def loop_wrap(x, bits, signed, lo, hi):
    out = np.empty_like(x)
    n = 0
    for i in range(x.size):
        n += not J.in_range(x[i], lo, hi)
        out[i] = J.wrap(x[i], bits, signed)
    return out, n


@njit(cache=True)
def loop_decay(kind, x, d, mode, r):
    out = np.empty_like(x)
    for i in range(x.size):
        if kind == 0:
            out[i] = J.decay(x[i], d[i], mode, r[i])
        else:
            out[i] = J.decay_subtractive(x[i], d[i], mode, r[i])
    return out


@njit(cache=True)
def loop_decay_mul(x, factor, frac, mode, r):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = J.decay_mul(x[i], factor, frac, mode, r[i])
    return out


@njit(cache=True)
def loop_lut(x, table, lo, hi, s, interp, mode):
    out = np.empty_like(x)
    for i in range(x.size):
        if interp:
            out[i] = J.lut_lookup_interp(x[i], table, lo, hi, s, mode)
        else:
            out[i] = J.lut_lookup(x[i], table, lo, hi, s)
    return out


# ---- tests ------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, -1, 2**63 - 1, 2**64 - 1, 123456789])
def test_random_bits_twin(seed):
    g = np.random.default_rng(abs(seed) % 2**32)
    idx = np.concatenate([np.arange(2000), g.integers(0, 2**63 - 1, 2000, dtype=np.int64),
                          np.array([2**63 - 2], dtype=np.int64)])
    steps = g.integers(0, 2**62, idx.size, dtype=np.int64)
    jseed = np.uint64(seed) if seed > I64_MAX else seed  # numba ints are int64 otherwise
    for stream in (0, rng.STREAM_ROUND, 2**40):
        np.testing.assert_array_equal(loop_random_bits(jseed, stream, steps, idx),
                                      rng.random_bits(seed, stream, steps, idx))
        np.testing.assert_array_equal(loop_bits_from_prefix(jseed, stream, 17, idx),
                                      rng.random_bits(seed, stream, 17, idx))
    assert int(J.mix64(np.uint64(12345))) == int(rng.mix64(np.uint64(12345)))


def test_bernoulli_twin():
    bits = rng.random_bits(3, 1, 0, np.arange(20000))
    for p in (0.0, 1e-3, 0.3, 0.5, 1.0):
        thr = rng.bernoulli_threshold(p)
        np.testing.assert_array_equal(loop_bernoulli(bits, thr), rng.bernoulli(p, 3, 1, 0, np.arange(20000)))


@pytest.mark.parametrize("mode", MODES)
def test_shift_right_twins(mode):
    """All shifts 0..62 on ~5,000 values each (edges, ties, all magnitudes)."""
    code = J.mode_code(mode)
    named = {"floor": J.shift_right_floor, "trunc": J.shift_right_trunc,
             "half_up": J.shift_right_half_up, "half_even": J.shift_right_half_even,
             "half_away": J.shift_right_half_away}
    for s in range(63):
        x = values(s, n=1200, s=s)
        r = rng.random_bits(s, rng.STREAM_ROUND, 0, np.arange(x.size))
        want = fp.shift_right(x, s, mode, rand=r)
        np.testing.assert_array_equal(loop_shift(x, s, code, r), want, err_msg=f"{mode} s={s}")
        if mode in named:
            np.testing.assert_array_equal(loop_shift_named(named[mode], x, s), want)
        else:
            np.testing.assert_array_equal(loop_shift_stochastic(x, s, r), want)


@pytest.mark.parametrize("from_frac,to_frac", [(20, 8), (8, 8), (8, 20), (0, 62), (62, 0)])
def test_requantize_twin(from_frac, to_frac):
    d = to_frac - from_frac
    bound = I64_MAX >> max(d, 0)
    x = values(7, lo=-bound - 1, hi=bound)
    r = rng.random_bits(7, 3, 0, np.arange(x.size))
    for mode in MODES:
        np.testing.assert_array_equal(
            loop_requantize(x, from_frac, to_frac, J.mode_code(mode), r),
            fp.requantize(x, from_frac, to_frac, mode, rand=r))


def test_saturate_and_wrap_twins():
    """Every width (1..64 signed, 1..63 unsigned), values and out-of-range counts."""
    x = values(11, n=1500)
    for signed in (True, False):
        for bits in range(1, 65 if signed else 64):
            fmt = fp.QFormat(bits, 0, signed)
            xs = np.concatenate([x, np.array([fmt.min_int - 1, fmt.max_int + 1, fmt.min_int,
                                              fmt.max_int], dtype=object).clip(I64_MIN, I64_MAX)
                                 .astype(np.int64)])
            y, n = fp.saturate(xs, fmt)
            yj, nj = loop_saturate(xs, fmt.min_int, fmt.max_int)
            np.testing.assert_array_equal(yj, y)
            assert nj == n
            y, n = fp.wrap(xs, fmt)
            yj, nj = loop_wrap(xs, bits, signed, fmt.min_int, fmt.max_int)
            np.testing.assert_array_equal(yj, y, err_msg=str(fmt))
            assert nj == n


@pytest.mark.parametrize("mode", MODES)
def test_decay_twins(mode):
    x = values(5, lo=-(2**51) + 1, hi=2**51 - 1)
    d = np.random.default_rng(5).integers(0, 4097, x.size)
    d[:6] = [0, 1, 2, 4095, 4096, 410]
    r = rng.random_bits(5, 3, 1, np.arange(x.size))
    code = J.mode_code(mode)
    np.testing.assert_array_equal(loop_decay(0, x, d, code, r), fp.decay(x, d, mode, rand=r))
    np.testing.assert_array_equal(loop_decay(1, x, d, code, r),
                                  fp.decay_subtractive(x, d, mode, rand=r))
    for frac in (0, 8, 16, 24, 40):
        f = fp.decay_factor(20.0, 1.0, frac)
        xm = np.clip(x, -(I64_MAX // f), I64_MAX // f)
        np.testing.assert_array_equal(loop_decay_mul(xm, f, frac, code, r),
                                      fp.decay_mul(xm, f, frac, mode, rand=r))


@pytest.mark.parametrize("k", [0, 3, 6, 12])
def test_lut_twins(k):
    lut = fp.LUT.build(np.tanh, fp.QFormat(12, 8), k, fp.QFormat(14, 12))
    x = np.concatenate([np.arange(lut.lo - 10, lut.hi + 11), values(3, n=500)])
    for interp_rounding in ("floor", "half_up", "half_even", "trunc", "half_away"):
        lut.interp_rounding = interp_rounding
        code = J.mode_code(interp_rounding)
        for interp in (False, True):
            np.testing.assert_array_equal(
                loop_lut(x, lut.table, lut.lo, lut.hi, lut.shift, interp, code),
                lut.lookup(x, interp))


@pytest.mark.parametrize("mode", ["floor", "trunc", "half_up", "half_even", "half_away",
                                  "stochastic"])
def test_shift_right_row_equals_numpy(mode):
    """The row kernel (mode dispatch hoisted, one branch-free loop for the deterministic
    modes) equals the vectorized numpy shift_right, random words from the counter RNG
    with index base + stride * i, for shifts 0..62 (s <= 0: exact left shift)."""
    from fixedpoint import rng
    from fixedpoint.jit import mode_code, shift_right_row, stream_prefix
    from fixedpoint.rounding import shift_right as np_shift_right
    gen = np.random.default_rng(5)        # test data only
    vals = np.concatenate([gen.integers(-2**61, 2**61, 300), np.arange(-40, 41),
                           np.array([2**62 - 1, -2**62])]).astype(np.int64)
    prefix = stream_prefix(np.uint64(7), np.uint64(3), 11)
    for s in range(-3, 63):
        out = np.empty_like(vals)
        shift_right_row(out, vals, s, mode_code(mode), prefix, 1000, 3)
        if s <= 0:
            expected = vals << -s
        else:
            words = rng.random_bits(7, 3, 11, 1000 + 3 * np.arange(vals.size))
            expected = np_shift_right(vals, s, mode, rand=words)
        np.testing.assert_array_equal(out, expected, err_msg=f"s={s}")
