"""The rule and its discretization onto the learning engine (Path 2's :class:`Design`).

:class:`Product` is one term of the sum-of-products rule, :func:`rule_string` renders the
``dw`` string Lava parses, and :func:`design` / :func:`design_for_task` derive every constant
of Path 2: the products' mantissas and exponents, the static tags ``t = round(T / r_i)``,
the trace impulse, the event size and the learning neuron's integer constants.
Lava's counterparts: ``lava/magma/core/learning/product.py`` (a product as data) and
``lava/magma/core/learning/learning_rule.py`` (the string, its parsing into products,
the dependencies ``x0 / y0 / uK``).  ``docs/learning_engine.md`` derives every constant.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from emulator.discretize import const_mantissa
from emulator.params import NeuronParams
from emulator.task import Task

from .constants import (ACC_SHIFT, F_D, F_S, G_CAP, MANT_BITS, SIG_NODE_FRAC, SIG_SPAN, W_ACC_U,
                        W_S_MANT, WIDTH, Y_EVENT, Y_OFFSET)


# ============================================================================ the rule
@dataclasses.dataclass(frozen=True)
class Product:
    """One product of the sum-of-products rule: ``mant * 2**exp * dep * factors``.

    ``factors`` are ``(variable, const)`` pairs meaning ``(variable + const)``.  ``mant`` is
    in [-7, 7] and is what Lava's parser keeps (it halves even mantissas above 7);
    ``exp`` in [-7, 8] is the literal exponent (Lava stores ``exp + 7``).
    """

    mant: int
    exp: int
    dep: str
    factors: tuple

    def __post_init__(self):
        if not -7 <= self.mant <= 7 or self.mant == 0:
            raise ValueError(f"mantissa {self.mant} outside [-7, 7] \\ {{0}}")
        if not -7 <= self.exp <= 8:
            raise ValueError(f"exponent {self.exp} outside [-7, 8]")
        if self.dep not in ("x0", "y0", "u0"):
            raise ValueError(f"dependency {self.dep!r}")

    @property
    def shift(self) -> int:
        """Right shift applied by the fixed-point applier: max(0, sum(widths) + 4 - 15)."""
        return max(0, sum(WIDTH[v] for v, _ in self.factors) + W_S_MANT - W_ACC_U)

    @property
    def coef(self) -> float:
        """Accumulator units per unit of the factor product (before the floor)."""
        return self.mant * 2.0 ** (self.exp + ACC_SHIFT - self.shift)

    def render(self) -> str:
        parts = [f"{abs(self.mant)}*2^{self.exp}", self.dep]
        for v, c in self.factors:
            parts.append(v if not c else f"({v}{'+' if c > 0 else '-'}{abs(c)})")
        return ("- " if self.mant < 0 else "+ ") + "*".join(parts)


def rule_string(products) -> str:
    """The Lava ``dw`` string of a product list."""
    s = " ".join(p.render() for p in products)
    return s[2:] if s.startswith("+ ") else "-" + s[2:]


def product_bound(p: Product) -> int:
    """Largest |value| of the product before its right shift (must stay below 2**31)."""
    b = abs(p.mant)
    for v, _ in p.factors:
        b *= 2 ** WIDTH[v]
    return b


def _scale(coef: float, shift: int, what: str) -> tuple[int, int]:
    """(mant, exp) with ``mant * 2**(exp + 7 - shift) == coef`` exactly, largest mantissa."""
    target = coef * 2.0 ** (shift - ACC_SHIFT)          # = mant * 2**exp
    for m in (7, 6, 5, 4, 3, 2, 1):
        e = math.log2(target / m)
        if abs(e - round(e)) < 1e-12 and -7 <= round(e) <= 8:
            return m, int(round(e))
    raise ValueError(f"{what}: coefficient {coef} is not m * 2**e on the learning engine")


def _representable_at_least(x: float) -> float:
    """Smallest m * 2**j (m in 1..7, j >= 0) that is >= x."""
    best = math.inf
    for m in range(1, 8):
        j = max(0, math.ceil(math.log2(max(x, 1e-300) / m)))
        while m * 2.0 ** j < x:
            j += 1
        best = min(best, m * 2.0 ** j)
    return best


# ============================================================================ design
@dataclasses.dataclass(frozen=True)
class Design:
    """Every constant of Path 2 (see ``docs/learning_engine.md`` for the derivation)."""

    params: NeuronParams
    rates: np.ndarray
    eta: float
    w_frac: int               #: weight LSB = 2**-w_frac
    c_ev: int                 #: constant term of one event, accumulator units (1/128 LSB)
    k_x: int                  #: trace impulse (x1, x2 per spike)
    x1_tau: int               #: tau_m / dt (steps)
    x2_tau: int               #: tau_s / dt
    tags: np.ndarray          #: (N,) tag_1 = round(T / r_i), multiples of tag_step
    tag_step: int
    tag_scale: float          #: T
    e_q: float                #: event size in units of eta gamma_s (1-sigma) e
    v_lsb: float              #: mV per unit of Vq
    products: tuple
    weight_exp: int
    # neuron integers
    dm: int
    ds: int
    vk_mant: int
    vk_shift: int
    sigma_lut: np.ndarray
    phidt_mant: int
    phidt_shift: int
    a_mant: int               #: phi_max beta^2
    a_shift: int
    k_mant: int               #: eta / E_q
    k_shift: int
    vq_mant: int              #: 1 / v_lsb
    vq_shift: int
    info: dict = dataclasses.field(default_factory=dict, compare=False)

    @property
    def rule(self) -> str:
        return rule_string(self.products)

    @property
    def lsb_w(self) -> float:
        return 2.0 ** -self.w_frac

    @property
    def n_afferents(self) -> int:
        return int(self.rates.shape[0])


def default_w_frac(w_scale: float) -> int:
    """Weight LSB 2**-w_frac with |w| <= w_scale within 128 LSB (2x headroom to 255)."""
    return int(math.floor(math.log2(128.0 / w_scale)))


def auto_c_ev(params: NeuronParams, eta: float, w_frac: int, g_cap: float = G_CAP) -> int:
    """Smallest c_ev = 64 * 2**j whose event size E_q >= eta * g_cap.

    An event then carries up to ``g_cap`` times eta in units of gamma_s (1 - sigma) |e|: the
    event probability eta gamma_s (1 - sigma) |e| / E_q saturates only where
    gamma_s (1 - sigma) |e| > g_cap.
    """
    need = 128.0 * params.c_eps * params.c_u * eta * g_cap * 2.0 ** w_frac
    return int(64 * 2 ** max(0, math.ceil(math.log2(need / 64.0) - 1e-12)))


def design(params: NeuronParams, rates, eta: float, w_frac: int, *, c_ev: int | str = "auto",
           k_x: int = 16, v_range_mv: float = 30.0, tag_step: int | str = "auto",
           max_tag_err: float = 0.005) -> Design:
    """Derive the rule string, the tags and the neuron's integers.

    Parameters
    ----------
    params : NeuronParams (dt must divide tau_m and tau_s into whole steps)
    rates : (N,) input rates [Hz]
    eta : learning rate (code units)
    w_frac : weight LSB 2**-w_frac
    c_ev : constant term of one event in accumulator units (must be 64 * m * 2**j);
        'auto': :func:`auto_c_ev`
    k_x : trace impulse per spike
    v_range_mv : |V| range that y3 = 64 + Vq must cover
    tag_step : 16 makes every homosynaptic product exact; 'auto' uses 16 when all tags stay
        within ``max_tag_err`` of round(T / r_i), else 1
    """
    rates = np.asarray(rates, dtype=np.float64)
    p = params
    if c_ev == "auto":
        c_ev = auto_c_ev(p, eta, w_frac)
    x1_tau, x2_tau = p.tau_m / p.dt, p.tau_s / p.dt
    if abs(x1_tau - round(x1_tau)) > 1e-9 or abs(x2_tau - round(x2_tau)) > 1e-9:
        raise ValueError("tau_m / dt and tau_s / dt must be whole numbers of steps")
    x1_tau, x2_tau = int(round(x1_tau)), int(round(x2_tau))
    lsb = 2.0 ** -w_frac
    c, cu, cw, scale = p.c_eps, p.c_u, p.c_w, p.usp_scale
    if cw <= 0 or cu <= 0:
        raise ValueError("c_u and c_w must be > 0 for this mapping")
    e_q = c_ev * lsb / (128.0 * c * cu)

    # homosynaptic: per positive event, synapse i gets c_ev * scale (x1 - x2) / (k_x r_i c_u)
    # accumulator units; y0*t*x1 gives floor(t x1 m / 32) * 2**(e+7) ~ t x1 m q / 32.
    r_pos = rates[rates > 0]
    sh_pos = Product(1, 0, "y0", (("t", 0), ("x1", 0))).shift           # 5
    t_num = c_ev * scale / (k_x * cu)           # = t_i * (acc per t x1) * r_i
    # hc = accumulator units per unit of t*x1 = m q / 2**sh_pos for the y0 product (q >= 1).
    # A power of two (mantissa 4) with tags that are multiples of 16 makes both homosynaptic
    # products exact integers (t x1 / 8 and t x1 / 16 before their left shifts); that is
    # used when every tag stays within max_tag_err of T / r_i.  Otherwise the finest
    # m * 2**j keeps the largest tag T / r_min within 255 (tag_step 1, floor losses).
    def tags_for(hc, step):
        raw = np.where(rates > 0, t_num / hc / np.where(rates > 0, rates, 1.0), 0.0)
        return raw, (step * np.round(raw / step)).astype(np.int64)

    need = max(1.0, t_num / (255.0 * r_pos.min()) * 2.0 ** sh_pos) if r_pos.size else 1.0
    hc = 2.0 ** math.ceil(math.log2(need) - 1e-12) / 2.0 ** sh_pos
    raw, tags = tags_for(hc, 16)
    rel = np.abs(tags / np.where(raw > 0, raw, 1.0) - 1.0) * (raw > 0)
    if tag_step == "auto":
        tag_step = 16 if np.all((tags > 0) | (raw == 0)) and rel.max(initial=0) <= max_tag_err \
            else 1
    if tag_step != 16:
        hc = _representable_at_least(need) / 2.0 ** sh_pos
        raw, tags = tags_for(hc, tag_step)
    big_t = t_num / hc                           # T: t_i = T / r_i
    if tags.max(initial=0) > 255:
        raise ValueError("tags exceed 255")

    # heterosynaptic: per event, acc = c_ev lsb c_w V W / (c c_u); y0*(y3-64)*w gives
    # floor(Vq W m / 32) * 2**(e+7); V = Vq * v_lsb.
    sh_het = Product(1, 0, "y0", (("y3", -Y_OFFSET), ("w", 0))).shift     # 5
    het_unit = c_ev * lsb * cw / (c * cu)        # acc per (mV * W)
    min_coef = 2.0 ** (ACC_SHIFT - 7 - sh_het)    # smallest coefficient: m = 1, exp = -7
    coef_het = max(min_coef, _representable_at_least(
        het_unit * v_range_mv / 64.0 * 2.0 ** sh_het) / 2.0 ** sh_het)
    v_lsb = coef_het / het_unit

    def prod(coef, dep, factors, sign, what):
        pr = Product(1, 0, dep, factors)
        m, e = _scale(coef, pr.shift, what)
        return Product(sign * m, e, dep, factors)

    products = (
        prod(hc, "y0", (("t", 0), ("x1", 0)), +1, "homo+ x1"),
        prod(hc, "y0", (("t", 0), ("x2", 0)), -1, "homo+ x2"),
        prod(c_ev, "y0", (), -1, "const+"),
        prod(coef_het, "y0", (("y3", -Y_OFFSET), ("w", 0)), +1, "hetero+"),
        prod(hc / Y_EVENT, "u0", (("t", 0), ("x1", 0), ("y1", 0)), -1, "homo- x1"),
        prod(hc / Y_EVENT, "u0", (("t", 0), ("x2", 0), ("y1", 0)), +1, "homo- x2"),
        prod(c_ev / Y_EVENT, "u0", (("y1", 0),), +1, "const-"),
        prod(coef_het / Y_EVENT, "u0", (("y1", 0), ("y3", -Y_OFFSET), ("w", 0)), -1,
             "hetero-"),
    )
    for pr in products:
        if product_bound(pr) >= 2 ** 31:
            raise ValueError(f"product {pr.render()} can overflow int32")

    # neuron integers
    dm = int(round(p.decay_m * 2 ** F_D))
    ds = int(round(p.decay_s * 2 ** F_D))
    vk_mant, vk_shift = const_mantissa(scale * lsb, MANT_BITS)
    nodes = -SIG_SPAN + np.arange(2 * SIG_SPAN * 2 ** SIG_NODE_FRAC + 1) * 2.0 ** -SIG_NODE_FRAC
    sig = 0.5 * (1.0 + np.tanh(0.5 * p.beta * (nodes - p.theta)))
    sigma_lut = np.floor(sig * 2 ** F_S + 0.5).astype(np.int64)
    phidt_mant, phidt_shift = const_mantissa(p.phi_max * p.dt, MANT_BITS)
    a_mant, a_shift = const_mantissa(p.phi_max * p.beta ** 2, MANT_BITS)
    k_mant, k_shift = const_mantissa(eta / e_q, MANT_BITS)
    vq_mant, vq_shift = const_mantissa(1.0 / v_lsb, MANT_BITS)

    homo_ideal = np.where(rates > 0, t_num / np.where(rates > 0, rates, 1.0), 0.0)
    homo_real = tags * hc
    info = {
        "E_q": e_q, "event_prob_per_unit_post": 1.0 / e_q, "T": big_t,
        "tags_exact": raw.tolist(),
        "homo_rel_err": float(np.max(np.abs(homo_real / np.where(homo_ideal > 0, homo_ideal, 1)
                                            - 1) * (homo_ideal > 0))),
        "acc_per_t_x1": hc, "hetero_coef": coef_het, "v_lsb_mv": v_lsb,
        "v_range_mv": 64 * v_lsb,
        "eta/E_q": {"float": eta / e_q, "realised": k_mant * 2.0 ** -k_shift},
        "1/v_lsb": {"float": 1 / v_lsb, "realised": vq_mant * 2.0 ** -vq_shift},
        "usp_scale*lsb": {"float": scale * lsb, "realised": vk_mant * 2.0 ** -vk_shift},
        "decay_m": {"float": p.decay_m, "realised": dm / 2 ** F_D},
        "decay_s": {"float": p.decay_s, "realised": ds / 2 ** F_D},
        "phi_max_dt": {"float": p.phi_max * p.dt, "realised": phidt_mant * 2.0 ** -phidt_shift},
        "phi_max_beta2": {"float": p.phi_max * p.beta ** 2, "realised": a_mant * 2.0 ** -a_shift},
    }
    return Design(params=p, rates=rates, eta=float(eta), w_frac=int(w_frac), c_ev=int(c_ev),
                  k_x=int(k_x), x1_tau=x1_tau, x2_tau=x2_tau, tags=tags, tag_step=int(tag_step),
                  tag_scale=big_t, e_q=e_q, v_lsb=v_lsb, products=products, weight_exp=0,
                  dm=dm, ds=ds, vk_mant=vk_mant, vk_shift=vk_shift, sigma_lut=sigma_lut,
                  phidt_mant=phidt_mant, phidt_shift=phidt_shift, a_mant=a_mant,
                  a_shift=a_shift, k_mant=k_mant, k_shift=k_shift, vq_mant=vq_mant,
                  vq_shift=vq_shift, info=info)


def design_for_task(task: Task, eta: float, w_frac: int | None = None, **kw) -> Design:
    """:func:`design` with the weight LSB fitted to the task's initial/target weights."""
    if w_frac is None:
        wmax = float(np.max(np.abs(task.w_init)))
        if task.w_target is not None:
            wmax = max(wmax, float(np.max(np.abs(task.w_target))))
        w_frac = default_w_frac(wmax)
    return design(task.params, task.rates, eta, w_frac, **kw)


def mis_scaled(d: Design, index: int, delta: int = 1) -> Design:
    """The same design with product ``index`` scaled by 2**delta (an off-by-one shift)."""
    prods = list(d.products)
    p = prods[index]
    prods[index] = dataclasses.replace(p, exp=p.exp + delta)
    return dataclasses.replace(d, products=tuple(prods))


def quantize_weights(d: Design, w: np.ndarray) -> np.ndarray:
    """Float weights -> even integers on the 2**-w_frac grid in [-256, 254].

    Even because LearningDense's first run_spk truncates the lowest bit (sign mode MIXED);
    later updates can make weights odd.
    """
    q = 2 * np.floor(np.asarray(w, dtype=np.float64) * 2.0 ** d.w_frac / 2 + 0.5)
    return np.clip(q, -256, 254).astype(np.int64)
