"""Which oracle and equivalence tests exercise each config option.

Every leaf of both config schemas (:data:`emulator.hwconfig.SCHEMA`, ``kind: fixed``, and
:data:`emulator.hwconfig.LE_SCHEMA`, ``kind: learning_engine``), enumerated from the schema
itself by :func:`schema_options`, must have a row in :data:`ROWS`
(``tests/test_option_coverage.py`` fails otherwise, so a new option cannot arrive without
saying how it is checked).  A row names

* ``oracle``: the independent-oracle tests that run the option (aliases of :data:`TESTS`);
  the values those oracles actually run it at are not written here but read off their
  designs (:func:`oracle_values`), and the test checks that every option with an oracle
  runs at more than one value (every choice of a choice field, 'auto' and a fixed value of
  an 'auto' field);
* ``equivalence``: the twin (numpy == numba), Lava and golden-hash tests that also run it;
* ``why``: for an option without oracle coverage, why (required then).

``tests/conftest.py`` prints the table at the end of a pytest run that included these
tests, with how many of each row's tests passed in that run.
"""
from __future__ import annotations

import dataclasses

from emulator.hwconfig import LE_SCHEMA, SCHEMA, Field, load

#: alias -> the test node ids (``file::function``, a prefix of the parametrized ids) it
#: stands for.  Oracles first, then equivalence tests.
TESTS = {
    # independent oracles
    "LEO": ("tests/emulator/learning/test_le_oracle.py::test_oracle_equals_numpy_steps_every_step",
            "tests/emulator/learning/test_le_oracle.py::test_oracle_equals_numba_backend_every_step",
            "tests/emulator/learning/test_le_oracle.py::test_option_design_oracle_equals_numpy_every_step",
            "tests/emulator/learning/test_le_oracle.py::test_option_design_oracle_equals_numba_every_step"),
    "LEO-sat": ("tests/emulator/learning/test_le_oracle.py::test_oracle_equals_numpy_on_constructed_states",),
    "TAGS": ("tests/emulator/learning/test_tag_quantization.py::test_tags_equal_the_closed_form",
             "tests/emulator/learning/test_tag_quantization.py::test_quantized_tags_make_every_homosynaptic_product_exact"),
    "DPO": ("tests/emulator/test_oracle_datapath.py::test_oracle_equals_numpy_and_numba_every_step",
            "tests/emulator/test_oracle_datapath.py::test_oracle_on_constructed_saturating_states"),
    "DPO-round": ("tests/emulator/test_oracle_datapath.py::test_every_rounding_mode_every_step",),
    "DPO-tables": ("tests/emulator/test_oracle_datapath.py::test_sigmoid_table_and_constants_are_the_closed_forms",
                   "tests/emulator/test_oracle_datapath.py::test_gamma_table_against_quadrature"),
    # equivalence: twins, Lava, golden hashes
    "LE-twin": ("tests/lava_procs/test_lava_path2_engine.py::test_numba_kernel_equals_numpy_steps",
                "tests/lava_procs/test_lava_path2.py::test_numba_kernel_equals_numpy_steps"),
    "LE-lava": ("tests/lava_procs/test_lava_path2.py::test_lava_equals_emulator_bit_for_bit",
                "tests/lava_procs/test_lava_path2.py::test_lava_equals_emulator_on_graded_designs",
                "tests/lava_procs/test_lava_path2_engine.py::test_lava_equals_emulator_with_4_step_epochs",
                "tests/lava_procs/test_lava_path2_engine.py::test_lava_equals_emulator_with_hidden_bits",
                "tests/lava_procs/test_lava_path2_engine.py::test_lava_equals_emulator_with_hidden_bits_carry"),
    "LE-golden": ("tests/emulator/test_golden.py::test_learning_engine_golden",),
    "DP-twin": ("tests/emulator/test_stages.py", "tests/emulator/test_emulator_backends.py::test_numba_equals_numpy"),
    "DP-lava": ("tests/lava_procs/test_lava_path1.py::test_fixed_pt_equals_emulator_bit_for_bit",),
    "DP-golden": ("tests/emulator/test_golden.py::test_datapath_golden",),
    "deploy": ("tests/natgrad/test_deploy.py", "tests/lava_procs/test_deployment.py"),
    "config": ("tests/emulator/test_hwconfig.py", "tests/emulator/test_config_fuzz.py"),
}


@dataclasses.dataclass(frozen=True)
class Row:
    oracle: tuple = ()
    equivalence: tuple = ()
    why: str = ""                 #: required when ``oracle`` is empty
    #: why the oracles run the option at one value / not every choice (else they must)
    one_value: str = ""


def schema_options() -> list[tuple[str, str, Field]]:
    """(kind, dotted key, Field) of every leaf of both schemas, in schema order."""
    out = []

    def walk(kind, tree, prefix):
        for key, spec in tree.items():
            if isinstance(spec, Field):
                out.append((kind, prefix + key, spec))
            else:
                walk(kind, spec, f"{prefix}{key}.")
    walk("fixed", SCHEMA, "")
    walk("learning_engine", LE_SCHEMA, "")
    return out


