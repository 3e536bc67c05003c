"""Discretize: turn float model parameters and a hardware config into chip integers.

This is the nengo-loihi style *discretize* half of the integer emulator (the *simulate*
half is :mod:`emulator.datapath` / :mod:`emulator.kernels`).  Everything the chip needs is
computed once here, on the host, and stored in a :class:`Discretized` record of plain
integers and int64 arrays: decay factors, constant mantissas and exponents, the sigmoid
table and the 2-D gamma_s table.  ``natgrad deploy`` exports the same record.

Float constants are stored as ``value ~= mant * 2**-shift`` with ``|mant| < 2**mant_bits``
(config ``constants.mant_bits``), the shift chosen per constant (a per-constant exponent,
as Loihi stores weights as mantissa and exponent).  The per-afferent homosynaptic factor
``c_eps / r_i`` shares one exponent across afferents (block floating point, like a tag
vector on chip).
"""
from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from emulator.hwconfig import HwConfig
from emulator.params import NeuronParams
from emulator.rule_math import decay_integers, gauss_moments, homosynaptic_factor, sigma_table
from emulator.variables import variable_table
from fixedpoint.lut import LUT
from fixedpoint.qformat import QFormat

#: Guard bits kept below V's LSB while summing w*x (each product is floored at this depth).
V_GUARD_BITS = 8
#: Fractional bits of the interpolation position in the tables.
INTERP_FRAC = 12
#: Fractional bits of rates (Hz) when m = sum(w r) and v = sum(w^2 r)/c_eps are formed.
RATE_FRAC = 8
#: Fractional bits of weights inside the m, v statistics (weights are requantized to this).
STAT_W_FRAC = 20
#: Fractional bits of v (mV^2) before the table position is formed.
STAT_V_FRAC = 24
#: Fractional bits of the intermediate gamma_s*(1-sigma) and of gamma_s*(1-sigma)*e.
POST_A_FRAC = 24
POST_B_FRAC = 32
#: Range of the gamma_s table axes: m in [M_LO, M_LO + M_SPAN) mV, v in [0, V_SPAN) mV^2.
M_LO, M_SPAN, V_SPAN = -32.0, 64.0, 64.0


def const_mantissa(value: float, mant_bits: int) -> tuple[int, int]:
    """Return ``(mant, shift)`` with ``value ~= mant * 2**-shift``, ``|mant| < 2**mant_bits``.

    The mantissa is rounded half away from zero and is as large as the width allows, so
    the relative error is at most ``2**-(mant_bits - 1)``.  Zero gives ``(0, 0)``.
    """
    if value == 0.0:
        return 0, 0
    exp = math.frexp(abs(value))[1]           # 2**(exp-1) <= |value| < 2**exp
    shift = mant_bits - exp
    mant = int(math.floor(abs(value) * 2.0**shift + 0.5))
    if mant >= 2**mant_bits:                   # rounding carried into a new bit
        mant >>= 1
        shift -= 1
    return int(math.copysign(mant, value)), shift


def block_mantissas(values: np.ndarray, mant_bits: int) -> tuple[np.ndarray, int]:
    """Mantissas sharing one exponent, sized by the largest ``|value|``."""
    values = np.asarray(values, dtype=np.float64)
    vmax = float(np.max(np.abs(values))) if values.size else 0.0
    if vmax == 0.0:
        return np.zeros(values.shape, np.int64), 0
    _, shift = const_mantissa(vmax, mant_bits)
    mant = np.floor(np.abs(values) * 2.0**shift + 0.5) * np.sign(values)
    mant = np.clip(mant, -(2**mant_bits - 1), 2**mant_bits - 1)
    return mant.astype(np.int64), shift


