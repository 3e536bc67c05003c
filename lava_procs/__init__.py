"""lava_procs: the approximate natural-gradient rule as Lava 0.10 Processes.

Path 1 -- :class:`NatGradNeuron`, a custom Process (M neurons + their plastic synapses in
one ProcessModel) whose ``fixed_pt`` model steps the emulator's integer datapath and whose
``floating_pt`` model steps the float64 reference; :func:`run_lava` builds and runs the
network (spike sources -> neuron -> sink); :func:`run` does the same and returns
:class:`emulator.result.RunResult`, the type of :func:`emulator.run`.

Keep this directory free of scratch scripts: Lava's ProcessModel search imports every
``.py`` file next to the module that defines a Process.
"""
from lava_procs.natgrad_neuron import (NatGradNeuron, PyNatGradNeuronFixed, PyNatGradNeuronFloat,
                                       numba_available)
from lava_procs.network import build_network, run, run_lava

__all__ = ["NatGradNeuron", "PyNatGradNeuronFixed", "PyNatGradNeuronFloat", "build_network",
           "numba_available", "run", "run_lava"]