# ---------------------------------------------------------------------------- the rows
_DP = Row(oracle=("DPO", "DPO-round"), equivalence=("DP-twin", "DP-lava", "DP-golden"))
_DP_ROUND = Row(oracle=("DPO-round", "DPO"), equivalence=("DP-twin", "DP-lava", "DP-golden"))
_DP_TABLE = Row(oracle=("DPO", "DPO-tables"), equivalence=("DP-twin", "DP-golden"))
_LE = Row(oracle=("LEO",), equivalence=("LE-twin", "LE-golden"))
_LE_LAVA = Row(oracle=("LEO",), equivalence=("LE-twin", "LE-lava", "LE-golden"))
#: widths whose rails the constructed states hit (every saturation counter)
_LE_SAT = Row(oracle=("LEO", "LEO-sat"), equivalence=("LE-twin", "LE-lava", "LE-golden"))
_LE_TAGS = Row(oracle=("LEO", "TAGS"), equivalence=("LE-twin", "LE-lava", "LE-golden"))
_KIND = ("each oracle runs the kind it models: fixed (DPO), learning_engine (LEO); float64 is "
         "the reference itself (tests/emulator/test_reference_rules.py)")
_NAME = Row(equivalence=("config",), why="a label: reports and file names only, no arithmetic")
_DESC = Row(equivalence=("config",), why="free text, no arithmetic")
_TARGET = Row(equivalence=("deploy", "config"),
              why="selects what natgrad deploy writes (the chip's blocks), not the arithmetic")

ROWS: dict[tuple[str, str], Row] = {
    ("fixed", "name"): _NAME,
    ("fixed", "description"): _DESC,
    ("fixed", "kind"): Row(oracle=("DPO", "LEO"), equivalence=("DP-twin", "LE-twin", "config"),
                           one_value=_KIND),
    ("fixed", "target"): _TARGET,
    ("fixed", "traces.bits"): _DP,
    ("fixed", "traces.frac"): _DP,
    ("fixed", "traces.decay_frac"): _DP,
    ("fixed", "traces.rounding"): _DP_ROUND,
    ("fixed", "usp.bits"): _DP,
    ("fixed", "usp.frac"): _DP,
    ("fixed", "usp.rounding"): _DP_ROUND,
    ("fixed", "weights.bits"): _DP,
    ("fixed", "weights.frac"): _DP,
    ("fixed", "weights.extra_frac"): _DP,
    ("fixed", "weights.rounding"): _DP_ROUND,
    ("fixed", "potential.bits"): _DP,
    ("fixed", "potential.frac"): _DP,
    ("fixed", "potential.rounding"): _DP_ROUND,
    ("fixed", "sigmoid.lut_bits"): _DP_TABLE,
    ("fixed", "sigmoid.frac"): _DP_TABLE,
    ("fixed", "sigmoid.interpolate"): _DP_ROUND,
    ("fixed", "error.frac"): _DP,
    ("fixed", "gamma_s.bits"): _DP_TABLE,
    ("fixed", "gamma_s.frac"): _DP_TABLE,
    ("fixed", "gamma_s.m_lut_bits"): _DP_TABLE,
    ("fixed", "gamma_s.v_lut_bits"): _DP_TABLE,
    ("fixed", "gamma_s.epoch_steps"): _DP,
    ("fixed", "bracket.bits"): _DP,
    ("fixed", "bracket.frac"): _DP,
    ("fixed", "bracket.rounding"): _DP_ROUND,
    ("fixed", "constants.mant_bits"): _DP_TABLE,
    ("fixed", "post.bits"): _DP,
    ("fixed", "post.frac"): _DP,
    ("fixed", "post.rounding"): _DP_ROUND,
    ("learning_engine", "name"): _NAME,
    ("learning_engine", "description"): _DESC,
    ("learning_engine", "kind"): Row(oracle=("LEO", "DPO"), equivalence=("LE-twin", "config"),
                                     one_value=_KIND),
    ("learning_engine", "target"): _TARGET,
    ("learning_engine", "engine.trace_bits"): _LE,
    ("learning_engine", "engine.synaptic_bits"): Row(oracle=("LEO", "LEO-sat"),
                                                     equivalence=("LE-twin", "LE-golden")),
    ("learning_engine", "engine.scale_mant_bits"): _LE,
    ("learning_engine", "engine.accumulator_bits"): Row(oracle=("LEO", "LEO-sat"),
                                                        equivalence=("LE-twin", "LE-golden")),
    ("learning_engine", "engine.acc_shift"): _LE,
    ("learning_engine", "engine.y_tau"): _LE,
    ("learning_engine", "engine.t_epoch"): Row(oracle=("LEO",),
                                               equivalence=("LE-twin", "LE-lava")),
    ("learning_engine", "engine.weight_rounding"): _LE,
    ("learning_engine", "engine.trace_rounding"): _LE,
    ("learning_engine", "engine.sr_seed"): _LE,
    **{("learning_engine", f"neuron.{f}"): _LE_LAVA
       for f in ("filter_frac", "decay_frac", "v_frac", "sigma_frac", "sigma_span_mv",
                 "sigma_node_frac", "sigma_interpolate", "error_frac", "hbar_frac",
                 "hbar_tau_shift", "gamma_every", "gamma_frac", "prob_frac", "mant_bits")},
    **{("learning_engine", f"neuron.{f}"): _LE_SAT
       for f in ("v_bits", "gamma_bits", "g_cap", "carry_bits", "word_bits")},
    ("learning_engine", "mapping.w_frac"): _LE_LAVA,
    ("learning_engine", "mapping.k_x"): _LE_TAGS,
    ("learning_engine", "mapping.c_ev"): _LE_TAGS,
    ("learning_engine", "mapping.v_range_mv"): _LE_LAVA,
    ("learning_engine", "mapping.tag_step"): _LE_TAGS,
    ("learning_engine", "mapping.hidden_bits"): _LE_TAGS,
    ("learning_engine", "mapping.flush_log2"): _LE_TAGS,
    ("learning_engine", "mapping.encoding"): _LE_TAGS,
    ("learning_engine", "mapping.levels"): _LE_TAGS,
    ("learning_engine", "mapping.unit_ratio"): _LE_LAVA,
    ("learning_engine", "mapping.y_unit"): _LE_TAGS,
    ("learning_engine", "mapping.rule"): _LE_LAVA,
    ("learning_engine", "mapping.tag_offset"): _LE_LAVA,
}


