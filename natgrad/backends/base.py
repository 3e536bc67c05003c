"""The protocol every config kind's backend fills, and the report rows they share.

A backend wraps one validated :class:`emulator.hwconfig.HwConfig` and answers every
question natgrad's commands ask of a config: its compiled design for a task (once per
task and learning rate), its run, the weights it stores, its report sections, its
bottleneck evidence, its Lava cross-check, its deployment and its quantizers.  The commands
hold a backend and never test the config's kind themselves (:func:`natgrad.backends.backend_for`
reads it, once).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

__all__ = ["Backend", "ReportSections", "extremes", "range_row"]


@dataclasses.dataclass
class ReportSections:
    """What a backend adds to a run's report.

    ``variables``: name -> row (format, errors in LSB, range use, counters); ``updates``: the
    update-size statistics, or None; ``third_factor``: how the post factor reached the
    synapses, or None; ``series``: error and value arrays for the report's figures, or None
    (the report then takes them from the records).
    """

    variables: dict
    updates: dict | None
    third_factor: dict | None
    series: dict | None = None


class Backend:
    """One config kind.  Subclasses set :attr:`kind` and override what their kind does."""

    #: the config kind (``HwConfig.kind``) this backend runs
    kind = ""
    #: the report's words for the kind and for the Lava process that cross-checks it
    kind_text = ""
    lava_text = ""
    #: how the report's per-variable table reads: (what *local* compares with, a closing note)
    variables_note = ("", "")
    #: what ``natgrad run`` records on this kind for its report
    report_records: tuple = ()

    def __init__(self, cfg):
        self.cfg = cfg
        self._designs: dict = {}

    @property
    def name(self) -> str:
        return self.cfg.name

    # ------------------------------------------------------------------ compile and run
    def compile(self, task, eta: float):
        """The discretized design of ``task`` at learning rate ``eta`` (code units), computed
        once per task and rate and then reused."""
        key = (id(task), float(eta))
        hit = self._designs.get(key)
        if hit is None or hit[0] is not task:
            hit = self._designs[key] = (task, self._compile(task, float(eta)))
            while len(self._designs) > 4:          # keep the last few tasks alive, not all
                del self._designs[next(iter(self._designs))]
        return hit[1]

    def _compile(self, task, eta: float):
        return None

    def run(self, task, steps: int, seed: int, *, eta: float, **kw):
        """:func:`emulator.run` of this config (same keywords), with the compiled design."""
        from emulator.runner import run
        return run(self.cfg, task, steps, seed, eta=eta, design=self.compile(task, eta), **kw)

    def label(self) -> str | None:
        """The config's name where it is a chip, None for the float reference."""
        return self.cfg.name

    def rule(self) -> str:
        """The rule the config runs (the integer datapath implements 'approx' only)."""
        return "approx"

    def with_rule(self, rule: str):
        """The config running ``rule`` instead ('euclid', 'approx'), or None when the kind
        implements one rule only."""
        return None

    def limits_text(self, counters_text: str) -> str:
        """Where a user finds what limits this config (for an experiment's verdict)."""
        return f"see `natgrad budget --config {self.cfg.name}` and the counters {counters_text}"

    def refuses(self, action: str) -> str | None:
        """Why this config cannot do ``action`` ('deploy', 'budget', 'sweep'), or None."""
        return None

    def check_task(self, task, eta: float) -> None:
        """Raise ValueError (one line) if the config cannot represent ``task``: a chip stores
        somatic weights only, and its design of the task names any other limit."""
        if not getattr(task.f, "is_identity", False):
            raise ValueError(f"its weights are parametrized ({type(task.f).__name__}); the chip "
                             "stores somatic weights only (parametrization identity): run it "
                             "with --config float64, or state the task in somatic weights")
        self.compile(task, eta)

    def stored_weights(self, w, task, eta: float) -> np.ndarray:
        """``w`` as the config stores it (rounded to its grid, saturated), float."""
        return np.asarray(w, np.float64)

    def weight_lsb(self, task, eta: float) -> float | None:
        """One weight LSB (None: no grid)."""
        return None

    def weight_range(self, task, eta: float) -> float | None:
        """Largest representable |w| (None: unbounded)."""
        lsb = self.weight_lsb(task, eta)
        return None if lsb is None else (2 ** (self.weight_bits() - 1) - 1) * lsb

    def weight_bits(self) -> int:
        raise NotImplementedError

    # ------------------------------------------------------------------ report
    def report_sections(self, fl, fx, task, eta: float, steps: int, trials: int) -> ReportSections:
        raise NotImplementedError

    def evidence(self, fx, sections: ReportSections, steps: int, trials: int,
                 learned: float) -> dict:
        """Candidate bottlenecks ``{name: (score 0..1, evidence, advice)}``: the share of the
        learning signal a quantizer loses, from counters and local errors (``learned``: the
        float run's RMS weight change)."""
        return {}

    def not_applicable(self) -> dict | None:
        """Report sections that do not apply to this kind, with the reason."""
        return None

    def update_direction(self, task, eta: float, W, X, p_teacher):
        """Direction of the config's expected update from float weights W (S, N), USPs
        X (S, N) and the expected teacher count p_teacher (S,) (Fig 12)."""
        raise NotImplementedError

    def update_direction_text(self) -> str:
        """How Fig 12 obtains the config's update direction."""
        return ""

    def describe_lines(self) -> list[str]:
        """``natgrad formats``: one line per derived format."""
        return []

    # ------------------------------------------------------------------ Lava and deploy
    def lava_crosscheck(self, task, seed: int, steps: int, eta: float) -> dict:
        """Trial 0 under Lava against the emulator, bit for bit."""
        return {"lava_bit_exact": None, "steps": 0, "detail": "not run"}

    def judged_deployment(self, fx, task, seed: int, eta: float, task_arg: str) -> dict | None:
        """The deployment of exactly the design a run judged: its files, digest, a writer into
        the report's folder and the ``natgrad deploy`` command that writes the same bits."""
        return None

    def deploy(self, args, rates) -> int:
        """``natgrad deploy`` of this config (arguments already checked)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ budget and sweep
    def quantizer_table(self, task=None, eta: float | None = None) -> dict:
        """``{name: (what it is, delta -> wide overrides or None)}`` for ``natgrad budget``."""
        return {}

    def sweep_fields(self) -> list[str]:
        """Every field ``natgrad sweep --vary`` accepts."""
        return int_schema_keys(self.cfg.schema)


def int_schema_keys(schema) -> list[str]:
    """Every integer key ``section.field`` of a config schema."""
    from emulator.hwconfig import Field
    keys = []
    for section, spec in schema.items():
        if isinstance(spec, dict):
            keys += [f"{section}.{k}" for k, f in spec.items()
                     if isinstance(f, Field) and f.kind is int]
    return keys


def extremes(res, name) -> tuple[float, float] | None:
    """(min, max) of a variable over every step of every trial of a run (the kernels'
    running extremes, :attr:`emulator.RunResult.extremes`), None if not counted."""
    e = res.extremes.get(name)
    if e is None or not np.any(np.isfinite(e[0])):
        return None
    return float(np.nanmin(e[0])), float(np.nanmax(e[1]))


def range_row(fmt: dict, float_values, chip_values, ext_fl, ext_fx, counters: dict) -> dict:
    """The range-use part of a report row: the float run's and the chip's extremes (from
    every step when counted, else from the records), the format's range, the headroom in
    bits above the larger magnitude of the two (negative: float needs more range than the
    format has) and the counters."""
    seen = [v for e in (ext_fl, ext_fx) if e is not None for v in e]
    peak = (max(abs(v) for v in seen) if seen
            else float(np.max(np.abs(chip_values))))
    top = max(abs(fmt["lo"]), abs(fmt["hi"]))
    have_fl = float_values is not None
    return {
        "range_from": "every step" if ext_fx is not None else "recorded steps",
        "float_min": ext_fl[0] if ext_fl else (float(np.min(float_values)) if have_fl else None),
        "float_max": ext_fl[1] if ext_fl else (float(np.max(float_values)) if have_fl else None),
        "chip_min": ext_fx[0] if ext_fx else float(np.min(chip_values)),
        "chip_max": ext_fx[1] if ext_fx else float(np.max(chip_values)),
        "range_lo": fmt["lo"], "range_hi": fmt["hi"],
        "headroom_bits": float(math.log2(top / peak)) if peak > 0 else None,
        "overflow": int(counters.get("overflow", 0)),
        "saturation": int(counters.get("saturation", 0)),
        "underflow": int(counters.get("underflow", 0)),
        "first_step": counters.get("first_step", {}),
    }
