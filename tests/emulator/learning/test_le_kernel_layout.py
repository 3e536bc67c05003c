"""The learning-engine kernel's constant layout: every ``KC_*`` index is written out in
:mod:`emulator.learning.kernel_layout`, the indices are 0 .. N_KC - 1 in the order of
``KC_NAMES`` (the fields :func:`emulator.learning.kernel.pack` fills), and every ``KC_*`` a
kernel module reads is one of them; the counter indices match their name lists."""
import pathlib
import re

import pytest

from emulator import learning
from emulator import runner as R
from emulator.hwconfig import load
from emulator.learning import kernel_layout as L
from emulator.learning.constants import NEURON_COUNTERS
from emulator.learning.kernel import pack
from emulator.learning.lava_replica import SYNAPSE_COUNTERS
from emulator.task import fig3_task

LEARNING = pathlib.Path(L.__file__).parent


def _kc_constants():
    """{name: value} of the module's integer ``KC_*`` constants (not the name list)."""
    return {n: v for n, v in vars(L).items() if n.startswith("KC_") and isinstance(v, int)}


def test_every_field_has_its_constant_and_no_constant_is_extra():
    want = {f"KC_{n}": i for i, n in enumerate(L.KC_NAMES)}
    assert len(set(L.KC_NAMES)) == len(L.KC_NAMES) == L.N_KC
    assert _kc_constants() == want
    assert sorted(want.values()) == list(range(L.N_KC))


def test_constants_are_written_out():
    """Each ``KC_<field> = <index>`` is a plain assignment in the source (grep finds it)."""
    src = (LEARNING / "kernel_layout.py").read_text()
    written = dict(re.findall(r"^(KC_[A-Z0-9_]+) = (\d+)\b", src, re.M))
    assert {n: int(v) for n, v in written.items()} == _kc_constants()
    assert "globals()" not in src


def test_kernel_modules_read_only_defined_constants():
    defined = set(_kc_constants())
    for path in sorted(LEARNING.glob("kernel*.py")):
        used = set(re.findall(r"\bKC_[A-Z0-9_]+\b", path.read_text())) - {"KC_NAMES"}
        assert used <= defined, (path.name, sorted(used - defined))


def test_counter_indices_match_their_name_lists():
    neuron = {L.C_POTENTIAL, L.C_POST_CARRY, L.C_VQ, L.C_GAMMA, L.C_CARRY, L.C_WORD, L.C_INPUT}
    assert sorted(neuron) == list(range(len(NEURON_COUNTERS)))
    synapse = {L.S_TAG, L.S_WEIGHT, L.S_ACC, L.S_TRACE}
    assert sorted(synapse) == list(range(len(SYNAPSE_COUNTERS)))


@pytest.mark.parametrize("name", ["loihi2", "loihi2_events"])
def test_pack_fills_every_field_at_its_index(name):
    task = fig3_task(seed=2, n_trials=1, N=7, M=2)
    d = learning.design_for_config(load(name), task, R.default_eta())
    kc, ptab, _ = pack(d, d.products)
    assert kc.shape == (L.N_KC,)
    assert kc[L.KC_T_EPOCH] == d.engine.t_epoch
    assert kc[L.KC_WORD_BITS] == d.neuron.word_bits
    assert kc[L.KC_KX] == d.k_x
    assert kc[L.KC_N_DW] == len(d.products)
    assert kc[L.KC_CARRY_BITS] == d.neuron.carry_bits
    assert ptab.shape[0] == len(d.products) + len(d.dd_products)