@dataclasses.dataclass(frozen=True)
class Discretized:
    """All integers of one (config, neuron parameters, input rates) combination.

    Formats are written ``S/Ui.f`` (signed/unsigned, integer bits, fractional bits).
    Shifts ``s`` mean a value ``mant * 2**-s``.
    """

    cfg: HwConfig
    params: NeuronParams
    #: every datapath variable's format and rounding (:mod:`emulator.variables`); the
    #: scalars ``<short>_bits``, ``<short>_frac``, ``<short>_rounding`` (e.g. ``w_frac``,
    #: ``v_bits``, ``trace_rounding``) are read from it, see :meth:`__getattr__`
    variables: dict
    mant_bits: int             #: mantissa width of the float constants (constants.mant_bits)
    # constants
    decay_frac: int
    decay_m: int               #: round(exp(-dt/tau_m) * 2**decay_frac)
    decay_s: int
    usp_mant: int              #: 1/(tau_m - tau_s) in 1/s
    usp_shift: int
    homo_mant: np.ndarray      #: c_eps / r_i per afferent (s), shared exponent; 0 for r_i = 0
    homo_shift: int
    cu_q: int                  #: c_eps * c_u in bracket format
    cw_mant: int
    cw_shift: int
    phidt_mant: int            #: phi_max * dt
    phidt_shift: int
    eta_mant: int              #: learning rate (code units, see emulator.reference)
    eta_shift: int
    rates_q: np.ndarray        #: r_i * 2**RATE_FRAC
    inv_ceps_mant: int         #: 1/c_eps (1/s) for v
    inv_ceps_shift: int
    # tables
    sigma_lut: np.ndarray      #: sigma at 2**lut_bits + 1 nodes over V's range, U0.sigma_frac
    sigma_lut_bits: int
    sigma_interp: bool
    gamma_lut: np.ndarray      #: (2**m_bits, 2**v_bits) gamma_s nodes, U.gamma_frac
    gamma_m_bits: int
    gamma_v_bits: int
    gamma_epoch: int
    # provenance: float value and integer realisation of every constant
    info: dict = dataclasses.field(default_factory=dict, compare=False)

    @property
    def n_afferents(self) -> int:
        return int(self.homo_mant.shape[0])

    @property
    def w_extra(self) -> int:
        """Hidden accumulator bits below the visible weight LSB."""
        return self.variables["weights"].extra_frac

    @property
    def trace_max(self) -> int:
        """Largest trace value, 2**traces.bits - 1."""
        return self.variables["traces"].fmt.max_int

    @property
    def impulse(self) -> int:
        """One spike's trace increment, 2**traces.frac."""
        return 1 << self.variables["traces"].fmt.frac

    @property
    def sigma_table(self) -> LUT:
        """The sigmoid table as a :class:`fixedpoint.LUT` (input: V's format)."""
        return self.__dict__["_sigma_table"]

    def __post_init__(self):
        object.__setattr__(self, "_sigma_table", LUT(
            self.sigma_lut, self.variables["potential"].fmt, self.sigma_lut_bits,
            self.variables["sigma"].fmt, interp_rounding="half_up"))
        derived = {}
        for var in self.variables.values():
            s = var.spec.short
            derived[f"{s}_bits"] = var.fmt.bits
            derived[f"{s}_frac"] = var.fmt.frac
            derived[f"{s}_rounding"] = var.rounding
        object.__setattr__(self, "_derived", derived)

    def __getattr__(self, name: str):
        # <short>_bits / _frac / _rounding of a variable (e.g. w_frac), from the table
        derived = self.__dict__.get("_derived", {})
        if name in derived:
            return derived[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def scalars(self) -> dict:
        """Every scalar integer of the record by name: the derived ``<short>_bits``,
        ``<short>_frac`` and ``<short>_rounding`` (as mode index) of each variable, the
        constants, shifts and table sizes.  The numba kernel's constant record is built
        from this (:func:`emulator.stages_jit.pack`)."""
        from fixedpoint.rounding import ROUNDING_MODES
        out = {}
        for var in self.variables.values():
            s = var.spec.short
            out[f"{s}_bits"] = var.fmt.bits
            out[f"{s}_frac"] = var.fmt.frac
            out[f"{s}_rounding"] = ROUNDING_MODES.index(var.rounding)
        out["w_extra"] = self.w_extra
        out["trace_max"] = self.trace_max
        out["impulse"] = self.impulse
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (bool, int, np.integer)) and not isinstance(v, str):
                out[f.name] = int(v)
        return out


