"""The datapath's variables, each declared once.

Every integer variable of the approximate rule's datapath (``docs/datapath.md``) has one
:class:`VariableSpec` in :data:`SPECS`: its config section, signedness and unit, its
rounding sites with their counter-RNG streams, the events counted on it, the recordable
quantities it provides (name, record shape, State field) and its ``natgrad sweep`` fields.
:func:`variable_table` (called once by :func:`emulator.discretize.discretize`) adds what
depends on the config: the :class:`fixedpoint.QFormat` and the rounding mode.

Everything else is derived from here: the counter list (:data:`COUNTERS`), the stream of
each rounding site (:data:`STREAM_SITE`, :data:`SITE_ORDER`), the recordable variables
(:data:`RECORDABLE`) with their LSB scales and shapes, the report, ``check-config`` and
deploy format tables, the Lava Vars and sweep's friendly field names.  Adding a variable
means one entry here plus its arithmetic in :mod:`emulator.stages` (numpy) and
:mod:`emulator.stages_jit` (its numba twin).
"""
from __future__ import annotations

import dataclasses

from fixedpoint import rng
from fixedpoint.qformat import QFormat

__all__ = ["VariableSpec", "Variable", "SPECS", "SPEC_BY_NAME", "COUNTERS", "COUNTER_INDEX",
           "STREAM_SITE", "SITE_ORDER", "SITE_INDEX", "RECORDABLE", "RECORD_SHAPES",
           "RECORD_FIELD", "RECORD_VARIABLE", "SWEEP_FIELDS", "STATE_FIELDS",
           "variable_table"]

#: Record shapes: which axes of (B, M, N) a per-step value has.
SHAPES = {"afferent": ("B", "N"), "neuron": ("B", "M"), "synapse": ("B", "M", "N")}


@dataclasses.dataclass(frozen=True)
class VariableSpec:
    """Config-independent declaration of one datapath variable.

    Attributes
    ----------
    name : str
        The variable's name in counters, reports and deploy files.
    short : str
        Prefix of its derived scalar fields (``<short>_bits``, ``<short>_frac``,
        ``<short>_rounding`` on :class:`emulator.discretize.Discretized` and in the
        kernel's constant record).
    key : str
        Config section holding its format.
    signed : bool
    unit : str
        Physical unit of the real value ``code * 2**-frac``.
    bits_from : str
        How the width is found: ``'bits'`` (the section's ``bits`` key), ``'frac+1'``
        (an unsigned fraction that includes 1.0: sigma) or ``'frac+2'`` (a signed value
        with ``|v| <= 1``: the error).
    rounding_from : str
        The section's rounding key, or a fixed mode prefixed by ``'='``.
    sites : tuple of (site, stream)
        Its stochastic-rounding sites and their counter-RNG streams.
    counters : tuple of str
        Event kinds counted on it (``'saturation'``, ``'underflow'``).
    records : tuple of (record name, shape, State field)
        Quantities that :func:`emulator.run` can record (shape from :data:`SHAPES`).
    sweep : tuple of (friendly name, config key, companion key or None, doc)
        ``natgrad sweep --vary`` fields.
    """

    name: str
    short: str
    key: str
    signed: bool
    unit: str
    bits_from: str = "bits"
    rounding_from: str = "rounding"
    sites: tuple = ()
    counters: tuple = ()
    records: tuple = ()
    sweep: tuple = ()
    accumulator: bool = False   #: stored with ``extra_frac`` hidden bits below its LSB


#: The declarations, in datapath order (docs/model.md#step-order; docs/datapath.md steps 1-10).
SPECS: tuple[VariableSpec, ...] = (
    VariableSpec("traces", "trace", "traces", False, "spike counts",
                 sites=(("trace", rng.STREAM_TRACE),), counters=("saturation",),
                 records=(("trace_m", "afferent", "a_m"), ("trace_s", "afferent", "a_s")),
                 sweep=(("trace_bits", "traces.bits", "traces.frac",
                         "trace width; traces.frac moves with it (max trace and impulse fit fixed)"),
                        ("decay_bits", "traces.decay_frac", None,
                         "fractional bits of the trace decay factors"))),
    VariableSpec("usp", "usp", "usp", True, "mV",
                 sites=(("usp", 16),), counters=("saturation",),
                 records=(("usp", "afferent", "x"),),
                 sweep=(("usp_bits", "usp.bits", "usp.frac", "USP width; usp.frac moves with it"),)),
    VariableSpec("potential", "v", "potential", True, "mV",
                 sites=(("potential", 17),), counters=("saturation",),
                 records=(("potential", "neuron", "v"),),
                 sweep=(("potential_bits", "potential.bits", "potential.frac",
                         "membrane-potential width; potential.frac moves with it"),)),
    VariableSpec("sigma", "sigma", "sigmoid", False, "1", bits_from="frac+1",
                 rounding_from="=half_up",
                 records=(("sigma", "neuron", "sigma"),),
                 sweep=(("sigmoid_bits", "sigmoid.frac", None, "fractional bits of sigma(V)"),
                        ("sigmoid_lut_bits", "sigmoid.lut_bits", None,
                         "log2 entries of the sigmoid table"))),
    VariableSpec("error", "err", "error", True, "1 per bin", bits_from="frac+2",
                 rounding_from="=half_up",
                 records=(("error", "neuron", "err"),),
                 sweep=(("error_bits", "error.frac", None, "fractional bits of the error e"),)),
    VariableSpec("gamma_s", "gamma", "gamma_s", False, "1", rounding_from="=half_up",
                 counters=("saturation",),
                 records=(("gamma_s", "neuron", "gamma"),),
                 sweep=(("gamma_bits", "gamma_s.bits", "gamma_s.frac",
                         "gamma_s width; gamma_s.frac moves with it"),)),
    VariableSpec("post", "post", "post", True, "1",
                 sites=(("post", 21),), counters=("saturation",),
                 records=(("post", "neuron", "post"),),
                 sweep=(("post_bits", "post.bits", "post.frac",
                         "post-factor width; post.frac moves with it"),)),
    VariableSpec("bracket", "bracket", "bracket", True, "1",
                 sites=(("homo", 18), ("cw_v", 19), ("hetero", 20)), counters=("saturation",),
                 sweep=(("bracket_bits", "bracket.bits", "bracket.frac",
                         "bracket width; bracket.frac moves with it"),)),
    VariableSpec("weights", "w", "weights", True, "1",
                 sites=(("weights", rng.STREAM_ROUND),), counters=("saturation", "underflow"),
                 records=(("weights", "synapse", "acc"),), accumulator=True,
                 sweep=(("weight_bits", "weights.bits", "weights.frac",
                         "visible weight width; weights.frac moves with it (max |w| fixed)"),)),
)

