"""Property tests: every fixedpoint op equals exact Python-int / Fraction arithmetic.

Each hypothesis example is a whole int64/float64 array of N = 64 values checked element
by element against a pure-Python oracle, and each test runs 200 examples, so every
operation is checked on 200 * 64 = 12,800 values (>= 10**4) per run.  Formats are random
(widths 1..64 signed, 1..63 unsigned, fractional bits -8..70) and values concentrate on
the format edges, exact rounding ties and all magnitudes.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fixedpoint as fp
from fixedpoint import rng

N = 64                      # values per hypothesis example
EXAMPLES = 200              # examples per test -> 12,800 values per op
PROP = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
MODES = ("floor", "trunc", "half_up", "half_even", "half_away", "stochastic")
DET_MODES = MODES[:-1]


# ---- oracles (pure Python ints / Fractions) ------------------------------------------------

def o_round(v: Fraction, mode: str, low_rand: Fraction | None = None) -> int:
    """Round an exact rational with the named mode.  ``low_rand`` in [0, 1) for stochastic."""
    if mode == "floor":
        return math.floor(v)
    if mode == "trunc":
        return math.trunc(v)
    if mode == "half_up":
        return math.floor(v + Fraction(1, 2))
    if mode == "half_even":
        return round(v)  # Fraction.__round__ is round-half-even
    if mode == "half_away":
        return math.floor(abs(v) + Fraction(1, 2)) * (1 if v >= 0 else -1)
    if mode == "stochastic":
        return math.floor(v + low_rand)
    raise AssertionError(mode)


def o_range(bits: int, signed: bool) -> tuple[int, int]:
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def o_wrap(v: int, bits: int, signed: bool) -> int:
    m = 2**bits
    return ((v + m // 2) % m) - m // 2 if signed else v % m


def o_sat(v: int, bits: int, signed: bool) -> int:
    lo, hi = o_range(bits, signed)
    return min(max(v, lo), hi)


def o_fit(v: int, bits: int, signed: bool, overflow: str) -> tuple[int, bool]:
    lo, hi = o_range(bits, signed)
    out = not lo <= v <= hi
    return (o_sat(v, bits, signed) if overflow == "saturate" else o_wrap(v, bits, signed)), out


def o_shift(x: int, s: int, mode: str, r: int = 0) -> int:
    """round(x / 2**s); stochastic adds the low s bits of r (as a fraction of 2**s)."""
    return o_round(Fraction(x, 2**s), mode, Fraction(r % 2**s, 2**s))


# ---- strategies -------------------------------------------------------------------------

@st.composite
def qformats(draw, max_bits=64, frac=(-8, 70)):
    signed = draw(st.booleans())
    bits = draw(st.integers(1, max_bits if signed else min(max_bits, 63)))
    return fp.QFormat(bits, draw(st.integers(*frac)), signed)


def mix_ints(g: np.random.Generator, lo: int, hi: int, n: int = N, specials=()) -> np.ndarray:
    """``n`` ints in [lo, hi]: uniform, near both edges, near 0 at every magnitude, specials."""
    out = [lo, hi] + [v for v in specials if lo <= v <= hi]
    while len(out) < n:
        kind = int(g.integers(0, 4))
        if kind == 0:
            v = int(g.integers(lo, hi, endpoint=True, dtype=np.int64))
        elif kind == 1:
            v = lo + int(g.integers(0, 3))
        elif kind == 2:
            v = hi - int(g.integers(0, 3))
        else:
            e = int(g.integers(0, 64))
            v = int(g.integers(0, 2**min(e, 62), endpoint=True)) * (1 if g.random() < 0.5 else -1)
        out.append(min(max(v, lo), hi))
    out = out[:n]
    g.shuffle(out)
    return np.array(out, dtype=np.int64)


seeds = st.integers(0, 2**63 - 1)


def words(seed: int, n: int = N) -> np.ndarray:
    return rng.random_bits(seed, rng.STREAM_TEST, 0, np.arange(n))


def check_elementwise(got, want, context):
    got = [int(v) for v in np.asarray(got).ravel()]
    assert len(got) == len(want)
    bad = [i for i, (a, b) in enumerate(zip(got, want)) if a != b]
    assert not bad, f"{context}: {len(bad)} mismatches, first at {bad[0]}: got {got[bad[0]]}, want {want[bad[0]]}"


# ---- QFormat ----------------------------------------------------------------------------

@PROP
@given(fmt=qformats())
def test_qformat_range_and_resolution(fmt):
    """Range, resolution and float edges equal their exact rational values."""
    lo, hi = o_range(fmt.bits, fmt.signed)
    assert (fmt.min_int, fmt.max_int) == (lo, hi)
    assert Fraction(fmt.resolution) == Fraction(2) ** -fmt.frac
    assert fmt.min == float(Fraction(lo) * Fraction(2) ** -fmt.frac)
    assert fmt.max == float(Fraction(hi) * Fraction(2) ** -fmt.frac)
    assert fmt.range == (fmt.min, fmt.max)


@PROP
@given(fmt=qformats(), seed=seeds, overflow=st.sampled_from(["saturate", "wrap"]))
def test_wrap_saturate_fit(fmt, seed, overflow):
    """wrap / saturate / fit: values and out-of-range counts (12,800 values)."""
    g = np.random.default_rng(seed)
    lo, hi = o_range(fmt.bits, fmt.signed)
    specials = [lo - 1, hi + 1, lo - 2**fmt.bits, hi + 2**fmt.bits, 0, -1]
    x = mix_ints(g, I64_MIN, I64_MAX, specials=specials)
    want = [o_fit(int(v), fmt.bits, fmt.signed, overflow) for v in x]
    y, n = fp.fit(x, fmt, overflow)
    check_elementwise(y, [w for w, _ in want], f"{overflow} {fmt}")
    assert n == sum(o for _, o in want)
    assert y.dtype == np.int64 and y is not x
    f = fp.saturate if overflow == "saturate" else fp.wrap
    y2, n2 = f(x, fmt)
    np.testing.assert_array_equal(y2, y)
    assert n2 == n
    assert list(fmt.contains(x)) == [lo <= int(v) <= hi for v in x]


@PROP
@given(fmt=qformats(), seed=seeds)
def test_to_float(fmt, seed):
    """to_float is the correctly rounded value of q * 2**-frac (exact when |q| < 2**53)."""
    g = np.random.default_rng(seed)
    q = mix_ints(g, fmt.min_int, fmt.max_int)
    want = [float(Fraction(int(v)) * Fraction(2) ** -fmt.frac) for v in q]
    assert list(fmt.to_float(q)) == want
    assert list(fp.to_float(q, fmt)) == want


def float_inputs(g: np.random.Generator, fmt: fp.QFormat, allow_inf: bool) -> np.ndarray:
    """Floats around the format: codes, exact halves, near-halves, beyond the edges."""
    lsb = Fraction(2) ** -fmt.frac
    codes = mix_ints(g, max(fmt.min_int - 4, I64_MIN), min(fmt.max_int + 4, I64_MAX))
    out = []
    for i, k in enumerate(codes):
        kind = i % 6
        k = int(k)
        if kind == 0:
            v = k * lsb
        elif kind == 1:
            v = (k + Fraction(1, 2)) * lsb                      # exact tie (if representable)
        elif kind == 2:
            v = (k + Fraction(1, 2) + Fraction(int(g.integers(-1, 2)), 2**30)) * lsb
        elif kind == 3:
            v = (k + Fraction(int(g.integers(0, 2**20)), 2**20)) * lsb
        elif kind == 4:
            v = Fraction(float(g.normal()) * float(2 ** (fmt.bits - 1)) * float(lsb))
        else:
            v = Fraction(float(g.normal())) * lsb / 4            # below one LSB: underflow
        out.append(float(v))
    out[0], out[1] = 0.0, -0.0
    if allow_inf:
        out[2], out[3] = math.inf, -math.inf
    return np.array(out)


@PROP
@given(fmt=qformats(frac=(-8, 60)), seed=seeds, mode=st.sampled_from(MODES),
       overflow=st.sampled_from(["saturate", "wrap"]))
def test_quantize(fmt, seed, mode, overflow):
    """quantize (float -> codes) for every rounding mode and overflow rule, with counts."""
    g = np.random.default_rng(seed)
    x = float_inputs(g, fmt, allow_inf=overflow == "saturate")
    r = words(seed)
    want, n_out, n_under = [], 0, 0
    for xv, rv in zip(x, r):
        if math.isinf(xv):
            lo, hi = o_range(fmt.bits, fmt.signed)
            want.append(hi if xv > 0 else lo)
            n_out += 1
            continue
        v = Fraction(xv) * Fraction(2) ** fmt.frac
        if mode == "stochastic":
            # documented rule: up iff (word >> 11) * 2**-53 < float(v - floor(v))
            vf = xv * 2.0**fmt.frac
            fl = math.floor(vf)
            rounded = fl + (Fraction(int(rv) >> 11, 2**53) < Fraction(vf - fl))
        else:
            rounded = o_round(v, mode)
        w, out = o_fit(rounded, fmt.bits, fmt.signed, overflow)
        want.append(w)
        n_out += out
        n_under += (xv != 0 and rounded == 0)
    c = fp.OverflowCounters()
    q, n = fmt.quantize(x, mode, overflow, rand=r, return_count=True, counters=c, name="v", step=7)
    check_elementwise(q, want, f"quantize {fmt} {mode} {overflow}")
    assert n == n_out
    kind = "saturation" if overflow == "saturate" else "overflow"
    assert c.count("v", kind) == n_out and c.count("v", "underflow") == n_under
    assert c.first_step("v", kind) == (7 if n_out else None)
    np.testing.assert_array_equal(fp.quantize(x, fmt, mode, overflow, rand=r), q)


@PROP
@given(seed=seeds, s=st.integers(0, 62), mode=st.sampled_from(MODES))
def test_shift_right(seed, s, mode):
    """shift_right = round(x / 2**s) for all int64 x (edges, ties, all magnitudes)."""
    g = np.random.default_rng(seed)
    h = 2 ** (s - 1) if s else 0
    ties = []
    for _ in range(16):  # exact halves and their neighbours at random quotients
        q = int(g.integers(-(2 ** (62 - s)), 2 ** (62 - s), endpoint=True))
        ties += [q * 2**s + h + d for d in (-1, 0, 1)]
    ties += [I64_MAX - h, I64_MAX - h + 1, I64_MIN + h, 2**s, -(2**s)]
    x = mix_ints(g, I64_MIN, I64_MAX, specials=ties)
    r = words(seed)
    want = [o_shift(int(v), s, mode, int(rv)) for v, rv in zip(x, r)]
    check_elementwise(fp.shift_right(x, s, mode, rand=r), want, f"shift_right s={s} {mode}")
    # the tuple form of rand draws the very same words
    if mode == "stochastic":
        np.testing.assert_array_equal(
            fp.shift_right(x, s, mode, rand=(seed, rng.STREAM_TEST, 0, np.arange(N))),
            fp.shift_right(x, s, mode, rand=r))


@PROP
@given(seed=seeds, from_frac=st.integers(-10, 70), to_frac=st.integers(-10, 70),
       mode=st.sampled_from(MODES))
def test_requantize(seed, from_frac, to_frac, mode):
    """requantize: rounding when dropping bits, exact (or OverflowError) when adding."""
    d = from_frac - to_frac
    assume(abs(d) <= 62)
    g = np.random.default_rng(seed)
    bound = I64_MAX >> max(-d, 0)
    x = mix_ints(g, -bound - 1, bound)
    r = words(seed)
    want = [o_round(Fraction(int(v)) * Fraction(2) ** -d, mode, Fraction(int(rv) % 2 ** max(d, 0),
                                                                      2 ** max(d, 0)))
            for v, rv in zip(x, r)]
    check_elementwise(fp.requantize(x, from_frac, to_frac, mode, rand=r), want, "requantize")
    if d < 0:
        with pytest.raises(OverflowError):
            fp.requantize(np.array([bound + 1]), from_frac, to_frac, mode, rand=r[:1])


@PROP
@given(a=qformats(frac=(-4, 30)), b=qformats(frac=(-4, 30)), mode=st.sampled_from(MODES),
       overflow=st.sampled_from(["saturate", "wrap"]), seed=seeds, data=st.data())
def test_convert(a, b, mode, overflow, seed, data):
    """convert(from_fmt -> to_fmt): requantize + saturate/wrap, with counts."""
    d = a.frac - b.frac
    assume(d >= 0 or a.bits - d <= 63)
    g = np.random.default_rng(seed)
    x = mix_ints(g, a.min_int, a.max_int)
    r = words(seed)
    want, n_out, n_under = [], 0, 0
    for v, rv in zip(x, r):
        rounded = o_shift(int(v), d, mode, int(rv)) if d >= 0 else int(v) * 2**-d
        w, out = o_fit(rounded, b.bits, b.signed, overflow)
        want.append(w)
        n_out += out
        n_under += (v != 0 and rounded == 0)
    c = fp.OverflowCounters()
    y, n = fp.convert(x, a, b, mode, overflow, rand=r, counters=c, name="x", step=0)
    check_elementwise(y, want, f"convert {a}->{b} {mode} {overflow}")
    assert n == n_out and c.count("x", "underflow") == n_under


# ---- product format --------------------------------------------------------------------------

@PROP
@given(a=qformats(max_bits=40), b=qformats(max_bits=40), seed=seeds)
def test_product_format_holds_every_product(a, b, seed):
    """Exact products of in-range codes always lie inside product_format(a, b) = a * b."""
    signed = a.signed or b.signed
    assume(a.bits + b.bits <= (64 if signed else 63))
    g = np.random.default_rng(seed)
    x = mix_ints(g, a.min_int, a.max_int)
    y = mix_ints(g, b.min_int, b.max_int)
    pf = fp.product_format(a, b)
    assert pf == fp.QFormat(a.bits + b.bits, a.frac + b.frac, signed) == a * b
    assert all(pf.min_int <= int(u) * int(v) <= pf.max_int for u, v in zip(x, y))


# ---- decays ---------------------------------------------------------------------------------

def d_values(g):
    return mix_ints(g, 0, 4096, specials=[0, 1, 2, 4095, 4096, 410])


@PROP
@given(seed=seeds, mode=st.sampled_from(MODES))
def test_decay_lava_form(seed, mode):
    """decay = round(x * (4096 - d) / 4096); 'trunc' equals Lava's LIF expression."""
    g = np.random.default_rng(seed)
    x = mix_ints(g, -(2**51) + 1, 2**51 - 1)
    d = d_values(g)
    r = words(seed)
    want = [o_shift(int(v) * (4096 - int(dd)), 12, mode, int(rv)) for v, dd, rv in zip(x, d, r)]
    check_elementwise(fp.decay(x, d, mode, rand=r), want, f"decay {mode}")
    if mode == "trunc":
        p = x * (4096 - d)
        lava = np.sign(p) * np.right_shift(np.abs(p), 12)  # lava/proc/lif/models.py
        np.testing.assert_array_equal(fp.decay(x, d), lava)


