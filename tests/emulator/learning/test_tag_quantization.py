"""The static tags of the learning-engine mapping for arbitrary rates, against the closed
form of ``docs/learning_engine.md``.

The doc ("The constants, derived", "Homosynaptic term"; "The constants" of the graded
coding): synapse i's homosynaptic products give ``hc t_i (x1 - x2)`` accumulator units per
unit of the post factor, so ``t_i = T / r_i`` with ``T = c_ev s / (K_x c_u hc)``; the tags
are the multiples of the exact tag quantum ``q`` nearest ``T / r_i`` (16 events, 32 graded:
a product ``(4 t x y) >> s`` is exact iff ``t y`` is a multiple of ``2**s / 4``), ``hc`` the
smallest power of two with mantissa 4 on the engine's exponent range that keeps every tag
<= 255, and ``K_x`` (``auto``) the largest impulse within the slow trace's headroom
(``127 / (mean + 8 sd)`` of the fastest afferent's count trace) whose tags land within
0.5 % of ``T / r_i``; when no impulse does, unquantized tags (step 1), ``K_x`` at the
headroom and the finest scale ``m 2**j`` (m = 1..7) that keeps the tags <= 255.

Everything here is computed from the doc's formulas and the rule strings (parsed by the
oracle's own parser), not from ``rule_design``: the products' shifts come from their factor
widths, the y values from the coding.  Rates: three groups at 7 / 23 / 61 Hz, one rate per
afferent (5 ... 47 Hz), 12 / 36 Hz, and 8 / 20 and 6 / 15 Hz (where the quantum is reached at
an impulse below the headroom), on the graded and the events codings.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from emulator import learning
from emulator.hwconfig import load
from emulator.task import fig3_task
from le_oracle import parse_rule

ETA = 5.5e-4
MAX_TAG_ERR = 0.005            #: the doc's 0.5 %
K_X_MIN = 8                    #: the smallest impulse the search tries (Design.choices says so)

RATES = {
    "7-23-61": (7.0, 23.0, 61.0),
    "per-afferent": (5.0, 7.0, 11.0, 13.0, 17.0, 23.0, 31.0, 47.0),
    "12-36": (12.0, 36.0),
    "8-20": (8.0, 20.0),
    "6-15": (6.0, 15.0),
    "10-50": (10.0, 50.0),
}
CONFIGS = {
    "graded": ("loihi2", {}),                                       # hidden bits auto (6)
    "graded_h0": ("loihi2", {"mapping.hidden_bits": 0}),
    "graded_levels": ("loihi2", {"mapping.hidden_bits": 3, "mapping.levels": 5,
                                 "mapping.y_unit": 16, "mapping.unit_ratio": 1}),
    "events": ("loihi2_events", {}),                                # K_x fixed at 16
    "events_auto_kx": ("loihi2_events", {"mapping.k_x": "auto"}),
    "events_flush": ("loihi2_events", {"mapping.k_x": "auto", "mapping.hidden_bits": 4,
                                       "mapping.flush_log2": 2}),
}


def _design(config: str, rates):
    base, ov = CONFIGS[config]
    n = max(8, len(rates))
    task = fig3_task(n_trials=2, N=n, M=1, seed=1, group_rates=rates)
    return learning.design_for_config(load(base).with_overrides(**ov), task, ETA), task


def homosynaptic_forms(d):
    """[(mantissa, exponent, right shift, y values it sees, rule)] of every product with a
    tag and a trace factor, from the parsed rule strings: the shift is the doc's
    ``max(0, sum of widths + scale_mant_bits - accumulator_bits)``; the y factor's values
    are the coding's (graded: ``y_unit L`` for L = 1..levels; events: ``y_event``)."""
    e = d.engine
    out = []
    for rule_name, rule in (("dw", d.rule), ("dd", d.rule_dd)):
        for mant, exp, dep, facs in parse_rule(rule):
            names = [v for v, _ in facs]
            if "t" not in names or not ({"x1", "x2"} & set(names)):
                continue
            width = sum(e.trace_bits if v in ("x1", "x2", "y1", "y2", "y3") else e.synaptic_bits
                        for v in names)
            shift = max(0, width + e.scale_mant_bits - e.accumulator_bits)
            ys = [v for v in names if v in ("y1", "y2")]
            if not ys:
                yvals = [1]
            elif d.encoding == "graded":
                yvals = [d.y_unit * lv for lv in range(1, d.levels + 1)]
            else:
                yvals = [2 ** (e.trace_bits - 1)]
            out.append((mant, exp, shift, yvals, rule_name))
    return out


def headroom_kx(params, rates, trace_bits: int) -> int:
    """The doc's headroom: the largest impulse whose slow trace stays within
    2**trace_bits - 1 up to mean + 8 sd of the fastest afferent's count trace (Bernoulli
    bins: mean p / (1 - d_m), variance p (1 - p) / (1 - d_m**2), p = r dt)."""
    p = min(1.0, max(rates) * params.dt)
    dm = math.exp(-params.dt / params.tau_m)
    peak = p / (1 - dm) + 8.0 * math.sqrt(p * (1 - p) / (1 - dm * dm))
    top = 2 ** trace_bits - 1
    return max(1, min(top, math.floor(top / max(peak, 1.0))))


