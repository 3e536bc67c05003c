"""Emulator mode ``learning_engine``: the arithmetic of Path 2 (Loihi 2 learning engine).

Path 2 maps the approximate natural-gradient rule (SPEC §2.3)

    dw_i = eta gamma_s (1 - sigma(V)) e [c_eps x_i / r_i - c_eps c_u + c_w V w_i]

onto Lava 0.10's ``LearningDense`` (its ``fixed_pt`` model, ``PyLearningDenseModelBitApproximate``)
with a ``Loihi3FLearningRule`` sum-of-products string, plus a custom learning neuron that
computes V, sigma(V), the error e and gamma_s in integers and sends third factors.  This
module knows nothing of Lava: it builds the rule (as data, and as the string Lava parses),
computes every constant, implements the learning neuron's integer step (which the Lava
neuron model calls, so neuron arithmetic is shared) and re-implements, independently, what
``LearningDense`` does to traces, third factors and weights, including which numpy random
generator Lava draws from and in what order.  ``docs/learning_engine.md`` derives every
constant and the loss each step brings.

The mapping in one paragraph
----------------------------
The post factor ``P = eta gamma_s (1 - sigma) e`` is sent as *events* of a fixed size
``E_q``: each step the neuron emits a positive event with probability ``P / E_q`` when
``P > 0`` (only possible on a teacher spike) and a negative event with probability
``-P / E_q`` when ``P < 0`` (counter RNG, :mod:`fixedpoint.rng`): unbiased,
``E[event] = P``.  Positive events travel as the back-propagating spike (dependency
``y0``), negative ones as ``y1 = 64`` (else 0).  The membrane potential for the
heterosynaptic term travels as ``y3 = 64 + Vq``.  With binary events every product of the
rule has a fixed, known scale, and the products of the homosynaptic term are exact
integers (no loss to the learning engine's right shift) when the tags are multiples of 16.
The per-afferent ``c_eps / r_i`` rides on the static tag ``t`` (``tag_1``).

    dw =  S1 y0 t x1 - S1 y0 t x2 - S2 y0 + S3 y0 (y3 - 64) w
        - S1' u0 t x1 y1 + S1' u0 t x2 y1 + S2' u0 y1 - S3' u0 y1 (y3 - 64) w

LearningDense replica (``t_epoch = 1``, one trial ``b``; Lava time step ``k + 1`` is
global step ``k``)
----------------------------------------------------------------------------------------
1. ``a_out(k) = a_buff(k-1)``; ``a_buff(k) = W(k) . X(k)`` (the Dense one-step delay).
2. the neuron reads ``a_out(k)`` and the teacher spike ``y(k)``, sends bap, y1, y2, y3.
3. received y are decayed once: ``floor(d_y y) + (r_y < frac)``, ``d_y = exp(-1/65535)``.
4. traces: ``x <- floor(d x) + (r_x < frac(d x))`` then ``+ K_x`` for this step's spikes,
   clipped to 127 (``d = exp(-1/tau)``, one ``r_x`` for all synapses and both traces).
5. ``acc = W << 7``; each product: factors clipped to their widths, multiplied, times the
   mantissa, floor-shifted right by ``max(0, sum(widths) + 4 - 15)``, shifted left by
   ``exp + 7``, clipped to [-32769, 32767]; ``acc`` accumulates with the same clip.
6. ``W <- floor(acc / 128) + (r_w < frac(acc / 128))``, clipped to [-256, 255].

Random numbers (from ``lava/magma/core/learning/random.py`` and ``connection.py``):
``r_x`` is draw ``2 (k+1)`` of ``numpy.random.default_rng(rng_seed).random`` (one draw at
construction, two ``advance()`` per time step in ``recv_traces``), ``r_y`` the same draw of
``default_rng(rng_seed + 2)``, ``r_w`` draw ``k + 1`` of ``default_rng(2)`` (fixed seed;
one ``advance()`` per learning epoch).  Impulses are integers, so the impulse generators
(``rng_seed + 1``, ``+ 3``) never matter.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from emulator.discretize import const_mantissa
from emulator.params import NeuronParams
from emulator.spikes import SpikeSource
from emulator.task import Task
from fixedpoint import rng

def _hu(x, s: int):
    """Round half up of x / 2**s (= fixedpoint.shift_right(x, s, 'half_up') for |x| < 2**62)."""
    return (x + (1 << (s - 1))) >> s

__all__ = [
    "Product", "Design", "NeuronState", "SynapseState", "LEResult",
    "design", "rule_string", "mis_scaled", "neuron_init", "neuron_step", "neuron_counters",
    "lava_trace_seed", "LavaRandoms", "synapse_init", "synapse_step", "apply_products", "run",
    "quantize_weights", "product_bound",
]

# ------------------------------------------------------------------ learning-engine widths
W_TRACE = 7                   #: traces x1, x2, y1, y2, y3 (unsigned 0..127)
W_SYN = 9                     #: w, d, t (8 bits + sign)
W_S_MANT = 4                  #: mantissa of a product's scale
W_ACC_U = 15                  #: accumulator magnitude bits (16 bits signed)
ACC_SHIFT = 7                 #: accumulator = w << 7
WIDTH = {"x1": W_TRACE, "x2": W_TRACE, "y1": W_TRACE, "y2": W_TRACE, "y3": W_TRACE,
         "w": W_SYN, "t": W_SYN, "d": W_SYN}
ACC_LO, ACC_HI = -(2 ** W_ACC_U) - 1, 2 ** W_ACC_U - 1      # Lava's clip bounds, verbatim
W_LO, W_HI = -256, 255        #: weights after learning (clip_weights, 8 bits, MIXED)
TRACE_MAX = 2 ** W_TRACE - 1
Y_TAU = 65535                 #: Loihi3FLearningRule's y taus (np.iinfo(np.uint16).max)
Y_EVENT = 64                  #: value of y1 on a negative event
Y_OFFSET = 64                 #: y3 = 64 + Vq
SR_SEED = 2                   #: ConnVarRandom's fixed seed

# ------------------------------------------------------------------ neuron formats
F_A = 8          #: fractional bits of the neuron's current filters (unit: weight LSB * spike)
F_D = 16         #: decay factors U0.16
F_V = 8          #: V in mV, S16.8 (saturated to +-128 mV)
V_BITS = 16
F_S = 16         #: sigma, 1 - sigma, sigma (1-sigma)^2: U0.16
SIG_SPAN = 64    #: sigma table over V in [-64, 64) mV ...
SIG_NODE_FRAC = 2  #: ... with nodes every 2**-2 mV (513 nodes), linear interpolation
F_E = 16         #: error e = y - phi_max dt sigma, S.16
F_H = 28         #: running mean of sigma (1-sigma)^2, U0.28
H_TAU_SHIFT = 12  #: EMA time constant 2**12 steps (2.048 s)
GAMMA_EVERY = 64  #: gamma_s = 1 / (phi_max beta^2 hbar) refreshed every 64 steps
F_G = 16         #: gamma_s U8.16 (saturates at 256)
G_BITS = 24
F_P = 24         #: event probability U0.24
MANT_BITS = 16   #: mantissa width of the neuron's constants
STREAM_EVENT = 32  #: counter-RNG stream of the event draws
STREAM_VQ = 33     #: counter-RNG stream of the stochastic rounding of Vq
G_CAP = 4.0        #: gamma_s (1 - sigma) |e| at which the event probability reaches 1

# neuron counters (in this order in NeuronState.counts)
NEURON_COUNTERS = ("potential_saturation", "event_saturation", "vq_saturation",
                   "gamma_saturation")


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


# ============================================================================ the neuron
@dataclasses.dataclass
class NeuronState:
    """Integer state of the learning neuron, arrays (B, M) (B trials, M neurons)."""

    a_m: np.ndarray      #: sum_i W_i a_m,i (slow filter of the dendritic current), F_A
    a_s: np.ndarray      #: fast filter, F_A
    hbar: np.ndarray     #: running mean of sigma (1-sigma)^2, U0.28
    gamma: np.ndarray    #: gamma_s, U8.16
    v: np.ndarray        #: last V, S16.8 mV
    sigma: np.ndarray    #: last sigma, U0.16
    err: np.ndarray      #: last e, S.16
    p: np.ndarray        #: last event probability, U0.24
    counts: np.ndarray   #: (len(NEURON_COUNTERS),)


def _gamma_from_hbar(d: Design, hbar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """gamma_s = 1 / (phi_max beta^2 hbar) in U8.16 (floor), saturated; and the sat mask."""
    hbar = np.asarray(hbar, np.int64)
    den = hbar * d.a_mant
    top = 2 ** G_BITS - 1
    num = 1 << (F_G + F_H + d.a_shift)
    with np.errstate(divide="ignore"):
        g = np.where(den > 0, num // np.maximum(den, 1), top + 1)
    sat = g > top
    return np.minimum(g, top), sat


def neuron_init(d: Design, w_init_int: np.ndarray) -> NeuronState:
    """Neuron state for weights (B, M, N) (integers): filters 0, hbar from the host.

    The host ("deploy") computes E[sigma (1 - sigma)^2] for V ~ N(m, v) of the initial
    weights (m = sum w r, v = sum w^2 r / c_eps; SPEC §1.4) once; afterwards the neuron
    tracks it online.
    """
    from emulator.reference import gauss_moments
    w = np.asarray(w_init_int, np.float64) * d.lsb_w
    b, m, _ = w.shape
    mu = w @ d.rates
    var = (w * w) @ d.rates / d.params.c_eps
    i1 = gauss_moments(mu, var, d.params)[0]                      # E[h], h = A s (1-s)^2
    hbar = np.floor(i1 / (d.params.phi_max * d.params.beta ** 2) * 2 ** F_H + 0.5)
    hbar = hbar.astype(np.int64)
    z = lambda: np.zeros((b, m), np.int64)  # noqa: E731
    st = NeuronState(a_m=z(), a_s=z(), hbar=hbar, gamma=z(), v=z(), sigma=z(), err=z(), p=z(),
                     counts=np.zeros(len(NEURON_COUNTERS), np.int64))
    st.gamma = _gamma_from_hbar(d, hbar)[0]
    return st


def sigma_lookup(d: Design, v: np.ndarray) -> np.ndarray:
    """sigma(V) U0.16 from V S16.8 mV: 0.25-mV nodes over [-64, 64) mV, linear interpolation."""
    sub = F_V - SIG_NODE_FRAC
    pos = np.clip(np.asarray(v, np.int64) + (SIG_SPAN << F_V), 0, (2 * SIG_SPAN << F_V) - 1)
    j = pos >> sub
    t = pos - (j << sub)
    lut = d.sigma_lut
    return lut[j] + _hu((lut[j + 1] - lut[j]) * t, sub)


def neuron_step(d: Design, st: NeuronState, a_in: np.ndarray, y: np.ndarray, k: int,
                seed: int, index: np.ndarray):
    """One step of the learning neuron, in place; returns (bap, y1, y2, y3), each (B, M).

    ``a_in`` (B, M): LearningDense's a_out this step = sum_i W_i X_i of the previous step
    (weight units).  ``y`` (B, M): teacher spikes of step k.  ``index`` (B, M): counter-RNG
    index ``trial << 32 | neuron``.  Every right shift rounds half up (values stay far
    below 2**62) except Vq's, which rounds stochastically.
    """
    a_in = np.asarray(a_in, np.int64)
    y = np.asarray(y, np.int64)
    # 1. current filters: A = sum_i W_i a_i(k-1); x_i(k) = scale (d_m a_m(k-1) - d_s a_s(k-1))
    #    because a spike in bin k adds equally to both traces, so V(k) needs no bin-k input.
    st.a_m = _hu(st.a_m * d.dm, F_D) + (a_in << F_A)
    st.a_s = _hu(st.a_s * d.ds, F_D) + (a_in << F_A)
    diff = _hu(st.a_m * d.dm - st.a_s * d.ds, F_D)                              # F_A
    v = _hu(diff * d.vk_mant, F_A + d.vk_shift - F_V)
    vtop = 2 ** (V_BITS - 1)
    sat = (v < -vtop) | (v > vtop - 1)
    if sat.any():
        st.counts[0] += int(np.count_nonzero(sat))
        v = np.clip(v, -vtop, vtop - 1)
    # 2. sigma, error
    s = sigma_lookup(d, v)
    s1 = (1 << F_S) - s
    e = (y << F_E) - _hu(s * d.phidt_mant, F_S + d.phidt_shift - F_E)
    # 3. gamma_s from the running mean of sigma (1 - sigma)^2
    h = _hu(_hu(s * s1, F_S) * s1, F_S)                                          # U0.16
    st.hbar = st.hbar + _hu((h << (F_H - F_S)) - st.hbar, H_TAU_SHIFT)
    if k % GAMMA_EVERY == 0:
        st.gamma, gsat = _gamma_from_hbar(d, st.hbar)
        st.counts[3] += int(np.count_nonzero(gsat))
    # 4. event probability p = eta gamma_s (1 - sigma) |e| / E_q, U0.24
    g1 = _hu(st.gamma * s1, F_G + F_S - F_P)                                     # U.24
    g2 = _hu(g1 * np.abs(e), F_E)                                                # U.24
    p = _hu(g2 * d.k_mant, d.k_shift)
    one = 1 << F_P
    over = p > one
    if over.any():
        st.counts[1] += int(np.count_nonzero(over))
        p = np.minimum(p, one)
    r = (rng.random_bits(seed, STREAM_EVENT, k, index) >> np.uint64(64 - F_P)).astype(np.int64)
    event = r < p
    bap = (event & (e > 0)).astype(np.int64)
    y1 = np.where(event & (e < 0), Y_EVENT, 0).astype(np.int64)
    # 5. V for the heterosynaptic term, stochastically rounded to v_lsb
    sh = F_V + d.vq_shift
    low = (rng.random_bits(seed, STREAM_VQ, k, index) & np.uint64((1 << sh) - 1)).astype(np.int64)
    vq = (v * d.vq_mant + low) >> sh
    vsat = (vq < -Y_OFFSET) | (vq > Y_OFFSET - 1)
    if vsat.any():
        st.counts[2] += int(np.count_nonzero(vsat))
        vq = np.clip(vq, -Y_OFFSET, Y_OFFSET - 1)
    y3 = vq + Y_OFFSET
    st.v, st.sigma, st.err, st.p = v, s, e, p
    return bap, y1, np.zeros_like(y1), y3


def neuron_counters(st: NeuronState) -> dict:
    return {name: int(n) for name, n in zip(NEURON_COUNTERS, st.counts)}


# ============================================================================ the synapses
def lava_trace_seed(seed: int, trial: int) -> int:
    """``rng_seed`` of trial ``trial``'s Loihi3FLearningRule (Lava also uses +1, +2, +3)."""
    return int((int(seed) * 1_000_003 + 4 * int(trial) + 1) % (2 ** 31 - 8))