@PROP
@given(seed=seeds, mode=st.sampled_from(MODES))
def test_decay_subtractive(seed, mode):
    """decay_subtractive = x - round(x * d / 4096)."""
    g = np.random.default_rng(seed)
    x = mix_ints(g, -(2**51) + 1, 2**51 - 1)
    d = d_values(g)
    r = words(seed)
    want = [int(v) - o_shift(int(v) * int(dd), 12, mode, int(rv)) for v, dd, rv in zip(x, d, r)]
    check_elementwise(fp.decay_subtractive(x, d, mode, rand=r), want, f"decay_subtractive {mode}")


@PROP
@given(seed=seeds, frac=st.integers(0, 62), mode=st.sampled_from(MODES))
def test_decay_mul(seed, frac, mode):
    """decay_mul = round(x * factor / 2**frac) for factors in [0, 2**frac]."""
    g = np.random.default_rng(seed)
    f = int(g.integers(0, 2**frac, endpoint=True))
    bound = I64_MAX // max(f, 1)
    x = mix_ints(g, -bound, bound)
    r = words(seed)
    want = [o_shift(int(v) * f, frac, mode, int(rv)) for v, rv in zip(x, r)]
    check_elementwise(fp.decay_mul(x, f, frac, mode, rand=r), want, f"decay_mul {mode}")
    fmt = fp.QFormat(max(1, 63 - max(f, 1).bit_length()), 0)
    xin = np.clip(x, fmt.min_int, fmt.max_int)
    np.testing.assert_array_equal(fp.decay_mul(xin, f, frac, mode, rand=r, x_fmt=fmt),
                                  fp.decay_mul(xin, f, frac, mode, rand=r))


