"""The bit contract: integer results hash to the values recorded before the refactors.

``tests/golden/hashes.json`` was written by ``python tests/tools/golden_compute.py`` on the code of
commit ba7544a (before the refactors).  A refactor or speed-up must not move a single bit of
the final weights, spike counts, counters or the recorded V and weight traces; only a change
that means to change the results may regenerate the file, and its commit message says so.
"""
import json
import pathlib

import pytest

import golden_compute as compute

GOLDEN = json.loads((pathlib.Path(__file__).parent.parent / "golden" / "hashes.json").read_text())


@pytest.mark.parametrize("case", compute.CASES, ids=[c[0] for c in compute.CASES])
def test_datapath_golden(case):
    name, cfg, N, M, B, steps, seed, rates = case
    assert compute.datapath_hash(cfg, N, M, B, steps, seed, rates) == GOLDEN[name]


@pytest.mark.parametrize("case", compute.LE_CASES, ids=[c[0] for c in compute.LE_CASES])
def test_learning_engine_golden(case):
    name, N, M, B, steps, seed, cfg, ov = case
    assert compute.learning_engine_hash(N, M, B, steps, seed, cfg, ov) == GOLDEN[name]


def test_learning_engine_golden_numpy_backend():
    # the plain numpy steps hit the numba kernel's recorded hash on the shipped design
    name, N, M, B, _, seed, cfg, ov = compute.LE_CASES[3]
    assert compute.learning_engine_hash(N, M, B, 2500, seed, cfg, ov, backend="numpy") \
        == GOLDEN[name]


def test_numpy_backend_and_odd_chunks_hit_the_same_golden_hash():
    # the plain numpy path, chunked at 7 steps, must give the numba kernel's bits
    name, cfg, N, M, B, steps, seed, rates = compute.CASES[4]
    assert compute.datapath_hash(cfg, N, M, B, 700, seed, rates, backend="numpy", chunk_steps=7) \
        == compute.datapath_hash(cfg, N, M, B, 700, seed, rates, backend="numba")


def test_golden_hash_detects_a_one_lsb_change():
    # the hash is not blind: one LSB in one weight of the initial state changes it
    import numpy as np
    a = compute._digest(np.arange(10))
    b = compute._digest(np.arange(10) + (np.arange(10) == 3))
    assert a != b