def closed_form(d, mapping: dict):
    """(K_x, tag step, hc, T, tags) of the doc for the design's coding, unit and rates.

    ``mapping`` is the config's (unresolved) mapping section: 'auto' or a fixed K_x and
    tag step."""
    p, e = d.params, d.engine
    rates = [float(r) for r in d.rates]
    r_min = min(r for r in rates if r > 0)
    h = d.hidden_bits
    forms = homosynaptic_forms(d)
    # the smallest coefficient a product represents (mantissa 1, exponent -7), in
    # accumulator units per t x of one post-factor unit (tag_2's products are 2**h larger)
    hc_min = max(2.0 ** (e.acc_shift - 7 - s) * ys[0] / 2 ** h for _, _, s, ys, _ in forms)
    # the exact quantum: (4 t x y) >> s exact iff t y is a multiple of 2**s / 4
    q = max((2 ** max(s - 2, 0)) // math.gcd(2 ** max(s - 2, 0), ys[0])
            for _, _, s, ys, _ in forms)
    usp_scale = 1.0 / (p.tau_m - p.tau_s)
    tmax = 2 ** (e.synaptic_bits - 1) - 1
    cap = headroom_kx(p, rates, e.trace_bits)

    def tags_of(k, hc, step):
        t_num = d.c_ev * usp_scale / (k * p.c_u)
        raw = [t_num / hc / r if r > 0 else 0.0 for r in rates]
        return raw, [step * round(x / step) for x in raw]

    def rel_err(raw, tags):
        return max(abs(t / x - 1) for x, t in zip(raw, tags) if x > 0)

    kx_cfg, step_cfg = mapping["k_x"], mapping["tag_step"]
    cands = range(cap, K_X_MIN - 1, -1) if kx_cfg == "auto" else [int(kx_cfg)]
    if step_cfg in ("auto", q):
        for k in cands:
            need = d.c_ev * usp_scale / (k * p.c_u) / (tmax * r_min)
            hc = max(2.0 ** math.ceil(math.log2(need) - 1e-12), 4 * hc_min)
            raw, tags = tags_of(k, hc, q)
            if (all(t > 0 for t, r in zip(tags, rates) if r > 0) and max(tags) <= tmax
                    and rel_err(raw, tags) <= MAX_TAG_ERR):
                return k, q, hc, d.c_ev * usp_scale / (k * p.c_u) / hc, tags
    k = cap if kx_cfg == "auto" else int(kx_cfg)
    step = 1 if step_cfg == "auto" else int(step_cfg)
    need = d.c_ev * usp_scale / (k * p.c_u) / (tmax * r_min)
    # the finest scale of the engine's grid m 2**j (m = 1..7) keeping the tags <= 255
    hc = min(m * 2.0 ** j * hc_min for m in range(1, 8) for j in range(0, 24)
             if m * 2.0 ** j * hc_min >= max(need, hc_min) * (1 - 1e-12))
    raw, tags = tags_of(k, hc, step)
    return k, step, hc, d.c_ev * usp_scale / (k * p.c_u) / hc, tags


@pytest.mark.parametrize("rates", list(RATES), ids=list(RATES))
@pytest.mark.parametrize("config", list(CONFIGS))
def test_tags_equal_the_closed_form(config, rates):
    d, _ = _design(config, RATES[rates])
    mapping = load(CONFIGS[config][0]).with_overrides(**CONFIGS[config][1])["mapping"]
    k, step, hc, big_t, tags = closed_form(d, mapping)
    assert (d.k_x, d.tag_step) == (k, step), (d.choices.get("k_x"), d.choices.get("tag_step"))
    assert d.info["acc_per_t_x1"] == pytest.approx(hc, rel=1e-12)
    assert d.tag_scale == pytest.approx(big_t, rel=1e-12)
    assert d.tags.tolist() == tags
    # every tag is the nearest multiple of the step to T / r_i
    raw = big_t / np.asarray(d.rates)
    assert np.all(np.abs(d.tags - raw) <= step / 2 + 1e-9)


def _remainders(d):
    """For every homosynaptic product, tag, trace value and y value: (|mant| t x y) mod
    2**shift, the part the engine's floor drops."""
    top = 2 ** d.engine.trace_bits
    out = []
    for mant, _, s, ys, _ in homosynaptic_forms(d):
        for t in sorted(set(d.tags.tolist())):
            for y in ys:
                out.extend((abs(mant) * t * x * y) % (1 << s) for x in range(top))
    return np.array(out)


@pytest.mark.parametrize("rates", list(RATES), ids=list(RATES))
@pytest.mark.parametrize("config", ["graded", "events_auto_kx", "events_flush"])
def test_quantized_tags_make_every_homosynaptic_product_exact(config, rates):
    """The doc's reason for the quantum: with tags on it, every homosynaptic product is an
    exact integer for every trace value and level (nothing lost to the floor); with the
    unquantized fallback (step 1) some product loses a remainder."""
    d, _ = _design(config, RATES[rates])
    rem = _remainders(d)
    if d.tag_step > 1:
        assert not rem.any()
    else:
        assert rem.any()


def test_the_rate_sets_reach_both_branches():
    """Not vacuous: the rate sets give quantized tags at an impulse the search found below
    the headroom, the unquantized fallback at the headroom, and fallback tags that round up
    (so a floor in place of the rounding would show) as well as down."""
    seen = set()
    for config in CONFIGS:
        for rates in RATES.values():
            d, _ = _design(config, rates)
            cap = headroom_kx(d.params, list(d.rates), d.engine.trace_bits)
            raw = d.tag_scale / np.asarray(d.rates)
            seen.add(("quantized" if d.tag_step > 1 else "fallback",
                      "below cap" if d.k_x < cap else "at cap"))
            if d.tag_step == 1:
                seen.add(("rounded up", bool(np.any(d.tags > raw))))
    assert {("quantized", "below cap"), ("fallback", "at cap"), ("rounded up", True),
            ("rounded up", False)} <= seen, seen
