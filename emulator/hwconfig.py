"""Hardware configs: load and validate ``hw_configs/*.yaml``.

A config names the number format and rounding of every state variable of the integer
datapath of the approximate natural-gradient rule (see ``docs/datapath.md``).  The schema
is the table :data:`SCHEMA` below; ``hw_configs/README.md`` documents it for users.

Validation is strict: unknown keys, missing keys, wrong types and out-of-range values are
rejected with a one-line :class:`ConfigError` naming the file, the dotted key and the
allowed values.
"""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import yaml

ROUNDING_MODES = ("floor", "trunc", "half_up", "half_even", "stochastic")
#: Config kinds: the integer datapath of docs/datapath.md, the learning-engine model of
#: docs/learning_engine.md, the float64 reference.
KINDS = ("fixed", "learning_engine", "float64")

CONFIG_DIR = Path(__file__).resolve().parent.parent / "hw_configs"


class ConfigError(ValueError):
    """A hardware config is invalid; the message is one line naming file and key."""


@dataclasses.dataclass(frozen=True)
class Field:
    """One schema entry: python type, inclusive numeric range or allowed choices."""

    kind: type
    lo: float | None = None
    hi: float | None = None
    choices: tuple | None = None
    doc: str = ""
    auto: bool = False          #: the string 'auto' is also allowed (chosen per task)
    nullable: bool = False      #: null (None) is also allowed

    def allowed(self) -> str:
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            name = {int: "an integer", float: "a number", str: "a string",
                    bool: "a boolean"}[self.kind]
            text = f"{name} in [{self.lo}, {self.hi}]" if self.lo is not None else name
        text = text + " or 'auto'" if self.auto else text
        return text + " or null" if self.nullable else text


def _rounding(doc):
    return Field(str, choices=ROUNDING_MODES, doc=doc)


#: The full schema of a fixed-point config.  ``kind: float64`` configs need only
#: ``name``, ``kind`` and optionally ``description`` and ``rule``.
SCHEMA: dict[str, Any] = {
    "name": Field(str, doc="short identifier used in reports"),
    "description": Field(str, doc="free text"),
    "kind": Field(str, choices=KINDS, doc="integer datapath (fixed), Loihi 2's learning engine "
                  "(learning_engine) or float64 reference"),
    "target": Field(str, choices=("generic", "loihi1", "loihi2"),
                    doc="chip the config is deployed to (optional, default generic); natgrad "
                        "deploy adds that chip's blocks, e.g. loihi2's learning-engine rule"),
    "traces": {
        "bits": Field(int, 2, 32, doc="unsigned width of the presynaptic traces a_m, a_s"),
        "frac": Field(int, 0, 31, doc="fractional bits; one spike adds 2**frac"),
        "decay_frac": Field(int, 4, 24, doc="fractional bits of the decay factors exp(-dt/tau)"),
        "rounding": _rounding("rounding of a * decay back to the trace grid"),
    },
    "usp": {
        "bits": Field(int, 4, 40, doc="signed width of x = (a_m - a_s)/(tau_m - tau_s) in mV"),
        "frac": Field(int, 0, 32, doc="fractional bits of x"),
        "rounding": _rounding("rounding when scaling the trace difference"),
    },
    "weights": {
        "bits": Field(int, 2, 48, doc="signed width of the visible weight w"),
        "frac": Field(int, 0, 60, doc="fractional bits of w (may exceed bits: small-range weights)"),
        "extra_frac": Field(int, 0, 32, doc="hidden accumulator bits below the visible weight LSB"),
        "rounding": _rounding("rounding of each update dw onto the accumulator grid"),
    },
    "potential": {
        "bits": Field(int, 4, 40, doc="signed width of V in mV"),
        "frac": Field(int, 0, 40, doc="fractional bits of V"),
        "rounding": _rounding("rounding of the wide sum of w*x onto V"),
    },
    "sigmoid": {
        "lut_bits": Field(int, 2, 16, doc="log2 of the number of LUT entries over the V range"),
        "frac": Field(int, 2, 30, doc="fractional bits of sigma(V) and 1 - sigma(V)"),
        "interpolate": Field(bool, doc="linear interpolation between LUT entries"),
    },
    "error": {
        "frac": Field(int, 2, 30, doc="fractional bits of e = y - phi_max*dt*sigma"),
    },
    "gamma_s": {
        "bits": Field(int, 4, 32, doc="unsigned width of gamma_s"),
        "frac": Field(int, 0, 24, doc="fractional bits of gamma_s"),
        "m_lut_bits": Field(int, 2, 12, doc="log2 entries of the 2-D table along m in [-32, 32) mV"),
        "v_lut_bits": Field(int, 2, 12, doc="log2 entries along v in [0, 64) mV^2"),
        "epoch_steps": Field(int, 1, 10**7, doc="steps between recomputations of gamma_s from (m, v)"),
    },
    "bracket": {
        "bits": Field(int, 4, 48, doc="signed width of B = c_eps x/r - c_eps c_u + c_w V w"),
        "frac": Field(int, 2, 48, doc="fractional bits of B"),
        "rounding": _rounding("rounding of each bracket term"),
    },
    "constants": {
        "mant_bits": Field(int, 4, 20, doc="signed mantissa width of every float constant "
                           "(1/(tau_m-tau_s), c_eps/r_i, c_w, phi_max*dt, eta); each has its own exponent"),
    },
    "post": {
        "bits": Field(int, 4, 63, doc="signed width of P = eta*beta*gamma_s*(1-sigma)*e"),
        "frac": Field(int, 2, 62, doc="fractional bits of P"),
        "rounding": _rounding("rounding of the post factor"),
    },
}

