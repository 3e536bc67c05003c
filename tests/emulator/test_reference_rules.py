"""Learning rules of the float64 reference (docs/model.md#learning-rules, paper Eqs. 10, 13, 114, Figs 4 and 8).

* the closed-form natural update equals F^{-1}·(Euclidean update) with the Fisher matrix built
  explicitly (docs/model.md#coefficients);
* parametrization invariance (paper Fig 8, Eqs. 13-17; docs/model.md#parametrization) for a per-synapse attenuation
  and for the nonlinear f(w) = w0 sinh(w/w0); Fig 4 "democratic plasticity" over a whole run;
* the approximated rule uses γ_w = c_w V of the current step (docs/model.md#approximate-rule;
  the original scripts used a stale V);
* simulate: chunk/batch invariance, numba == numpy backend, and learning happens.
"""
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from emulator import (Attenuation, ETA_CODE_SCALED, IDENTITY, NeuronParams, Sinh, Task, delta_approx,
                      delta_euclid, delta_natural, eta_from_paper, fig3_task, gauss_moments,
                      natural_gammas, RULES, simulate)
from emulator import metrics

P = NeuronParams()


def _inputs(K=4, M=2, N=100, seed=0, w_scale=None):
    """Random weights of the Fig 3 scale (or larger) and real USP vectors from the test-set generator."""
    task = fig3_task(n_trials=K, N=N, M=M, seed=seed, w_scale=w_scale)
    X = metrics.test_set(task, seed + 100, n_samples=1)[:, 0]             # (K, N) USPs
    y = (np.arange(K * M).reshape(K, M) % 3 == 0).astype(float)           # some teacher spikes
    return task, task.w_init, X, y


@pytest.mark.parametrize("N,w_scale", [(100, None), (100, 0.05), (2, 0.2), (7, 1.0)])
def test_natural_update_equals_fisher_solve(N, w_scale):
    """docs/model.md#coefficients: F = I1(Σ + r rᵀ) + c2(r uᵀ + u rᵀ) + c3 u uᵀ, Σ = diag(r)/c_ε, u = Σ w;
    delta_natural == F^{-1} delta_euclid to 1e-10 relative (same η, code units)."""
    task, W, X, y = _inputs(N=N, w_scale=w_scale, seed=N)
    r = task.rates
    dn = delta_natural(W, X, y, r, P, eta=1e-3)
    de = delta_euclid(W, X, y, r, P, eta=1e-3)
    ce = P.c_eps
    for k in range(W.shape[0]):
        for j in range(W.shape[1]):
            w = W[k, j]
            m, v = w @ r, (w * w) @ r / ce
            I1, c2, c3 = gauss_moments(m, v, P)
            Sig = np.diag(r) / ce
            u = Sig @ w
            F = I1 * (Sig + np.outer(r, r)) + c2 * (np.outer(r, u) + np.outer(u, r)) + c3 * np.outer(u, u)
            ref = np.linalg.solve(F, de[k, j])
            assert np.max(np.abs(dn[k, j] - ref)) <= 1e-10 * np.max(np.abs(ref)), (k, j)


def test_euclid_and_approx_closed_forms():
    """Eq. 10 and Eq. 114 in code units: Δw = η (1-σ) e x and η γ_s (1-σ) e [c_ε x/r - c_ε c_u + c_w V w],
    e = y - φ_max σ dt, γ_s = 1/I1(m, v) -- with γ_w = c_w V of *this* step (docs/model.md#approximate-rule)."""
    task, W, X, y = _inputs()
    r, eta = task.rates, 2e-3
    V = np.einsum("kmn,kn->km", W, X)
    s = 1 / (1 + np.exp(-P.beta * (V - P.theta)))
    ef = (1 - s) * (y - P.phi_max * P.dt * s)
    assert np.allclose(delta_euclid(W, X, y, r, P, eta=eta), eta * ef[..., None] * X[:, None, :],
                       rtol=1e-12, atol=0)
    I1, _, _ = gauss_moments(W @ r, (W * W) @ r / P.c_eps, P)
    ref = (eta * ef / I1)[..., None] * (P.c_eps * X[:, None, :] / r - P.c_eps * P.c_u
                                        + P.c_w * V[..., None] * W)
    assert np.allclose(delta_approx(W, X, y, r, P, eta=eta), ref, rtol=1e-12, atol=1e-14 * np.abs(ref).max())
    # γ_w follows V step by step (the original code froze a stale V, docs/spec_drift.md#stale-potential)
    for Xs in (X, 0.5 * X):
        gs, gu, gw, Vs = natural_gammas(W, Xs, r, P, rule="approx")
        assert np.allclose(gw, P.c_w * Vs, rtol=1e-15) and np.allclose(gu, P.c_eps * P.c_u)


