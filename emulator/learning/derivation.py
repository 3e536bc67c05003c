"""Derive a learning-engine design: the rule's products, the static tags
``t = round(T / r_i)``, the trace impulse, the event size or graded levels, the hidden bits
and the learning neuron's integers (:func:`design`).

``docs/learning_engine.md`` derives every constant.  The rule as data is
:mod:`.products`, the record :mod:`.design_record`, the task-free 'auto' choices
:mod:`.unit_choice`; fitting a design to a task's weights is :mod:`.task_fit`.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from emulator.params import NeuronParams

from .constants import (D_OFFSET, DEFAULT_ENGINE, DEFAULT_MAPPING, DEFAULT_NEURON, ENCODINGS,
                        RULES, EngineSpec, MappingSpec, NeuronSpec)
from .design_record import Design
from .neuron_constants import neuron_integer_info, neuron_integers
from .products import Product, _graded_order, _representable_at_least, _scale, product_bound
from .unit_choice import (K_X_MIN, USP_N_SD, auto_c_ev, auto_level_unit, trace_headroom_kx,
                          usp_diff_bound)

#: the MappingSpec fields :func:`design` also takes as keywords
_MAPPING_KW = ("c_ev", "k_x", "v_range_mv", "tag_step", "hidden_bits", "flush_log2", "encoding",
               "levels", "unit_ratio", "y_unit", "rule", "tag_offset")


def _design_auto_hidden_bits(params, rates, eta, mp, engine, neuron, max_tag_err, choices):
    """``hidden_bits: auto``: the most hidden bits (6 .. 1, carried every epoch) whose tag_2
    holds the largest step of either sign (``Design.info['tag_budget']``), else none.  With
    the graded coding and an 'auto' level, the level goes with them: for each h the largest
    negative level, from one tag_2 unit down to the smallest the engine represents
    (``y_unit`` accumulator units of tag_2), whose steps fit."""
    if mp.flush_log2 is not None:
        raise ValueError("mapping.hidden_bits 'auto' needs the carry (flush_log2: null)")
    graded_auto = mp.encoding in ("graded", "auto") and mp.c_ev == "auto"
    y_unit = mp.y_unit
    if y_unit == "auto":
        y_unit = 2 ** int(math.floor(math.log2((2 ** engine.trace_bits - 1)
                                               / max(int(mp.levels), 1))))
    for h in range(6, -1, -1):
        if graded_auto and h:
            units = []
            c = 2.0 ** (engine.acc_shift - h)                    # one tag_2 unit
            while c >= int(y_unit) * 2.0 ** -h - 1e-12:
                units.append(c)
                c /= 2
        else:
            units = [mp.c_ev]
        for c_ev in units:
            ch = dict(choices or {})
            d = design(params, rates, eta, mapping=dataclasses.replace(mp, hidden_bits=h,
                                                                      c_ev=c_ev),
                       engine=engine, neuron=neuron, max_tag_err=max_tag_err, choices=ch)
            tb = d.info["tag_budget"]
            if h and not tb["fits"]:
                continue
            why = (f"the most that hold one step of either sign in tag_2: residual {2 ** h} + "
                   f"{tb['down_units']:.0f} units below + {tb['up_units']:.0f} above <= "
                   f"{2 ** (engine.synaptic_bits - 1) - 1} (units of 2**-{h} LSB; the top "
                   f"levels reached, {tb['levels_pos']} / {tb['levels_neg']}, with USPs at "
                   f"mean + {USP_N_SD:g} sd)") if h else (
                "no hidden bits: even one would not hold the largest step in tag_2")
            d.choices["hidden_bits"] = (h, why)
            if graded_auto and h:
                d.choices["c_ev"] = (d.c_ev, (
                    f"the largest negative level, from one tag_2 unit (2**{engine.acc_shift - h}"
                    f" accumulator units) down, whose steps fit tag_2 with {h} hidden bits: "
                    f"E_n = {d.e_q / eta:.3g} eta, the top step {d.levels * d.unit_ratio * d.e_q / eta:.3g}"
                    " eta; what one step cannot send waits in the carry"))
            return d
    raise AssertionError("unreachable")



def design(params: NeuronParams, rates, eta: float, w_frac: int | None = None, *,
           mapping: MappingSpec | None = None, engine: EngineSpec | None = None,
           neuron: NeuronSpec | None = None, max_tag_err: float = 0.005,
           choices: dict | None = None, **mapping_kw) -> Design:
    """Derive the rule strings, the tags and the neuron's integers.

    Parameters
    ----------
    params : NeuronParams (dt must divide tau_m and tau_s into whole steps)
    rates : (N,) input rates [Hz]
    eta : learning rate (code units) of the mapped rule (``mapping.rule``)
    w_frac : weight LSB 2**-w_frac; overrides ``mapping.w_frac`` (which must then not be
        'auto': only :func:`design_for_task` knows the weights)
    mapping : :class:`MappingSpec` (default :data:`DEFAULT_MAPPING`); its fields can also be
        given as keywords (``c_ev=``, ``k_x=``, ``encoding=`` ...), which override it.
        'auto' fields: ``encoding`` graded where the engine represents it; ``c_ev`` the
        smallest unit whose largest step carries ``neuron.g_cap`` times eta
        (:func:`auto_c_ev`, :func:`auto_level_unit`); ``k_x`` the largest impulse within the
        traces' headroom (:func:`trace_headroom_kx`) whose tags land within
        ``max_tag_err`` on multiples of the exact tag quantum; ``tag_step`` that quantum
        (16 events, 32 graded: the homosynaptic products are then exact integers) when the
        tags stay within ``max_tag_err`` of T / r_i, else 1.  ``hidden_bits`` h: the update
        is learnt into tag_2 (``dd``, units 2**-h LSB, offset 128) and carried (or flushed)
        into w.
    engine : :class:`EngineSpec` (default Lava's)
    neuron : :class:`NeuronSpec` (default natgrad's formats)
    choices : filled in by :func:`design_for_task` (why each auto value was chosen)
    """
    rates = np.asarray(rates, dtype=np.float64)
    unknown = set(mapping_kw) - set(_MAPPING_KW)
    if unknown:
        raise TypeError(f"design() got unexpected keyword(s) {sorted(unknown)}")
    mp = dataclasses.replace(mapping or DEFAULT_MAPPING, **mapping_kw)
    if w_frac is not None:
        mp = dataclasses.replace(mp, w_frac=int(w_frac))
    if mp.w_frac == "auto":
        raise ValueError("design() needs w_frac (design_for_task picks it from the weights)")
    e = engine or DEFAULT_ENGINE
    nf = neuron or DEFAULT_NEURON
    choices = dict(choices or {})
    w_frac = int(mp.w_frac)
    if e.t_epoch < 1:
        raise ValueError(f"engine.t_epoch must be >= 1 (got {e.t_epoch})")
    if e.weight_rounding not in ("shared", "per_synapse"):
        raise ValueError(f"engine.weight_rounding {e.weight_rounding!r}")
    if e.trace_rounding not in ("shared", "per_synapse"):
        raise ValueError(f"engine.trace_rounding {e.trace_rounding!r}")
    if mp.rule not in RULES:
        raise ValueError(f"mapping.rule must be one of {', '.join(RULES)} (got {mp.rule!r})")
    if mp.hidden_bits == "auto":
        return _design_auto_hidden_bits(params, rates, eta, mp, e, nf, max_tag_err, choices)
    euclid = mp.rule == "euclid"
    h = int(mp.hidden_bits)
    if not 0 <= h <= e.acc_shift:
        raise ValueError(f"hidden_bits must lie in [0, {e.acc_shift}] (got {h}): the flush "
                         "2^-h (d - 128) must be exact in the accumulator")
    half = 2 ** (e.trace_bits - 1)
    y_event = y_offset = half
    acc_shift = e.acc_shift
    gain = 2.0 ** h                      # the update is learnt in units of 2**-h LSB

    def mk(mant, exp, dep, factors):
        return Product(mant, exp, dep, factors, e)

    # ------------------------------------------------------------------ encoding
    encoding = mp.encoding
    graded_ok = mp.flush_log2 is None or h == 0
    if encoding == "auto":
        encoding = "graded" if graded_ok else "events"
        choices.setdefault("encoding", (encoding, (
            "graded levels: several update sizes per step, the sign on the bap, exact "
            "homosynaptic floors") if graded_ok else (
            "events: the periodic flush (flush_log2) takes the u dependency the graded "
            "coding needs for its negative levels")))
    if encoding not in ENCODINGS:
        raise ValueError(f"mapping.encoding must be one of {', '.join(ENCODINGS)} or 'auto' "
                         f"(got {encoding!r})")
    if encoding == "graded":
        if not graded_ok:
            raise ValueError("mapping.encoding 'graded' needs the carry (flush_log2: null): "
                             "the flush's u<k> would take the negative levels' u0")
        levels, ratio = int(mp.levels), int(mp.unit_ratio)
        if ratio not in (1, 3, 7):
            raise ValueError(f"mapping.unit_ratio must be 1, 3 or 7 (got {ratio}): the bap's "
                             "products carry unit_ratio + 1 times the u0 ones, a power of two")
        y_unit = mp.y_unit
        if y_unit == "auto":
            y_unit = 2 ** int(math.floor(math.log2((2 ** e.trace_bits - 1) / max(levels, 1))))
        y_unit = int(y_unit)
        if levels < 1 or y_unit < 1 or y_unit * levels > 2 ** e.trace_bits - 1:
            raise ValueError(f"mapping.y_unit * levels must lie in [1, {2 ** e.trace_bits - 1}] "
                             f"(y1 is a {e.trace_bits}-bit trace; got {y_unit} * {levels})")
        if y_unit & (y_unit - 1):
            raise ValueError(f"mapping.y_unit must be a power of two (got {y_unit})")
    else:
        levels, ratio, y_unit = 1, 1, y_event
    n_units = levels * ratio              # the largest step, in negative units

    p = params
    lsb = 2.0 ** -w_frac
    c, cu, cw, scale = p.c_eps, p.c_u, p.c_w, p.usp_scale
    if not euclid and (cw <= 0 or cu <= 0):
        raise ValueError("c_u and c_w must be > 0 for this mapping")
    x1_tau, x2_tau = p.tau_m / p.dt, p.tau_s / p.dt
    if abs(x1_tau - round(x1_tau)) > 1e-9 or abs(x2_tau - round(x2_tau)) > 1e-9:
        raise ValueError("tau_m / dt and tau_s / dt must be whole numbers of steps")
    x1_tau, x2_tau = int(round(x1_tau)), int(round(x2_tau))
    acc_per_w = 128.0 * 2.0 ** w_frac * 2.0 ** (acc_shift - 7)   # accumulator units per weight

    # The products of one negative unit (the u0 side) and of the bap (the y0 side), as the
    # factors of each term; 'y' marks where the level / event value y1 (or y2) enters.
    if encoding == "graded":
        neg_y, pos_y, pos_mult = ("y1", 0), ("y1", 0), float(ratio + 1)
        neg_div, pos_div = float(y_unit), float(y_unit)
    else:
        neg_y, pos_y, pos_mult = ("y1", 0), None, 1.0
        neg_div, pos_div = float(y_event), 1.0
    if h and mp.flush_log2 is not None:           # flush: every event rides on y0
        pos_y, pos_div = ("y2", 0), float(y_event)
    pos_dep, neg_dep = "y0", ("y0" if (h and mp.flush_log2 is not None) else "u0")

    def fac(base, y):
        return tuple(base) + ((y,) if y is not None else ())

    def shift_of(dep, factors):
        return mk(1, 0, dep, factors).shift

    # ------------------------------------------------------------------ the unit (c_ev)
    k_x_cap = trace_headroom_kx(p, rates, e.trace_bits)
    c_ev = mp.c_ev
    if euclid:
        # c_ev = accumulator units of one unit's update per trace count (x1 - x2 = 1)
        k_for_unit = k_x_cap if mp.k_x == "auto" else int(mp.k_x)
        mins = [2.0 ** (acc_shift - 7 - shift_of(neg_dep, fac((("x1", 0),), neg_y))) * neg_div / gain,
                2.0 ** (acc_shift - 7 - shift_of(pos_dep, fac((("x1", 0),), pos_y))) * pos_div
                / (gain * pos_mult)]
        if c_ev == "auto":
            need = eta * scale * acc_per_w / (k_for_unit * n_units)   # n_units E >= eta
            c_ev = 2.0 ** math.ceil(math.log2(max(need, max(mins))) - 1e-12)
            choices.setdefault("c_ev", (c_ev, (
                f"smallest 2**j accumulator units per trace count whose largest step "
                f"({n_units} units) carries eta (1 - sigma) |e| up to 1 (its largest value)")))
    elif c_ev == "auto":
        if encoding == "graded" and h:
            # one negative level's constant is one tag_2 unit: exact (no shared rounding of
            # the common-mode term), and the finest level the hidden bits afford; what one
            # step cannot carry waits in the neuron's carry (measured: carries are cheap,
            # a coarser level or fewer hidden bits are not)
            c_ev = max(2.0 ** (acc_shift - h), y_unit / gain)
            top = levels * ratio * c_ev / (acc_per_w * c * cu) / eta
            choices.setdefault("c_ev", (c_ev, (
                f"one negative level's constant = one tag_2 unit (2**{acc_shift - h} "
                f"accumulator units, E_n = {top / (levels * ratio):.3g} eta): exact, and the "
                f"top step carries {top:.3g} eta; the rest waits in the carry")))
        elif encoding == "graded":
            c_ev = auto_level_unit(p, eta, w_frac, nf.g_cap, h, levels, ratio, y_unit)
            choices.setdefault("c_ev", (c_ev, (
                f"smallest 2**j (>= y_unit = {y_unit}) with {levels} levels of {ratio} E_n >= "
                f"eta * g_cap (g_cap = {nf.g_cap}): the level saturates, and carries, only "
                f"where gamma_s (1 - sigma) |e| > {nf.g_cap}")))
        else:
            c_ev = auto_c_ev(p, eta, w_frac, nf.g_cap, h)
            choices.setdefault("c_ev", (c_ev, f"smallest 64 * 2**j (j >= -hidden_bits = "
                                              f"{-h}) with E_q >= eta * g_cap "
                                              f"(g_cap = {nf.g_cap}): events saturate, and "
                                              f"carry, only where gamma_s (1 - sigma) |e| > "
                                              f"{nf.g_cap}"))
    c_ev = float(c_ev)
    if euclid:
        k_x = k_for_unit
        if mp.k_x == "auto":
            choices.setdefault("k_x", (k_x, f"the largest impulse whose slow trace stays below "
                                            f"{2 ** e.trace_bits} up to mean + 8 sd of the "
                                            f"fastest afferent ({float(np.max(rates)):g} Hz)"))
        e_unit = c_ev * k_x / (scale * acc_per_w)          # E: update per unit per x_i
    else:
        e_unit = c_ev / (acc_per_w * c * cu)               # E_q / E_n

    # ------------------------------------------------------------------ homosynaptic: tags
    tmax = 2 ** (e.synaptic_bits - 1) - 1       # 255
    r_pos = rates[rates > 0]
    homo_neg = fac((("t", 0), ("x1", 0)), neg_y)
    homo_pos = fac((("t", 0), ("x1", 0)), pos_y)
    if euclid:
        homo_neg, homo_pos = fac((("x1", 0),), neg_y), fac((("x1", 0),), pos_y)
    # per homosynaptic product: (shift, multiplier of hc in the product's coefficient)
    homo_forms = [(shift_of(neg_dep, homo_neg), gain / neg_div),
                  (shift_of(pos_dep, homo_pos), gain * pos_mult / pos_div)]
    # with mantissa 4 the product (4 t x y) >> s is exact iff t y is a multiple of 2**s / 4
    q_exact = max(int(2 ** max(s - 2, 0) // math.gcd(int(2 ** max(s - 2, 0)), int(div)))
                  for (s, _), div in zip(homo_forms, (neg_div if neg_y else 1.0,
                                                      pos_div if pos_y else 1.0)))
    hc_min = max(2.0 ** (acc_shift - 7 - s) / mult for s, mult in homo_forms)

    def tags_for(k, hc, step):
        t_num = c_ev * scale / (k * cu)          # = t_i * hc * r_i (per unit)
        raw = np.where(rates > 0, t_num / hc / np.where(rates > 0, rates, 1.0), 0.0)
        return t_num, raw, (step * np.round(raw / step)).astype(np.int64)

    def hc_pow2(k):
        """The smallest power-of-two hc (>= hc_min) whose largest tag is <= 255."""
        t_num = c_ev * scale / (k * cu)
        need = t_num / (tmax * r_pos.min()) if r_pos.size else hc_min
        return 2.0 ** math.ceil(math.log2(max(need, hc_min)) - 1e-12)

    def rel_err(raw, tags):
        return float(np.max(np.abs(tags / np.where(raw > 0, raw, 1.0) - 1.0) * (raw > 0),
                            initial=0.0))

    if euclid:
        tags = np.zeros(rates.shape, np.int64)
        hc, big_t, raw, tag_step = c_ev, 0.0, np.zeros(rates.shape), 1
    else:
        tag_step = mp.tag_step
        k_cands = (range(k_x_cap, K_X_MIN - 1, -1) if mp.k_x == "auto" else [int(mp.k_x)])
        found = None
        if tag_step in ("auto", q_exact):
            for k in k_cands:
                # exact products need the mantissa 4 at an exponent >= -7: hc >= 4 hc_min
                hc = max(hc_pow2(k), 4 * hc_min)
                _, raw, tags = tags_for(k, hc, q_exact)
                ok = (bool(np.all((tags > 0) | (raw == 0))) and tags.max(initial=0) <= tmax
                      and rel_err(raw, tags) <= max_tag_err)
                if ok:
                    found = (k, hc, q_exact)
                    break
        if found is not None:
            k_x, hc, tag_step = found
            _, raw, tags = tags_for(k_x, hc, tag_step)
            if mp.tag_step == "auto":
                choices.setdefault("tag_step", (tag_step, (
                    f"multiples of {tag_step} stay within {rel_err(raw, tags):.4f} <= "
                    f"{max_tag_err} of T / r_i: homosynaptic products exact")))
            if mp.k_x == "auto":
                choices.setdefault("k_x", (k_x, (
                    f"the largest impulse <= {k_x_cap} (the slow trace's headroom up to mean + "
                    f"8 sd at {float(np.max(rates)):g} Hz) whose tags are multiples of "
                    f"{tag_step} within {max_tag_err}")))
        else:
            k_x = k_x_cap if mp.k_x == "auto" else int(mp.k_x)
            if mp.tag_step == "auto":
                tag_step = 1
                hc0 = hc_pow2(k_x)
                _, raw0, tags0 = tags_for(k_x, hc0, q_exact)
                choices.setdefault("tag_step", (1, (
                    f"no impulse in [{K_X_MIN}, {k_x_cap}] puts every tag within {max_tag_err} "
                    f"of a multiple of {q_exact} (K_x = {k_x}: off by "
                    f"{rel_err(raw0, tags0):.4f}): unquantized tags, the homosynaptic floors "
                    "lose up to one quantum")))
            if mp.k_x == "auto":
                choices.setdefault("k_x", (k_x, "the traces' headroom (no exact tag grid)"))
            tag_step = int(tag_step)
            t_num = c_ev * scale / (k_x * cu)
            need = t_num / (tmax * r_pos.min()) if r_pos.size else hc_min
            hc = hc_min * _representable_at_least(max(need, hc_min) / hc_min)
            _, raw, tags = tags_for(k_x, hc, tag_step)
        big_t = c_ev * scale / (k_x * cu) / hc            # T: t_i = T / r_i
        if tags.max(initial=0) > tmax:
            raise ValueError(f"tags exceed {tmax}: the afferents' rate ratio "
                             f"{float(r_pos.max() / r_pos.min()):.3g} is beyond what "
                             f"{e.synaptic_bits}-bit tags hold")
        lost = (rates > 0) & (tags == 0)
        if lost.any():
            # c_eps / r_i of the fastest afferents rounds to 0: their homosynaptic term
            # would vanish without a trace (a silent clip); the slowest already need tmax
            raise ValueError(
                f"the afferents' rate ratio {float(r_pos.max() / r_pos.min()):.3g}:1 "
                f"({r_pos.max():g} Hz / {r_pos.min():g} Hz) is beyond what the "
                f"{e.synaptic_bits}-bit static tags (tag_1 = c_eps / r_i, at most {tmax}) hold: "
                f"the tag of the {float(rates[lost].min()):g} Hz afferents rounds to 0 "
                f"(limit about {2 * tmax / max(int(tag_step), 1):.0f}:1 with tag quantum "
                f"{int(tag_step)})")

    # ------------------------------------------------------------------ heterosynaptic
    het_neg = fac((), neg_y) + (("y3", -y_offset), ("w", 0))
    het_pos = fac((), pos_y) + (("y3", -y_offset), ("w", 0))
    if encoding == "graded":            # y3 carries L V: no level factor in these products
        het_neg = het_pos = (("y3", -y_offset), ("w", 0))
    het_forms = [(shift_of(neg_dep, het_neg),
                  gain / (neg_div if encoding == "events" or neg_dep == "y0" else 1.0)),
                 (shift_of(pos_dep, het_pos),
                  gain * pos_mult / (pos_div if pos_y is not None and encoding == "events"
                                     else 1.0))]
    v_range_req = float(mp.v_range_mv)
    if euclid:
        coef_het, v_lsb, het_unit = 0.0, 1.0, 0.0
        v_real = v_range_req
    else:
        het_unit = c_ev * lsb * cw / (c * cu) * acc_per_w / (128.0 * 2.0 ** w_frac)  # acc/(mV W)
        het_min = max(2.0 ** (acc_shift - 7 - s) / mult for s, mult in het_forms)
        target = het_unit * levels * v_range_req / y_offset
        coef_het = het_min * _representable_at_least(max(target, het_min) / het_min)
        v_lsb = coef_het / het_unit
        v_real = y_offset * v_lsb / levels
        if target < het_min:
            # a real limit, not the m * 2**j grid's rounding: say so next to the choice
            choices["v_range_mv"] = (v_real, (
                f"asked for +-{v_range_req:g} mV; the finest heterosynaptic scale the engine "
                f"allows at this unit (m = 1, 2**-7) gives v_lsb {v_lsb:.3g} mV: Vq's "
                f"{y_offset} steps per sign cover +-{v_real:.3g} mV"
                + (f" at the top level {levels}" if levels > 1 else "")))
        elif "v_range_mv" in choices:
            vr, why = choices["v_range_mv"]
            choices["v_range_mv"] = (v_real, why + f" (realized +-{v_real:.4g} mV, v_lsb "
                                                   f"{v_lsb:.3g} mV)")

    # ------------------------------------------------------------------ the products
    def prod(coef, dep, factors, sign, what):
        pr = mk(1, 0, dep, factors)
        m, ex = _scale(coef, pr.shift, what, acc_shift)
        return mk(sign * m, ex, dep, factors)

    def terms(g):
        """The products of the update, coefficients times ``g`` (2**h in the tag)."""
        if euclid:
            hmul = 1.0 if encoding == "graded" else pos_mult
            pos = (prod(hc * g * hmul / pos_div, pos_dep, homo_pos, +1, "homo+ x1"),
                   prod(hc * g * hmul / pos_div, pos_dep,
                        fac((("x2", 0),), pos_y), -1, "homo+ x2"))
            neg = (prod(hc * g / neg_div, neg_dep, homo_neg, -1, "homo- x1"),
                   prod(hc * g / neg_div, neg_dep, fac((("x2", 0),), neg_y), +1, "homo- x2"))
            if encoding == "graded":
                return _graded_order(pos, neg, ratio, euclid)
            return pos + neg
        hdiv_pos = pos_mult / (pos_div if encoding == "events" or pos_y is None else 1.0)
        hmul = 1.0 if encoding == "graded" else pos_mult   # graded: ratio + 1 unit copies
        pos = (
            prod(hc * g * hmul / pos_div, pos_dep, homo_pos, +1, "homo+ x1"),
            prod(hc * g * hmul / pos_div, pos_dep, fac((("t", 0), ("x2", 0)), pos_y), -1,
                 "homo+ x2"),
            prod(c_ev * g * pos_mult / pos_div, pos_dep, fac((), pos_y), -1, "const+"),
            prod(coef_het * g * (pos_mult if encoding == "graded" else hdiv_pos), pos_dep,
                 het_pos, +1, "hetero+"),
        )
        neg = (
            prod(hc * g / neg_div, neg_dep, homo_neg, -1, "homo- x1"),
            prod(hc * g / neg_div, neg_dep, fac((("t", 0), ("x2", 0)), neg_y), +1, "homo- x2"),
            prod(c_ev * g / neg_div, neg_dep, fac((), neg_y), +1, "const-"),
            prod(coef_het * g / (1.0 if encoding == "graded" else neg_div), neg_dep, het_neg,
                 -1, "hetero-"),
        )
        if encoding == "graded":
            return _graded_order(pos, neg, ratio, euclid)
        return pos + neg

    # the largest step of each sign, in tag_2 units (2**-h LSB): what tag_2 must hold
    homo_lvl = (max((c_ev * k_x * usp_diff_bound(p, r) for r in rates), default=0.0) if euclid
                else max((hc * t * k_x * usp_diff_bound(p, r) for r, t in zip(rates, tags)),
                         default=0.0))
    const_lvl = 0.0 if euclid else c_ev
    # the levels each sign reaches: a positive post factor up to g_cap eta (beyond it the
    # excess is carried), a negative one up to g_cap eta phi_max dt (|e| <= phi_max dt sigma)
    g_top = 1.0 if euclid else nf.g_cap
    l_pos = min(levels, max(1, math.ceil(g_top * eta / (ratio * e_unit) - 1e-12)))
    l_neg = min(levels, max(1, math.ceil(g_top * eta * p.phi_max * p.dt / e_unit - 1e-12)))
    # y3 - 64 carries L V: at most 63 steps, and |V| at most the range asked for (|m| + 4 sd
    # of V at the task's weights, or the config's); |W| <= 128 (the weight grid's headroom)
    def het_step(lv):
        return coef_het * min(y_offset - 1, lv * v_range_req / v_lsb) * 2 ** (e.synaptic_bits - 2)
    to_d = 2.0 ** h / 2.0 ** acc_shift
    up_d = max(ratio * (l_pos * homo_lvl + het_step(l_pos)),
               l_neg * const_lvl + het_step(l_neg)) * to_d
    down_d = max(l_neg * homo_lvl + het_step(l_neg),
                 ratio * (l_pos * const_lvl + het_step(l_pos))) * to_d
    tag_top = 2 ** (e.synaptic_bits - 1) - 1                     # tag_2: 0..255
    fits = up_d + down_d + 2 ** h <= tag_top
    d_off = mp.tag_offset
    if d_off == "auto":
        if encoding == "events":
            d_off = D_OFFSET
        else:
            # room below for the largest negative step, above for the bap's; what is left
            # over is shared in proportion to the two needs
            spare = max(tag_top - 2 ** h - up_d - down_d, 0.0)
            below = down_d + spare * down_d / max(up_d + down_d, 1e-12)
            d_off = int(min(max(2 ** h + round(below), 2 ** h), tag_top - 2 ** h))
            if h:
                choices.setdefault("tag_offset", (d_off, (
                    f"tag_2 = {d_off} + residual in (-2**{h}, 0]: {d_off - 2 ** h} units of "
                    f"2**-{h} LSB below for the largest negative step (~{down_d:.0f}), "
                    f"{tag_top - d_off} above for the largest bap step (~{up_d:.0f}; levels "
                    f"{l_pos} / {l_neg}, USPs at mean + {USP_N_SD:g} sd)")))
    d_off = int(d_off)
    if h and not 2 ** h <= d_off <= 2 ** e.synaptic_bits - 1 - 2 ** h:
        raise ValueError(f"mapping.tag_offset must lie in [{2 ** h}, "
                         f"{2 ** e.synaptic_bits - 1 - 2 ** h}] with {h} hidden bits "
                         f"(got {d_off}): the residual needs 2**h units below it")
    y2_const = 0
    all_y0 = False
    if h == 0:
        products, dd_products = terms(1.0), ()
    elif mp.flush_log2 is None:
        # hidden bits, carry: d accumulates the update in units of 2**-h LSB; every epoch
        # a product u0 (d - c) y2^f, floor-shifted right by s = 7 f - 2 with the constant
        # y2 = 2**j (h = s - f j), divides by 2**h.  The applier multiplies by the (signed)
        # mantissa before the floor, so d's -1 * (d - 128) gives -ceil((d - 128) / 2**h);
        # w's +1 * (d - 128 + 2**h - 1) gives +ceil((d - 128) / 2**h): whole LSBs to w (no
        # rounding), exactly as many taken from d (d - 128 ends in (-2**h, 0])
        f = 1 if h <= 5 else 2
        j2 = mk(1, 0, "u0", (("d", 0),) + (("y2", 0),) * f).shift - h
        if j2 % f or j2 < 0 or j2 // f >= e.trace_bits:
            raise ValueError(f"hidden_bits {h} has no carry encoding (use 1..6 or flush_log2)")
        y2_const = 2 ** (j2 // f)
        y2s = (("y2", 0),) * f
        carry_w = (("d", -(d_off + 1 - 2 ** h)),) + y2s
        products = (mk(1, 0, "u0", carry_w),)                 # w += ceil((d - D) / 2**h)
        dd_products = terms(gain) + (
            mk(-1, h, "u0", (("d", -d_off),) + y2s),)         # d -= 2**h ceil(...)
    else:
        # hidden bits, periodic flush: the update goes to d in units of 2**-h LSB; every
        # event rides on y0 (sign on y2 / y1) so that the one u<k> of the rule set is the
        # flush's.  Lava reads one digit of k (learning_rule.py: int(uk_list[0][1])).
        if not 0 <= int(mp.flush_log2) <= 9:
            raise ValueError(f"flush_log2 must lie in [0, 9] (got {mp.flush_log2})")
        uk = f"u{int(mp.flush_log2)}"
        flush_w = mk(1, -h, uk, (("d", -d_off),))             # w += (d - D) 2**-h, exact
        flush_d = mk(-1, 0, uk, (("d", -d_off),))             # d -= d - D
        products = (flush_w,)
        dd_products = terms(gain) + (flush_d,)
        all_y0 = True
    for pr in products + dd_products:
        if product_bound(pr) >= 2 ** 31:
            raise ValueError(f"product {pr.render()} can overflow int32")

    # ------------------------------------------------------------------ neuron integers
    ni = neuron_integers(p, nf, scale * lsb, eta / e_unit, v_lsb, levels, ratio)

    if euclid:
        homo_rel = 0.0
    else:
        homo_ideal = np.where(rates > 0, c_ev * scale / (k_x * cu)
                              / np.where(rates > 0, rates, 1.0), 0.0)
        homo_rel = float(np.max(np.abs(tags * hc / np.where(homo_ideal > 0, homo_ideal, 1) - 1)
                                * (homo_ideal > 0)))
    info = {
        "E_q": e_unit, "event_prob_per_unit_post": 1.0 / e_unit, "T": big_t,
        "tags_exact": raw.tolist(),
        "homo_rel_err": homo_rel,
        "acc_per_t_x1": hc, "hetero_coef": coef_het, "v_lsb_mv": v_lsb,
        "v_range_mv": v_real,
        **neuron_integer_info(p, nf, ni, scale * lsb, eta / e_unit, v_lsb),
        "encoding": encoding, "rule": mp.rule,
        "tag_budget": {"up_units": up_d, "down_units": down_d, "residual_units": 2 ** h,
                       "fits": bool(fits) if h else None, "levels_pos": l_pos,
                       "levels_neg": l_neg},
    }
    if encoding == "graded":
        info.update({"E_n": e_unit, "E_p": e_unit * ratio, "levels": levels,
                     "top_step": e_unit * n_units, "y_unit": y_unit})
    c_ev_out = int(c_ev) if float(c_ev).is_integer() else float(c_ev)
    mp = dataclasses.replace(mp, w_frac=w_frac, c_ev=c_ev_out, tag_step=int(tag_step),
                             k_x=int(k_x), v_range_mv=float(v_real), encoding=encoding,
                             levels=levels, unit_ratio=ratio, y_unit=int(y_unit),
                             tag_offset=d_off)
    return Design(params=p, rates=rates, eta=float(eta), w_frac=w_frac, c_ev=c_ev_out,
                  k_x=int(k_x), x1_tau=x1_tau, x2_tau=x2_tau, tags=tags, tag_step=int(tag_step),
                  tag_scale=big_t, e_q=e_unit, v_lsb=v_lsb, products=products, weight_exp=0,
                  **ni, engine=e, neuron=nf, mapping=mp, dd_products=dd_products,
                  all_y0=all_y0, y_event=y_event, y_offset=y_offset, y2_const=y2_const,
                  info=info, choices=choices)