#: The schema of a ``kind: learning_engine`` config: Lava 0.10's LearningDense (``engine``),
#: the learning neuron (``neuron``) and the rule's discretization onto them (``mapping``).
#: Keys are the fields of :class:`emulator.learning.constants.EngineSpec`, ``NeuronSpec``
#: and ``MappingSpec`` (``tests/emulator/test_hwconfig.py`` checks that they agree).
LE_SCHEMA: dict[str, Any] = {
    "name": SCHEMA["name"], "description": SCHEMA["description"], "kind": SCHEMA["kind"],
    "target": SCHEMA["target"],
    "engine": {
        "trace_bits": Field(int, 2, 16, doc="width of the traces x1, x2, y1..y3 and third factors (Lava W_TRACE = 7)"),
        "synaptic_bits": Field(int, 2, 16, doc="width of w, d, t incl. sign (Lava 9)"),
        "scale_mant_bits": Field(int, 1, 8, doc="mantissa width of a product's scale (Lava W_S_MANT = 4)"),
        "accumulator_bits": Field(int, 8, 30, doc="magnitude bits of the update accumulator (Lava W_ACCUMULATOR_U = 15)"),
        "acc_shift": Field(int, 0, 16, doc="accumulator = w << acc_shift: bits below the weight LSB within an epoch (Lava 7)"),
        "y_tau": Field(int, 1, 65535, doc="decay time constant of the post traces in steps (Loihi3FLearningRule: 65535)"),
        "t_epoch": Field(int, 1, 64, doc="time steps per learning epoch"),
        "weight_rounding": Field(str, choices=("shared", "per_synapse"),
                                 doc="stochastic rounding of the weights: one random number per epoch for all synapses (Lava) or per synapse (idealization)"),
        "trace_rounding": Field(str, choices=("shared", "per_synapse"),
                                doc="stochastic rounding of the trace decay: one random per step for all traces (Lava) or per synapse (idealization)"),
        "sr_seed": Field(int, 0, 2**31 - 1, doc="seed of the weight-rounding generator (Lava ConnVarRandom: 2)"),
    },
    "neuron": {
        "filter_frac": Field(int, 0, 24, doc="fractional bits of the current filters (unit: weight LSB * spike)"),
        "decay_frac": Field(int, 4, 24, doc="fractional bits of the filter decays"),
        "v_frac": Field(int, 0, 24, doc="fractional bits of V (mV)"),
        "v_bits": Field(int, 4, 32, doc="signed width of V"),
        "sigma_frac": Field(int, 4, 24, doc="fractional bits of sigma, 1 - sigma"),
        "sigma_span_mv": Field(int, 1, 512, doc="sigma table over V in [-span, span) mV"),
        "sigma_node_frac": Field(int, 0, 8, doc="table nodes every 2**-node_frac mV"),
        "sigma_interpolate": Field(bool, doc="linear interpolation between sigma table nodes"),
        "error_frac": Field(int, 2, 24, doc="fractional bits of e = y - phi_max dt sigma"),
        "hbar_frac": Field(int, 8, 40, doc="fractional bits of the running mean of sigma (1 - sigma)^2"),
        "hbar_tau_shift": Field(int, 1, 20, doc="its time constant: 2**shift steps"),
        "gamma_every": Field(int, 1, 10**6, doc="steps between refreshes of gamma_s"),
        "gamma_frac": Field(int, 0, 24, doc="fractional bits of gamma_s"),
        "gamma_bits": Field(int, 4, 40, doc="unsigned width of gamma_s"),
        "prob_frac": Field(int, 8, 40, doc="fractional bits of the event probability"),
        "mant_bits": Field(int, 4, 20, doc="mantissa width of the neuron's constants"),
        "g_cap": Field(float, 0.1, 1000.0, doc="gamma_s (1 - sigma) abs(e) that the largest step (one event, or the top level) carries; beyond it the excess is carried to the next steps"),
        "carry_bits": Field(int, 8, 62, doc="signed width of the carry of post amounts not sent yet (units 2**-prob_frac of a step unit)"),
        "word_bits": Field(int, 16, 62, doc="the learning neuron's word: every state variable and intermediate is one signed (magnitudes: unsigned) word, products are double words shifted back (Loihi 2: 24); each format must fit it"),
    },
    "mapping": {
        "w_frac": Field(int, 0, 40, auto=True, doc="weight LSB 2**-w_frac (LearningDense weight exponent); auto: the task's initial weights and its expected weight range use at least 6 of the 8 mantissa bits with headroom (never the teacher's weights)"),
        "k_x": Field(int, 1, 127, auto=True, doc="presynaptic trace impulse per spike; auto: the largest within the traces' headroom whose tags land on the exact tag grid"),
        "c_ev": Field(float, 2.0**-10, 2**20, auto=True, doc="accumulator units of one event's (events) or one negative level's (graded) constant term; euclid: per trace count"),
        "v_range_mv": Field(float, 1.0, 128.0, auto=True, doc="range of abs(V) that y3 = 64 + Vq covers (mV); auto: abs(m) + 4 sd of V at the initial weights and over weights uniform in the expected weight range"),
        "tag_step": Field(int, 1, 64, auto=True, doc="tag quantum: 16 (events) or 32 (graded) makes the homosynaptic products exact"),
        "hidden_bits": Field(int, 0, 6, auto=True, doc="update bits kept below the weight LSB in synaptic tag 2 (d) and carried into the weight; auto: the most whose tag 2 holds the largest step of either sign (needs flush_log2 null)"),
        "flush_log2": Field(int, 0, 9, nullable=True, doc="null: the tag's whole LSBs are carried into the weight every epoch; k: the whole tag is flushed every 2**k epochs (Lava's u<k>)"),
        "encoding": Field(str, choices=("events", "graded", "auto"), doc="third factors: 'events' (one fixed-size event, probability abs(P)/E_q) or 'graded' (a level 0..levels per epoch on y1, the sign on the bap); auto: graded where possible"),
        "levels": Field(int, 1, 127, doc="graded: the top level (y_unit * levels must fit the 7-bit trace)"),
        "unit_ratio": Field(int, choices=(1, 3, 7), doc="graded: positive level / negative level (the bap's products carry unit_ratio + 1 times the u0 ones)"),
        "y_unit": Field(int, 1, 127, auto=True, doc="graded: y1 per level, a power of two; auto: the largest with y_unit * levels <= 127"),
        "rule": Field(str, choices=("approx", "euclid"), doc="rule mapped onto the engine: the approximate natural gradient or the Euclidean rule"),
        "tag_offset": Field(int, 1, 254, auto=True, doc="hidden bits: tag_2 = tag_offset + residual (tag_2 is 0..255); auto: 128 for events; graded: room below for the largest negative step, the rest above for the larger bap steps"),
    },
}