def test_parametrization_invariance_fig8_attenuation():
    """Paper Fig 8 / Eq. 13-17, docs/model.md#parametrization: with w^s = α w^d, the natural rule's somatic change
    α Δw^d is independent of α (equals the somatic-coordinate update), while the Euclidean rule's
    somatic change scales with α²."""
    task, Ws, X, y = _inputs(K=3, M=2, N=50, seed=4)
    r = task.rates
    alpha = np.linspace(0.1, 1.0, 50)[::-1] ** 1.5
    f = Attenuation(alpha)
    Wd = f.inverse(Ws)
    for rule in (delta_natural, delta_approx):
        ds_id = rule(Ws, X, y, r, P, IDENTITY, eta=1e-3)
        dd = rule(Wd, X, y, r, P, f, eta=1e-3)
        assert np.allclose(f.fprime(Wd) * dd, ds_id, rtol=1e-12, atol=1e-14 * np.abs(ds_id).max())
        assert np.allclose(dd * alpha, ds_id, rtol=1e-12, atol=1e-14 * np.abs(ds_id).max())   # Δw^d ∝ 1/α
    de_id = delta_euclid(Ws, X, y, r, P, IDENTITY, eta=1e-3)
    de = delta_euclid(Wd, X, y, r, P, f, eta=1e-3)
    assert np.allclose(f.fprime(Wd) * de, alpha ** 2 * de_id, rtol=1e-13, atol=0)


def test_parametrization_invariance_nonlinear_f():
    """Nonlinear f(w) = w0 sinh(w/w0) (f' = cosh > 0): f'(w)·Δw_natural(w; f) equals the f = id natural
    change at the same somatic weights f(w); the Euclidean one equals f'(w)² times it."""
    task, Ws, X, y = _inputs(K=3, M=1, N=100, seed=6)
    r = task.rates
    f = Sinh(0.004)                                    # |w| up to 1/N = 0.01 -> strongly nonlinear
    W = f.inverse(Ws)
    assert np.allclose(f.f(W), Ws, rtol=1e-13) and np.all(f.fprime(W) >= 1)
    dn_id = delta_natural(Ws, X, y, r, P, IDENTITY, eta=1e-3)
    dn = delta_natural(W, X, y, r, P, f, eta=1e-3)
    assert np.allclose(f.fprime(W) * dn, dn_id, rtol=1e-12, atol=1e-13 * np.abs(dn_id).max())
    de_id = delta_euclid(Ws, X, y, r, P, IDENTITY, eta=1e-3)
    de = delta_euclid(W, X, y, r, P, f, eta=1e-3)
    assert np.allclose(f.fprime(W) * de, f.fprime(W) ** 2 * de_id, rtol=1e-12, atol=0)


