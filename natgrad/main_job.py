"""``natgrad run``: float reference against a chip config on identical spikes.

Runs a task file (default: the Fig 3 teacher-student task, docs/model.md#teacher and
#fig3f: N = 100 afferents at 10/50 Hz, w, w* ~ U(-1, 1)/N, at the scaled learning rates x4) with
* the float64 approximate rule (the reference),
* the same rule on the chosen config (Loihi 2's learning engine, an integer datapath),
* the float64 Euclidean rule, for context,
all on the same input and teacher spikes, plus a short Lava cross-check of the config.  Prints the learning curves; with ``out`` it also writes the quantization report
(``report.md``, ``report.html``, ``report.json`` and PNG figures).
"""
from __future__ import annotations

import math
import platform
import time
from pathlib import Path

import numpy as np

from emulator import metrics
from emulator import runner as R
from emulator.hwconfig import HwConfig
from emulator.reference import ETA_CODE, simulate
from emulator.task import fig3_task
from emulator.variables import RECORD_VARIABLE
from natgrad.formats import variable_format
from natgrad.progress import Progress
from natgrad.protocol import default_eta

N_AFFERENTS = 100
#: Trial-steps per emulator chunk.  The integer kernels hold the GIL while a chunk runs,
#: so a Ctrl-C is handled only between chunks: about a second of work at most.  (The
#: chunk size changes no bit of the results.)
CHUNK_TRIAL_STEPS = 100_000


