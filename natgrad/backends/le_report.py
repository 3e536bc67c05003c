"""The learning engine's report: its variables, third-factor coding and bottleneck evidence.

Every variable of the learning engine's model (traces, the neuron's V, Vq, sigma, e, gamma_s,
the post factor and its coded form, the carry, the weights with their hidden bits) gets the
datapath's row: format, errors in LSB against the float run at the same step (trajectory)
and against float arithmetic on the chip's own state (local), range use from every step and
its counters, or the reason one of them does not apply.
"""
from __future__ import annotations

import numpy as np

from natgrad.backends.base import extremes, range_row

__all__ = ["LE_REPORT_VARS", "evidence", "le_formats", "third_factor", "variable_table"]


#: The learning-engine variables of the report: name -> (the float run's record it is
#: compared with, scaled by ``k_x`` for the traces; None: no float counterpart), the
#: counter of :attr:`emulator.RunResult.counters` whose saturations it shows, and what its
#: local reference is (:func:`natgrad.analysis.le_local_references`) or why it has none.
LE_REPORT_VARS = {
    "x1": ("trace_m", "trace", "the float trace a_m (tau_m) on the same spikes, times k_x"),
    "x2": ("trace_s", "trace", "the float trace a_s (tau_s) on the same spikes, times k_x"),
    "potential": ("potential", "potential",
                  "the chip's visible weights of the step before (those Dense used) times the "
                  "float USP on the same spikes"),
    "vq": (None, "vq", "L V of the chip's own V (L: the step's level, 1 for events), at the "
           "recorded steps that sent a level"),
    "sigma": ("sigma", None, "the exact sigmoid of the chip's V"),
    "error": ("error", None, "the teacher count minus phi_max dt times the chip's sigma"),
    "gamma_s": ("gamma_s", "gamma_s", "the exact 1 / E[sigma (1 - sigma)^2] for the chip's "
                "weights (the chip estimates it from a running mean)"),
    "post": ("post", None, "eta gamma_s (1 - sigma) e of the chip's own gamma_s, sigma and e"),
    "coded": ("post", None, "the amount the coding was given (this step's post factor plus "
              "the carried excess): the error is the coding's (stochastic level rounding, and "
              "minus the carry at the top level)"),
    "carry": (None, "carry", None),
    "weights": ("weights", "weights",
                "the weights with hidden bits one step before plus the float update P B from "
                "the chip's own post factor, V and weights: the error is what the third-factor "
                "coding and the engine's products and roundings add to one update"),
}
#: why a learning-engine variable has no trajectory counterpart in the float run
LE_NO_TRAJECTORY = {
    "vq": "the float rule uses V itself, not a coded L V: no trajectory counterpart (V's own "
          "trajectory is the potential's row)",
    "carry": "no float counterpart: the float rule applies every post factor at once",
}
#: why a learning-engine variable has no local reference
LE_NO_COUNTERPART = {
    "carry": "no float counterpart on the chip: the carry is the coding's own bookkeeping (the "
             "post factor beyond the top level, sent in later steps); its range and saturations "
             "are shown",
}


