"""Test-suite guards: numba and Lava are dependencies, so a test must
never be *skipped* because one of them (or the numba kernel) is missing or broken.

* at session start, a missing ``numba`` or ``lava`` package stops the run with an error;
* any skip whose reason names numba, Lava or the fused kernel is reported as a failure
  (for skips at collection time as well as inside tests), so a future
  ``pytest.importorskip('lava')`` or ``skipif(not numba_available())`` cannot hide a
  broken install in CI.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

#: the tools (oracles, option coverage, golden hashes) import by bare name, as test modules do
sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))

REQUIRED = ("numba", "lava")
_DEPENDENCY_SKIP = re.compile(r"numba|lava|kernels?\b", re.IGNORECASE)


def pytest_sessionstart(session):
    missing = [m for m in REQUIRED if importlib.util.find_spec(m) is None]
    if missing:
        raise pytest.UsageError(f"required test dependencies missing: {', '.join(missing)} "
                                "(natgrad depends on them; install with `uv sync`)")


def _fail_dependency_skip(report):
    if report.skipped and not hasattr(report, "wasxfail") and _DEPENDENCY_SKIP.search(
            str(report.longrepr)):
        report.outcome = "failed"
        report.longrepr = f"skipped for a missing dependency, which is a failure: {report.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_dependency_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_dependency_skip(outcome.get_result())


# ---------------------------------------------------------------- option coverage table
#: nodeid -> 'passed' / 'failed' / 'skipped' of this run (for the coverage table)
_OUTCOMES: dict[str, str] = {}
#: a run that includes any of these prints the option-coverage table at its end
_COVERAGE_FILES = ("tests/test_option_coverage.py", "tests/emulator/learning/test_le_oracle.py",
                   "tests/emulator/test_oracle_datapath.py", "tests/emulator/learning/test_tag_quantization.py")


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _OUTCOMES[report.nodeid] = report.outcome


def pytest_terminal_summary(terminalreporter):
    """Each config option, the values the oracles run it at, and the
    oracle and equivalence tests that exercise it (tests/tools/option_coverage.py), with how many
    of those passed in this run."""
    if not any(n.startswith(_COVERAGE_FILES) for n in _OUTCOMES):
        return
    import option_coverage
    terminalreporter.section("config option coverage (tests/tools/option_coverage.py)")
    for line in option_coverage.table(_OUTCOMES):
        terminalreporter.write_line(line)
