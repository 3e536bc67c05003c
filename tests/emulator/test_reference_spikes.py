"""The shared spike generator ``emulator.spikes.SpikeSource`` (docs/model.md#usp-kernel, #teacher).

* chunk- and batch-split invariance, bit for bit;
* spikes are exactly the documented counter-RNG draws, teacher exactly Bernoulli(φ(V*) dt) with
  V* from traces that include the bin-k spike (docs/model.md#usp-kernel, #teacher);
* USP mean and variance match the closed forms of docs/model.md#membrane-potential-statistics within a derived statistical bound.
"""
import numpy as np
from scipy.special import expit
from numpy.testing import assert_array_equal

from emulator import NeuronParams, SpikeSource, Task, fig3_task
from fixedpoint import rng

P = NeuronParams()


def _draw(task, seed, trials, chunks):
    src = SpikeSource(task, seed, trials)
    out = [src.next(n, return_usp=True) for n in chunks]
    return tuple(np.concatenate([o[i] for o in out]) for i in range(3))


def test_chunk_invariance_realizable_and_poisson_teacher():
    """next(1000) == next(300) + next(700) (+ odd chunks incl. 0 and 1), bit for bit."""
    for teacher_rate in (None, 20.0):
        task = fig3_task(n_trials=3, N=20, M=2, seed=3, teacher_rate=teacher_rate)
        ref = _draw(task, 11, None, [1000])
        for chunks in ([300, 700], [1, 0, 299, 613, 87]):
            got = _draw(task, 11, None, chunks)
            for a, b in zip(ref, got):
                assert_array_equal(a, b)
        assert ref[0].dtype == np.uint8 and ref[1].dtype == np.uint8
        assert ref[0].shape == (1000, 3, 20) and ref[1].shape == (1000, 3, 2)


def test_batch_split_invariance():
    """Trials [0..7] as one batch == [0..3] and [4..7] (and a permuted subset), bit for bit."""
    task = fig3_task(n_trials=8, N=16, M=1, seed=5)
    X, Y, x = _draw(task, 7, np.arange(8), [400])
    for part in (np.arange(4), np.arange(4, 8), np.array([6, 1])):
        Xp, Yp, xp = _draw(task, 7, part, [150, 250])
        assert_array_equal(Xp, X[:, part])
        assert_array_equal(Yp, Y[:, part])
        assert_array_equal(xp, x[:, part])
    assert Y.sum() > 0


def test_spikes_are_the_documented_rng_draws():
    """X = rng.bernoulli(r dt, seed, STREAM_INPUT, k, t<<32|i); traces a = d a + X_k (bin-k spike
    included), x = (a_m - a_s)/(tau_m - tau_s); V* = Σ f(w*) x; Y = rng.bernoulli(φ_max σ(V*) dt,
    seed, STREAM_TEACHER, k, t<<32|j) -- recomputed here with a plain python loop."""
    task = fig3_task(n_trials=2, N=10, M=2, seed=1, group_rates=(40.0, 200.0))
    trials = np.array([1, 0])
    seed, n = 4, 300
    X, Y, x = _draw(task, seed, trials, [n])
    idx = rng.trial_unit_index(trials, np.arange(10))
    k = np.arange(n)[:, None, None]
    assert_array_equal(X, rng.bernoulli(task.rates * P.dt, seed, rng.STREAM_INPUT, k, idx[None]))
    am = np.zeros((2, 10))
    as_ = np.zeros((2, 10))
    xs = np.empty((n, 2, 10))
    for t in range(n):
        am = P.decay_m * am + X[t]
        as_ = P.decay_s * as_ + X[t]
        xs[t] = (am - as_) * P.usp_scale
    assert_array_equal(x, xs)
    wt = task.w_target[trials]
    Vt = np.zeros((n, 2, 2))
    for i in range(10):                                   # ascending-i accumulation, as documented
        Vt += wt[None, :, :, i] * xs[:, :, None, i]
    assert np.allclose(Vt, np.einsum("bmn,tbn->tbm", wt, xs), rtol=1e-12, atol=1e-12)
    p = P.phi_max * P.dt * expit(P.beta * (Vt - P.theta))
    Yref = rng.bernoulli(p, seed, rng.STREAM_TEACHER, k, rng.trial_unit_index(trials, np.arange(2))[None])
    assert_array_equal(Y, Yref)
    assert 0 < Y.sum() < Y.size


