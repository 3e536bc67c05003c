"""The learning neuron's integer constants of a design: its filter decays, the USP scale,
the sigmoid table, phi_max dt, 1 / (phi_max beta^2), eta / E and 1 / v_lsb, each a
mantissa and shift in the neuron's formats (``docs/learning_engine.md``).

The neuron-specific numbers (sigmoid table, decay integers) come from
:mod:`emulator.rule_math`, which the integer datapath's discretization shares.
"""
from __future__ import annotations

import math

import numpy as np

from emulator.discretize import const_mantissa
from emulator.params import NeuronParams
from emulator.rule_math import decay_integers, sigma_node_table

from .constants import NeuronSpec, neuron_word_problems


def neuron_integers(p: NeuronParams, nf: NeuronSpec, usp_lsb: float, eta_per_unit: float,
                    v_lsb: float, levels: int, ratio: int) -> dict:
    """The :class:`~emulator.learning.Design` fields of the learning neuron's integers.

    Parameters
    ----------
    p : NeuronParams
        Neuron constants (s, mV, Hz).
    nf : NeuronSpec
        The neuron's word widths and formats.
    usp_lsb : float
        mV of V per unit of the filtered dendritic current: usp_scale [1/s] times the
        weight LSB.
    eta_per_unit : float
        eta / E (the learning rate per event size or graded unit), dimensionless.
    v_lsb : float
        mV per unit of the coded potential Vq.
    levels, ratio : int
        The graded coding's top level and unit ratio (1, 1 for events).

    Returns
    -------
    dict
        ``dm``, ``ds`` (U0.decay_frac), ``vk_mant``/``vk_shift``, ``sigma_lut``
        (U0.sigma_frac, int64), ``phidt_mant``/``_shift``, ``ginv_mant``/``_shift``,
        ``k_mant``/``_shift``, ``ek_frac``, ``vq_mant``/``_shift``.

    Raises
    ------
    ValueError
        A time constant the filter decay cannot hold within 10 %, or neuron words too
        narrow for the coding (:func:`~emulator.learning.constants.neuron_word_problems`).
    """
    dm, ds = decay_integers(p, nf.decay_frac)
    for name, tau, dq in (("tau_m", p.tau_m, dm), ("tau_s", p.tau_s, ds)):
        # the filter decay in U0.decay_frac: a time constant it cannot hold within 10 %
        # would silently change the neuron
        steps = tau / p.dt
        real = -1.0 / math.log(dq / 2 ** nf.decay_frac) if 0 < dq < 2 ** nf.decay_frac \
            else math.inf
        if not abs(real / steps - 1.0) <= 0.1:
            raise ValueError(
                f"the neuron's {name} = {tau:g} s ({steps:.0f} steps) is beyond what its "
                f"{nf.decay_frac}-bit filter decay (neuron.decay_frac) holds: exp(-dt/{name}) "
                f"rounds to {dq} / 2**{nf.decay_frac}, a time constant of {real:.4g} steps "
                f"(limit: within 10 %, about {0.2 * 2 ** nf.decay_frac:.0f} steps)")
    vk_mant, vk_shift = const_mantissa(usp_lsb, nf.mant_bits)
    sigma_lut = sigma_node_table(p, nf.sigma_span_mv, nf.sigma_node_frac, nf.sigma_frac)
    phidt_mant, phidt_shift = const_mantissa(p.phi_max * p.dt, nf.mant_bits)
    ginv_mant, ginv_shift = const_mantissa(1.0 / (p.phi_max * p.beta ** 2), nf.mant_bits)
    k_mant, k_shift = const_mantissa(eta_per_unit, nf.mant_bits)
    # |e| eta / E <= k_mant 2**-k_shift: as many fractional bits as one signed word holds
    ek_frac = nf.word_bits - 2 - int(np.floor(np.log2(k_mant * 2.0 ** -k_shift)))
    bad = neuron_word_problems(nf, levels, ratio)
    if bad:
        raise ValueError("; ".join(bad))
    vq_mant, vq_shift = const_mantissa(1.0 / v_lsb, nf.mant_bits)
    return dict(dm=dm, ds=ds, vk_mant=vk_mant, vk_shift=vk_shift, sigma_lut=sigma_lut,
                phidt_mant=phidt_mant, phidt_shift=phidt_shift, ginv_mant=ginv_mant,
                ginv_shift=ginv_shift, k_mant=k_mant, k_shift=k_shift, ek_frac=ek_frac,
                vq_mant=vq_mant, vq_shift=vq_shift)


def neuron_integer_info(p: NeuronParams, nf: NeuronSpec, ni: dict, usp_lsb: float,
                        eta_per_unit: float, v_lsb: float) -> dict:
    """Each float constant of :func:`neuron_integers` (its result ``ni``, same arguments)
    beside the value its integers realise, for ``Design.info``."""
    return {
        "eta/E_q": {"float": eta_per_unit, "realised": ni["k_mant"] * 2.0 ** -ni["k_shift"]},
        "1/v_lsb": {"float": 1 / v_lsb, "realised": ni["vq_mant"] * 2.0 ** -ni["vq_shift"]},
        "usp_scale*lsb": {"float": usp_lsb, "realised": ni["vk_mant"] * 2.0 ** -ni["vk_shift"]},
        "decay_m": {"float": p.decay_m, "realised": ni["dm"] / 2 ** nf.decay_frac},
        "decay_s": {"float": p.decay_s, "realised": ni["ds"] / 2 ** nf.decay_frac},
        "phi_max_dt": {"float": p.phi_max * p.dt,
                       "realised": ni["phidt_mant"] * 2.0 ** -ni["phidt_shift"]},
        "1/phi_max_beta2": {"float": 1.0 / (p.phi_max * p.beta ** 2),
                            "realised": ni["ginv_mant"] * 2.0 ** -ni["ginv_shift"]},
    }
