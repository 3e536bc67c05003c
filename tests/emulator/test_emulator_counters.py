"""The emulator's overflow counters are exact on constructed cases (both backends)."""
import numpy as np
import pytest

from emulator import runner as R
from emulator.datapath import C_TRACE, C_WSAT, C_WUNDER, init_state
from emulator.discretize import discretize
from emulator.hwconfig import load
from emulator.reference import ETA_CODE
from emulator.task import Task, fig3_task

BACKENDS = ("numpy", "numba")


def test_initial_weights_outside_the_format_are_saturated_and_counted():
    task = fig3_task(n_trials=2, N=10, M=1, seed=0, w_scale=0.01)
    w = task.w_init.copy()
    w[0, 0, :3] = 0.5           # loihi2 weights reach +-0.0156
    w[1, 0, 7] = -0.2
    d = discretize(load("loihi2_ideal"), task.params, task.rates, ETA_CODE["approx"])
    st = init_state(d, w)
    assert st.counts[C_WSAT] == 4 and st.first[C_WSAT] == 0
    assert st.acc[0, 0, 0] == 2**8 - 1 and st.acc[1, 0, 7] == -(2**8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_trace_saturation_count_matches_integer_oracle(backend):
    """A spike every step (rate = 1/dt) into a 3-bit trace (1 fractional bit, max 3.5):
    the count equals a plain-integer replay of a <- floor(a * d / 2**12) + 2."""
    cfg = load("loihi2_ideal").with_overrides(**{"traces.bits": 3, "traces.frac": 1,
                                           "traces.rounding": "floor"})
    n, b, steps = 4, 2, 50
    task = Task(rates=np.full(n, 2000.0), w_init=np.zeros((b, 1, n)), teacher_rate=0.0)
    res = R.run(cfg, task, steps, 0, backend=backend)
    d = discretize(cfg, task.params, task.rates, ETA_CODE["approx"])
    expected, first = 0, -1
    for decay in (d.decay_m, d.decay_s):
        a = 0
        for k in range(steps):
            a = ((a * decay) >> 12) + 2
            if a > 7:
                a = 7
                expected += 1
                first = k if first < 0 else min(first, k)
    assert expected > 0
    assert res.state.counts[C_TRACE] == expected * n * b
    assert res.state.first[C_TRACE] == first


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_sub_lsb_update_counts_as_underflow(backend):
    """Silent inputs and a silent teacher: every synapse gets the heterosynaptic update
    eta gamma_s (1-sigma)(-phi dt sigma)(-c_eps c_u) ~ 6e-8, nonzero every step, which
    rounds to zero on a 2^-4 weight grid: the underflow count is exactly steps*B*M*N."""
    cfg = load("loihi2_ideal").with_overrides(**{"weights.frac": 4, "weights.rounding": "half_up"})
    b, m, n, steps = 3, 2, 5, 120
    task = Task(rates=np.zeros(n), w_init=np.zeros((b, m, n)), teacher_rate=0.0)
    res = R.run(cfg, task, steps, 0, backend=backend)
    assert res.counters["weights"]["underflow"] == steps * b * m * n
    assert res.counters["weights"]["first_step"]["underflow"] == 0
    assert res.counters["weights"]["saturation"] == 0
    assert np.all(res.w_int == 0)
    # the same updates on a fine grid are not lost: no underflow
    fine = R.run("fxp32", task, steps, 0, backend=backend)
    assert fine.counters["weights"]["underflow"] == 0 and np.all(fine.w_final > 0)