class LavaRandoms:
    """The three numpy generators LearningDense's fixed_pt model draws from, per trial."""

    def __init__(self, rng_seeds):
        self.gx = [np.random.default_rng(s) for s in rng_seeds]
        self.gy = [np.random.default_rng(s + 2) for s in rng_seeds]
        self.gw = np.random.default_rng(SR_SEED)
        for g in self.gx + self.gy + [self.gw]:
            g.random(1)                     # the draw made in the constructors

    def next(self, n: int):
        """(r_x (n, B), r_y (n, B), r_w (n,)) for the next n time steps."""
        rx = np.stack([g.random(2 * n)[1::2] for g in self.gx], axis=1)
        ry = np.stack([g.random(2 * n)[1::2] for g in self.gy], axis=1)
        return rx, ry, self.gw.random(n)


@dataclasses.dataclass
class SynapseState:
    w: np.ndarray        #: (B, M, N) weights, integers in [-256, 255]
    x: np.ndarray        #: (B, 2, N) traces x1, x2
    a_buff: np.ndarray   #: (B, M) Dense's buffered output


def synapse_init(w_int: np.ndarray) -> SynapseState:
    w = np.asarray(w_int, np.int64)
    w = (w >> 1) << 1                        # truncate_weights at the first run_spk
    b, m, n = w.shape
    return SynapseState(w=w, x=np.zeros((b, 2, n), np.int64), a_buff=np.zeros((b, m), np.int64))


