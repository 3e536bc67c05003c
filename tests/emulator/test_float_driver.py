"""The compiled float64 driver (``emulator.run('float64', ...)``) against the per-step
numpy reference, and its memory bound."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from emulator import runner as R
from emulator.reference import Rule, RULE_CODE, run_chunk
from emulator.spikes import SpikeSource
from emulator.task import Attenuation, fig3_task

ETA = R.default_eta()


def numpy_float_run(task, steps, seed, record, record_every, chunk_steps):
    """The former per-step driver: ``Rule('approx')`` per step plus ``Rule.step_variables``;
    chunks end on recording steps, so that the source's traces are those of the recorded step."""
    rule = Rule("approx", task.rates, task.params, task.f, ETA)
    src = SpikeSource(task, seed)
    W = np.array(task.w_init, dtype=np.float64)
    rec = {name: [] for name in record}
    done = 0
    while done < steps:
        n = min(record_every, steps - done)
        _, Y, x = src.next(n, return_usp=True)
        y = Y.astype(np.float64)
        for t in range(n):
            k = done + t
            recording = (k + 1) % record_every == 0
            if recording:
                vars_ = rule.step_variables(W, x[t], y[t])
            W += rule(W, x[t], y[t])
            if recording:
                vars_.update(usp=x[t], weights=W.copy(), trace_m=src.a_m, trace_s=src.a_s)
                for name in record:
                    rec[name].append(np.array(vars_[name]))
        done += n
    return W, {name: np.array(v) for name, v in rec.items()}


def test_compiled_driver_matches_numpy_steps():
    task = fig3_task(n_trials=2, N=13, M=2, seed=3)
    steps, every = 600, 7
    res = R.run("float64", task, steps, 5, record=R.RECORDABLE, record_every=every, chunk_steps=50)
    W, rec = numpy_float_run(task, steps, 5, R.RECORDABLE, every, 50)
    assert np.abs(W - task.w_init).max() > 1e-4      # the weights did move (~1% in 0.3 s)
    np.testing.assert_allclose(res.w_final, W, rtol=1e-12, atol=1e-12 * np.abs(W).max())
    n_rec = steps // every
    np.testing.assert_allclose(res.record_t_s, np.arange(1, n_rec + 1) * every * task.params.dt)
    for name in R.RECORDABLE:
        a, b = res.record[name], rec[name]
        assert a.shape == b.shape == (n_rec,) + b.shape[1:], name
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max(), err_msg=name)


def test_chunking_does_not_change_results():
    task = fig3_task(n_trials=2, N=13, M=2, seed=3)
    rec = ("weights", "trace_m", "post")
    a = R.run("float64", task, 301, 1, record=rec, record_every=10, chunk_steps=301)
    b = R.run("float64", task, 301, 1, record=rec, record_every=10, chunk_steps=13)
    np.testing.assert_array_equal(a.w_final, b.w_final)
    for name in rec:
        np.testing.assert_array_equal(a.record[name], b.record[name])


def test_run_chunk_records_all_rules_and_parametrizations():
    """Recorded per-neuron values equal ``Rule.step_variables`` at the weights before the step."""
    task = fig3_task(n_trials=2, N=13, M=2, seed=3)
    f = Attenuation(np.linspace(0.5, 1.0, 13))
    x = SpikeSource(task, 0).next(40, return_usp=True)[2]
    y = np.zeros((40, 2, 2))
    y[::9] = 1.0
    for name in RULE_CODE:
        rule = Rule(name, task.rates, task.params, f, 1e-3)
        W = task.w_init.copy()
        rec_w, rec_n = np.empty((4, 2, 2, 13)), np.empty((5, 4, 2, 2))
        run_chunk(W, x[:20], y[:20], rule.kernel_args(), 0, 5, rec_w, rec_n)
        Wn = task.w_init.copy()
        for t in range(20):
            if (t + 1) % 5 == 0:
                v = rule.step_variables(Wn, x[t], y[t])
                for i, key in enumerate(("potential", "sigma", "error", "gamma_s", "post")):
                    np.testing.assert_allclose(rec_n[i, t // 5], v[key], rtol=1e-12, err_msg=key)
            Wn += rule(Wn, x[t], y[t])
            if (t + 1) % 5 == 0:
                np.testing.assert_allclose(rec_w[t // 5], Wn, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(W, Wn, rtol=1e-12, atol=1e-15)


def _peak_bytes(task, steps, every):
    tracemalloc.start()
    try:
        R.run("float64", task, steps, 0, record=R.RECORDABLE, record_every=every, chunk_steps=200)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_record_every():
    """Peak allocation is one chunk of spikes plus the outputs, not record_every steps."""
    task = fig3_task(n_trials=2, N=50, seed=0)
    R.run("float64", task, 10, 0, record=R.RECORDABLE, record_every=3)     # compile first
    steps = 20_000
    short = _peak_bytes(task, steps, 97)          # 206 records
    long = _peak_bytes(task, steps, 19_999)       # 1 record, the previous driver: 20k-step chunks
    # One 200-step chunk: x (8 B), X, Y, spike draws: ~200 * 2 * 50 * ~40 B = 0.8 MB; the
    # 206 records of all variables ~ 206 * 2 * (50 * 4 + 5) * 8 B = 0.7 MB.  A chunk of
    # record_every steps would cost ~ 20k * 2 * 50 * 40 B = 80 MB.
    assert long < 4e6, long
    assert long <= short + 1e6


def test_unsupported_parametrization_is_an_error():
    from emulator.task import Parametrization

    class Odd(Parametrization):
        def f(self, w):
            return w

        def fprime(self, w):
            return np.ones_like(w)

        def inverse(self, ws):
            return ws

    task = fig3_task(n_trials=1, N=5, seed=0, f=Odd())
    with pytest.raises(ValueError, match="parametrization"):
        R.run("float64", task, 5, 0)


def test_run_chunk_rejects_wrong_record_rows():
    task = fig3_task(n_trials=1, N=5, seed=0)
    rule = Rule("approx", task.rates, task.params, task.f, 1e-3)
    x = SpikeSource(task, 0).next(10, return_usp=True)[2]
    W = task.w_init.copy()
    with pytest.raises(ValueError, match="rec_w"):        # steps 2, 5, 8 are recorded: 3 rows
        run_chunk(W, x, np.zeros((10, 1, 1)), rule.kernel_args(), 0, 3, np.empty((2, 1, 1, 5)))
    np.testing.assert_array_equal(W, task.w_init)
