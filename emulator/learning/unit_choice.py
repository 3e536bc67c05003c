"""The 'auto' choices of a design that need no task: the weight LSB for a stated weight
range, the event size or graded level unit (``c_ev``), the trace impulse's headroom, and
the bound on one afferent's USP difference that sizes tag_2's room for one step
(``docs/learning_engine.md``)."""
from __future__ import annotations

import math

import numpy as np

from emulator.params import NeuronParams

from .constants import DEFAULT_NEURON


def default_w_frac(w_scale: float) -> int:
    """Weight LSB 2**-w_frac with |w| <= w_scale within 128 LSB (2x headroom to 255)."""
    return int(math.floor(math.log2(128.0 / w_scale)))


def auto_c_ev(params: NeuronParams, eta: float, w_frac: int,
              g_cap: float = DEFAULT_NEURON.g_cap, hidden_bits: int = 0) -> int:
    """Smallest c_ev = 64 * 2**j (j >= -hidden_bits) whose event size E_q >= eta * g_cap.

    An event then carries up to ``g_cap`` times eta in units of gamma_s (1 - sigma) |e|: the
    event probability eta gamma_s (1 - sigma) |e| / E_q reaches 1 only where
    gamma_s (1 - sigma) |e| > g_cap (the excess is then carried to the next steps).  Smaller
    events mean less event noise; below one weight LSB (64) they need the hidden bits that
    keep their sub-LSB part.
    """
    need = 128.0 * params.c_eps * params.c_u * eta * g_cap * 2.0 ** w_frac
    j = max(-int(hidden_bits), math.ceil(math.log2(need / 64.0) - 1e-12))
    return int(round(64 * 2.0 ** j))


def auto_level_unit(params: NeuronParams, eta: float, w_frac: int, g_cap: float,
                    hidden_bits: int, levels: int, unit_ratio: int, y_unit: int) -> int:
    """Graded coding: the smallest c_ev = 2**j (accumulator units of one negative level's
    constant term) whose top positive level carries ``g_cap`` times eta,
    ``levels * unit_ratio * E_n >= eta * g_cap`` with ``E_n = c_ev / (128 c_eps c_u 2**w_frac)``,
    and whose constant product ``u0*y1`` is representable (``c_ev 2**h >= y_unit``)."""
    need = 128.0 * params.c_eps * params.c_u * eta * g_cap * 2.0 ** w_frac / (levels * unit_ratio)
    lo = math.log2(y_unit) - hidden_bits
    j = max(math.ceil(lo - 1e-12), math.ceil(math.log2(need) - 1e-12))
    return int(2 ** j) if j >= 0 else 2.0 ** j


def trace_headroom_kx(params: NeuronParams, rates, trace_bits: int, n_sd: float = 8.0) -> int:
    """The largest trace impulse K_x whose slow trace stays within ``2**trace_bits - 1`` up to
    ``mean + n_sd sd`` of the fastest afferent's count trace ``a_m`` (Poisson inputs as
    Bernoulli bins: mean r dt / (1 - d_m), variance r dt (1 - r dt) / (1 - d_m^2))."""
    r = float(np.max(rates)) if np.size(rates) else 0.0
    p = min(1.0, r * params.dt)
    dm = params.decay_m
    peak = p / (1 - dm) + n_sd * math.sqrt(max(p * (1 - p), 0.0) / (1 - dm * dm))
    top = 2 ** trace_bits - 1
    return int(max(1, min(top, math.floor(top / max(peak, 1.0)))))


#: smallest trace impulse the 'auto' K_x search tries
K_X_MIN = 8


#: how far above its mean the USP difference of an afferent may reach before tag_2's room
#: for one step runs out (the step bounds behind hidden_bits / tag_offset 'auto')
USP_N_SD = 6.0


def usp_diff_bound(params: NeuronParams, rate: float, n_sd: float = USP_N_SD) -> float:
    """mean + n_sd sd of an afferent's trace difference a_m - a_s (spike counts; x_i =
    usp_scale (a_m - a_s)) for Bernoulli(rate dt) spikes: the sums over the kernel
    d_m^k - d_s^k of its mean and variance."""
    q = min(1.0, max(rate, 0.0) * params.dt)
    dm, ds = params.decay_m, params.decay_s
    mean = q * (1 / (1 - dm) - 1 / (1 - ds))
    var = q * (1 - q) * (1 / (1 - dm * dm) + 1 / (1 - ds * ds) - 2 / (1 - dm * ds))
    return mean + n_sd * math.sqrt(max(var, 0.0))

