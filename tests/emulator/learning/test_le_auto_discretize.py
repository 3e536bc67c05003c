"""Automatic discretization of the learning-engine config: on the Fig 3 task and on the
Figs 3D-E, 5 and 7 set-ups, the weight exponent chosen for the task makes its initial
weights and its stated expected range fit LearningDense's 8-bit-plus-sign weights with
headroom (|w| <= 128 of 255 LSB) and use at least 6 of the 8 mantissa bits (|w| >= 32 LSB),
and the design says why in ``choices``; Vq's range covers the task's V.  The teacher's
weights are never read: a user deploying for real does not have them."""
import numpy as np
import pytest

from emulator import learning
from emulator.hwconfig import load
from emulator.params import NeuronParams
from emulator.reference import ETA_CODE, eta_from_paper
from emulator.task import Task, fig3_task
from natgrad.experiments import fig3 as F3
from natgrad.experiments.fig4_5 import FIG5_PRESETS
from natgrad.experiments.fig7 import FIG7_PRESETS


def _fig7_task():
    p = FIG7_PRESETS["small"]
    ntot = p["n_stim"] + p["n_unstim"]
    g = np.linspace(p["w_lo"], p["w_hi"], p["config_grid"])
    cells = np.array([(a, b) for a in g for b in g])
    w0 = np.concatenate([np.repeat(cells[:, :1] / ntot, p["n_stim"], 1),
                         np.repeat(cells[:, 1:] / ntot, p["n_unstim"], 1)], axis=1)[None]
    rates = np.concatenate([np.full(p["n_stim"], p["rate"]), np.zeros(p["n_unstim"])])
    return Task(rates=rates, w_init=w0, teacher_rate=p["teacher_rate"],
                params=NeuronParams(theta=p["theta"])), eta_from_paper(p["eta_paper"])


def _fig5_tasks():
    p = FIG5_PRESETS["small"]
    for r in p["rates"]:
        yield Task(rates=np.array([r]), w_init=np.full((1, 1, 1), p["w0"] / r),
                   teacher_rate=p["teacher_rate"]), eta_from_paper(p["eta_paper"])


SETUPS = {
    "fig3": lambda: [(fig3_task(n_trials=8, N=100, seed=0), ETA_CODE["approx"])],
    "fig3de": lambda: [(F3._task_3de(4), 2.5e-4 * 5.5 / 6.0)],
    "fig5": lambda: list(_fig5_tasks()),
    "fig7": lambda: [_fig7_task()],
}


@pytest.mark.parametrize("name", sorted(SETUPS))
def test_auto_weight_exponent_meets_its_criterion(name):
    cfg = load("loihi2")
    for task, eta in SETUPS[name]():
        d = learning.design_for_config(cfg, task, eta)
        wmax = max(float(np.max(np.abs(task.w_init))), task.w_range or 0.0)
        wmax_lsb = wmax * 2.0 ** d.w_frac
        assert 32 <= wmax_lsb <= 128, (name, d.w_frac, wmax_lsb)      # >= 6 bits, 2x headroom
        assert "w_frac" in d.choices and "LSB" in d.choices["w_frac"][1]
        assert "v_range_mv" in d.choices
        # the quantized start weights are the task's within half an LSB (no clipping)
        q = learning.quantize_weights(d, task.w_init) * d.lsb_w
        assert np.max(np.abs(q - task.w_init)) <= 1.0 * d.lsb_w + 1e-15


def test_explicit_value_wins_over_auto():
    cfg = load("loihi2").with_overrides(**{"mapping.w_frac": 9})
    task = fig3_task(n_trials=2, N=100, seed=0)
    d = learning.design_for_config(cfg, task, ETA_CODE["approx"])
    assert d.w_frac == 9 and "w_frac" not in d.choices


def test_fig7_v_range_covers_its_large_weights():
    # Fig 7's weights reach 0.5 with theta = 15 mV: a fixed +-30 mV range clipped Vq 2.7e6 times
    task, eta = _fig7_task()
    d = learning.design_for_config(load("loihi2"), task, eta)
    assert d.choices["v_range_mv"][0] > 30.0


def _digest(d):
    from emulator.learning.deployment import design_digest
    return design_digest(d)


def test_design_never_reads_the_teacher_weights():
    """A teacher 50x larger (or none at all) leaves the design bit for bit as it is: only the
    initial weights and the stated range enter it."""
    cfg = load("loihi2")
    task = fig3_task(n_trials=4, N=100, seed=0)
    ref = learning.design_for_config(cfg, task, ETA_CODE["approx"])
    big = Task(rates=task.rates, w_init=task.w_init, w_target=50.0 * task.w_target,
               w_range=task.w_range)
    rate = Task(rates=task.rates, w_init=task.w_init, teacher_rate=20.0, w_range=task.w_range)
    for other in (big, rate):
        assert _digest(learning.design_for_config(cfg, other, ETA_CODE["approx"])) == _digest(ref)
    assert "stated expected weight range" in ref.choices["w_frac"][1]
    assert "asked for +-13 mV" in ref.choices["v_range_mv"][1]


def test_stated_weight_range_sets_the_exponent_and_the_v_range():
    """|w| up to 0.04 (4x fig3's 1/N) needs two more integer bits: w_frac 13 -> 11, and V's
    range grows with it (4 sd of V over weights uniform in +-0.04: 45.8 mV, asked +-46 mV,
    realized +-52.7 mV; fig3's +-13 mV is realized as +-21.1 mV, the engine's finest scale)."""
    cfg = load("loihi2")
    task = fig3_task(n_trials=4, N=100, seed=0)
    d0 = learning.design_for_config(cfg, task, ETA_CODE["approx"])
    task.w_range = 0.04
    d1 = learning.design_for_config(cfg, task, ETA_CODE["approx"])
    assert (d0.w_frac, d1.w_frac) == (13, 11)
    assert "asked for +-13 mV" in d0.choices["v_range_mv"][1]
    assert "cover +-46 mV" in d1.choices["v_range_mv"][1]
    assert d1.mapping.v_range_mv > 2 * d0.mapping.v_range_mv
    task.w_range = None                      # nothing stated: the initial weights alone
    d2 = learning.design_for_config(cfg, task, ETA_CODE["approx"])
    assert d2.w_frac == 13 and "no expected weight range stated" in d2.choices["w_frac"][1]
