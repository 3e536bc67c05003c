"""The integer datapath (``kind: fixed``): docs/datapath.md's pipeline of formats.

Its design is :func:`emulator.discretize.discretize` (the chip integers of the task's rates and
learning rate); it is cross-checked against Lava path 1 (the ``fixed_pt`` ProcessModel) and
deployed as one ``deploy.yaml``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np

from emulator import stages
from emulator.variables import RECORD_VARIABLE, SWEEP_FIELDS
from natgrad.backends.base import Backend, ReportSections, extremes, int_schema_keys, range_row
from natgrad.errors import UsageError

__all__ = ["DatapathBackend", "FRIENDLY", "QUANTIZERS", "compare_pairs", "expected_direction"]

#: Friendly ``--vary`` names: name -> (width key, key moved by the same amount or None, doc).
#: With a companion ``frac`` key the format's range stays fixed while the width changes:
#: only the resolution changes.  The variables' fields are declared with the variables
#: (:data:`emulator.variables.SWEEP_FIELDS`); the constants' mantissa width is not a variable.
FRIENDLY = {
    **SWEEP_FIELDS,
    "mant_bits": ("constants.mant_bits", None, "mantissa width of the float constants"),
}


def _widen(cfg, key: str, delta: int) -> dict:
    """``key.bits`` and ``key.frac`` both + delta (range kept, resolution finer)."""
    sec = cfg[key]
    return {f"{key}.bits": sec["bits"] + delta, f"{key}.frac": sec["frac"] + delta}


#: Datapath quantizers of ``natgrad budget``: name -> (what it is, (cfg, delta) -> wide overrides).
QUANTIZERS = {
    "weights": ("weight width and hidden accumulator bits",
                lambda c, d: {**_widen(c, "weights", d), "weights.extra_frac": 16}),
    "traces": ("presynaptic traces and their decay",
               lambda c, d: {**_widen(c, "traces", d), "traces.decay_frac": 24,
                             "traces.rounding": "half_even"}),
    "usp": ("USP", lambda c, d: _widen(c, "usp", d)),
    "potential": ("membrane potential V", lambda c, d: _widen(c, "potential", d)),
    "sigmoid": ("sigmoid table", lambda c, d: {"sigmoid.lut_bits": min(14, c["potential"]["bits"]),
                                               "sigmoid.interpolate": True, "sigmoid.frac": 28}),
    "error": ("teacher error", lambda c, d: {"error.frac": 30}),
    "gamma_s": ("gamma_s table and refresh epoch",
                lambda c, d: {"gamma_s.bits": 24, "gamma_s.frac": 16, "gamma_s.m_lut_bits": 10,
                              "gamma_s.v_lut_bits": 10, "gamma_s.epoch_steps": 1}),
    "bracket": ("bracket", lambda c, d: _widen(c, "bracket", d)),
    "post": ("post factor (third factor)", lambda c, d: _widen(c, "post", d)),
    "constants": ("constant mantissas", lambda c, d: {"constants.mant_bits": 20}),
}


def compare_pairs(pairs: dict, steps: int) -> dict:
    """The Lava cross-check's verdict on ``{name: (lava value, emulator value)}``."""
    differ = [name for name, (a, b) in pairs.items()
              if not (a == b if isinstance(a, dict) else np.array_equal(a, b))]
    return {"lava_bit_exact": not differ, "steps": steps, "trial": 0,
            "compared": sorted(pairs), "differ": differ,
            "detail": "equal: " + ", ".join(sorted(pairs)) if not differ
            else "differ: " + ", ".join(differ)}


