"""Test set and learning-curve metrics of the Fig 3F task (docs/model.md#metrics).

All metrics are per trial and per output neuron: arrays of shape (K, M).
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit

from fixedpoint import rng

from .params import NeuronParams
from .task import IDENTITY, Parametrization

__all__ = ["test_set", "rate_rmse_hz", "kl_cost", "weight_distance"]

TEST_TRAIN_STEPS = 500   # 250 ms trains (docs/model.md#metrics)


def test_set(task, seed: int, n_samples: int | None = None, trials=None,
             n_steps: int | None = None, chunk: int = 50) -> np.ndarray:
    """Per-trial test set: USP vectors (K, S, N), each the final step of an independent
    ``n_steps``-step Poisson train at the task's rates, docs/model.md#metrics.  Defaults: the
    task's test set (``task.test_samples``, ``task.test_steps``), else 50 samples of 250 ms.

    Spikes: ``rng.bernoulli(r_i dt, seed, STREAM_TEST, k, t<<32 | (s*N + i))`` for steps
    k = 0..n_steps-1; traces start at 0 and include the bin-k spike at step k (as SpikeSource; the
    original code drops the bin-0 spike, whose weight in the final value is ~1e-11).
    A trial's test set does not depend on which other trials are requested.
    """
    if n_samples is None:
        n_samples = getattr(task, "test_samples", None) or 50
    if n_steps is None:
        n_steps = getattr(task, "test_steps", None) or TEST_TRAIN_STEPS
    if int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be an integer >= 1 (got n_samples={n_samples!r})")
    if int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1 (got n_steps={n_steps!r})")
    p: NeuronParams = task.params
    trials = np.arange(task.n_trials) if trials is None else np.asarray(trials, dtype=np.int64).ravel()
    S, N = int(n_samples), task.N
    idx = rng.trial_unit_index(trials, np.arange(S * N))                 # (B, S*N)
    thr = np.tile(rng.bernoulli_threshold(task.rates * p.dt), S)          # (S*N,)
    am = np.zeros(idx.shape)
    as_ = np.zeros(idx.shape)
    dm, ds = p.decay_m, p.decay_s
    for k0 in range(0, int(n_steps), chunk):
        ks = np.arange(k0, min(k0 + chunk, int(n_steps)), dtype=np.int64)
        bits = rng.random_bits(seed, rng.STREAM_TEST, ks[:, None, None], idx[None])
        X = ((bits >> np.uint64(11)) < thr).astype(np.float64)
        for j in range(ks.size):
            am = dm * am + X[j]
            as_ = ds * as_ + X[j]
    return ((am - as_) * p.usp_scale).reshape(trials.size, S, N)


test_set.__test__ = False   # not a pytest test, even when imported into a test module


def _potentials(W, X_test, f):
    ws = f.f(np.asarray(W, dtype=np.float64))
    return np.einsum("kmn,ksn->kms", ws, np.asarray(X_test, dtype=np.float64))


def rate_rmse_hz(W, W_target, X_test, params: NeuronParams, f: Parametrization = IDENTITY) -> np.ndarray:
    """Output-rate RMSE φ_max sqrt(mean_s (σ(V_s) - σ(V*_s))²) [Hz], shape (K, M)."""
    a = params.beta * (_potentials(W, X_test, f) - params.theta)
    b = params.beta * (_potentials(W_target, X_test, f) - params.theta)
    return params.phi_max * np.sqrt(np.mean((expit(a) - expit(b)) ** 2, axis=-1))


def kl_cost(W, W_target, X_test, params: NeuronParams, f: Parametrization = IDENTITY) -> np.ndarray:
    """Bernoulli KL per 0.5-ms bin between teacher and student (docs/model.md#metrics), mean over the test set:
    mean_s [p* (ln p* - ln p) + (1-p*)(ln(1-p*) - ln(1-p))], p = φ(V) dt.  Shape (K, M)."""
    lc = np.log(params.phi_max * params.dt)
    a = params.beta * (_potentials(W, X_test, f) - params.theta)
    b = params.beta * (_potentials(W_target, X_test, f) - params.theta)
    lp, lpt = lc + log_expit(a), lc + log_expit(b)
    p, pt = np.exp(lp), np.exp(lpt)
    kl = pt * (lpt - lp) + (1.0 - pt) * (np.log1p(-pt) - np.log1p(-p))
    return np.mean(kl, axis=-1)


def weight_distance(W, W_target, f: Parametrization | None = None) -> np.ndarray:
    """Euclidean distance ‖w - w*‖₂ over afferents, shape (K, M); with ``f`` in somatic
    coordinates ‖f(w) - f(w*)‖₂."""
    W = np.asarray(W, dtype=np.float64)
    Wt = np.asarray(W_target, dtype=np.float64)
    if f is not None:
        W, Wt = f.f(W), f.f(Wt)
    return np.sqrt(np.sum((W - Wt) ** 2, axis=-1))