def le_formats(d) -> dict:
    """Format, LSB (physical) and representable range of each learning-engine report
    variable (:data:`LE_REPORT_VARS`), from the design's engine and neuron records."""
    nf, e = d.neuron, d.engine
    post = d.e_q * 2.0 ** -nf.prob_frac
    tmax = 2 ** e.trace_bits - 1
    wtop = 2 ** (e.synaptic_bits - 1)

    def signed(bits, frac, lsb, unit, what=""):
        top = 2 ** (bits - 1)
        return {"format": f"S{bits}.{frac}{what}", "lsb": lsb, "lo": -top * lsb,
                "hi": (top - 1) * lsb, "unit": unit}
    unit_hi = d.levels * d.unit_ratio * d.e_q
    return {
        "x1": {"format": f"U{e.trace_bits}.0", "lsb": 1.0, "lo": 0.0, "hi": float(tmax),
               "unit": f"trace units (k_x = {d.k_x} per spike)"},
        "x2": {"format": f"U{e.trace_bits}.0", "lsb": 1.0, "lo": 0.0, "hi": float(tmax),
               "unit": f"trace units (k_x = {d.k_x} per spike)"},
        "potential": signed(nf.v_bits, nf.v_frac, 2.0 ** -nf.v_frac, "mV"),
        "vq": {"format": f"y3 - {d.y_offset}: S{e.trace_bits}, LSB v_lsb", "lsb": d.v_lsb,
               "lo": -d.y_offset * d.v_lsb, "hi": (d.y_offset - 1) * d.v_lsb, "unit": "mV"},
        "sigma": {"format": f"U{nf.sigma_frac + 1}.{nf.sigma_frac}",
                  "lsb": 2.0 ** -nf.sigma_frac, "lo": 0.0, "hi": 1.0, "unit": "1"},
        "error": signed(nf.word_bits, nf.error_frac, 2.0 ** -nf.error_frac, "1 per step"),
        "gamma_s": {"format": f"U{nf.gamma_bits}.{nf.gamma_frac}", "lsb": 2.0 ** -nf.gamma_frac,
                    "lo": 0.0, "hi": (2 ** nf.gamma_bits - 1) * 2.0 ** -nf.gamma_frac,
                    "unit": "1"},
        "post": signed(nf.word_bits, nf.prob_frac, post, "1", " x E"),
        "coded": {"format": (f"{d.levels} levels of E_n = {d.e_q:.3g} (x{d.unit_ratio} if "
                             "positive)") if d.encoding == "graded"
                  else f"events of E_q = {d.e_q:.3g}", "lsb": d.e_q,
                  "lo": -(d.levels if d.encoding == "graded" else 1) * d.e_q,
                  "hi": unit_hi if d.encoding == "graded" else d.e_q, "unit": "1"},
        "carry": signed(nf.carry_bits, nf.prob_frac, post, "1", " x E"),
        "weights": {"format": f"S{e.synaptic_bits}.{d.w_frac} + {d.hidden_bits} hidden bits "
                              "(tag_2)", "lsb": d.lsb_w, "lo": -wtop * d.lsb_w,
                    "hi": (wtop - 1) * d.lsb_w, "unit": "1"},
    }


def variable_table(fl, fx, task, eta: float) -> tuple[dict, dict, dict]:
    """The learning-engine config's per-variable table: like the datapath's
    (format, errors in LSB, range use from every step, saturations) for the variables of
    :data:`LE_REPORT_VARS`, each with ``local`` (against float arithmetic on the chip's own
    state) and ``trajectory`` (against the float run at the same step) error splits, or
    ``no_local`` / ``no_trajectory`` saying why there is none.  Also returns the trajectory
    error arrays (LSB) and the float values per variable, for the figures."""
    from natgrad import analysis
    d = fx.state.design
    rec, frec = fx.record, fl.record
    chip = dict(rec)
    chip["weights"] = analysis.le_effective_weights(rec)
    local = analysis.le_local_references(rec, frec, task, d, eta)
    fmts = le_formats(d)
    rows, errs, values = {}, {}, {}
    for name, (fname, counter, local_text) in LE_REPORT_VARS.items():
        f = fmts[name]
        lsb = f["lsb"]
        b = chip[name]
        a = None if fname is None else frec[fname] * (d.k_x if name in ("x1", "x2") else 1.0)
        if name == "weights":   # with hidden bits: bounds from the visible and residual extremes
            vis, res_ = extremes(fx, "weights"), extremes(fx, "tag_2")
            ext_fx = (vis[0] + min(res_[0], 0.0), vis[1] + max(res_[1], 0.0)) \
                if vis and res_ else vis
        else:
            ext_fx = extremes(fx, name)
        ext_fl = None
        if fname is not None:
            e = extremes(fl, fname)
            if e is not None:
                scale = d.k_x if name in ("x1", "x2") else 1.0
                ext_fl = (e[0] * scale, e[1] * scale)
        counters = fx.counters.get(counter, {}) if counter else {}
        row = {"format": f["format"], "lsb": lsb, "unit": f["unit"],
               "float_counterpart": fname if fname is None else (
                   f"float run's {fname}" + (" x k_x" if name in ("x1", "x2") else ""))}
        if a is not None:
            err = (b - a) / lsb
            row.update(rmse_lsb=float(np.sqrt(np.mean(err ** 2))),
                       mean_err_lsb=float(np.mean(err)),
                       max_abs_err_lsb=float(np.max(np.abs(err))))
            row["trajectory"] = analysis.error_split(b, a, lsb)
            errs[name] = err
            values[name] = a
        else:
            row["no_trajectory"] = LE_NO_TRAJECTORY[name]
            values[name] = b
        ref = local.get(name)
        if ref is not None:
            ok = np.isfinite(ref)
            if ok.any():
                row["local"] = analysis.error_split(b[ok], ref[ok], lsb)
                row["local_reference"] = local_text
            else:
                row["no_local"] = "no recorded step sent a level (Vq unused there)"
        else:
            row["no_local"] = LE_NO_COUNTERPART.get(
                name, f"no float counterpart on the chip's state for its {d.mapped_rule} rule")
        row.update(range_row(f, a, b, ext_fl, ext_fx, counters))
        if counter == "trace":
            row["saturation_note"] = "LearningDense's trace clips, x1 and x2 together"
        rows[name] = row
    return rows, errs, values