def expected_direction(d, W, X, p_teacher):
    """Direction of the approximate update as the integer datapath forms it, from float
    weights W (S, N), USPs X (S, N) and the expected teacher count p_teacher (S,).

    Weights and USPs are quantized to the config's formats (saturated); then the datapath's
    own stages (:mod:`emulator.stages`: potential, gamma_s, sigmoid, error, post factor,
    bracket) in the config's integer arithmetic, with stochastic roundings replaced by
    round-half-up (their expectation up to half an LSB) and the teacher count by its
    expectation on the error grid.  Presynaptic traces are not emulated (X comes from float
    traces).  Returns P·B (S, N) floats (scale irrelevant: only the direction is used).
    """
    det = dataclasses.replace(d, variables={
        name: dataclasses.replace(var, rounding="half_up" if var.rounding == "stochastic"
                                  else var.rounding)
        for name, var in d.variables.items()})
    wf, xf = det.variables["weights"].fmt, det.variables["usp"].fmt
    w = np.clip(np.rint(W * 2.0 ** wf.frac), -wf.max_int, wf.max_int).astype(np.int64)[:, None, :]
    x = np.clip(np.rint(X * 2.0 ** xf.frac), xf.min_int, xf.max_int).astype(np.int64)
    v, _ = stages.potential(det, w, x, None, None)
    gamma, _ = stages.gamma(det, w)
    sg = stages.sigmoid(det, v)
    y = np.rint(np.asarray(p_teacher)[:, None] * 2.0 ** det.err_frac).astype(np.int64)
    err = y + stages.error(det, sg, np.zeros_like(y))
    post, _ = stages.post_factor(det, gamma, sg, err, None, None)
    bracket, _ = stages.bracket(det, x, v, w, None, None, None, None)
    return (post[:, :, None].astype(np.float64) * bracket.astype(np.float64))[:, 0, :]