def chunk_steps(trials: int) -> int:
    """Time steps per emulator chunk for ``trials`` trials (see CHUNK_TRIAL_STEPS)."""
    return max(50, min(4000, CHUNK_TRIAL_STEPS // max(1, int(trials))))
#: recorded quantities -> their datapath variable (emulator.variables)
REPORT_VARS = RECORD_VARIABLE


def _lava_crosscheck(cfg: HwConfig, task, seed: int, steps: int, eta: float | None = None) -> dict:
    """Run trial 0 under Lava (path 2 for a learning-engine config, the fixed_pt process of
    path 1 for a datapath config) and compare with the emulator bit for bit."""
    if steps == 0 or cfg.is_float:
        return {"lava_bit_exact": None, "steps": 0,
                "detail": "skipped (--lava-steps 0)" if steps == 0
                else "float config: no fixed-point process"}
    emu = R.run(cfg, task, steps, seed, eta=eta, trials=[0])
    if cfg.is_learning_engine:        # path 2: LearningDense + the learning neuron
        import lava_procs
        lava = lava_procs.run(cfg, task, steps, seed, trial=0, eta=eta)
        nv, ne = lava.state["neuron"], emu.state.neuron
        pairs = {"weights": (lava.w_int, emu.w_int),
                 "trace_x1": (lava.state["x1"], emu.state.x_traces[0, 0]),
                 "trace_x2": (lava.state["x2"], emu.state.x_traces[0, 1]),
                 "potential": (nv["v"], ne.v[0]), "gamma_s": (nv["gamma"], ne.gamma[0]),
                 # the neuron's counters (Lava clips LearningDense's words silently: the
                 # synapse counters exist in the emulator only)
                 "counters": (lava.counters, {k: emu.counters.get(k) for k in lava.counters})}
        if emu.state.d_tag is not None:
            pairs["tag_2"] = (lava.state["tag_2"], emu.state.d_tag[0])
        return _compare(pairs, steps)
    from lava_procs import run_lava
    lava = run_lava(cfg, task, steps, seed, tag="fixed_pt", trial=0, eta=eta)
    st = emu.state
    pairs = {"weights": (lava["w_int"], emu.w_int[0]), "trace_m": (lava["vars"]["a_m"], st.a_m[0]),
             "trace_s": (lava["vars"]["a_s"], st.a_s[0]), "potential": (lava["vars"]["v"], st.v[0]),
             "output_spikes": (lava["n_spikes"], emu.output_spikes[0]),
             "counters": (lava["vars"]["counts"], st.counts)}
    return _compare(pairs, steps)


def _compare(pairs: dict, steps: int) -> dict:
    differ = [name for name, (a, b) in pairs.items()
              if not (a == b if isinstance(a, dict) else np.array_equal(a, b))]
    return {"lava_bit_exact": not differ, "steps": steps, "trial": 0,
            "compared": sorted(pairs), "differ": differ,
            "detail": "equal: " + ", ".join(sorted(pairs)) if not differ
            else "differ: " + ", ".join(differ)}


def _extremes(res, name) -> tuple[float, float] | None:
    """(min, max) of a variable over every step of every trial of a run (the kernels'
    running extremes, :attr:`emulator.RunResult.extremes`), None if not counted."""
    e = res.extremes.get(name)
    if e is None or not np.any(np.isfinite(e[0])):
        return None
    return float(np.nanmin(e[0])), float(np.nanmax(e[1]))


def _variable_table(cfg, fl, fx) -> dict:
    """Per-variable error statistics in LSB of the fixed format (from the recorded steps),
    plus range use from every step: the float run's and the chip's running extremes, and the
    headroom above the larger magnitude of the two (negative: float needs more range than the
    format has; 0: the chip saturated)."""
    out = {}
    for name, var in REPORT_VARS.items():
        f = variable_format(cfg, var)
        a, b = fl.record.get(name), fx.record.get(name)
        if a is None or b is None or a.size == 0:
            continue
        err = (b - a) / f["lsb"]
        ext_fl, ext_fx = _extremes(fl, name), _extremes(fx, name)
        seen = [v for e in (ext_fl, ext_fx) if e is not None for v in e]
        peak = max(abs(v) for v in seen) if seen else float(np.max(np.abs(a)))
        top = max(abs(f["lo"]), abs(f["hi"]))
        counters = fx.counters.get(var, {})
        out[name] = {
            "format": f"{'S' if f['signed'] else 'U'}{f['bits']}.{f['frac']}",
            "lsb": f["lsb"],
            "rmse_lsb": float(np.sqrt(np.mean(err**2))),
            "mean_err_lsb": float(np.mean(err)),
            "max_abs_err_lsb": float(np.max(np.abs(err))),
            "range_from": "every step" if seen else "recorded steps",
            "float_min": ext_fl[0] if ext_fl else float(np.min(a)),
            "float_max": ext_fl[1] if ext_fl else float(np.max(a)),
            "chip_min": ext_fx[0] if ext_fx else float(np.min(b)),
            "chip_max": ext_fx[1] if ext_fx else float(np.max(b)),
            "range_lo": f["lo"], "range_hi": f["hi"],
            "headroom_bits": float(math.log2(top / peak)) if peak > 0 else None,
            "overflow": int(counters.get("overflow", 0)),
            "saturation": int(counters.get("saturation", 0)),
            "underflow": int(counters.get("underflow", 0)),
            "first_step": counters.get("first_step", {}),
        }
    return out


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


def _le_formats(d) -> dict:
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


def _le_variable_table(cfg, fl, fx, task, eta: float) -> tuple[dict, dict, dict]:
    """The learning-engine config's per-variable table: like :func:`_variable_table`
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
    fmts = _le_formats(d)
    rows, errs, values = {}, {}, {}
    for name, (fname, counter, local_text) in LE_REPORT_VARS.items():
        f = fmts[name]
        lsb = f["lsb"]
        b = chip[name]
        a = None if fname is None else frec[fname] * (d.k_x if name in ("x1", "x2") else 1.0)
        if name == "weights":   # with hidden bits: bounds from the visible and residual extremes
            vis, res_ = _extremes(fx, "weights"), _extremes(fx, "tag_2")
            ext_fx = (vis[0] + min(res_[0], 0.0), vis[1] + max(res_[1], 0.0)) \
                if vis and res_ else vis
        else:
            ext_fx = _extremes(fx, name)
        ext_fl = None
        if fname is not None:
            e = _extremes(fl, fname)
            if e is not None:
                scale = d.k_x if name in ("x1", "x2") else 1.0
                ext_fl = (e[0] * scale, e[1] * scale)
        seen = [v for ex in (ext_fl, ext_fx) if ex is not None for v in ex]
        peak = max(abs(v) for v in seen) if seen else float(np.max(np.abs(b)))
        top = max(abs(f["lo"]), abs(f["hi"]))
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
        row.update({
            "range_from": "every step" if ext_fx is not None else "recorded steps",
            "float_min": ext_fl[0] if ext_fl else (float(np.min(a)) if a is not None else None),
            "float_max": ext_fl[1] if ext_fl else (float(np.max(a)) if a is not None else None),
            "chip_min": ext_fx[0] if ext_fx else float(np.min(b)),
            "chip_max": ext_fx[1] if ext_fx else float(np.max(b)),
            "range_lo": f["lo"], "range_hi": f["hi"],
            "headroom_bits": float(math.log2(top / peak)) if peak > 0 else None,
            "overflow": int(counters.get("overflow", 0)),
            "saturation": int(counters.get("saturation", 0)),
            "underflow": int(counters.get("underflow", 0)),
            "first_step": counters.get("first_step", {}),
        })
        if counter == "trace":
            row["saturation_note"] = "LearningDense's trace clips, x1 and x2 together"
        rows[name] = row
    return rows, errs, values


def _third_factor(cfg, fx, steps: int, trials: int) -> dict:
    """How the post factor reached the synapses: the coding, what was sent, carried and
    clipped (learning engine: levels or events, the carry, Vq; datapath: one word)."""
    n_neuron_steps = max(trials * steps * fx.w_final.shape[-2], 1)
    c = fx.counters
    sat = lambda var: int(c.get(var, {}).get("saturation", 0))  # noqa: E731
    if cfg.is_fixed:
        from natgrad.formats import variable_format
        f = variable_format(cfg, "post")
        return {"coding": f"the post factor as one {f['format']} word (rounding "
                          f"{f['rounding']}), no levels or events, nothing carried",
                "format": f["format"], "lsb": f["lsb"], "range": [f["lo"], f["hi"]],
                "saturations": sat("post"), "neuron_steps": n_neuron_steps,
                "saturated_share": sat("post") / n_neuron_steps}
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


#: The main job runs the scaled-down Fig 3F protocol (docs/model.md#fig3f): the code learning
#: rates times 4 (:mod:`natgrad.protocol`), so that a few hundred seconds show the whole
#: story (Euclid first, then the natural-gradient rules ahead) instead of only its beginning.
#: Default length: 300 s of simulated time.
DEFAULT_STEPS = 600_000


def _evidence(cfg, fx, variables: dict, upd: dict | None, steps: int, trials: int,
              learned: float) -> dict:
    """Candidate bottlenecks ``{name: (score, evidence, advice)}``: scores are the share of
    the learning signal a quantizer loses (0..1), from counters and local errors."""
    ev = {}
    n_syn = trials * fx.w_final.shape[-1] * fx.w_final.shape[-2] * max(steps, 1)
    if cfg.is_learning_engine:
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
    w = variables.get("weights", {})
    under = w.get("underflow", 0)
    share = (upd or {}).get("magnitude_share_below_half_lsb")
    head = w.get("headroom_bits")
    if share is not None:
        ev["weights"] = (share, f"{100 * under / n_syn:.1f} % of the {n_syn:.3g} weight updates "
                         f"rounded to zero; {100 * share:.1f} % of the update magnitude is below "
                         f"half a weight LSB; {head if head is None else round(head, 2)} bits of "
                         "weight headroom",
                         "+8 hidden weight bits (weights.extra_frac: 8)")
    for name, row in variables.items():
        loc = row.get("local")
        if not loc or name == "weights" or loc.get("snr") in (None, 0):
            continue
        fmt = variable_format(cfg, REPORT_VARS[name])
        advice = ("interpolate the sigmoid table (sigmoid.interpolate: true)"
                  if name == "sigma" and not cfg["sigmoid"]["interpolate"]
                  else f"+2 fractional bits on {REPORT_VARS[name]} ({fmt['format']})")
        ev[name] = (min(1.0, 1.0 / loc["snr"]),
                    f"{name}: local rounding error {loc['rms_lsb']:.3g} LSB RMS, bias "
                    f"{loc['bias_lsb']:.3g} LSB, signal/noise {loc['snr']:.3g}", advice)
    for name, row in variables.items():
        if row.get("saturation"):
            n_op = trials * steps * (fx.w_final.shape[-1] if name in (
                "usp", "trace_m", "trace_s", "weights") else 1) * fx.w_final.shape[-2]
            ev[f"{name} range"] = (min(1.0, 5.0 * row["saturation"] / n_op),
                                   f"{name} saturated {row['saturation']} times",
                                   f"widen {REPORT_VARS[name]} (more integer bits)")
    return ev


def run_main_job(cfg: HwConfig, steps: int, seed: int, trials: int = 4, out: Path | None = None,
                 lava_steps: int = 200, progress: bool = True, eta: float | None = None,
                 task_spec=None) -> dict:
    """Run the default job and return the report dictionary (also written when ``out``,
    with the deployment of the design judged).  ``eta``: the approximate rule's learning
    rate in code units (default: the task file's, else :func:`default_eta`); the Euclidean
    context run is scaled by the same factor against the paper's code rates.  ``task_spec``:
    an :class:`emulator.taskfile.TaskSpec` (default: the paper's Fig 3 task, N = 100)."""
    from natgrad import analysis
    t_start = time.time()
    if task_spec is None:
        task = fig3_task(n_trials=trials, N=N_AFFERENTS, seed=seed)
        task_info = {"name": "fig3 (built in)", "N": N_AFFERENTS, "M": 1}
    else:
        task = task_spec.build(trials, seed)
        task_info = task_spec.describe()
        eta = task_spec.eta if eta is None else eta
    eval_every = max(1, steps // 40) if steps else 1
    rec_every = eval_every
    error_hz = metrics.evaluator(task, seed)      # weights (E, K, M, N) -> (E, K) [Hz]
    eta = default_eta() if eta is None else float(eta)
    eta_scale = eta / ETA_CODE["approx"]
    bar = Progress(3 * steps + 1, progress, prefix="natgrad run")
    bar.stage("float64 reference, chip config, Euclidean rule")
    print(f"natgrad run: config {cfg.name} ({cfg.kind}), {steps} steps "
          f"({steps * task.params.dt:g} s), {trials} trials, task {task_info['name']} "
          f"(N = {task.N}, M = {task.M}), seed {seed}, "
          f"learning rate eta {eta:.4g} (code units; x{eta_scale:.3g} the paper's)")

    rec = tuple(REPORT_VARS)
    chunk = chunk_steps(trials)
    fl = R.run("float64", task, steps, seed, eta=eta, record=rec, record_every=rec_every,
               chunk_steps=chunk, progress=lambda d: bar(d, "float64 approx"))
    if cfg.is_learning_engine:        # the engine model records the weights only
        rec = R.LE_RECORDABLE
    fx = R.run(cfg, task, steps, seed, eta=eta, record=rec, record_every=rec_every,
               chunk_steps=chunk, progress=lambda d: bar(steps + d, f"{cfg.name} emulator"))
    bar(2 * steps, "float64 Euclidean")
    eu = simulate(task, "euclid", ETA_CODE["euclid"] * eta_scale, steps, seed,
                  record_every=eval_every, eval_every=eval_every)
    bar(3 * steps, "float64 Euclidean")
    n_lava = min(lava_steps, steps)
    if n_lava and not cfg.is_float:
        bar.stage(f"Lava cross-check ({n_lava} steps)")
    cross = _lava_crosscheck(cfg, task, seed, n_lava, eta)
    bar(3 * steps + 1, "done")
    bar.close()

    def curve(w_rec):                 # (points, trials)
        return error_hz(np.concatenate([task.w_init[None], w_rec]))

    t_s = np.concatenate([[0.0], fl.record_t_s])
    ct_float = curve(fl.record["weights"])
    ct_fixed = curve(fx.record["weights"]) if not cfg.is_float else ct_float
    c_float, c_fixed = ct_float.mean(axis=1), ct_fixed.mean(axis=1)
    if eu.rmse is not None:
        c_euclid = eu.rmse.mean(axis=(1, 2))
    else:                             # a recorded teacher: the same error as the others
        c_euclid = error_hz(eu.W_record).mean(axis=1) if len(eu.W_record) else None

    print(f"\n  {'t [s]':>7s} {'float RMSE [Hz]':>16s} {cfg.name + ' RMSE [Hz]':>18s} {'Euclid [Hz]':>12s}")
    for n in range(0, len(t_s), max(1, len(t_s) // 10)):
        eu_v = f"{c_euclid[n]:12.3f}" if c_euclid is not None and n < len(c_euclid) else ""
        print(f"  {t_s[n]:7.2f} {c_float[n]:16.3f} {c_fixed[n]:18.3f} {eu_v}")
    story = analysis.leader_story(t_s, c_float, c_euclid if c_euclid is not None else c_float + 1)
    print("  " + story["sentence"])

    variables, upd, d = {}, None, None
    figure_series = None
    if cfg.is_learning_engine:
        variables, le_errs, le_values = _le_variable_table(cfg, fl, fx, task, eta)
        figure_series = {"errors": le_errs, "values": le_values}
        upd = analysis.le_updates(fx.record, fl.record, task, fx.state.design)
    if cfg.is_fixed:
        from emulator.discretize import discretize
        d = discretize(cfg, task.params, task.rates, eta)
        variables = _variable_table(cfg, fl, fx)
        local = analysis.local_references(fx.record, task, d, eta)
        for name, row in variables.items():
            lsb = row["lsb"]
            row["trajectory"] = analysis.error_split(fx.record[name], fl.record[name], lsb)
            if name in local:
                row["local"] = analysis.error_split(fx.record[name], local[name], lsb)
        upd = analysis.updates(fx.record, fl.record, task, d.variables["weights"].lsb)
    w_err = fx.w_final - fl.w_final
    learned = np.sqrt(np.mean((fl.w_final - task.w_init) ** 2))
    curves_all = {"t_s": t_s, "float_trials": ct_float, "fixed_trials": ct_fixed}
    verdict = analysis.verdict(curves_all, fx.counters,
                               {} if cfg.is_float else _evidence(cfg, fx, variables, upd, steps, trials,
                                                                  float(learned)))
    late = analysis.late_slice(len(t_s))
    report = {
        "config": {"name": cfg.name, "source": str(cfg.source), "kind": cfg.kind, "tree": cfg.tree},
        "verdict": verdict,
        "story": story,
        "steps": steps, "seed": seed, "trials": trials, "N": task.N, "M": task.M,
        "task": task_info,
        "dt_s": task.params.dt,
        "eta_code": {"approx": eta, "euclid": ETA_CODE["euclid"] * eta_scale,
                     "scale_vs_paper_code": eta_scale},
        "curves": {"t_s": t_s.tolist(),
                   "float": {"rate_rmse_hz": c_float.tolist(),
                             "per_trial": ct_float.T.tolist()},
                   "fixed": {"rate_rmse_hz": c_fixed.tolist(),
                             "per_trial": ct_fixed.T.tolist()},
                   "euclid_float": {"rate_rmse_hz": None if c_euclid is None else c_euclid.tolist()}},
        "late_window": {
            "t_s": verdict["late_window_s"],
            "float_rmse_hz": dict(zip(("mean", "ci95"), analysis.mean_ci(ct_float[late], axis=1))),
            "fixed_rmse_hz": dict(zip(("mean", "ci95"), analysis.mean_ci(ct_fixed[late], axis=1)))},
        "variables": variables,
        "updates": upd,
        "weights": {"final_rmse_vs_float": float(np.sqrt(np.mean(w_err**2))),
                    "final_max_abs_vs_float": float(np.max(np.abs(w_err))),
                    "learned_change_rms_float": float(learned)},
        "counters": fx.counters,
        "third_factor": None if cfg.is_float else _third_factor(cfg, fx, steps, trials),
        "crosscheck": cross,
        "provenance": {**_provenance(seed, t_start), "task": task_info},
    }
    if cfg.is_float:
        why = ("the config is float64 itself: its run is the float reference, so it has no "
               "formats, no quantization error, no weight LSB and no third-factor coding")
        report["not_applicable"] = {"variables": why, "updates": why, "third_factor": why,
                                    "counters": why + "; nothing saturates or underflows"}
    deployment = (_judged_deployment(cfg, fx, task, seed, eta,
                                     None if task_spec is None else task_spec.source,
                                     None if task_spec is None else task_spec.weight_range)
                  if out is not None else None)
    if deployment is not None:
        report["deployment"] = {k: v for k, v in deployment.items() if k != "write"}
    v = verdict
    word = {"tracks": "TRACKS float", "does not track": "does NOT track float"}.get(
        v["status"], "NOT RESOLVED whether it tracks float")
    print(f"\n  verdict: {word} within "
          f"{v['tolerance_hz']:.3g} Hz: late excess {v['excess_hz']:+.3g} Hz"
          + _interval_text(v["excess_ci95_hz"])
          + (f", {v['excess_pct_of_learned']:+.1f} % of the {v['learned_hz']:.3g} Hz learned"
             if v["excess_pct_of_learned"] is not None else ""))
    if v["status"] == "not resolved":
        print(f"  to resolve it: {v['resolve']}")
    if v["bottleneck"]:
        print(f"  bottleneck: {v['bottleneck']}: {v['evidence']}\n  advice: {v['advice']}")
    print(f"  Lava cross-check: {_verdict(cross)}")
    if out is not None:
        from natgrad.progress import Heartbeat
        from natgrad.report import write_report
        with Heartbeat("natgrad run", progress) as hb:
            hb.stage("writing the report")
            write_report(report, fl, fx, out,   # atomic: a temp folder, then renames
                         extra=None if deployment is None else deployment["write"],
                         series=figure_series)
        print(f"  report written to {out}/report.html, report.md, report.json")
    return report


def _judged_deployment(cfg, fx, task, seed: int, eta: float, task_source=None,
                       weight_range=None) -> dict | None:
    """The deployment of exactly the design this run judged (``natgrad deploy`` with the
    same --config, --seed, --trials and --eta writes the same bits): its files, digest and a
    writer into the report's folder."""
    import hashlib

    from natgrad import deploy_files as deploy
    task_arg = f" --task {task_source}" if task_source else ""
    if isinstance(weight_range, float):
        task_arg += f" --weight-range {weight_range!r}"
    if cfg.is_learning_engine:
        d = fx.state.design                          # the Design the emulator ran

        def write(folder):
            (folder / "deployment").mkdir()
            deploy.write_le_deployment(cfg, d, task, seed, folder / "deployment")
        from emulator.learning.deployment import design_digest
        return {"files": "deployment/", "design_digest": design_digest(d), "write": write,
                "same_as": f"natgrad deploy --config {cfg.source}{task_arg} --seed {seed} "
                           f"--trials {task.n_trials} --eta {eta!r} --out DIR"}
    if cfg.is_fixed:
        text = deploy.dump_yaml(deploy.deploy_record(cfg, seed=seed, n_afferents=task.N,
                                                     eta=eta, task=task))
        return {"files": "deploy.yaml",
                "design_digest": hashlib.sha256(text.encode()).hexdigest(),
                "write": lambda folder: (folder / "deploy.yaml").write_text(text),
                "same_as": f"natgrad deploy --config {cfg.source}{task_arg} --seed {seed} "
                           f"--eta {eta!r} --out FILE"}
    return None


def _interval_text(ci95) -> str:
    """'(+-x, 95 % CI over trials)', or why there is none (one trial has no spread)."""
    if ci95 is None or not math.isfinite(ci95):
        return " (no interval: one trial has no spread)"
    return f" (+-{ci95:.2g}, 95 % CI over trials)"


def _provenance(seed: int, t_start: float) -> dict:
    """Versions, the git commit of the code that ran, and the wall time."""
    import subprocess
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5,
                               cwd=Path(__file__).resolve().parent).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", False
    versions = {}
    for pkg in ("numpy", "scipy", "numba", "lava-nc", "matplotlib", "pyyaml"):
        try:
            from importlib.metadata import version
            versions[pkg] = version(pkg)
        except Exception:  # noqa: BLE001 - provenance only
            versions[pkg] = "unavailable"
    return {"python": platform.python_version(), "natgrad": _version(),
            "git_commit": commit or "unknown (not a git checkout)", "git_dirty": dirty,
            "packages": versions, "numpy": np.__version__, "lava": _lava_version(),
            "seed": seed, "wall_s": round(time.time() - t_start, 1)}


def _verdict(cross) -> str:
    if cross.get("lava_bit_exact") is None:
        return cross.get("detail", "not run")
    return (f"bit-exact over {cross['steps']} steps" if cross["lava_bit_exact"]
            else f"MISMATCH over {cross['steps']} steps: {cross.get('detail', '')}")


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("natgrad")
    except Exception:  # noqa: BLE001 - provenance only
        return "unknown"


def _lava_version() -> str:
    try:
        from importlib.metadata import version
        return version("lava-nc")
    except Exception:  # noqa: BLE001
        return "unavailable"
