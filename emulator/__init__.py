"""emulator: float64 reference model of natural-gradient learning (no Lava dependency).

Modules: ``params`` (NeuronParams), ``task`` (Task, fig3_task, parametrizations),
``spikes`` (SpikeSource, the shared spike generator), ``reference`` (coefficients, update rules,
simulate), ``metrics`` (test set, RMSE, KL, weight distance).
"""
from .params import NeuronParams
from .task import IDENTITY, Attenuation, Identity, Parametrization, Sinh, Task, fig3_task
from .spikes import SpikeSource, sigma
from .metrics import kl_cost, rate_rmse_hz, test_set, weight_distance
from .reference import (ETA_CODE, ETA_CODE_SCALED, RULES, SimResult, coefficients, delta_approx,
                        delta_euclid, delta_natural, eta_from_paper, eta_to_paper, gauss_moments,
                        natural_gammas, simulate)

__all__ = [
    "NeuronParams", "IDENTITY", "Attenuation", "Identity", "Parametrization", "Sinh", "Task",
    "fig3_task", "SpikeSource", "sigma", "kl_cost", "rate_rmse_hz", "test_set", "weight_distance",
    "ETA_CODE", "ETA_CODE_SCALED", "RULES", "SimResult", "coefficients", "delta_approx",
    "delta_euclid", "delta_natural", "eta_from_paper", "eta_to_paper", "gauss_moments",
    "natural_gammas", "simulate",
]