SPEC_BY_NAME = {s.name: s for s in SPECS}

#: (variable, kind) pairs counted by the datapath, in this order in ``State.counts``.
COUNTERS = tuple((s.name, kind) for s in SPECS for kind in s.counters)
COUNTER_INDEX = {pair: i for i, pair in enumerate(COUNTERS)}

#: Rounding site -> counter-RNG stream.
STREAM_SITE = {site: stream for s in SPECS for site, stream in s.sites}
#: Sites in a fixed order (the kernel's per-step stream-prefix table), plus the student's
#: output spike draw, which is not a rounding site but a stream of its own.
SITE_ORDER = tuple(STREAM_SITE) + ("student",)
SITE_INDEX = {site: i for i, site in enumerate(SITE_ORDER)}
_SITE_STREAMS = dict(STREAM_SITE, student=rng.STREAM_STUDENT)
SITE_STREAMS = tuple(_SITE_STREAMS[s] for s in SITE_ORDER)

#: Recordable quantities, their shapes, State fields and owning variables.
RECORDABLE = tuple(r[0] for s in SPECS for r in s.records)
RECORD_SHAPES = {r[0]: SHAPES[r[1]] for s in SPECS for r in s.records}
RECORD_FIELD = {r[0]: r[2] for s in SPECS for r in s.records}
RECORD_VARIABLE = {r[0]: s.name for s in SPECS for r in s.records}
#: State fields of per-step values (recordable ones), in declaration order.
STATE_FIELDS = tuple(RECORD_FIELD[r] for r in RECORDABLE)

#: natgrad sweep's friendly fields: name -> (config key, companion key or None, doc).
SWEEP_FIELDS = {f[0]: f[1:] for s in SPECS for f in s.sweep}


@dataclasses.dataclass(frozen=True)
class Variable:
    """One datapath variable of a discretized config: its declaration and its format.

    ``fmt`` is the visible format; the weights' accumulator has ``extra_frac`` more
    fractional (hidden) bits, ``acc_fmt``.
    """

    spec: VariableSpec
    fmt: QFormat
    rounding: str
    extra_frac: int = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def lsb(self) -> float:
        """Real value of one LSB (``2**-frac``)."""
        return self.fmt.resolution

    @property
    def acc_fmt(self) -> QFormat:
        return QFormat(self.fmt.bits + self.extra_frac, self.fmt.frac + self.extra_frac,
                       self.fmt.signed)

    def describe(self) -> dict:
        """bits, frac, signed, lsb, representable [lo, hi], unit and rounding (reports,
        ``check-config``, deploy)."""
        f = self.fmt
        return {"bits": f.bits, "frac": f.frac, "signed": f.signed, "lsb": self.lsb,
                "lo": f.min, "hi": f.max, "unit": self.spec.unit, "rounding": self.rounding,
                "format": f"{'S' if f.signed else 'U'}{f.bits}.{f.frac}",
                "extra_frac": self.extra_frac}


def _width(spec: VariableSpec, sec: dict) -> int:
    if spec.bits_from == "bits":
        return int(sec["bits"])
    if spec.bits_from == "frac+1":
        return int(sec["frac"]) + 1
    if spec.bits_from == "frac+2":
        return int(sec["frac"]) + 2
    raise ValueError(f"unknown bits_from {spec.bits_from!r}")


def variable_table(cfg) -> dict[str, Variable]:
    """Format and rounding of every variable of ``cfg`` (a ``kind: fixed`` config)."""
    out = {}
    for spec in SPECS:
        sec = cfg[spec.key]
        rnd = spec.rounding_from[1:] if spec.rounding_from.startswith("=") \
            else sec[spec.rounding_from]
        out[spec.name] = Variable(spec, QFormat(_width(spec, sec), int(sec["frac"]), spec.signed),
                                  rnd, int(sec.get("extra_frac", 0)))
    return out