def third_factor(fx, steps: int, trials: int) -> dict:
    """How the post factor reached the synapses: levels or events, what was sent, carried
    and clipped, Vq."""
    n_neuron_steps = max(trials * steps * fx.w_final.shape[-2], 1)
    c = fx.counters
    sat = lambda var: int(c.get(var, {}).get("saturation", 0))  # noqa: E731
    d = fx.state.design
    st = fx.state
    pos, neg = (int(st.events[..., j].sum()) for j in range(2))
    carries = sat("post")               # LE_COUNTERS: post_carry -> ('post', 'saturation')
    out = {"coding": d.encoding, "rule": d.mapped_rule, "t_epoch": d.t_epoch,
           "levels": d.levels if d.encoding == "graded" else 1,
           "unit_ratio": d.unit_ratio, "y_unit": d.y_unit,
           "E_n": d.e_q, "E_p": d.e_q * d.unit_ratio,
           "sent_positive": pos, "sent_negative": neg,
           "sent_unit": "levels" if d.encoding == "graded" else "events",
           "neuron_steps": n_neuron_steps,
           "sent_per_neuron_step": (pos + neg) / n_neuron_steps,
           "carries": carries, "carry_share": carries / n_neuron_steps,
           "carry_saturations": sat("carry"), "vq_saturations": sat("vq"),
           "gamma_saturations": sat("gamma_s"), "word_saturations": sat("neuron_word"),
           "input_saturations": sat("neuron_input"),
           "tag_2_saturations": sat("tag_2"), "accumulator_saturations": sat("accumulator"),
           "weight_saturations": sat("weights"), "trace_saturations": sat("trace")}
    rec = fx.record
    if "coded" in rec and rec["coded"].size:
        unit = np.where(rec["coded"] > 0, d.unit_ratio * d.e_q, d.e_q)
        lev = (np.sign(rec["coded"]) * np.rint(np.abs(rec["coded"]) / unit)).astype(int).ravel()
        vals, counts = np.unique(lev, return_counts=True)
        out["level_counts_at_recorded_steps"] = {str(int(v)): int(n)
                                                 for v, n in zip(vals, counts)}
        out["carry_rms_in_E_n"] = float(np.sqrt(np.mean((rec["carry"] / d.e_q) ** 2)))
        ex = fx.extremes.get("carry")
        if ex is not None and np.any(np.isfinite(ex[0])):
            out["carry_max_abs_in_E_n"] = float(max(abs(np.nanmin(ex[0])),
                                                    abs(np.nanmax(ex[1]))) / d.e_q)
    return out