def test_decay_overflow_is_refused():
    with pytest.raises(OverflowError):
        fp.decay(np.array([2**51]), 1)
    with pytest.raises(OverflowError):
        fp.decay_mul(np.array([2**40]), 2**24, 24)
    with pytest.raises(OverflowError):
        fp.decay(np.array([1]), 1, x_fmt=fp.QFormat(53, 0))
    with pytest.raises(ValueError):
        fp.decay(np.array([1]), 4097)


@pytest.mark.parametrize("tau,dt", [(1.0, 1.0), (2.5, 1.0), (10.0, 1.0), (20.0, 0.1),
                                    (1e4, 1.0), (0.01, 1.0), (math.inf, 1.0), (7.0, 0.0)])
def test_decay_constants(tau, dt):
    """Loihi constant and multiplicative factors are within half an LSB of the exact value."""
    d = fp.loihi_decay_constant(tau, dt)
    assert 0 <= d <= 4096
    exact = 4096 * -math.expm1(-dt / tau)
    assert abs(d - exact) <= 0.5 + 1e-9
    for frac in (0, 8, 16, 24, 40):
        f = fp.decay_factor(tau, dt, frac)
        assert abs(f - 2**frac * math.exp(-dt / tau)) <= 0.5 + 2**frac * 1e-15
    x = np.array([1000, -1000, 12345678])
    f16 = fp.decay_factor(tau, dt, 16)
    np.testing.assert_array_equal(fp.decay_exact(x, tau, dt, 16),
                                  fp.decay_mul(x, f16, 16, "half_even"))