def test_fig4_democratic_plasticity_run():
    """Fig 4 (docs/model.md#fig4): one synapse, 5 Hz input, 20 Hz Poisson teacher, 5 s, η = 0.017 (paper units,
    β included), somatic start 0.05, w^d(0) = 0.05/α for 1/α in {1, 3, 7}, same spikes for all α.
    Natural rule: relative change identical for all α and Δw^d ∝ 1/α (exactly: Euler steps of the
    somatic weight do not depend on α for linear f).  Euclidean contrast: relative change ∝ α²."""
    eta = eta_from_paper(0.017)
    rel = {"natural": [], "euclid": []}
    for inv_alpha in (1.0, 3.0, 7.0):
        f = Attenuation(np.array([1.0 / inv_alpha]))
        task = Task(rates=np.array([5.0]), w_init=np.full((1, 1, 1), 0.05 * inv_alpha), teacher_rate=20.0, f=f)
        for rule in rel:
            res = simulate(task, rule, eta if rule == "natural" else 0.002 * eta, 10000, seed=55)
            rel[rule].append(res.W[0, 0, 0] / task.w_init[0, 0, 0] - 1)
    nat, euc = np.array(rel["natural"]), np.array(rel["euclid"])
    assert abs(nat[0]) > 0.05                                       # substantial learning
    assert np.allclose(nat, nat[0], rtol=1e-10)
    assert euc[0] != 0 and np.all(np.abs(euc[1:] / euc[0] - [1 / 9, 1 / 49]) < 0.2 * np.array([1 / 9, 1 / 49]))


def test_simulate_chunk_batch_backend_invariance():
    """simulate does not depend on the chunk size (bit for bit) nor on the batch split (bit for bit,
    numba backend); numba and numpy backends agree to rounding (1e-11 of the weight change)."""
    task = fig3_task(n_trials=3, N=30, M=2, seed=8)
    kw = dict(rule="natural", eta=ETA_CODE_SCALED["natural"] * 3, steps=1500, seed=2, eval_every=500,
              record_every=750)
    a = simulate(task, chunk=2000, **kw)
    b = simulate(task, chunk=173, **kw)
    for fld in ("W", "W_record", "rmse", "kl", "wdist"):
        assert_array_equal(getattr(a, fld), getattr(b, fld))
    assert_array_equal(a.t_eval, [0, 500, 1000, 1500]) and assert_array_equal(a.t_record, [0, 750, 1500])
    c0 = simulate(task, trials=[0, 2], **kw)
    c1 = simulate(task, trials=[1], **kw)
    assert_array_equal(np.concatenate([c0.W[:1], c1.W, c0.W[1:]]), a.W)
    for rule in ("natural", "approx", "euclid"):
        kw2 = dict(kw, rule=rule, eta=ETA_CODE_SCALED[rule] * 3)
        n = simulate(task, backend="numpy", **kw2)
        nb = simulate(task, backend="numba", **kw2)
        dW = np.abs(n.W - task.w_init).max()
        assert dW > 0 and np.abs(n.W - nb.W).max() <= 1e-11 * dW


def test_learning_reduces_cost_fig3():
    """docs/model.md#fig3f (scaled: η×4, code units): 10 s of natural-gradient learning on 4 Fig-3 trials
    lowers the mean KL cost and the rate RMSE (start RMSE ≈ 6-9 Hz)."""
    task = fig3_task(n_trials=4)
    res = simulate(task, "natural", ETA_CODE_SCALED["natural"], 20000, seed=0)
    kl, rm = res.kl.mean(axis=(1, 2)), res.rmse.mean(axis=(1, 2))
    assert 4 < rm[0] < 12
    assert kl[-1] < 0.95 * kl[0] and rm[-1] < rm[0]


def test_each_rule_lowers_the_rate_rmse():
    """docs/model.md#fig3f, scaled protocol (η×4, code units; N = 100, 10/50 Hz, 4 trials, seed 0):
    after 20 s each rule lowers the mean test-set rate RMSE from 8.83 Hz (measured: Euclid
    4.73, natural 7.73, approx 5.53 Hz -- Euclid is ahead early, as docs/model.md#fig3f expects).  Margin: 10 %.
    The natural-before-Euclid threshold crossing is in tests/natgrad/test_experiments.py (Fig 3F)."""
    task = fig3_task(n_trials=4, seed=0)
    for rule in RULES:
        rm = simulate(task, rule, ETA_CODE_SCALED[rule], 40000, seed=0).rmse.mean(axis=(1, 2))
        assert rm[-1] < 0.9 * rm[0], (rule, rm)