def evidence(fx, steps: int, trials: int, learned: float) -> dict:
    """Candidate bottlenecks of the learning engine ``{name: (score, evidence, advice)}``."""
    ev = {}
    n_syn = trials * fx.w_final.shape[-1] * fx.w_final.shape[-2] * max(steps, 1)
    d = fx.state.design
    c = fx.counters
    sc = getattr(fx.state, "synapse_counters", {}) or {}
    n_neuron = max(trials * steps, 1)
    n_syn_epochs = max(n_syn // max(d.t_epoch, 1), 1)
    n_neuron = max(n_neuron * fx.w_final.shape[-2], 1)          # neurons x steps
    words = c.get("neuron_word", {}).get("saturation", 0)
    inputs = c.get("neuron_input", {}).get("saturation", 0)
    if words or inputs:
        nf = d.neuron
        ev["neuron word"] = (
            min(1.0, 20.0 * (words + inputs) / n_neuron),
            f"the learning neuron's {nf.word_bits}-bit words saturated {words} times and "
            f"its 16-bit input {inputs} times in {n_neuron} neuron steps (the task's "
            f"dendritic current exceeds what filter_frac {nf.filter_frac} leaves room for: "
            f"|A| <= 2**{nf.word_bits - 1 - nf.filter_frac} weight LSB x spikes)",
            "fewer fractional bits in the neuron's filters (neuron.filter_frac; each one "
            "doubles their range), or a coarser weight LSB (mapping.w_frac)")
    carried = c.get("post", {}).get("carry", c.get("post", {}).get("saturation", 0))
    share = carried / n_neuron
    coding = (f"{d.levels} levels of E_n and {d.unit_ratio} E_n" if d.encoding == "graded"
              else "one event of E_q")
    ev["post"] = (min(1.0, share),
                  f"{carried} of {n_neuron} neuron steps ({100 * share:.2f} %) had more "
                  f"post factor than one step sends ({coding}); the excess was carried into "
                  "the next steps (delayed by a step or a few, not lost)",
                  "a larger level (mapping.c_ev) carries less but leaves fewer hidden "
                  "bits; on the Fig 3 task carries cost less than hidden bits "
                  "(docs/learning_engine.md)" if d.encoding == "graded" else
                  "raise neuron.g_cap (larger events) or lower eta")
    lost = int(sc.get("tag_saturation", 0)) + int(sc.get("acc_saturation", 0))
    ev["tag_2 range"] = (min(1.0, 2000.0 * lost / n_syn_epochs),
                         f"{sc.get('tag_saturation', 0)} tag_2 and "
                         f"{sc.get('acc_saturation', 0)} accumulator saturations in "
                         f"{n_syn_epochs:.3g} synapse epochs: updates beyond tag_2's room "
                         f"(offset {d.d_offset}, {d.hidden_bits} hidden bits) were clipped",
                         "fewer hidden bits (mapping.hidden_bits) or another "
                         "mapping.tag_offset")
    vq = c.get("vq", {}).get("saturation", 0)
    ev["vq"] = (min(1.0, 10.0 * vq / n_neuron),
                f"y3 = 64 + Vq clipped {vq} times (V beyond +-{d.mapping.v_range_mv:.3g} "
                "mV)", "raise mapping.v_range_mv")
    ev["weights"] = (0.5 * min(1.0, d.lsb_w * 2.0 ** -d.hidden_bits / max(learned, 1e-30)),
                     f"weight LSB 2^-{d.w_frac} = {d.lsb_w:.3g} against a learned change of "
                     f"{learned:.3g} RMS; updates are learnt {d.hidden_bits} bits below it "
                     "in tag_2 and carried, the rest rounded every epoch with one random "
                     "number shared by all synapses (Lava's engine)",
                     "more hidden bits (mapping.hidden_bits), if tag_2's room allows")
    return ev
