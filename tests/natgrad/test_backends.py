"""The backend registry: one backend per config kind, and the kind read in few places.

``natgrad.backends.backend_for`` is where ``natgrad/`` reads a config's kind; every command
asks the backend.  These tests pin the registry to the config kinds, each chip backend to
the protocol (nothing left abstract), the float reference's refusals, and the places outside
the registry and config validation that still test the kind (at most five, each named).
"""
from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

from emulator.hwconfig import KINDS, load
from emulator.task import fig3_task
from natgrad.backends import BACKENDS, Backend, backend_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUNDLED = sorted(p.stem for p in (ROOT / "hw_configs").glob("*.yaml"))

#: Where a library module may still test a config's kind outside the registry
#: (natgrad/backends/__init__.py) and config validation (emulator/hwconfig.py): file ->
#: number of such lines.  Each is a dispatch table or a guard of a compile step.
ALLOWED_KIND_TESTS = {
    "emulator/runner.py": 1,            # emulator.run's dispatch table (the public API)
    "lava_procs/network.py": 1,         # lava_procs.run's path table
    "emulator/discretize.py": 1,        # discretize refuses a config that is not kind fixed
    "emulator/learning/config.py": 1,   # the engine's specs refuse another kind
}
KIND_TEST = re.compile(r"\.is_float\b|\.is_fixed\b|\.is_learning_engine\b|\w(?<!dtype)\.kind\s*[!=]="
                       r"|\[\s*\w+\.kind\s*\]|\w(?<!dtype)\.kind\s+(not\s+)?in\s|\[.kind.\]\s*[!=]=")


def kind_tests() -> dict:
    """file -> lines testing a config's kind, over every library module."""
    found = {}
    for pkg in ("fixedpoint", "emulator", "lava_procs", "natgrad"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in ("emulator/hwconfig.py", "natgrad/backends/__init__.py"):
                continue
            hits = [n for n, line in enumerate(path.read_text().splitlines(), 1)
                    if KIND_TEST.search(line) and not line.lstrip().startswith("#")]
            if hits:
                found[rel] = hits
    return found


def test_the_kind_is_tested_only_where_allowed():
    found = kind_tests()
    extra = {f: n for f, n in found.items() if len(n) > ALLOWED_KIND_TESTS.get(f, 0)}
    assert not extra, f"config kind tested outside the backend registry: {extra}"
    assert sum(len(n) for n in found.values()) <= 5


def test_the_scan_finds_a_planted_kind_test():
    # the scan above must be able to fail: a planted branch on the kind is found
    line = "    if cfg.is_learning_engine:\n"
    assert KIND_TEST.search(line) and KIND_TEST.search("x = TABLE[cfg.kind]")
    assert KIND_TEST.search('if report["config"]["kind"] == "learning_engine":')
    assert not KIND_TEST.search("    kind = 'learning_engine'\n")
    assert not KIND_TEST.search('    if kind == "attenuation":')     # not a config's kind
    assert not KIND_TEST.search('    if a.dtype.kind not in "biu":')


def test_one_backend_per_config_kind():
    assert set(BACKENDS) == set(KINDS)
    for kind, cls in BACKENDS.items():
        assert cls.kind == kind and issubclass(cls, Backend)


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_config_has_its_kinds_backend(name):
    cfg = load(name)
    b = backend_for(cfg)
    assert type(b) is BACKENDS[cfg.kind] and b.cfg is cfg
    assert backend_for(cfg) is b                  # asked again: the same backend, its designs kept


@pytest.mark.parametrize("name", [n for n in BUNDLED if load(n).kind != "float64"])
def test_chip_backends_fill_the_protocol(name):
    """Every method a command calls is implemented, with values a wrong backend gets wrong."""
    b = backend_for(name)
    task = fig3_task(n_trials=2, N=20, seed=3)
    eta = 2.2e-3
    assert b.compile(task, eta) is b.compile(task, eta)        # compiled once per task and rate
    lsb, top = b.weight_lsb(task, eta), b.weight_range(task, eta)
    assert lsb > 0 and top == pytest.approx((2 ** (b.weight_bits() - 1) - 1) * lsb)
    stored = b.stored_weights(task.w_init, task, eta)
    assert stored.shape == task.w_init.shape
    inside = np.abs(task.w_init) <= top
    np.testing.assert_allclose(stored[inside], task.w_init[inside], atol=lsb)   # on its grid
    assert np.allclose(np.round(stored / lsb), stored / lsb)
    assert b.label() == b.cfg.name and b.refuses("deploy") is None
    assert b.quantizer_table(task, eta) and b.describe_lines() and b.sweep_fields()
    assert b.kind_text and b.lava_text and "weights" in b.report_records
    w = task.w_init[:, 0, :]
    direction = b.update_direction(task, eta, w, np.abs(w) * 0 + 1.0, np.zeros(len(w)))
    assert direction.shape == w.shape and np.all(np.isfinite(direction))


def test_the_float_reference_refuses_what_a_chip_does():
    b = backend_for("float64")
    assert b.label() is None and b.weight_range() is None
    for action in ("deploy", "budget", "sweep"):
        assert "float64" in b.refuses(action)
    assert b.not_applicable()["variables"].startswith("the config is float64 itself")