def _decay(values: np.ndarray, taus: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Lava's _decay_trace: floor(exp(-1/tau) v) + (r < frac), one r per trial."""
    dec = np.exp(-1 / taus)                                   # same expression as Lava's
    ip = dec * values
    frac = ip % 1
    ip = np.floor(ip)
    return (ip + (r[:, None, None] < frac).astype(int)).astype(np.int64)


_X_TAUS: dict = {}


def _clip(x, lo, hi):
    return np.minimum(np.maximum(x, lo), hi)


def apply_products(products, acc, w, tags, x1, x2, y0, yv) -> np.ndarray:
    """Add every product to the accumulator ``acc`` (B, M, N), Lava's fixed-point applier.

    x1, x2: (B, 1, N) traces; y0: (B, M, 1) bap; yv: dict name -> (B, M, 1) seen y traces.
    """
    vals = {"x1": x1, "x2": x2, "w": w, "t": tags, **yv}
    for p in products:
        cur = y0.astype(np.int64) if p.dep == "y0" else np.ones((1, 1, 1), np.int64)
        for var, const in p.factors:
            width = WIDTH[var]
            cur = cur * _clip(vals[var] + const, -(2 ** width), 2 ** width - 1)
        cur = ((cur * p.mant) >> p.shift) << (p.exp + ACC_SHIFT)
        acc = _clip(acc + _clip(cur, ACC_LO, ACC_HI), ACC_LO, ACC_HI)
    return acc


def synapse_step(d: Design, syn: SynapseState, x_spk: np.ndarray, bap, y1, y2, y3, rx, ry, rw,
                 tags_bmn: np.ndarray, products=None):
    """Everything LearningDense does after sending a_out, for one time step (in place)."""
    products = d.products if products is None else products
    x_spk = np.asarray(x_spk, np.int64)
    # Dense: a_buff for the next step, from this step's spikes and the pre-learning weights
    syn.a_buff = np.einsum("bmn,bn->bm", syn.w, x_spk)
    if d.weight_exp:
        syn.a_buff = syn.a_buff << d.weight_exp
    # received third factors, decayed once
    ys = np.stack([y1, y2, y3], axis=1)                      # (B, 3, M)
    ys = _decay(ys, np.array([[Y_TAU], [Y_TAU], [Y_TAU]]), ry)
    # presynaptic traces: decay, then the impulse for this step's spikes
    key = (d.x1_tau, d.x2_tau)
    if key not in _X_TAUS:
        _X_TAUS[key] = np.array([[d.x1_tau], [d.x2_tau]])
    x = _decay(syn.x, _X_TAUS[key], rx)
    spk = x_spk.astype(bool)[:, None, :]
    x = np.where(spk, np.clip(x + d.k_x, 0, TRACE_MAX), x)
    syn.x = x
    # learning: accumulator = w << 7, products, stochastic rounding to the weight grid
    acc = syn.w << ACC_SHIFT
    yv = {"y1": ys[:, 0, :, None], "y2": ys[:, 1, :, None], "y3": ys[:, 2, :, None]}
    acc = apply_products(products, acc, syn.w, tags_bmn, x[:, 0:1, :], x[:, 1:2, :],
                         np.asarray(bap, np.int64)[:, :, None], yv)
    ip = acc / 2 ** ACC_SHIFT
    frac = ip % 1
    ip = np.floor(ip)
    ip = (ip + (rw < frac).astype(int)).astype(int)
    w = ((ip * 2 ** ACC_SHIFT).astype(np.int32) >> ACC_SHIFT).astype(np.int64)
    syn.w = np.clip(w, W_LO, W_HI)



# ============================================================================ numba kernel
# The same arithmetic as neuron_step + synapse_step, element by element, compiled; it must
# stay bit-identical to them (tests/test_lava_path2.py compares the two backends).
from numba import njit  # noqa: E402

from fixedpoint.jit import random_bits_from_prefix, stream_prefix  # noqa: E402

_VAR_CODE = {"x1": 0, "x2": 1, "y1": 2, "y2": 3, "y3": 4, "w": 5, "t": 6}
(KC_DM, KC_DS, KC_VK_MANT, KC_VK_SH, KC_PHIDT_MANT, KC_PHIDT_SH, KC_A_MANT, KC_A_SH,
 KC_K_MANT, KC_K_SH, KC_VQ_MANT, KC_VQ_SH, KC_KX, KC_WEXP, N_KC) = range(15)


def _pack(d: Design, products):
    kc = np.zeros(N_KC, np.int64)
    for i, v in ((KC_DM, d.dm), (KC_DS, d.ds), (KC_VK_MANT, d.vk_mant), (KC_VK_SH, d.vk_shift),
                 (KC_PHIDT_MANT, d.phidt_mant), (KC_PHIDT_SH, d.phidt_shift),
                 (KC_A_MANT, d.a_mant), (KC_A_SH, d.a_shift), (KC_K_MANT, d.k_mant),
                 (KC_K_SH, d.k_shift), (KC_VQ_MANT, d.vq_mant), (KC_VQ_SH, d.vq_shift),
                 (KC_KX, d.k_x), (KC_WEXP, d.weight_exp)):
        kc[i] = v
    ptab = np.zeros((len(products), 8), np.int64)    # dep (1 = y0), mant, exp, shift, nf, vars
    pconst = np.zeros((len(products), 3), np.int64)
    for j, pr in enumerate(products):
        if len(pr.factors) > 3 or pr.dep == "x0":
            raise ValueError("the numba kernel supports u0/y0 products of <= 3 factors")
        ptab[j, :5] = (1 if pr.dep == "y0" else 0, pr.mant, pr.exp, pr.shift, len(pr.factors))
        for f, (var, const) in enumerate(pr.factors):
            ptab[j, 5 + f] = _VAR_CODE[var]
            pconst[j, f] = const
    return kc, ptab, pconst


@njit(cache=True)
def _clip_i(x, lo, hi):
    return lo if x < lo else (hi if x > hi else x)


@njit(cache=True)
def _hu_i(x, s):
    return (x + (np.int64(1) << (s - 1))) >> s


@njit(cache=True)
def _kernel(kc, lut, ptab, pconst, tags, dec_x, dec_y, X, Y, rx, ry, rw, k0, seed, trials,
            W, xtr, a_buff, a_m, a_s, hbar, gamma, vlast, slast, elast, plast, counts, events,
            rec_every, rec, row):
    n, B, N = X.shape
    M = W.shape[1]
    P = ptab.shape[0]
    bap = np.zeros(M, np.int64)
    y1v = np.zeros(M, np.int64)
    y3v = np.zeros(M, np.int64)
    ys = np.zeros((3, M), np.int64)
    vals = np.zeros(7, np.int64)
    vtop = np.int64(1) << (V_BITS - 1)
    one = np.int64(1) << F_P
    gtop = (np.int64(1) << G_BITS) - 1
    gnum = np.int64(1) << (F_G + F_H + kc[KC_A_SH])
    sub = F_V - SIG_NODE_FRAC
    poshi = (np.int64(2 * SIG_SPAN) << F_V) - 1
    vqsh = F_V + kc[KC_VQ_SH]
    vqmask = (np.uint64(1) << np.uint64(vqsh)) - np.uint64(1)
    for t in range(n):
        k = k0 + t
        pe = stream_prefix(seed, STREAM_EVENT, k)
        pv = stream_prefix(seed, STREAM_VQ, k)
        for b in range(B):
            # ---- learning neuron
            for m in range(M):
                a_in = a_buff[b, m]
                am = _hu_i(a_m[b, m] * kc[KC_DM], F_D) + (a_in << F_A)
                as_ = _hu_i(a_s[b, m] * kc[KC_DS], F_D) + (a_in << F_A)
                a_m[b, m] = am
                a_s[b, m] = as_
                diff = _hu_i(am * kc[KC_DM] - as_ * kc[KC_DS], F_D)
                v = _hu_i(diff * kc[KC_VK_MANT], F_A + kc[KC_VK_SH] - F_V)
                if v < -vtop or v > vtop - 1:
                    counts[0] += 1
                    v = _clip_i(v, -vtop, vtop - 1)
                pos = _clip_i(v + (np.int64(SIG_SPAN) << F_V), 0, poshi)
                j = pos >> sub
                tt = pos - (j << sub)
                s = lut[j] + _hu_i((lut[j + 1] - lut[j]) * tt, sub)
                s1 = (np.int64(1) << F_S) - s
                e = (np.int64(Y[t, b, m]) << F_E) - _hu_i(s * kc[KC_PHIDT_MANT],
                                                           F_S + kc[KC_PHIDT_SH] - F_E)
                h = _hu_i(_hu_i(s * s1, F_S) * s1, F_S)
                hb = hbar[b, m] + _hu_i((h << (F_H - F_S)) - hbar[b, m], H_TAU_SHIFT)
                hbar[b, m] = hb
                if k % GAMMA_EVERY == 0:
                    den = hb * kc[KC_A_MANT]
                    g = gnum // den if den > 0 else gtop + 1
                    if g > gtop:
                        counts[3] += 1
                        g = gtop
                    gamma[b, m] = g
                g1 = _hu_i(gamma[b, m] * s1, F_G + F_S - F_P)
                g2 = _hu_i(g1 * (e if e >= 0 else -e), F_E)
                p = _hu_i(g2 * kc[KC_K_MANT], kc[KC_K_SH])
                if p > one:
                    counts[1] += 1
                    p = one
                idx = (trials[b] << 32) | m
                r = np.int64(random_bits_from_prefix(pe, idx) >> np.uint64(64 - F_P))
                ev = r < p
                bap[m] = 1 if (ev and e > 0) else 0
                y1v[m] = Y_EVENT if (ev and e < 0) else 0
                low = np.int64(random_bits_from_prefix(pv, idx) & vqmask)
                vq = (v * kc[KC_VQ_MANT] + low) >> vqsh
                if vq < -Y_OFFSET or vq > Y_OFFSET - 1:
                    counts[2] += 1
                    vq = _clip_i(vq, -Y_OFFSET, Y_OFFSET - 1)
                y3v[m] = vq + Y_OFFSET
                vlast[b, m] = v
                slast[b, m] = s
                elast[b, m] = e
                plast[b, m] = p
                events[b, m, 0] += bap[m]
                events[b, m, 1] += 1 if y1v[m] > 0 else 0
            # ---- Dense: a_buff for the next step (pre-learning weights)
            for m in range(M):
                acc = np.int64(0)
                for i in range(N):
                    if X[t, b, i]:
                        acc += W[b, m, i]
                a_buff[b, m] = acc << kc[KC_WEXP]
            # ---- received y, decayed once
            for m in range(M):
                for jj in range(3):
                    yv = y1v[m] if jj == 0 else (y3v[m] if jj == 2 else 0)
                    val = dec_y * yv
                    fl = np.floor(val)
                    ys[jj, m] = np.int64(fl) + (1 if ry[t, b] < val - fl else 0)
            # ---- presynaptic traces
            for i in range(N):
                for jj in range(2):
                    val = dec_x[jj] * xtr[b, jj, i]
                    fl = np.floor(val)
                    nv = np.int64(fl) + (1 if rx[t, b] < val - fl else 0)
                    if X[t, b, i]:
                        nv = _clip_i(nv + kc[KC_KX], 0, TRACE_MAX)
                    xtr[b, jj, i] = nv
            # ---- learning
            for m in range(M):
                for i in range(N):
                    w = W[b, m, i]
                    acc = w << ACC_SHIFT
                    vals[0] = xtr[b, 0, i]
                    vals[1] = xtr[b, 1, i]
                    vals[2] = ys[0, m]
                    vals[3] = ys[1, m]
                    vals[4] = ys[2, m]
                    vals[5] = w
                    vals[6] = tags[i]
                    for q in range(P):
                        if ptab[q, 0] == 1 and bap[m] == 0:
                            continue
                        cur = np.int64(1)
                        for f in range(ptab[q, 4]):
                            var = ptab[q, 5 + f]
                            wd = W_TRACE if var <= 4 else W_SYN
                            cur *= _clip_i(vals[var] + pconst[q, f], -(np.int64(1) << wd),
                                           (np.int64(1) << wd) - 1)
                        cur = ((cur * ptab[q, 1]) >> ptab[q, 3]) << (ptab[q, 2] + ACC_SHIFT)
                        acc = _clip_i(acc + _clip_i(cur, ACC_LO, ACC_HI), ACC_LO, ACC_HI)
                    qq = acc >> ACC_SHIFT
                    rem = acc & ((np.int64(1) << ACC_SHIFT) - 1)
                    if rw[t] < rem / 128.0:
                        qq += 1
                    W[b, m, i] = _clip_i(qq, W_LO, W_HI)
        if rec_every > 0 and (k + 1) % rec_every == 0:
            rec[row] = W
            row += 1
    return row


# ============================================================================ the run
@dataclasses.dataclass
class LEResult:
    steps: int
    seed: int
    trials: np.ndarray
    w_int: np.ndarray           #: (B, M, N) final integer weights
    w_final: np.ndarray         #: float weights w_int * 2**-w_frac
    x_traces: np.ndarray        #: (B, 2, N) final x1, x2
    neuron: NeuronState
    counters: dict
    record_w: np.ndarray        #: (n_rec, B, M, N) float weights every record_every steps
    record_t_s: np.ndarray
    events: np.ndarray          #: (B, M, 2) positive / negative events over the run
    teacher_spikes: np.ndarray  #: (B, M)


def run(task: Task, steps: int, seed: int, d: Design | None = None, *, eta: float | None = None,
        trials=None, record_every: int = 0, chunk_steps: int = 4000, products=None,
        w_init_int: np.ndarray | None = None, backend: str = "numba") -> LEResult:
    """Run the learning-engine mode on ``task`` (spikes from :class:`SpikeSource`).

    ``backend='numba'`` (fused kernel) and ``'numpy'`` (:func:`neuron_step` and
    :func:`synapse_step`) are bit-identical.  Trial ``t`` uses the Lava rng_seed
    :func:`lava_trace_seed` ``(seed, t)``, so it reproduces a Lava run of that trial.
    ``products`` replaces the design's rule (e.g. a deliberately mis-scaled one).
    """
    if backend not in ("numba", "numpy"):
        raise ValueError(f"backend must be 'numba' or 'numpy' (got {backend!r})")
    if d is None:
        from emulator.reference import ETA_CODE
        d = design_for_task(task, ETA_CODE["approx"] if eta is None else eta)
    products = d.products if products is None else tuple(products)
    trials = np.arange(task.n_trials) if trials is None else np.asarray(trials, np.int64)
    steps = int(steps)
    w0 = quantize_weights(d, task.w_init[trials]) if w_init_int is None else w_init_int
    syn = synapse_init(w0)
    neu = neuron_init(d, syn.w)
    b, m, n = syn.w.shape
    index = rng.trial_unit_index(trials, np.arange(m))
    tags = np.broadcast_to(d.tags[None, None, :], (b, m, n))
    rnd = LavaRandoms([lava_trace_seed(seed, t) for t in trials])
    src = SpikeSource(task, seed, trials)
    n_rec = steps // record_every if record_every else 0
    rec_int = np.zeros((n_rec, b, m, n), np.int64)
    row = 0
    events = np.zeros((b, m, 2), np.int64)
    teach = np.zeros((b, m), np.int64)
    if backend == "numba":
        kc, ptab, pconst = _pack(d, products)
        dec_x = np.exp(-1 / np.array([[d.x1_tau], [d.x2_tau]]))[:, 0]
        dec_y = float(np.exp(-1 / np.array([[Y_TAU]]))[0, 0])
        tr = np.asarray(trials, np.int64)
    done = 0
    while done < steps:
        nn = min(chunk_steps, steps - done)
        X, Y = src.next(nn)
        teach += Y.sum(axis=0, dtype=np.int64)
        rx, ry, rw = rnd.next(nn)
        if backend == "numba":
            row = _kernel(kc, d.sigma_lut, ptab, pconst, d.tags, dec_x, dec_y, X, Y, rx, ry, rw,
                          done, int(seed), tr, syn.w, syn.x, syn.a_buff, neu.a_m, neu.a_s,
                          neu.hbar, neu.gamma, neu.v, neu.sigma, neu.err, neu.p, neu.counts,
                          events, record_every, rec_int, row)
        else:
            for t in range(nn):
                k = done + t
                bap, y1, y2, y3 = neuron_step(d, neu, syn.a_buff, Y[t], k, seed, index)
                events[:, :, 0] += bap
                events[:, :, 1] += y1 > 0
                synapse_step(d, syn, X[t], bap, y1, y2, y3, rx[t], ry[t], rw[t], tags, products)
                if record_every and (k + 1) % record_every == 0:
                    rec_int[row] = syn.w
                    row += 1
        done += nn
    return LEResult(steps=steps, seed=seed, trials=trials, w_int=syn.w.copy(),
                    w_final=syn.w * d.lsb_w, x_traces=syn.x.copy(), neuron=neu,
                    counters=neuron_counters(neu), record_w=rec_int[:row] * d.lsb_w,
                    record_t_s=np.arange(1, row + 1) * record_every * task.params.dt,
                    events=events, teacher_spikes=teach)