_OPTIONAL_TOP = {"description", "target"}


def _fmt_value(v) -> str:
    return repr(v) if not isinstance(v, str) else f"'{v}'"


def _check(value, spec: Field, where: str, key: str):
    if spec.auto and value == "auto":
        return value
    if spec.nullable and value is None:
        return value
    kind_ok = isinstance(value, spec.kind) and not (spec.kind in (int, float) and isinstance(value, bool))
    if spec.kind is float and isinstance(value, int) and not isinstance(value, bool):
        kind_ok, value = True, float(value)
    if not kind_ok:
        raise ConfigError(f"{where}: key '{key}' must be {spec.allowed()} (got {_fmt_value(value)})")
    if spec.choices is not None and value not in spec.choices:
        raise ConfigError(f"{where}: key '{key}' must be {spec.allowed()} (got {_fmt_value(value)})")
    if spec.lo is not None and not (spec.lo <= value <= spec.hi):
        raise ConfigError(f"{where}: key '{key}' must be {spec.allowed()} (got {_fmt_value(value)})")
    return value


def _validate(tree: dict, schema: dict, where: str, prefix: str, required: set[str] | None) -> dict:
    if not isinstance(tree, dict):
        raise ConfigError(f"{where}: key '{prefix.rstrip('.') or '<top>'}' must be a mapping")
    out = {}
    for key in tree:
        if key not in schema:
            raise ConfigError(
                f"{where}: unknown key '{prefix}{key}' (allowed: {', '.join(schema)})")
    for key, spec in schema.items():
        if required is not None and key not in required and key not in tree:
            continue
        if key not in tree:
            if key in _OPTIONAL_TOP and not prefix:
                continue
            raise ConfigError(f"{where}: missing key '{prefix}{key}'")
        if isinstance(spec, dict):
            out[key] = _validate(tree[key], spec, where, f"{prefix}{key}.", None)
        else:
            out[key] = _check(tree[key], spec, where, prefix + key)
    return out


