"""Teacher, input and student spikes recomputed from the RNG words and the probability, bit for
bit, with enough spikes to see a biased probability.

The recomputation uses the plain-int SplitMix64 and the plain-float teacher of
``tests/tools/oracle_datapath.py`` (docs/datapath.md, *Randomness* and *Step order* 3 and 6):

* input spike of trial t, afferent i, step k: ``(word(seed, 1, k, t<<32|i) >> 11) <
  floor(r_i dt 2**53)``;
* teacher spike: float64 traces, ``V* = sum_i w*_i x_i`` in ascending i, ``p = (phi_max
  sigma(V*)) dt``, ``(word(seed, 2, k, t<<32|j) >> 11) < floor(p 2**53)``;
* student spike (integer datapath): ``(word(seed, 6, k, t<<32|j) >> 11) < rs(sigma
  phidt_mant, F_sigma + phidt_shift - 53, floor)`` with the oracle's own mantissa of
  ``phi_max dt``.

Power: the high-rate cases give >= 100 spikes of each kind, compared draw by draw.  A
probability 16 % too high turns about 0.16 x (number of spikes) >= 16 non-spikes into spikes,
so an exact comparison misses it with probability about e**-16; the count-versus-probability
check over 4000 steps (> 3000 expected spikes of each kind) sees such a bias at > 9 standard deviations.
The float path (``emulator.run('float64')``) draws no student spikes (the float reference
returns none); its teacher spikes are checked here.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import oracle_datapath as O
from emulator import datapath, kernels, run, stages
from emulator.discretize import discretize
from emulator.hwconfig import validate
from emulator.params import NeuronParams
from emulator.runner import record_arrays
from emulator.spikes import SpikeSource
from emulator.task import Task
from datapath_cases import ETA, high_rate_task, read_tree

FAST = NeuronParams(phi_max=1000.0)       # p = phi_max dt sigma up to 0.5 per bin


@pytest.mark.parametrize("name", ["loihi2_ideal", "fxp16"])
def test_fixed_spikes_are_the_documented_draws(name):
    """docs/datapath.md *Randomness*: over 300 steps (2 trials, 2 neurons, 8 afferents) the
    input and teacher spikes of SpikeSource, the teacher spikes drawn inside the fused kernel
    and the student spikes of the numpy step and of the fused kernel all equal the draws
    recomputed from the words; >= 100 teacher and >= 100 student spikes."""
    task = high_rate_task(params=FAST)
    tree = read_tree(name)
    d = discretize(validate(tree, name), task.params, task.rates, ETA)
    kc = O.Constants(tree, task.params, task.rates, ETA, gamma_lut=d.gamma_lut)
    seed, steps = 21, 300
    trials = np.array([0, 1])
    X, Y, _ = O.teacher_and_inputs(task.params, task.rates, task.w_target, trials, seed, steps)
    Xs, Ys = SpikeSource(task, seed, trials).next(steps)
    assert_array_equal(Xs, X)
    assert_array_equal(Ys, Y)
    st_np = datapath.init_state(d, task.w_init, trials)
    st_nb = datapath.init_state(d, task.w_init, trials)
    src = SpikeSource(task, seed, trials)
    B, M, N = st_np.acc.shape
    rec = record_arrays(0, B, M, N)
    out = np.zeros((B, M), np.int64)
    teach = np.zeros((B, M), np.int64)
    idx = datapath.Indices(trials, M, N)
    sh = kc.F_s + kc.phidt_shift - 53
    n_student = 0
    for k in range(steps):
        datapath.step(d, st_np, X[k], Y[k], seed, idx)
        before = teach.copy()
        kernels.run_fused(d, st_nb, src, 1, seed, 0, rec, 0, out, teach)
        assert_array_equal(teach - before, Y[k], err_msg=f"fused teacher, step {k}")
        want = np.array([[int(O.draw53(seed, O.STREAMS["student"], k, (int(t) << 32) | j)
                              < O.rs(int(st_np.sigma[b, j]) * kc.phidt_mant, sh, "floor"))
                          for j in range(M)] for b, t in enumerate(trials)])
        assert_array_equal(st_np.spikes, want, err_msg=f"numpy student, step {k}")
        assert_array_equal(st_nb.spikes, want, err_msg=f"numba student, step {k}")
        n_student += int(want.sum())
    assert Y.sum() >= 100 and n_student >= 100, (Y.sum(), n_student)


@pytest.mark.parametrize("name", ["loihi2_ideal", "fxp16", "fxp32"])
def test_student_threshold_is_phi_max_dt_sigma(name):
    """The student's integer threshold is phi_max dt sigma 2**53 to within the mantissa's
    relative error 2**-(mant_bits - 1) (docs/datapath.md *Formats*, row constants) plus one,
    at every sigma code from 0 to 1.0 (a threshold doubled or off by a factor is caught)."""
    tree = read_tree(name)
    p = NeuronParams()
    d = discretize(validate(tree, name), p, np.array([10.0]), ETA)
    fs = tree["sigmoid"]["frac"]
    sig = np.unique(np.linspace(0, 1 << fs, 4097).astype(np.int64))
    thr_words = np.array([O.rs(int(s) * d.phidt_mant, fs + d.phidt_shift - 53, "floor") for s in sig])
    exact = p.phi_max * p.dt * sig / 2.0 ** fs * 2.0 ** 53
    rel = 2.0 ** -(tree["constants"]["mant_bits"] - 1)
    assert np.all(np.abs(thr_words - exact) <= rel * exact + 1)
    # and the emulator's stage uses exactly this threshold: a sigma whose threshold is t
    # spikes iff the 53-bit draw is below t (1000 words of step 0, index = neuron)
    B = 1000
    sigma = np.full((B, 1), 1 << fs, np.int64)
    idx = (np.arange(B, dtype=np.int64) << 32)[:, None]
    got = stages.output_spike(d, sigma, 5, 0, idx)
    thr = O.rs((1 << fs) * d.phidt_mant, fs + d.phidt_shift - 53, "floor")
    want = np.array([[int(O.draw53(5, O.STREAMS["student"], 0, b << 32) < thr)] for b in range(B)])
    assert_array_equal(got, want)
    assert 20 < want.sum() < 80            # phi_max dt = 0.05: about 50 of 1000


def test_float_run_teacher_spikes_are_the_documented_draws():
    """emulator.run('float64') and a fixed run (fused kernel) count exactly the teacher
    spikes recomputed from the words, for a realizable teacher with phi_max = 1000 Hz and for
    a 400-Hz Poisson teacher (>= 100 spikes each).  (The float reference draws no student
    spikes.)"""
    seed, steps = 8, 300
    task = high_rate_task(params=FAST)
    trials = np.arange(task.n_trials)
    _, Y, _ = O.teacher_and_inputs(task.params, task.rates, task.w_target, trials, seed, steps)
    assert Y.sum() >= 100
    assert_array_equal(run("float64", task, steps, seed).teacher_spikes, Y.sum(axis=0))
    assert_array_equal(run("fxp16", task, steps, seed).teacher_spikes, Y.sum(axis=0))
    pois = Task(rates=task.rates, w_init=task.w_init, teacher_rate=400.0, params=task.params)
    _, Yp, _ = O.teacher_and_inputs(pois.params, pois.rates, pois.w_init, trials, seed, steps,
                                    poisson_rate=400.0)
    assert Yp.sum() >= 100
    assert_array_equal(SpikeSource(pois, seed).next(steps)[1], Yp)
    assert_array_equal(run("float64", pois, steps, seed).teacher_spikes, Yp.sum(axis=0))
    assert_array_equal(run("loihi2_ideal", pois, steps, seed).teacher_spikes, Yp.sum(axis=0))


def test_spike_counts_match_the_probabilities():
    """Counts against the summed probabilities over 4000 steps (2 trials x 2 neurons): the
    teacher's from the recomputed float p, the student's from the recorded sigma codes (fixed,
    loihi2_ideal).  Bound: 5 s.d. of a sum of independent Bernoullis, sqrt(sum p(1-p)).
    With > 3000 expected spikes of each kind, a 16 % bias is > 9 s.d."""
    seed, steps = 4, 4000
    task = high_rate_task(params=FAST)
    trials = np.arange(task.n_trials)
    _, Y, Pr = O.teacher_and_inputs(task.params, task.rates, task.w_target, trials, seed, steps)
    res = run("loihi2_ideal", task, steps, seed, record=("sigma",), record_every=1)
    assert_array_equal(res.teacher_spikes, Y.sum(axis=0))
    phidt = task.params.phi_max * task.params.dt
    Ps = phidt * res.record["sigma"]                       # (steps, B, M), sigma in [0, 1]
    for count, p in ((Y.sum(), Pr), (res.output_spikes.sum(), Ps)):
        mean, sd = p.sum(), math.sqrt(float((p * (1 - p)).sum()))
        assert mean > 3000
        assert abs(count - mean) < 5 * sd, (count, mean, sd)
        assert 0.16 * mean > 9 * sd
