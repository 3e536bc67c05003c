"""Neuron constants, task generator, test set, metrics and parameter validation of ``emulator``
(docs/model.md#constants, #metrics, #fig3f; bad parameters raise ValueError)."""
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from emulator import (Attenuation, NeuronParams, Sinh, SpikeSource, Task, coefficients, delta_natural,
                      fig3_task, kl_cost, rate_rmse_hz, simulate, weight_distance)
from emulator import metrics

P = NeuronParams()


def test_derived_constants_spec_1():
    """docs/model.md#constants: decays 0.951229 / 0.846482, 1/(τm-τs) = 142.857 /s, c_ε = 1/38.4615 = 0.026 s,
    discrete kernel Σε dt = 0.99931, Σε² dt = 38.4613, peak 59.665 mV at k = 10; q = 78 (Fig 3)."""
    assert round(P.decay_m, 6) == 0.951229 and round(P.decay_s, 6) == 0.846482
    assert abs(P.usp_scale - 142.857142857) < 1e-6
    assert abs(P.c_eps - 0.026) < 1e-15 and abs(P.int_eps_sq - 38.4615385) < 1e-6
    assert round(P.kernel_sum, 5) == 0.99931 and round(P.kernel_sq_sum, 4) == 38.4613
    k = np.arange(100)
    eps = P.usp_scale * (P.decay_m ** k - P.decay_s ** k)
    assert np.argmax(eps) == 10 and round(eps.max(), 3) == 59.665
    assert abs(fig3_task(n_trials=1).q - 78.0) < 1e-12


def test_fig3_task():
    """docs/model.md#fig3f: N = 100, i < 50 at 10 Hz, i >= 50 at 50 Hz, w_init, w* ~ U(-1, 1)/N i.i.d. per trial,
    the same for a trial whatever n_trials is."""
    t5 = fig3_task(n_trials=5, seed=3)
    t2 = fig3_task(n_trials=2, seed=3)
    assert t5.w_init.shape == (5, 1, 100) and t5.w_target.shape == (5, 1, 100)
    assert_array_equal(t5.rates[:50], 10.0) and assert_array_equal(t5.rates[50:], 50.0)
    assert np.all(np.abs(t5.w_init) < 0.01) and np.all(np.abs(t5.w_target) < 0.01)
    assert_array_equal(t2.w_init, t5.w_init[:2]) and assert_array_equal(t2.w_target, t5.w_target[:2])
    assert not np.array_equal(t5.w_init, t5.w_target)
    assert not np.array_equal(fig3_task(n_trials=2, seed=4).w_init, t2.w_init)
    allw = fig3_task(n_trials=64, seed=0).w_init.ravel() * 100
    assert abs(allw.mean()) < 0.03 and abs(allw.var() - 1 / 3) < 0.02          # U(-1, 1)
    t3 = fig3_task(n_trials=1, N=9, M=3, group_rates=(5.0, 15.0, 25.0))
    assert_array_equal(t3.rates, [5.0] * 3 + [15.0] * 3 + [25.0] * 3) and t3.w_init.shape == (1, 3, 9)


def test_test_set_and_metrics():
    """Test set (docs/model.md#metrics: 50 USP vectors = last step of 500-step trains, STREAM_TEST) and the
    metrics of docs/model.md#metrics: RMSE = φ_max sqrt(mean_s (σ - σ*)²) [Hz], Bernoulli KL per bin, ‖w - w*‖."""
    task = fig3_task(n_trials=4, seed=1)
    X = metrics.test_set(task, 7)
    assert X.shape == (4, 50, 100)
    assert_array_equal(metrics.test_set(task, 7, trials=[2, 0]), X[[2, 0]])
    assert not np.array_equal(metrics.test_set(task, 8), X)
    # USP sample means are near the rates (docs/model.md#membrane-potential-statistics; 200 samples per afferent group per trial)
    assert abs(X[..., :50].mean() / 10.0 - 1) < 0.1 and abs(X[..., 50:].mean() / 50.0 - 1) < 0.05
    W, Wt = task.w_init, task.w_target
    rm, kl, wd = rate_rmse_hz(W, Wt, X, P), kl_cost(W, Wt, X, P), weight_distance(W, Wt)
    assert rm.shape == kl.shape == wd.shape == (4, 1)
    V, Vt = np.einsum("kmn,ksn->kms", W, X), np.einsum("kmn,ksn->kms", Wt, X)
    sig = lambda v: 1 / (1 + np.exp(-P.beta * (v - P.theta)))
    assert np.allclose(rm, 100 * np.sqrt(np.mean((sig(V) - sig(Vt)) ** 2, -1)), rtol=1e-12)
    p, pt = 100 * P.dt * sig(V), 100 * P.dt * sig(Vt)
    kl_ref = np.mean(pt * np.log(pt / p) + (1 - pt) * np.log((1 - pt) / (1 - p)), -1)
    assert np.allclose(kl, kl_ref, rtol=1e-9)
    assert np.allclose(wd[:, 0], np.linalg.norm(W - Wt, axis=-1)[:, 0])
    assert np.all(kl > 0) and 1e-4 < kl.mean() < 1e-2 and 2 < rm.mean() < 15   # docs/model.md#fig3f: KL(0) ≈ 2e-3
    assert np.all(rate_rmse_hz(Wt, Wt, X, P) == 0) and np.all(kl_cost(Wt, Wt, X, P) == 0)


