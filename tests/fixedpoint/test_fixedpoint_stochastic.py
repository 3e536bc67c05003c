"""Stochastic rounding: unbiased, deterministic in (seed, stream, step, index), chunk-invariant."""
from __future__ import annotations

import math

import numpy as np
import pytest

import fixedpoint as fp
from fixedpoint import rng

N = 10**6


def _mean_error_within_4_sigma(y, x, s):
    """Mean of y - x / 2**s is within 4 sigma of 0, sigma from the exact Bernoulli variances."""
    rem = (x & ((1 << s) - 1)).astype(np.float64) / 2**s   # P(round up) per element
    err = (y - (x >> s)).astype(np.float64) - rem           # exact: y - x/2**s
    sigma_mean = math.sqrt(float(np.sum(rem * (1 - rem)))) / x.size
    assert abs(err.mean()) <= 4 * sigma_mean, (err.mean(), sigma_mean)
    return err.mean(), sigma_mean


@pytest.mark.parametrize("s", [1, 5, 12, 30])
def test_shift_right_stochastic_unbiased(s):
    """Over 10**6 samples of random values the mean rounding error is within 4 sigma of 0."""
    x = np.random.default_rng(s).integers(-(2**40), 2**40, N)
    y = fp.shift_right(x, s, "stochastic", rand=(1, rng.STREAM_ROUND, 0, np.arange(N)))
    _mean_error_within_4_sigma(y, x, s)
    # every result is one of the two neighbours
    assert np.all((y == (x >> s)) | (y == (x >> s) + 1))


@pytest.mark.parametrize("x0,s", [(3, 3), (-3, 3), (1, 10), (2**20 + 7, 12)])
def test_shift_right_stochastic_unbiased_constant_value(x0, s):
    """One value repeated 10**6 times: the frequency of rounding up matches (x mod 2**s)/2**s."""
    x = np.full(N, x0, dtype=np.int64)
    y = fp.shift_right(x, s, "stochastic", rand=(2, rng.STREAM_ROUND, 5, np.arange(N)))
    _mean_error_within_4_sigma(y, x, s)


def test_quantize_stochastic_unbiased():
    """Float quantization: mean error within 4 sigma over 10**6 samples."""
    fmt = fp.QFormat(16, 4)
    v = np.random.default_rng(0).uniform(-100, 100, N)
    q = fmt.quantize(v, "stochastic", rand=(3, rng.STREAM_ROUND, 0, np.arange(N)))
    scaled = v * 16
    p = scaled - np.floor(scaled)
    err = q - scaled
    sigma_mean = math.sqrt(float(np.sum(p * (1 - p)))) / N
    assert abs(err.mean()) <= 4 * sigma_mean


def test_stochastic_decay_and_mac_unbiased():
    x = np.random.default_rng(1).integers(-(2**23), 2**23, N)
    y = fp.decay(x, 410, "stochastic", rand=(4, rng.STREAM_ROUND, 0, np.arange(N)))
    _mean_error_within_4_sigma(y, x * (4096 - 410), 12)


def test_deterministic_for_same_key():
    x = np.random.default_rng(2).integers(-(2**30), 2**30, 10_000)
    key = (9, rng.STREAM_ROUND, 4, np.arange(x.size))
    a = fp.shift_right(x, 9, "stochastic", rand=key)
    np.testing.assert_array_equal(a, fp.shift_right(x, 9, "stochastic", rand=key))
    words = rng.random_bits(*key)
    np.testing.assert_array_equal(a, fp.shift_right(x, 9, "stochastic", rand=words))
    # a different step gives different rounding decisions somewhere
    b = fp.shift_right(x, 9, "stochastic", rand=(9, rng.STREAM_ROUND, 5, np.arange(x.size)))
    assert np.any(a != b)


@pytest.mark.parametrize("chunk", [1, 7, 100, 4097])
def test_chunk_invariance(chunk):
    """Processing in chunks (each with its global indices) gives the identical array."""
    n = 20_000 if chunk >= 100 else 1_500  # keep the number of calls small
    x = np.random.default_rng(3).integers(-(2**40), 2**40, n)
    idx = np.arange(n)
    whole = fp.shift_right(x, 13, "stochastic", rand=(5, rng.STREAM_ROUND, 2, idx))
    parts = [fp.shift_right(x[i:i + chunk], 13, "stochastic",
                            rand=(5, rng.STREAM_ROUND, 2, idx[i:i + chunk]))
             for i in range(0, n, chunk)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    fmt = fp.QFormat(20, 6)
    v = np.random.default_rng(4).normal(0, 100, n)
    qwhole = fmt.quantize(v, "stochastic", rand=(5, rng.STREAM_ROUND, 2, idx))
    qparts = [fmt.quantize(v[i:i + chunk], "stochastic", rand=(5, rng.STREAM_ROUND, 2, idx[i:i + chunk]))
              for i in range(0, n, chunk)]
    np.testing.assert_array_equal(np.concatenate(qparts), qwhole)


def test_order_and_shape_invariance():
    """Permuting or reshaping the array (with its indices) permutes/reshapes the result."""
    n = 12_000
    x = np.random.default_rng(5).integers(-(2**40), 2**40, n)
    idx = np.arange(n)
    whole = fp.shift_right(x, 7, "stochastic", rand=(6, rng.STREAM_ROUND, 0, idx))
    perm = np.random.default_rng(6).permutation(n)
    np.testing.assert_array_equal(
        fp.shift_right(x[perm], 7, "stochastic", rand=(6, rng.STREAM_ROUND, 0, idx[perm])),
        whole[perm])
    np.testing.assert_array_equal(
        fp.shift_right(x.reshape(30, 400), 7, "stochastic",
                       rand=(6, rng.STREAM_ROUND, 0, idx.reshape(30, 400))),
        whole.reshape(30, 400))
    # (trial, unit) layout: a batch subset of trials sees the same bits as the full batch
    X = x[:8 * 50].reshape(8, 50)
    key = rng.trial_unit_index(np.arange(8), np.arange(50))
    full = fp.shift_right(X, 7, "stochastic", rand=(6, 3, 1, key))
    sub = fp.shift_right(X[[5, 1]], 7, "stochastic",
                         rand=(6, 3, 1, rng.trial_unit_index(np.array([5, 1]), np.arange(50))))
    np.testing.assert_array_equal(sub, full[[5, 1]])


def test_rand_must_match_shape():
    with pytest.raises(ValueError):
        fp.shift_right(np.arange(10), 3, "stochastic", rand=np.zeros(11, dtype=np.uint64))
    # a broadcastable word array is allowed (same word for every element)
    y = fp.shift_right(np.arange(10), 3, "stochastic", rand=np.uint64(7))
    np.testing.assert_array_equal(y, (np.arange(10) + 7) >> 3)