@dataclasses.dataclass(frozen=True)
class HwConfig:
    """A validated hardware config; sections are plain dicts of validated values."""

    name: str
    kind: str
    source: str
    tree: dict

    @property
    def is_float(self) -> bool:
        return self.kind == "float64"

    @property
    def is_learning_engine(self) -> bool:
        return self.kind == "learning_engine"

    @property
    def is_fixed(self) -> bool:
        """The integer datapath of docs/datapath.md (``kind: fixed``)."""
        return self.kind == "fixed"

    @property
    def schema(self) -> dict:
        return LE_SCHEMA if self.is_learning_engine else SCHEMA

    @property
    def target(self) -> str:
        """Deployment target chip (``generic`` unless the config says otherwise)."""
        return self.tree.get("target", "generic")

    def __getitem__(self, section: str) -> dict:
        return self.tree[section]

    def with_overrides(self, **dotted) -> "HwConfig":
        """Return a copy with ``{'weights.bits': 12, ...}`` applied and re-validated."""
        tree = copy.deepcopy(self.tree)
        for key, value in dotted.items():
            section, _, field = key.partition(".")
            schema = self.schema
            if section not in schema or not isinstance(schema[section], dict) or field not in schema[section]:
                raise ConfigError(f"{self.source}: unknown key '{key}'")
            tree.setdefault(section, {})[field] = value
        return validate(tree, self.source)


def _cross_checks(tree: dict, where: str):
    tr = tree["traces"]
    if tr["frac"] >= tr["bits"]:
        raise ConfigError(f"{where}: key 'traces.frac' must be < traces.bits={tr['bits']} "
                          f"so that one spike (2**frac) fits (got {tr['frac']})")
    # Every product the datapath forms must fit a signed 64-bit register.
    pairs = [("weights.bits", "usp.bits"), ("weights.bits", "potential.bits"),
             ("post.bits", "bracket.bits"), ("bracket.bits", "weights.bits"), ("traces.bits", "constants.mant_bits"),
             ("usp.bits", "constants.mant_bits"), ("potential.bits", "constants.mant_bits")]
    for a, b in pairs:
        va = tree[a.split(".")[0]][a.split(".")[1]]
        vb = tree[b.split(".")[0]][b.split(".")[1]]
        if va + vb > 64:
            raise ConfigError(f"{where}: key '{a}' + '{b}' must be <= 64 so their product fits "
                              f"a 64-bit register (got {va} + {vb})")
    if tree["sigmoid"]["lut_bits"] > tree["potential"]["bits"]:
        raise ConfigError(f"{where}: key 'sigmoid.lut_bits' must be <= potential.bits="
                          f"{tree['potential']['bits']} (got {tree['sigmoid']['lut_bits']})")
    w = tree["weights"]
    if w["bits"] + w["extra_frac"] > 62:
        raise ConfigError(f"{where}: key 'weights.extra_frac' must be <= {62 - w['bits']} "
                          f"so the accumulator fits 62 bits (got {w['extra_frac']})")