def _gamma_table(params: NeuronParams, m_bits: int, v_bits: int, gamma_bits: int,
                 gamma_frac: int) -> np.ndarray:
    """gamma_s = 1/E[h(V)], V ~ N(m, v), at the table nodes, saturated to the format."""
    m_nodes = M_LO + np.arange(2**m_bits) * (M_SPAN / 2**m_bits)
    v_nodes = np.arange(2**v_bits) * (V_SPAN / 2**v_bits)
    v_nodes = np.maximum(v_nodes, 1e-6)                # v -> 0: the Gaussian becomes a delta
    gs = np.empty((m_nodes.size, v_nodes.size))
    rows = max(1, 2**16 // v_nodes.size)             # bound the quadrature's temporaries
    for r0 in range(0, m_nodes.size, rows):
        gs[r0:r0 + rows] = 1.0 / gauss_moments(m_nodes[r0:r0 + rows, None], v_nodes[None, :],
                                               params)[0]
    top = (2**gamma_bits - 1) / 2.0**gamma_frac
    gs = np.minimum(np.nan_to_num(gs, nan=top, posinf=top), top)
    return np.floor(gs * 2.0**gamma_frac + 0.5).astype(np.int64)


@functools.lru_cache(maxsize=8)
def _gamma_table_cached(params: NeuronParams, m_bits: int, v_bits: int, gamma_bits: int,
                        gamma_frac: int) -> np.ndarray:
    """:func:`_gamma_table`, memoized (a few configs per process; the table costs seconds)."""
    table = _gamma_table(params, m_bits, v_bits, gamma_bits, gamma_frac)
    table.flags.writeable = False
    return table


def discretize(cfg: HwConfig, params: NeuronParams, rates: np.ndarray, eta: float) -> Discretized:
    """Compute every chip integer for ``cfg`` (fixed-point kind only).

    Parameters
    ----------
    cfg : HwConfig
        Validated config of kind ``fixed``.
    params : NeuronParams
        Neuron constants (mV, s, Hz).
    rates : array (N,)
        Input rates r_i in Hz (the homosynaptic factor is c_eps / r_i).
    eta : float
        Learning rate of the approximate rule, in code units (see ``emulator.reference``).
    """
    if not cfg.is_fixed:
        raise ValueError(f"{cfg.source}: discretize needs a fixed-point config (kind: fixed)")
    rates = np.asarray(rates, dtype=np.float64)
    mb = cfg["constants"]["mant_bits"]
    tr = cfg["traces"]
    po, sg, gm = cfg["potential"], cfg["sigmoid"], cfg["gamma_s"]
    br = cfg["bracket"]

    decay_m, decay_s = decay_integers(params, tr["decay_frac"])
    usp_mant, usp_shift = const_mantissa(params.usp_scale, mb)
    homo_vals = homosynaptic_factor(rates, params.c_eps)
    homo_mant, homo_shift = block_mantissas(homo_vals, mb)
    cu_q = int(round(params.c_eps * params.c_u * 2**br["frac"]))
    cw_mant, cw_shift = const_mantissa(params.c_w, mb)
    phidt_mant, phidt_shift = const_mantissa(params.phi_max * params.dt, mb)
    eta_mant, eta_shift = const_mantissa(eta, mb)
    inv_ceps_mant, inv_ceps_shift = const_mantissa(1.0 / params.c_eps, mb)
    rates_q = np.floor(rates * 2**RATE_FRAC + 0.5).astype(np.int64)

    sigma_lut = sigma_table(params, QFormat(po["bits"], po["frac"]), sg["lut_bits"],
                            sg["frac"]).table
    gamma_lut = _gamma_table_cached(params, gm["m_lut_bits"], gm["v_lut_bits"], gm["bits"],
                                    gm["frac"])

    def realised(m, s):
        return m * 2.0**-s

    info = {
        "decay_m": {"float": params.decay_m, "int": decay_m, "frac": tr["decay_frac"]},
        "decay_s": {"float": params.decay_s, "int": decay_s, "frac": tr["decay_frac"]},
        "usp_scale": {"float": params.usp_scale, "mant": usp_mant, "shift": usp_shift,
                      "realised": realised(usp_mant, usp_shift)},
        "c_eps_c_u": {"float": params.c_eps * params.c_u, "int": cu_q, "frac": br["frac"]},
        "c_w": {"float": params.c_w, "mant": cw_mant, "shift": cw_shift,
                "realised": realised(cw_mant, cw_shift)},
        "phi_max_dt": {"float": params.phi_max * params.dt, "mant": phidt_mant,
                       "shift": phidt_shift, "realised": realised(phidt_mant, phidt_shift)},
        "eta": {"float": eta, "mant": eta_mant, "shift": eta_shift,
                "realised": realised(eta_mant, eta_shift)},
        "inv_c_eps": {"float": 1.0 / params.c_eps, "mant": inv_ceps_mant,
                      "shift": inv_ceps_shift, "realised": realised(inv_ceps_mant, inv_ceps_shift)},
        "homo_c_eps_over_r": {"shift": homo_shift,
                              "max_rel_err": float(np.max(np.abs(
                                  homo_mant * 2.0**-homo_shift - homo_vals)
                                  / np.where(homo_vals > 0, homo_vals, 1.0))) if rates.size else 0.0},
    }
    return Discretized(
        cfg=cfg, params=params,
        variables=variable_table(cfg), mant_bits=mb,
        decay_frac=tr["decay_frac"], decay_m=decay_m, decay_s=decay_s,
        usp_mant=usp_mant, usp_shift=usp_shift, homo_mant=homo_mant, homo_shift=homo_shift,
        cu_q=cu_q, cw_mant=cw_mant, cw_shift=cw_shift, phidt_mant=phidt_mant,
        phidt_shift=phidt_shift, eta_mant=eta_mant, eta_shift=eta_shift, rates_q=rates_q,
        inv_ceps_mant=inv_ceps_mant, inv_ceps_shift=inv_ceps_shift,
        sigma_lut=sigma_lut, sigma_lut_bits=sg["lut_bits"], sigma_interp=sg["interpolate"],
        gamma_lut=gamma_lut, gamma_m_bits=gm["m_lut_bits"], gamma_v_bits=gm["v_lut_bits"],
        gamma_epoch=gm["epoch_steps"], info=info,
    )