def test_poisson_teacher_rate():
    """Homogeneous Poisson teacher (Figs 4, 5, 7): spike count within 5 binomial s.d. of rate*T."""
    task = Task(rates=np.full(3, 5.0), w_init=np.zeros((4, 2, 3)), teacher_rate=80.0)
    src = SpikeSource(task, 9)
    _, Y = src.next(20000)
    n, pr = Y.size, 80.0 * P.dt
    assert abs(Y.sum() - n * pr) < 5 * np.sqrt(n * pr * (1 - pr))


def _kernel(n=4000):
    k = np.arange(n)
    return P.usp_scale * (P.decay_m ** k - P.decay_s ** k)       # eps_k [1/s], eps_0 = 0


def test_usp_mean_and_variance_match_spec_closed_forms():
    """docs/model.md#membrane-potential-statistics: E[x] = r Σ_k ε_k dt (0.99931 r), Var[x] = p(1-p) Σ_k ε_k² (p = r dt; 382.7 @ 10 Hz,
    1875 @ 50 Hz), x_k = Σ_j ε_j X_{k-j}, X ~ Bernoulli(p) i.i.d.

    Bound.  Time averages over n steps of A independent afferents of one rate (after a 200-step
    burn-in, residual transient e^{-10} ~ 5e-5 relative):
      Var[mean]   = (1/(nA)) Σ_τ C(τ),  C(τ) = p(1-p) Σ_j ε_j ε_{j+|τ|}    (= p(1-p)(Σε)²/(nA))
      Var[s²]     = (1/(nA)) Σ_τ [2 C(τ)² + κ4(τ)],  κ4(τ) = κ4(X) Σ_j ε_j² ε_{j+|τ|}²,
                    κ4(X) = p(1-p)(1-6p(1-p))  (fourth cumulant of the Bernoulli input).
    We require |estimate - closed form| < 5 s.d. (+ the O(1/n) bias of s²).  100 afferents
    (50 @ 10 Hz, 50 @ 50 Hz) x 40 s: the 5-s.d. bounds are ~2 %/1.6 % (mean) and ~6 %/4 % (var).
    """
    N, steps, burn = 100, 80000, 200
    task = fig3_task(n_trials=1, N=N, seed=0, teacher_rate=1.0)
    src = SpikeSource(task, 123)
    src.next(burn)
    s1 = np.zeros(N)
    s2 = np.zeros(N)
    for _ in range(steps // 10000):
        _, _, x = src.next(10000, return_usp=True)
        s1 += x[:, 0].sum(0)
        s2 += (x[:, 0] ** 2).sum(0)
    eps = _kernel()
    acf = np.correlate(eps, eps, "full")            # Σ_j ε_j ε_{j+τ}, τ = -(n-1)..(n-1)
    acf4 = np.correlate(eps ** 2, eps ** 2, "full")
    for r, sel in ((10.0, slice(0, 50)), (50.0, slice(50, 100))):
        A = 50
        p = r * P.dt
        mean_cf, var_cf = P.usp_mean(r), P.usp_var(r)
        assert abs(mean_cf - p * eps.sum()) < 1e-9 * mean_cf and abs(var_cf - p * (1 - p) * (eps ** 2).sum()) < 1e-9 * var_cf
        mean = s1[sel].sum() / (steps * A)
        var = s2[sel].sum() / (steps * A) - mean ** 2
        C = p * (1 - p) * acf
        k4 = p * (1 - p) * (1 - 6 * p * (1 - p)) * acf4
        sd_mean = np.sqrt(C.sum() / (steps * A))
        sd_var = np.sqrt((2 * C ** 2 + k4).sum() / (steps * A))
        bias = C.sum() / steps                       # E[s² - var] = -Var[single-afferent mean]
        assert abs(mean - mean_cf) < 5 * sd_mean, (r, mean, mean_cf, sd_mean)
        assert abs(var - var_cf) < 5 * sd_var + bias, (r, var, var_cf, sd_var)
    # docs/model.md#usp-kernel: discrete-kernel constants vs the continuous ones (∫ε = 1, ∫ε² = 1/c_ε):
    assert abs(P.kernel_sum - 0.99931) < 1e-5 and abs(P.kernel_sq_sum - 38.4613) < 1e-4
    assert abs(P.kernel_sq_sum * P.c_eps - 1) < 1e-5
    # ... so Var = (1 - r dt) r / c_ε up to 1e-5 (Bernoulli instead of Poisson input)
    assert abs(P.usp_var(10.0) / ((1 - 10.0 * P.dt) * 10.0 / P.c_eps) - 1) < 1e-5
