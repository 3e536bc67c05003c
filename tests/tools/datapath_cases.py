"""The cases on which ``tests/emulator/test_oracle_datapath.py`` runs the independent datapath
oracle (``tests/tools/oracle_datapath.py``), and what other datapath tests share with it:
:func:`read_tree` (a bundled config straight from its YAML, with dotted overrides),
:func:`high_rate_task` (a task on which every spike and update happens) and the learning
rate :data:`ETA`.  ``tests/tools/option_coverage.py`` reads the values the cases set.
"""
from __future__ import annotations

import pathlib

import numpy as np
import yaml

import oracle_datapath as O
from emulator.params import NeuronParams
from emulator.task import Task


CONFIG_DIR = pathlib.Path(__file__).resolve().parents[2] / "hw_configs"
ETA = 5.5e-4


def read_tree(name: str, **overrides) -> dict:
    """The config mapping straight from the YAML file, with dotted overrides."""
    tree = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())
    for key, value in overrides.items():
        sec, field = key.split(".")
        tree[sec] = dict(tree[sec], **{field: value})
    return tree


def high_rate_task(params=None, B=2, M=2, N=8, seed=0) -> Task:
    """Rates 20-300 Hz, positive teacher weights and mostly positive student weights: V
    between ~5 and ~30 mV, so teacher and student spike, and every update is formed."""
    g = np.random.default_rng(seed)
    rates = np.array([300.0, 300.0, 200.0, 200.0, 100.0, 100.0, 50.0, 20.0])[:N]
    w0 = np.empty((B, M, N))
    w0[:, 0] = g.uniform(0.004, 0.015, (B, N))
    w0[:, 1:] = g.uniform(-0.01, 0.015, (B, M - 1, N))
    wt = g.uniform(0.005, 0.015, (B, M, N))
    return Task(rates=rates, w_init=w0, w_target=wt, params=params or NeuronParams())


#: (config, overrides): the bundled fixed configs and one variant with every rounding site
#: deterministic-but-biased (trunc), hidden accumulator bits, an interpolated sigmoid and a
#: gamma_s refresh every 16 steps, so the epoch logic and the 2-D interpolation are covered
#: with loihi2_ideal widths too.
RUN_CASES = [
    ("loihi2_ideal", {}),
    ("fxp16", {}),
    ("fxp32", {}),
    ("loihi1", {}),
    ("loihi2_ideal", {"gamma_s.epoch_steps": 16, "weights.extra_frac": 6,
                      "sigmoid.interpolate": True, "traces.rounding": "trunc",
                      "usp.rounding": "trunc", "potential.rounding": "stochastic",
                      "bracket.rounding": "stochastic", "post.rounding": "half_even",
                      "weights.rounding": "trunc"}),
]

#: Every rounding mode the schema allows (emulator.hwconfig.ROUNDING_MODES) at every
#: configurable rounding site at once, with 4 hidden accumulator bits; the sigmoid table
#: interpolated for some modes and read at the node below for the others.
ROUNDING_CASES = [("loihi2_ideal", {**{f"{site}.rounding": mode for site in O.ROUNDING_SITES},
                                    "weights.extra_frac": 4,
                                    "sigmoid.interpolate": i % 2 == 0})
                  for i, mode in enumerate(O.ROUNDING_MODES)]

CONSTRUCTED = [("loihi2_ideal", {}), ("fxp16", {}), ("loihi1", {})] + [
    ("loihi2_ideal", {f"{s}.rounding": mode for s in
                      ("traces", "usp", "weights", "potential", "bracket", "post")})
    for mode in ("floor", "trunc", "half_up", "half_even")]
