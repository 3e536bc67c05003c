"""Build and run Lava path 2 from a ``natgrad deploy`` folder alone.

``natgrad deploy --config loihi2 --out DIR`` writes ``DIR/design.json``,
``DIR/network.json`` and ``DIR/manifest.json`` (:mod:`emulator.learning.deployment`).
:func:`build_from_deployment` verifies them against the manifest, reads them and returns the plastic pair of one trial: Lava's ``LearningDense`` with the
design's rule strings, weights, tags and weight exponent, and the learning neuron
(:class:`lava_procs.learning_engine.NatGradLENeuron`) that sends the third factors.  Input
spikes go to ``dense.s_in``, teacher spikes to ``neuron.y_in``.

:func:`run_deployment` runs that network under ``Loihi2SimCfg`` (Lava's CPU simulation of
the bit-approximate learning engine); it reproduces ``emulator.run`` bit for bit
(``tests/lava_procs/test_deployment.py``).  On Loihi 2 the LearningDense is the chip's learning engine,
but the learning neuron has a CPU ProcessModel only: a run-config swap does not deploy it;
its program must be written for the chip's neurons (microcode or an embedded core), which
Lava's open-source release cannot build and natgrad cannot test here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.models import PyLearningDenseModelBitApproximate
from lava.proc.dense.process import LearningDense
from lava.proc.io.source import PySendModelFixed, RingBuffer

from emulator.learning.deployment import read_design, read_network, verify_deployment
from lava_procs.learning_engine import (NEURON_VARS, NatGradLENeuron, PyNatGradLENeuronFixed,
                                        plastic_pair, spike_sources)

__all__ = ["build_from_deployment", "run_deployment", "sim_run_config"]


def build_from_deployment(folder: str | Path):
    """``(dense, neuron, design, network)`` of the deployment in ``folder``; a folder whose
    files disagree with its manifest or with each other is refused
    (:class:`emulator.learning.deployment.DeploymentError`, a one-line reason)."""
    verify_deployment(folder)
    d = read_design(folder)
    net = read_network(folder)
    dense, neuron = plastic_pair(d, net["w_init_int"], net["seed"], net["trial"])
    return dense, neuron, d, net


def sim_run_config() -> Loihi2SimCfg:
    """Lava's CPU simulation of Loihi 2 with the bit-approximate learning engine."""
    return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map={
        LearningDense: PyLearningDenseModelBitApproximate, RingBuffer: PySendModelFixed,
        NatGradLENeuron: PyNatGradLENeuronFixed})


def run_deployment(folder: str | Path, X: np.ndarray, Y: np.ndarray) -> dict:
    """Run the deployed network on input spikes X (steps, N) and teacher spikes Y (steps, M);
    returns the final integer weights, tags, traces and the neuron's Vars."""
    dense, neuron, d, _ = build_from_deployment(folder)
    spike_sources(dense, neuron, X, Y)
    run_cfg = sim_run_config()          # CPU simulation (the neuron has no chip model)
    try:
        dense.run(condition=RunSteps(num_steps=int(np.asarray(X).shape[0]), blocking=True),
                  run_cfg=run_cfg)
        w = dense.weights.get()
        tag1, tag2 = dense.tag_1.get(), dense.tag_2.get()
        x1, x2 = dense.x1.get(), dense.x2.get()
        nv = {name: getattr(neuron, name).get() for name in NEURON_VARS}
    finally:
        dense.stop()
    as_int = lambda a: np.rint(np.asarray(a, np.float64)).astype(np.int64)  # noqa: E731
    return {"w_int": as_int(w), "tag_1": as_int(tag1), "tag_2": as_int(tag2),
            "x1": as_int(x1), "x2": as_int(x2), "neuron": {k: as_int(v) for k, v in nv.items()},
            "design": d}
