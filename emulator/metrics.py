"""Test set and learning-curve metrics of the Fig 3F task (docs/model.md#metrics).

All metrics are per trial and per output neuron: arrays of shape (K, M).
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit

from fixedpoint import rng

from .params import NeuronParams
from .task import IDENTITY, Parametrization

__all__ = ["test_set", "rate_rmse_hz", "kl_cost", "weight_distance", "evaluator",
           "recorded_teacher_rmse_hz"]

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


def recorded_teacher_rmse_hz(W_rec, task, bin_steps: int | None = None,
                             chunk: int = 20_000) -> np.ndarray:
    """Output-rate error against a recorded teacher, (E, K): for each weight snapshot
    ``W_rec[e]`` (K, M, N) the student replays the recording (its recorded inputs through the
    USP traces of docs/model.md#usp-kernel, the float recursion of
    :class:`emulator.spikes.SpikeSource`), and in every bin of ``bin_steps`` steps its
    expected spike count sum_t phi(V_t) dt is compared with the teacher's recorded count:

        sqrt(mean over bins and output neurons ((expected - recorded) / bin)^2)   [Hz]

    The teacher's own Poisson spread enters as a floor common to every learner (about
    sqrt(rate / bin)), so differences between learners on the same recording are what
    this error tells.  The recording is the one the neuron learns from (an in-sample
    error); it is streamed in chunks of ``chunk`` steps, never loaded whole.
    """
    from .spikes import SpikeSource
    p = task.params
    if task.teacher_spikes is None:
        raise ValueError("recorded_teacher_rmse_hz needs a task with a recorded teacher")
    W_rec = np.asarray(W_rec, dtype=np.float64)
    fW = task.f.f(W_rec)                                          # (E, K, M, N)
    bin_steps = int(task.test_bin_steps if bin_steps is None else bin_steps)
    T = min(task.teacher_spikes.n_steps,
            task.inputs.n_steps if task.inputs is not None else task.teacher_spikes.n_steps)
    n_bins = T // bin_steps
    if n_bins < 1:
        raise ValueError(f"the recording ({T} steps) is shorter than one bin ({bin_steps} steps)")
    src = SpikeSource(task, 0, np.array([0]))
    E, K, M, _ = fW.shape
    sq = np.zeros((E, K))
    k = 0
    chunk = max(bin_steps, chunk - chunk % bin_steps)
    while k < n_bins * bin_steps:
        n = min(chunk, n_bins * bin_steps - k)
        _, Y, x = src.next(n, return_usp=True)                   # x (n, 1, N), Y (n, 1, M)
        V = np.einsum("tn,ekmn->tekm", x[:, 0, :], fW)
        rate = p.phi_max * expit(p.beta * (V - p.theta)) * p.dt  # expected count per step
        nb = n // bin_steps
        exp_b = rate.reshape(nb, bin_steps, E, K, M).sum(axis=1)
        obs_b = Y[:, 0, :].reshape(nb, bin_steps, M).sum(axis=1).astype(np.float64)
        sq += np.sum((exp_b - obs_b[:, None, None, :]) ** 2, axis=(0, 3))
        k += n
    bin_s = bin_steps * p.dt
    return np.sqrt(sq / (n_bins * M)) / bin_s


def evaluator(task, seed: int):
    """The task's learning-curve error as a function of the weights: ``err(W_rec)`` maps
    snapshots (E, K, M, N) to the output-rate error (E, K) in Hz, mean over output neurons.

    A teacher with weights: :func:`rate_rmse_hz` against them on the task's test set
    (:func:`test_set` with ``seed``).  A recorded teacher: :func:`recorded_teacher_rmse_hz`.
    """
    if task.teacher_spikes is not None:
        return lambda W_rec: recorded_teacher_rmse_hz(W_rec, task)
    if task.w_target is None:
        raise ValueError("the task has no teacher weights and no recorded teacher: its error "
                         "is not defined")
    x_test = test_set(task, seed)
    return lambda W_rec: np.array([rate_rmse_hz(w, task.w_target, x_test, task.params, task.f)
                                   .mean(axis=1) for w in np.asarray(W_rec)])