def _one_line_error(fn, *names):
    with pytest.raises(ValueError) as ei:
        fn()
    msg = str(ei.value)
    assert "\n" not in msg
    for nm in names:
        assert nm in msg, (nm, msg)
    return msg


def test_bad_parameters_raise_valueerror():
    """Bad parameters raise a one-line ValueError naming the parameter and its range."""
    msg = _one_line_error(lambda: NeuronParams(tau_s=0.01, tau_m=0.01), "tau_s", "tau_m")
    assert msg == "tau_s must be < tau_m (got tau_s=0.01, tau_m=0.01)"
    _one_line_error(lambda: NeuronParams(tau_s=0.02), "tau_s", "< tau_m")
    assert "dt must be > 0" in _one_line_error(lambda: NeuronParams(dt=0.0), "dt")
    _one_line_error(lambda: NeuronParams(dt=-1e-3), "dt", "> 0")
    _one_line_error(lambda: NeuronParams(beta=0.0), "beta")
    _one_line_error(lambda: NeuronParams(phi_max=float("nan")), "phi_max", "finite")
    _one_line_error(lambda: NeuronParams(phi_max=3000.0), "phi_max*dt", "<= 1")
    w = np.zeros((1, 1, 2))
    _one_line_error(lambda: Task(rates=[5.0, -1.0], w_init=w, teacher_rate=5.0), "rates", ">= 0")
    _one_line_error(lambda: Task(rates=[5.0, 3000.0], w_init=w, teacher_rate=5.0), "rates", "1/dt")
    _one_line_error(lambda: Task(rates=np.zeros(0), w_init=np.zeros((1, 1, 0)), teacher_rate=5.0), "N", ">= 1")
    _one_line_error(lambda: fig3_task(n_trials=1, N=0), "N", ">= 1")
    _one_line_error(lambda: fig3_task(n_trials=1, group_rates=(10.0, -50.0)), "rates", ">= 0")
    _one_line_error(lambda: Task(rates=[5.0, 5.0], w_init=np.array([[[np.nan, 0.0]]]), teacher_rate=5.0),
                    "w_init", "finite")
    _one_line_error(lambda: Task(rates=[5.0, 5.0], w_init=w, w_target=np.full((1, 1, 2), np.inf)),
                    "w_target", "finite")
    _one_line_error(lambda: Task(rates=[5.0, 5.0], w_init=w, teacher_rate=-3.0), "teacher_rate", ">= 0")
    _one_line_error(lambda: Task(rates=[5.0, 5.0], w_init=w), "w_target")
    _one_line_error(lambda: Attenuation(np.array([0.5, 0.0])), "alpha", "> 0")
    _one_line_error(lambda: Task(rates=[5.0, 5.0], w_init=w, teacher_rate=5.0, f=Attenuation(np.ones(3))), "alpha")
    _one_line_error(lambda: Sinh(0.0), "w_scale", "> 0")
    _one_line_error(lambda: coefficients(0.0, -1.0, 78.0), "v", ">= 0")
    _one_line_error(lambda: coefficients(np.inf, 1.0, 78.0), "m", "finite")
    X, y, r = np.ones((1, 2)), np.zeros((1, 1)), np.array([5.0, 5.0])
    _one_line_error(lambda: delta_natural(np.array([[[np.nan, 0.0]]]), X, y, r), "W", "finite")
    _one_line_error(lambda: delta_natural(w, X, y, np.array([5.0, -5.0])), "r", ">= 0")
    task = Task(rates=[5.0, 5.0], w_init=w, teacher_rate=5.0)
    _one_line_error(lambda: simulate(task, "natural", -1e-3, 10, 0), "eta", ">= 0")
    _one_line_error(lambda: simulate(task, "newton", 1e-3, 10, 0), "rule")
    _one_line_error(lambda: simulate(task, "natural", 1e-3, 10, 0, chunk=0), "chunk", ">= 1")
    _one_line_error(lambda: SpikeSource(task, 0, trials=[3]), "trials")