def _le_cross_checks(tree: dict, where: str):
    """The learning neuron's formats must fit its word (``neuron.word_bits``)."""
    from emulator.learning.constants import NeuronSpec, neuron_word_problems
    mp = tree["mapping"]
    graded = mp["encoding"] in ("graded", "auto")
    bad = neuron_word_problems(NeuronSpec(**tree["neuron"]), mp["levels"] if graded else 1,
                               mp["unit_ratio"] if graded else 1)
    if bad:
        raise ConfigError(f"{where}: key '{bad[0].split(':')[0]}' {bad[0].split(': ', 1)[1]}")


def validate(tree: dict, where: str = "<config>") -> HwConfig:
    """Validate a raw config mapping; raise :class:`ConfigError` on the first problem."""
    if not isinstance(tree, dict):
        raise ConfigError(f"{where}: top level must be a mapping of keys to values")
    kind = tree.get("kind")
    top = {k: v for k, v in SCHEMA.items()}
    if kind == "float64":
        out = _validate(tree, {k: top[k] for k in ("name", "description", "kind")}, where, "",
                        None)
        extra = set(tree) - {"name", "description", "kind"}
        if extra:
            raise ConfigError(f"{where}: unknown key '{sorted(extra)[0]}' for kind 'float64' "
                              "(allowed: name, description, kind)")
    elif kind == "learning_engine":
        out = _validate(tree, LE_SCHEMA, where, "", None)
        _le_cross_checks(out, where)
    else:
        out = _validate(tree, top, where, "", None)
        _cross_checks(out, where)
    return HwConfig(name=out["name"], kind=out["kind"], source=where, tree=out)


def resolve_path(path_or_name: str | Path) -> Path:
    """Accept a path, or a bare name such as ``loihi2`` found in ``hw_configs/``."""
    p = Path(path_or_name)
    if p.exists():
        return p
    candidate = CONFIG_DIR / f"{path_or_name}.yaml"
    if candidate.exists():
        return candidate
    return p


#: A config is a page of YAML; anything far larger is the wrong file.
MAX_CONFIG_BYTES = 1 << 20


def load(path_or_name: str | Path) -> HwConfig:
    """Load and validate a YAML config file (or a bundled config by name)."""
    path = resolve_path(path_or_name)
    where = str(path)
    try:
        # Only regular files of config size: /dev/zero or a FIFO would never end.
        if path.exists() and not path.is_dir() and not path.is_file():
            raise ConfigError(f"{where}: not a regular file")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        hint = ""
        if not path.exists():
            names = ", ".join(sorted(p.stem for p in bundled_configs()))
            hint = f"; give a config file or a bundled name: {names}"
        raise ConfigError(f"{where}: cannot read config ({exc.strerror or exc}){hint}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{where}: larger than {MAX_CONFIG_BYTES // 1024} KiB: not a config")
    try:
        text = raw.decode("utf-8")      # YAML configs are UTF-8 (ASCII in practice)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not a UTF-8 text file (byte 0x{raw[exc.start]:02x} at "
                          f"offset {exc.start}); a config is YAML text") from None
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(_one_line(f"{where}: not valid YAML{line}")) from None
    except RecursionError:
        raise ConfigError(_one_line(f"{where}: YAML nested too deeply for a config")) from None
    try:
        return validate(tree, where)
    except ConfigError as exc:
        # Values are quoted into messages as they are: keep the message one line (a string
        # value with a newline) and short (a huge list).
        raise ConfigError(_one_line(str(exc))) from None


def _one_line(text: str, limit: int = 400) -> str:
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def bundled_configs() -> list[Path]:
    """All configs shipped in ``hw_configs/``."""
    return sorted(CONFIG_DIR.glob("*.yaml"))
