"""Neuron constants of the float64 reference model (docs/model.md#constants).

Units: membrane potentials in mV *above rest*, times in s, rates in Hz.  With the
kernel amplitude eps0 = 1 mV*s the USP x is numerically "1/s" (= mV per unit weight),
weights are dimensionless (docs/model.md#units).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["NeuronParams", "check_finite", "check_positive"]


def _fmt(value) -> str:
    return repr(float(value)) if isinstance(value, (int, float)) else repr(value)


def check_finite(name: str, value) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite real number."""
    try:
        ok = math.isfinite(float(value))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a finite number (got {name}={value!r})")


def check_positive(name: str, value) -> None:
    """Raise ``ValueError`` unless ``value`` is finite and > 0."""
    check_finite(name, value)
    if not float(value) > 0.0:
        raise ValueError(f"{name} must be > 0 (got {name}={_fmt(value)})")


@dataclass(frozen=True)
class NeuronParams:
    """Constants of the Poisson neuron and its learning rules (defaults: the paper's Fig 3, docs/model.md#constants).

    Attributes
    ----------
    beta : sigmoid slope [1/mV] (> 0)
    theta : sigmoid centre [mV above rest]
    phi_max : maximal rate [Hz] (> 0, ``phi_max*dt <= 1``)
    tau_m, tau_s : membrane / synaptic time constants [s] (0 < tau_s < tau_m)
    dt : Euler step [s] (> 0)
    c_u, c_w : constants of the approximated rule, paper Eq. 112-114 (finite)

    Invalid values raise ``ValueError`` naming the field and its allowed range.
    """

    beta: float = 0.3
    theta: float = 10.0
    phi_max: float = 100.0
    tau_m: float = 0.010
    tau_s: float = 0.003
    dt: float = 0.0005
    c_u: float = 0.95
    c_w: float = 0.05

    def __post_init__(self):
        for name in ("beta", "theta", "phi_max", "tau_m", "tau_s", "dt", "c_u", "c_w"):
            check_finite(name, getattr(self, name))
        check_positive("beta", self.beta)
        check_positive("phi_max", self.phi_max)
        check_positive("tau_m", self.tau_m)
        check_positive("tau_s", self.tau_s)
        check_positive("dt", self.dt)
        if not self.tau_s < self.tau_m:
            raise ValueError(
                f"tau_s must be < tau_m (got tau_s={_fmt(self.tau_s)}, tau_m={_fmt(self.tau_m)})")
        if not self.phi_max * self.dt <= 1.0:
            raise ValueError(
                f"phi_max*dt must be <= 1 (Bernoulli spike probability per bin) "
                f"(got phi_max={_fmt(self.phi_max)}, dt={_fmt(self.dt)})")

    # ----------------------------------------------------------------- derived constants
    @property
    def decay_m(self) -> float:
        """Per-step decay of the membrane trace, exp(-dt/tau_m) (0.951229 for defaults)."""
        return math.exp(-self.dt / self.tau_m)

    @property
    def decay_s(self) -> float:
        """Per-step decay of the synaptic trace, exp(-dt/tau_s) (0.846482 for defaults)."""
        return math.exp(-self.dt / self.tau_s)

    @property
    def usp_scale(self) -> float:
        """1/(tau_m - tau_s) [1/s]: x = (a_m - a_s) * usp_scale (142.857 for defaults)."""
        return 1.0 / (self.tau_m - self.tau_s)

    @property
    def int_eps(self) -> float:
        """Continuous-time integral of the kernel, = 1 by construction (docs/model.md#usp-kernel)."""
        return 1.0

    @property
    def int_eps_sq(self) -> float:
        """Continuous ∫eps² dt = fac²(tau_m/2 - 2 tau_m tau_s/(tau_m+tau_s) + tau_s/2) [1/s] (38.4615)."""
        tm, ts = self.tau_m, self.tau_s
        return self.usp_scale ** 2 * (tm / 2.0 - 2.0 * tm * ts / (tm + ts) + ts / 2.0)

    @property
    def c_eps(self) -> float:
        """c_eps = 1/∫eps² [s] (continuous; 0.026 for defaults), docs/model.md#membrane-potential-statistics."""
        return 1.0 / self.int_eps_sq

    @property
    def kernel_sum(self) -> float:
        """Discrete Σ_k eps_k dt with eps_k = usp_scale (d_m^k - d_s^k), k >= 0 (0.99931)."""
        return self.usp_scale * self.dt * (1.0 / (1.0 - self.decay_m) - 1.0 / (1.0 - self.decay_s))

    @property
    def kernel_sq_sum(self) -> float:
        """Discrete Σ_k eps_k² dt [1/s] (38.4613 for defaults)."""
        dm, ds = self.decay_m, self.decay_s
        s = 1.0 / (1.0 - dm * dm) - 2.0 / (1.0 - dm * ds) + 1.0 / (1.0 - ds * ds)
        return self.usp_scale ** 2 * self.dt * s

    def usp_mean(self, rate):
        """Exact mean of the discrete USP of a Bernoulli(rate*dt) input (docs/model.md#membrane-potential-statistics): p Σ eps_k."""
        return rate * self.kernel_sum

    def usp_var(self, rate):
        """Exact variance of the discrete USP (docs/model.md#membrane-potential-statistics): p (1-p) Σ eps_k², p = rate*dt."""
        p = rate * self.dt
        return p * (1.0 - p) * self.kernel_sq_sum / self.dt
