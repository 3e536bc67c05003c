"""Counter-based RNG: pure-Python-int oracle, chunk/order invariance, Bernoulli frequency.

The oracle test checks 200 hypothesis examples x 64 words = 12,800 words.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixedpoint import rng

PROP = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
M64 = 2**64 - 1


def py_mix64(x: int) -> int:
    x &= M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def py_random_bits(seed: int, stream: int, step: int, index: int) -> int:
    prefix = py_mix64(py_mix64(py_mix64(seed) ^ (stream & M64)) ^ (step & M64))
    return py_mix64(prefix + (index + 1) * 0x9E3779B97F4A7C15)


def test_mix64_known_values():
    # SplitMix64 with state 0: first output is mix64(GOLDEN) = 0xE220A8397B1DCDAF
    assert py_mix64(0x9E3779B97F4A7C15) == 0xE220A8397B1DCDAF
    assert int(rng.mix64(np.uint64(0x9E3779B97F4A7C15))) == 0xE220A8397B1DCDAF
    assert int(rng.mix64(np.uint64(0))) == 0


@PROP
@given(seed=st.integers(-(2**63), 2**64 - 1), stream=st.integers(0, 2**63 - 1),
       step=st.integers(0, 2**63 - 1), start=st.integers(0, 2**63 - 65))
def test_python_int_oracle(seed, stream, step, start):
    """rng.random_bits equals the plain-int SplitMix formulas for 64 consecutive indices."""
    idx = np.arange(start, start + 64, dtype=np.int64)
    got = rng.random_bits(seed, stream, step, idx)
    assert got.dtype == np.uint64
    assert [int(v) for v in got] == [py_random_bits(seed, stream, step, int(i)) for i in idx]


def test_chunk_order_and_broadcast_invariance():
    n = 10_000
    idx = np.arange(n)
    whole = rng.random_bits(42, rng.STREAM_INPUT, 17, idx)
    for chunk in (1, 3, 64, 999, 4096):
        parts = [rng.random_bits(42, rng.STREAM_INPUT, 17, idx[i:i + chunk])
                 for i in range(0, n, chunk)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    perm = np.random.default_rng(0).permutation(n)
    np.testing.assert_array_equal(rng.random_bits(42, rng.STREAM_INPUT, 17, idx[perm]), whole[perm])
    # 2-D (step, index) broadcasting equals per-step calls
    steps = np.arange(5)[:, None]
    grid = rng.random_bits(42, rng.STREAM_INPUT, steps, idx[None, :100])
    for t in range(5):
        np.testing.assert_array_equal(grid[t], rng.random_bits(42, rng.STREAM_INPUT, t, idx[:100]))
    # trial/unit layout: a trial's words do not depend on the batch it is in
    full = rng.random_bits(1, 2, 3, rng.trial_unit_index(np.arange(8), np.arange(5)))
    sub = rng.random_bits(1, 2, 3, rng.trial_unit_index(np.array([6, 2]), np.arange(5)))
    np.testing.assert_array_equal(sub, full[[6, 2]])


def test_streams_steps_seeds_differ():
    idx = np.arange(1000)
    a = rng.random_bits(1, 1, 0, idx)
    for other in (rng.random_bits(2, 1, 0, idx), rng.random_bits(1, 2, 0, idx),
                  rng.random_bits(1, 1, 1, idx)):
        assert np.count_nonzero(a == other) == 0


def test_uniform_matches_bits():
    idx = np.arange(1000)
    u = rng.uniform(5, 1, 2, idx)
    b = rng.random_bits(5, 1, 2, idx)
    np.testing.assert_array_equal(u, (b >> np.uint64(11)).astype(np.float64) * 2.0**-53)
    assert u.min() >= 0.0 and u.max() < 1.0


@pytest.mark.parametrize("p", [0.5, 0.1, 1e-3, 0.9999])
def test_bernoulli_frequency(p):
    """Over 10**6 draws the frequency is within 4 sigma of p."""
    n = 10**6
    k = int(np.count_nonzero(rng.bernoulli(p, 7, rng.STREAM_TEST, 3, np.arange(n))))
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(k - n * p) <= 4 * sigma


def test_bernoulli_extremes_and_threshold():
    idx = np.arange(10_000)
    assert not rng.bernoulli(0.0, 1, 1, 0, idx).any()
    assert rng.bernoulli(1.0, 1, 1, 0, idx).all()
    assert int(rng.bernoulli_threshold(0.5)) == 2**52
    # per-element probabilities broadcast
    p = np.where(idx % 2 == 0, 0.0, 1.0)
    np.testing.assert_array_equal(rng.bernoulli(p, 1, 1, 0, idx), idx % 2 == 1)


def test_uniform_bits_are_balanced():
    """Each of the 64 output bits is set with frequency 1/2 +- 4 sigma over 10**5 words."""
    n = 10**5
    b = rng.random_bits(11, 1, 0, np.arange(n))
    ones = np.array([np.count_nonzero((b >> np.uint64(i)) & np.uint64(1)) for i in range(64)])
    assert np.all(np.abs(ones - n / 2) <= 4 * math.sqrt(n / 4))


def test_bernoulli_steps_equals_bernoulli():
    """The compiled per-step draw equals the vectorized numpy draw bit for bit, for a
    per-unit probability and a per-step probability (the spike sources use both)."""
    from fixedpoint import rng
    idx = rng.trial_unit_index(np.array([0, 3, 7]), np.arange(5))
    steps = np.arange(11, 11 + 40)
    p_unit = np.linspace(0.0, 1.0, 5)
    ref = rng.bernoulli(p_unit, 9, rng.STREAM_INPUT, steps[:, None, None], idx[None])
    np.testing.assert_array_equal(rng.bernoulli_steps(p_unit, 9, rng.STREAM_INPUT, 11, 40, idx),
                                  ref.astype(np.uint8))
    p_step = np.linspace(0, 1, 40 * 15).reshape(40, 3, 5)
    ref = rng.bernoulli(p_step, 2, rng.STREAM_TEACHER, steps[:, None, None], idx[None])
    np.testing.assert_array_equal(rng.bernoulli_steps(p_step, 2, rng.STREAM_TEACHER, 11, 40, idx),
                                  ref.astype(np.uint8))