def test_lava_decay_examples_and_subtractive_difference():
    """Spot values, including the documented 1-LSB difference of the subtractive form."""
    assert fp.decay(np.array([1]), 1)[0] == 0             # Lava: trunc(4095/4096) = 0
    assert fp.decay_subtractive(np.array([1]), 1)[0] == 1  # 1 - trunc(1/4096) = 1
    assert fp.decay(np.array([-5000]), 4096)[0] == 0
    assert fp.decay(np.array([-5000]), 0)[0] == -5000


# ---- guards -----------------------------------------------------------------------------

def test_refuses_floats_and_bad_arguments():
    with pytest.raises(TypeError):
        fp.shift_right(np.array([1.5]), 1)
    with pytest.raises(ValueError):
        fp.shift_right([1], 63)
    with pytest.raises(ValueError):
        fp.shift_right([1], 1, "nearest")
    with pytest.raises(ValueError):
        fp.shift_right([1], 1, "stochastic")
    with pytest.raises(TypeError):
        fp.shift_right([1], 1, "stochastic", rand=np.array([1], dtype=np.int64))
    with pytest.raises(ValueError):
        fp.QFormat(64, 0, False)
    with pytest.raises(ValueError):
        fp.QFormat(16, 8).quantize([np.nan])
    with pytest.raises(ValueError):
        fp.QFormat(16, 8).quantize([np.inf], overflow="wrap")


def test_scalars_and_empty_arrays():
    f = fp.QFormat(8, 0)
    assert int(fp.shift_right(5, 1, "half_even")) == 2
    assert int(fp.shift_right(np.int64(-5), 1, "half_away")) == -3
    assert fp.shift_right(np.array([], dtype=np.int64), 3, "half_up").shape == (0,)
    y, n = fp.saturate(np.int64(300), f)
    assert int(y) == 127 and n == 1
    assert int(f.quantize(1e9)) == 127
    assert fp.wrap(np.zeros((0, 3), dtype=np.int64), f)[0].shape == (0, 3)
    assert int(fp.decay(100, 2048)) == 50


def test_package_is_self_contained():
    """Importing fixedpoint pulls in neither numba nor any natgrad/Lava model code."""
    import subprocess
    import sys

    code = ("import sys, fixedpoint; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('numba', 'lava', 'emulator', 'natgrad', 'lava_procs')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
