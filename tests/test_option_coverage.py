"""Every config option has a row in the coverage table, and the rows are
true: the tests they name exist, and an option said to be run by an oracle is run at more
than one value (every choice, 'auto' and a fixed value, null and a number).

The table itself (``tests/tools/option_coverage.py``) is printed at the end of the test run by
``tests/conftest.py``.
"""
from __future__ import annotations

import pathlib

import pytest

import option_coverage as C

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_every_schema_option_has_a_row():
    """A new option in emulator/hwconfig.py's schema fails here until it has a row."""
    keys = {(kind, key) for kind, key, _ in C.schema_options()}
    missing = sorted(keys - set(C.ROWS))
    stale = sorted(set(C.ROWS) - keys)
    assert not missing, f"options without a row in tests/tools/option_coverage.py: {missing}"
    assert not stale, f"rows for options the schema no longer has: {stale}"
    # both kinds, every section: 79 leaves today, not a handful
    assert len(keys) >= 75 and {k for k, _ in keys} == {"fixed", "learning_engine"}


def test_rows_name_tests_that_exist_and_say_why_when_there_is_no_oracle():
    for (kind, key), row in C.ROWS.items():
        assert row.oracle or row.why, (kind, key)
        for alias in row.oracle + row.equivalence:
            assert alias in C.TESTS, (kind, key, alias)
    for alias, ids in C.TESTS.items():
        for nodeid in ids:
            path, _, func = nodeid.partition("::")
            text = (ROOT / path).read_text()
            assert not func or f"def {func}(" in text, (alias, nodeid)


def test_oracles_run_every_option_at_more_than_one_value():
    """Not a vacuous row: the oracle designs (read from the oracle test modules) set every
    option they claim at several values -- every choice of a choice field, both booleans,
    'auto' and a fixed value where 'auto' is allowed, null and a number where null is."""
    values = C.oracle_values()
    problems = []
    for kind, key, spec in C.schema_options():
        row = C.ROWS[(kind, key)]
        if not row.oracle or row.one_value:
            continue
        got = values.get((kind, key), set())
        need = []
        if spec.choices is not None:
            need = [set(spec.choices) <= got]
        elif spec.kind is bool:
            need = [got == {True, False}]
        else:
            need = [len(got) >= 2]
        if spec.auto:
            need.append("auto" in got and any(v != "auto" for v in got))
        if spec.nullable:
            need.append(None in got and any(v is not None for v in got))
        if not all(need):
            problems.append((kind, key, sorted(map(str, got))))
    assert not problems, problems


def test_the_table_has_a_line_per_option():
    lines = C.table({"tests/emulator/learning/test_le_oracle.py::test_oracle_equals_numpy_steps_every_step[x]":
                     "passed"})
    assert len(lines) == 1 + len(C.schema_options()) + 1
    assert not any("NO ROW" in ln for ln in lines)
    t_epoch = [ln for ln in lines if " engine.t_epoch " in ln][0]
    assert "1,2,3,4,8" in t_epoch and "1/1 passed" in t_epoch, t_epoch


def test_a_missing_row_shows_in_the_table(monkeypatch):
    rows = dict(C.ROWS)
    rows.pop(("learning_engine", "engine.t_epoch"))
    monkeypatch.setattr(C, "ROWS", rows)
    assert any("engine.t_epoch" in ln and "NO ROW" in ln for ln in C.table())
    with pytest.raises(AssertionError, match="engine.t_epoch"):
        test_every_schema_option_has_a_row()
