"""emulator: the float64 reference and the integer emulator of natural-gradient learning
(no Lava dependency).

Public API: :func:`run` (any config: integer datapath or float64, one
:class:`RunResult`), ``reference.simulate`` and ``reference.coefficients`` (the three float
rules), :mod:`emulator.metrics`, ``task.fig3_task``.

Modules: ``params`` (NeuronParams), ``task`` (Task, fig3_task, parametrizations),
``spikes`` (SpikeSource, the shared spike generator), ``reference`` (coefficients, update rules,
simulate, their compiled loop), ``metrics`` (test set, RMSE, KL, weight distance),
``hwconfig`` (config loading), ``variables`` (every datapath variable, declared once),
``discretize`` (float parameters to chip integers), ``stages`` / ``stages_jit`` (the datapath's
named stages, numpy and numba), ``datapath`` (the numpy step), ``kernels`` (the fused numba
loop), ``runner`` (:func:`run`), ``float_run`` (its float64 driver), ``result``
(:class:`RunResult`), ``learning`` (Loihi 2's learning-engine mode).
"""
from .params import NeuronParams
from .task import IDENTITY, Attenuation, Identity, Parametrization, Sinh, Task, fig3_task
from .spikes import SpikeSource, sigma
from .metrics import kl_cost, rate_rmse_hz, test_set, weight_distance
from .result import RunResult
from .runner import run
from .reference import (ETA_CODE, ETA_CODE_SCALED, RULES, SimResult, coefficients, delta_approx,
                        delta_euclid, delta_natural, eta_from_paper, eta_to_paper, gauss_moments,
                        natural_gammas, simulate)

__all__ = [
    "run", "RunResult",
    "NeuronParams", "IDENTITY", "Attenuation", "Identity", "Parametrization", "Sinh", "Task",
    "fig3_task", "SpikeSource", "sigma", "kl_cost", "rate_rmse_hz", "test_set", "weight_distance",
    "ETA_CODE", "ETA_CODE_SCALED", "RULES", "SimResult", "coefficients", "delta_approx",
    "delta_euclid", "delta_natural", "eta_from_paper", "eta_to_paper", "gauss_moments",
    "natural_gammas", "simulate",
]