# ---------------------------------------------------------------------------- values run
def _leaves(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield prefix + key, value


def oracle_trees() -> dict[str, list[dict]]:
    """kind -> the config trees the oracle tests run (their designs, read from the test
    modules, so the table follows the tests)."""
    import le_oracle as le
    import datapath_cases as dp
    trees = {"learning_engine": [], "fixed": []}
    for name, overrides in le.DESIGNS.items():
        trees["learning_engine"].append(
            load(name.replace("_euclid", "")).with_overrides(**overrides).tree)
    for name in le.OPTION_DESIGNS:
        trees["learning_engine"].append(le.option_config(name).tree)
    for name, overrides in dp.RUN_CASES + dp.ROUNDING_CASES + dp.CONSTRUCTED:
        trees["fixed"].append(dp.read_tree(name, **overrides))
    return trees


def oracle_values() -> dict[tuple[str, str], set]:
    """(kind, option) -> the values the oracle designs run it at."""
    out: dict[tuple[str, str], set] = {}
    for kind, trees in oracle_trees().items():
        for tree in trees:
            for key, value in _leaves(tree):
                out.setdefault((kind, key), set()).add(value)
    return out


def _fmt(values, spec: Field) -> str:
    """The values, short: numbers in order, then 'auto' / null; every choice as 'all N'."""
    if spec.choices is not None and len(spec.choices) > 3 and set(spec.choices) <= set(values):
        return f"all {len(spec.choices)}"

    def one(v):
        return "null" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))
    nums = sorted(v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool))
    rest = sorted((v for v in values if v not in nums), key=one)
    text = ",".join(one(v) for v in nums + rest)
    return text if len(text) <= 26 else text[:23] + "..."


def table(outcomes: dict[str, str] | None = None) -> list[str]:
    """The coverage table as lines.  ``outcomes``: nodeid -> 'passed' / 'failed' /
    'skipped' of this run (each row then says how many of its tests passed)."""
    values = oracle_values()
    lines = [f"{'kind':<6} {'option':<24} {'values in oracles':<26} {'oracle':<15} "
             f"{'equivalence':<26} {'run'}"]
    for kind, key, spec in schema_options():
        row = ROWS.get((kind, key))
        if row is None:
            lines.append(f"{kind[:6]:<6} {key:<24} NO ROW")
            continue
        run = ""
        if outcomes is not None:
            ids = [n for a in row.oracle + row.equivalence for p in TESTS[a]
                   for n in outcomes if n == p or n.startswith(p + "[") or n.startswith(p + "::")]
            ids = sorted(set(ids))
            ok = sum(outcomes[n] == "passed" for n in ids)
            run = f"{ok}/{len(ids)} passed" if ids else "not run"
        oracle = "+".join(row.oracle) if row.oracle else "none: " + row.why
        vals = _fmt(values.get((kind, key), ()), spec) if row.oracle else ""
        lines.append(f"{'fixed' if kind == 'fixed' else 'LE':<6} {key:<24} {vals:<26} "
                     f"{oracle if row.oracle else '-':<15} {'+'.join(row.equivalence):<26} {run}"
                     + ("" if row.oracle else f"  ({oracle})"))
    lines.append("tests: " + "; ".join(
        f"{a} = " + ", ".join(sorted({t.split("::")[0].replace("tests/", "") for t in ts}))
        for a, ts in TESTS.items()))
    return lines