class DatapathBackend(Backend):
    """``kind: fixed``: the integer datapath."""

    kind = "fixed"
    kind_text = "integer datapath of docs/datapath.md"
    lava_text = "Lava `fixed_pt` process (path 1)"
    variables_note = ("(rounding alone; V and gamma_s use the recorded weights, which are those "
                      "after the step's update, so theirs includes one update)", "")
    #: recorded quantities -> their datapath variable (emulator.variables)
    report_records = tuple(RECORD_VARIABLE)

    def _compile(self, task, eta):
        from emulator.discretize import discretize
        return discretize(self.cfg, task.params, task.rates, eta)

    def weight_bits(self) -> int:
        return self.cfg["weights"]["bits"]

    def weight_lsb(self, task=None, eta=None) -> float:
        return 2.0 ** -self.cfg["weights"]["frac"]

    def stored_weights(self, w, task, eta):
        """The accumulator's visible weights: rounded to nearest with the hidden bits,
        saturated, then shifted down to the visible LSB."""
        wt = self.cfg["weights"]
        f, e = wt["frac"], wt["extra_frac"]
        top = 2 ** (wt["bits"] + e - 1)
        acc = np.clip(np.rint(np.asarray(w, dtype=np.float64) * 2.0 ** (f + e)),
                      -top, top - 1).astype(np.int64)
        return (acc >> e) * 2.0 ** -f

    def describe_lines(self) -> list[str]:
        from natgrad.formats import datapath_lines
        return datapath_lines(self.cfg)

    def update_direction_text(self) -> str:
        return "the datapath's stages on each USP sample"

    def update_direction(self, task, eta, W, X, p_teacher):
        """:func:`expected_direction` on the task's discretization at learning rate 1 (a
        direction does not depend on the rate; rate 1 keeps the post factor's resolution)."""
        return expected_direction(self.compile(task, 1.0), W, X, p_teacher)

    # ------------------------------------------------------------------ report
    def report_sections(self, fl, fx, task, eta, steps, trials) -> ReportSections:
        from natgrad import analysis
        d = self.compile(task, eta)
        variables = self.variable_table(fl, fx)
        local = analysis.local_references(fx.record, task, d, eta)
        for name, row in variables.items():
            lsb = row["lsb"]
            row["trajectory"] = analysis.error_split(fx.record[name], fl.record[name], lsb)
            if name in local:
                row["local"] = analysis.error_split(fx.record[name], local[name], lsb)
        upd = analysis.updates(fx.record, fl.record, task, d.variables["weights"].lsb)
        return ReportSections(variables, upd, self.third_factor(fx, steps, trials))

    def variable_table(self, fl, fx) -> dict:
        """Per-variable error statistics in LSB of the fixed format (from the recorded
        steps), plus range use from every step (:func:`range_row`)."""
        from natgrad.formats import variable_format
        out = {}
        for name, var in RECORD_VARIABLE.items():
            f = variable_format(self.cfg, var)
            a, b = fl.record.get(name), fx.record.get(name)
            if a is None or b is None or a.size == 0:
                continue
            err = (b - a) / f["lsb"]
            out[name] = {
                "format": f"{'S' if f['signed'] else 'U'}{f['bits']}.{f['frac']}",
                "lsb": f["lsb"],
                "rmse_lsb": float(np.sqrt(np.mean(err**2))),
                "mean_err_lsb": float(np.mean(err)),
                "max_abs_err_lsb": float(np.max(np.abs(err))),
                **range_row(f, a, b, extremes(fl, name), extremes(fx, name),
                            fx.counters.get(var, {})),
            }
        return out

    def third_factor(self, fx, steps: int, trials: int) -> dict:
        """The post factor reaches the synapses as one word: its format and saturations."""
        from natgrad.formats import variable_format
        n_neuron_steps = max(trials * steps * fx.w_final.shape[-2], 1)
        sat = int(fx.counters.get("post", {}).get("saturation", 0))
        f = variable_format(self.cfg, "post")
        return {"coding": f"the post factor as one {f['format']} word (rounding "
                          f"{f['rounding']}), no levels or events, nothing carried",
                "format": f["format"], "lsb": f["lsb"], "range": [f["lo"], f["hi"]],
                "saturations": sat, "neuron_steps": n_neuron_steps,
                "saturated_share": sat / n_neuron_steps}

    def evidence(self, fx, sections: ReportSections, steps: int, trials: int,
                 learned: float) -> dict:
        from natgrad.formats import variable_format
        ev = {}
        variables, upd = sections.variables, sections.updates
        n_syn = trials * fx.w_final.shape[-1] * fx.w_final.shape[-2] * max(steps, 1)
        w = variables.get("weights", {})
        under = w.get("underflow", 0)
        share = (upd or {}).get("magnitude_share_below_half_lsb")
        head = w.get("headroom_bits")
        if share is not None:
            ev["weights"] = (share, f"{100 * under / n_syn:.1f} % of the {n_syn:.3g} weight "
                             f"updates rounded to zero; {100 * share:.1f} % of the update "
                             "magnitude is below half a weight LSB; "
                             f"{head if head is None else round(head, 2)} bits of weight headroom",
                             "+8 hidden weight bits (weights.extra_frac: 8)")
        for name, row in variables.items():
            loc = row.get("local")
            if not loc or name == "weights" or loc.get("snr") in (None, 0):
                continue
            var = RECORD_VARIABLE[name]
            fmt = variable_format(self.cfg, var)
            advice = ("interpolate the sigmoid table (sigmoid.interpolate: true)"
                      if name == "sigma" and not self.cfg["sigmoid"]["interpolate"]
                      else f"+2 fractional bits on {var} ({fmt['format']})")
            ev[name] = (min(1.0, 1.0 / loc["snr"]),
                        f"{name}: local rounding error {loc['rms_lsb']:.3g} LSB RMS, bias "
                        f"{loc['bias_lsb']:.3g} LSB, signal/noise {loc['snr']:.3g}", advice)
        for name, row in variables.items():
            if row.get("saturation"):
                n_op = trials * steps * (fx.w_final.shape[-1] if name in (
                    "usp", "trace_m", "trace_s", "weights") else 1) * fx.w_final.shape[-2]
                ev[f"{name} range"] = (min(1.0, 5.0 * row["saturation"] / n_op),
                                       f"{name} saturated {row['saturation']} times",
                                       f"widen {RECORD_VARIABLE[name]} (more integer bits)")
        return ev

    # ------------------------------------------------------------------ Lava and deploy
    def lava_crosscheck(self, task, seed, steps, eta) -> dict:
        """Path 1: the ``fixed_pt`` ProcessModel against the emulator's trial 0."""
        from lava_procs import run_lava
        emu = self.run(task, steps, seed, eta=eta, trials=[0])
        lava = run_lava(self.cfg, task, steps, seed, tag="fixed_pt", trial=0, eta=eta)
        st = emu.state
        return compare_pairs({
            "weights": (lava["w_int"], emu.w_int[0]), "trace_m": (lava["vars"]["a_m"], st.a_m[0]),
            "trace_s": (lava["vars"]["a_s"], st.a_s[0]), "potential": (lava["vars"]["v"], st.v[0]),
            "output_spikes": (lava["n_spikes"], emu.output_spikes[0]),
            "counters": (lava["vars"]["counts"], st.counts)}, steps)

    def judged_deployment(self, fx, task, seed, eta, task_arg) -> dict:
        from natgrad import deploy_files
        text = deploy_files.dump_yaml(deploy_files.deploy_record(
            self.cfg, seed=seed, n_afferents=task.N, eta=eta, task=task))
        return {"files": "deploy.yaml",
                "design_digest": hashlib.sha256(text.encode()).hexdigest(),
                "write": lambda folder: (folder / "deploy.yaml").write_text(text),
                "same_as": f"natgrad deploy --config {self.cfg.source}{task_arg} --seed {seed} "
                           f"--eta {eta!r} --out FILE"}

    def deploy(self, args, rates) -> int:
        """Write ``deploy.yaml`` (atomically) and print its summary."""
        from natgrad.deploy_files import deploy_record, dump_yaml, write_atomic
        if args.out is None:
            args.out = "deploy.yaml"
        if not str(args.out):
            raise UsageError("--out: empty path (give a file name such as deploy.yaml)")
        out = Path(args.out)
        if out.is_dir():
            raise UsageError(f"--out {out}: is a folder (give a file name such as deploy.yaml)")
        parent = out.parent if str(out.parent) else Path(".")
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise UsageError(f"--out {out}: cannot write (folder {parent} "
                             f"{'is not writable' if parent.is_dir() else 'does not exist'})")
        try:
            task = args.spec.build(1, args.seed) if args.spec is not None else None
            rec = deploy_record(self.cfg, seed=args.seed, n_afferents=args.afferents,
                                group_rates=rates, lut_format=args.lut_format, eta=args.eta,
                                task=task)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        write_atomic(out, dump_yaml(rec))
        g = rec["luts"]["gamma_s"]
        lr = rec.get("learning_rule")
        print(f"natgrad deploy: config {self.cfg.name} -> {out}")
        print(f"  traces: decay {rec['traces']['decay_m']}, {rec['traces']['decay_s']} "
              f"/ 2^{rec['traces']['decay_frac']}, impulse {rec['traces']['impulse']}")
        print(f"  weights: {rec['model']['N']} mantissas, "
              f"exponent {rec['weights']['exponent']}")
        print(f"  sigmoid LUT {rec['luts']['sigmoid']['entries']} entries; gamma_s LUT "
              f"{g['shape'][0]}x{g['shape'][1]} ({g['encoding']})")
        errs = {k: c["rel_err"] for k, c in rec["discretize_info"].items()
                if isinstance(c, dict) and "rel_err" in c}
        worst = max(errs, key=errs.get)
        print(f"  constants: largest relative error {errs[worst]:.2e} ({worst})")
        if lr is not None:
            print(f"  learning rule ({lr['status']}): {lr['rule']}")
        return 0

    # ------------------------------------------------------------------ budget and sweep
    def quantizer_table(self, task=None, eta=None) -> dict:
        return {name: (doc, lambda delta, make=make: make(self.cfg, delta))
                for name, (doc, make) in QUANTIZERS.items()}

    def sweep_fields(self) -> list[str]:
        from emulator.hwconfig import SCHEMA
        return list(FRIENDLY) + int_schema_keys(SCHEMA)
