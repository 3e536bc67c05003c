"""Loihi 2's learning engine (``kind: learning_engine``): LearningDense plus a learning neuron.

Its design is :func:`emulator.learning.design_for_config` (weight exponent, V range, third-factor
coding, the sum-of-products rule) for the task and learning rate; it is cross-checked
against Lava path 2 and deployed as a folder (:mod:`emulator.learning.deployment`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from natgrad.backends import le_report
from natgrad.backends.base import Backend, ReportSections
from natgrad.errors import UsageError

__all__ = ["LearningEngineBackend", "QUANTIZERS"]


def _hidden_bits(c, d, design):
    # 'auto' already takes the most tag_2 can hold (<= 6); a pinned smaller count widens to it
    return None if c["mapping"]["hidden_bits"] == "auto" else {"mapping.hidden_bits": "auto"}


def _levels(c, d, design):
    """The third-factor coding: events widen to graded levels; graded levels to the finest
    level unit the engine represents with the design's hidden bits (y_unit 2**-h
    accumulator units), every other choice of the design kept."""
    if design is None:
        return None
    if design.encoding != "graded":
        return {"mapping.encoding": "graded"}
    finest = design.y_unit * 2.0 ** -design.mapping.hidden_bits
    if design.c_ev <= finest:
        return None
    return {"mapping.c_ev": finest, "mapping.hidden_bits": design.mapping.hidden_bits,
            "mapping.tag_offset": design.d_offset}


#: Learning-engine quantizers of ``natgrad budget`` (keys of emulator.hwconfig.LE_SCHEMA):
#: name -> (what it is, (cfg, delta, design) -> wide overrides, or None: no wider setting in
#: the kind).
QUANTIZERS = {
    "hidden bits": ("update bits kept below the weight LSB in tag_2", _hidden_bits),
    "third-factor levels": ("the post factor's coding: fixed-size events, or graded levels "
                            "of unit E_n (the level noise and the carries)", _levels),
    "weight rounding RNG": ("one random number per epoch shared by all synapses",
                            lambda c, d, g: {"engine.weight_rounding": "per_synapse"}),
    "trace rounding RNG": ("one random number per step shared by all traces",
                           lambda c, d, g: {"engine.trace_rounding": "per_synapse"}),
    "sigmoid": ("the learning neuron's sigmoid table",
                lambda c, d, g: {"neuron.sigma_interpolate": True, "neuron.sigma_node_frac": 4}),
    "epoch": ("learning epoch length", lambda c, d, g: {"engine.t_epoch": 1}),
}


class LearningEngineBackend(Backend):
    """``kind: learning_engine``: Lava's LearningDense and the learning neuron."""

    kind = "learning_engine"
    kind_text = "Loihi 2's learning engine as Lava 0.10 models it"
    lava_text = "Lava path 2 (LearningDense + learning neuron)"
    #: how the report's per-variable table reads on this kind
    variables_note = ("(each variable's reference is listed below the table)",
                      " The weights include their hidden bits (tag_2); a variable without a "
                      "float counterpart shows '-' and says why below.")
    #: the engine model's own records (its neuron's formats are not the datapath's)
    report_records = ("weights", "x1", "x2", "potential", "vq", "sigma", "error", "gamma_s",
                      "hbar", "post", "amount", "coded", "carry", "tag_2", "weights_before",
                      "tag_2_before")

    def _compile(self, task, eta):
        from emulator import learning
        return learning.design_for_config(self.cfg, task, eta)

    def rule(self) -> str:
        return self.cfg["mapping"]["rule"]

    def with_rule(self, rule: str):
        return self.cfg.with_overrides(**{"mapping.rule": rule})

    def limits_text(self, counters_text: str) -> str:
        return ("what limits the engine is measured in docs/learning_engine.md ('What limits "
                "it now': Lava's shared tag_2 rounding, tag_2's 8 bits, the heterosynaptic V "
                f"step); counters {counters_text} (post: carries, delayed not lost)")

    def weight_bits(self) -> int:
        return self.cfg["engine"]["synaptic_bits"]

    def weight_lsb(self, task, eta) -> float:
        return self.compile(task, eta).lsb_w

    def stored_weights(self, w, task, eta):
        """LearningDense's weights of the task's design (rounded, saturated)."""
        from emulator import learning
        d = self.compile(task, eta)
        return learning.quantize_weights(d, w) * d.lsb_w

    def describe_lines(self) -> list[str]:
        """The config's sections, each key with its value and meaning."""
        from emulator.hwconfig import LE_SCHEMA
        cfg, lines = self.cfg, []
        for section, title in (("engine", "learning engine (Lava 0.10 LearningDense)"),
                               ("neuron", "learning neuron (third factors)"),
                               ("mapping", "rule -> engine ('auto': chosen per task)")):
            lines.append(f"  {title}:")
            for key, value in cfg[section].items():
                lines.append(f"    {section}.{key:18s} {str(value):>8s}  "
                             f"{LE_SCHEMA[section][key].doc}")
        e = cfg["engine"]
        lines.append(f"  weights: {e['synaptic_bits']} bits, updates kept {e['acc_shift']} bits "
                     f"below the LSB for {e['t_epoch']} step(s), then rounded "
                     f"({e['weight_rounding']} random numbers)")
        return lines

    def update_direction(self, task, eta, W, X, p_teacher):
        """The engine's expected update (over its events and stochastic roundings) on the
        task's design at ``eta``."""
        from emulator import learning
        return learning.expected_update(self.compile(task, eta), W, X, p_teacher)

    def update_direction_text(self) -> str:
        return ("the engine's expected update over its events and stochastic "
                "roundings (emulator.learning.expected_update)")

    # ------------------------------------------------------------------ report
    def report_sections(self, fl, fx, task, eta, steps, trials) -> ReportSections:
        from natgrad import analysis
        variables, errs, values = le_report.variable_table(fl, fx, task, eta)
        upd = analysis.le_updates(fx.record, fl.record, task, fx.state.design)
        return ReportSections(variables, upd, le_report.third_factor(fx, steps, trials),
                              {"errors": errs, "values": values})

    def evidence(self, fx, sections, steps, trials, learned) -> dict:
        return le_report.evidence(fx, steps, trials, learned)

    # ------------------------------------------------------------------ Lava and deploy
    def lava_crosscheck(self, task, seed, steps, eta) -> dict:
        """Path 2: LearningDense + the learning neuron against the emulator's trial 0."""
        import lava_procs
        from natgrad.backends.datapath import compare_pairs
        emu = self.run(task, steps, seed, eta=eta, trials=[0])
        lava = lava_procs.run(self.cfg, task, steps, seed, trial=0, eta=eta)
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
        return compare_pairs(pairs, steps)

    def judged_deployment(self, fx, task, seed, eta, task_arg) -> dict:
        from emulator.learning.deployment import design_digest
        from natgrad import deploy_files
        d = fx.state.design                          # the Design the emulator ran

        def write(folder):
            (folder / "deployment").mkdir()
            deploy_files.write_le_deployment(self.cfg, d, task, seed, folder / "deployment")
        return {"files": "deployment/", "design_digest": design_digest(d), "write": write,
                "same_as": f"natgrad deploy --config {self.cfg.source}{task_arg} --seed {seed} "
                           f"--trials {task.n_trials} --eta {eta!r} --out DIR"}

    def deploy(self, args, rates) -> int:
        """Write the deployment folder (atomically: a temporary sibling folder renamed into
        place) of the design ``natgrad run`` judges with the same --seed and --trials."""
        import shutil
        import tempfile
        from emulator.task import fig3_task
        from natgrad.deploy_files import write_le_deployment
        out = Path(args.out if args.out is not None else "natgrad-deploy")
        if not str(args.out if args.out is not None else "x"):
            raise UsageError("--out: empty path (give a folder such as natgrad-deploy)")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise UsageError(f"--out {out}: exists and is not an empty folder (a learning-engine "
                             "deployment is a folder)")
        parent = out.parent if str(out.parent) else Path(".")
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise UsageError(f"--out {out}: cannot write (folder {parent} "
                             f"{'is not writable' if parent.is_dir() else 'does not exist'})")
        rate_vec = rates if len(rates) == args.afferents else tuple(rates)
        # the task of `natgrad run` with the same --seed / --trials: the design is chosen
        # over all its trials, so the same invocation deploys the design run judged
        if args.spec is not None:
            task = args.spec.build(args.trials, args.seed)
        else:
            task = fig3_task(n_trials=args.trials, N=args.afferents, group_rates=rate_vec,
                             seed=args.seed)
            if args.weight_range is not None:
                task.w_range = args.weight_range
        try:
            d = self.compile(task, args.eta)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        tmp = Path(tempfile.mkdtemp(prefix=".natgrad-deploy-", dir=parent))
        try:
            write_le_deployment(self.cfg, d, task, args.seed, tmp)
            if out.exists():
                out.rmdir()
            tmp.rename(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"natgrad deploy: config {self.cfg.name} (learning engine) -> {out}/ "
              "(deploy.yaml, design.json, network.json, manifest.json)")
        print(f"  LearningDense: {task.N} x {task.M} weights, weight_exp {d.weight_exp}, "
              f"LSB 2^-{d.w_frac}; tags {sorted(set(np.asarray(d.tags).tolist()))}")
        print(f"  dw = {d.rule}")
        if d.dd_products:
            print(f"  dd = {d.rule_dd}")
        for k, (v, why) in d.choices.items():
            print(f"  auto {k} = {v}: {why}")
        print(f"  build it in Lava: lava_procs.deployment.build_from_deployment('{out}')")
        print("  what runs where: the synapses are Lava's LearningDense (on Loihi 2, the chip's "
              "learning engine); the learning neuron is a CPU ProcessModel only: on a chip its "
              "program (docs/learning_neuron_program.md: 24-bit words, no division) must be "
              "written in neuron microcode or for an embedded core")
        return 0

    # ------------------------------------------------------------------ budget
    def quantizer_table(self, task=None, eta=None) -> dict:
        """Rows that depend on the task's design (the level unit) need ``task`` and ``eta``."""
        design = None if task is None else self.compile(task, eta)
        return {name: (doc, lambda delta, make=make: make(self.cfg, delta, design))
                for name, (doc, make) in QUANTIZERS.items()}
