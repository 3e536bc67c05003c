"""Hardware-config loader: bundled configs are valid, bad ones fail with one named line."""
from pathlib import Path

import pytest
import yaml

from emulator import hwconfig
from emulator.hwconfig import ConfigError, load

BUNDLED = {p.stem for p in hwconfig.bundled_configs()}


def test_bundled_configs_cover_the_design():
    assert {"loihi2_ideal", "loihi1", "fxp16", "fxp32", "float64"} <= BUNDLED
    for name in BUNDLED:
        cfg = load(name)
        assert cfg.name == name
    assert load("float64").is_float and not load("loihi2_ideal").is_float


def test_loihi2_formats_follow_lava_notes():
    """LAVA_NOTES: 7-bit traces, 8-bit-plus-sign weights, stochastic rounding, 24-bit state."""
    cfg = load("loihi2_ideal")
    assert cfg["traces"]["bits"] == 7 and cfg["traces"]["rounding"] == "stochastic"
    assert cfg["weights"]["bits"] == 9 and cfg["weights"]["rounding"] == "stochastic"
    assert cfg["potential"]["bits"] == 24


def _write(tmp_path, tree, name="cfg.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(tree))
    return p


def _tree(name="loihi2_ideal"):
    return yaml.safe_load(Path(hwconfig.CONFIG_DIR, f"{name}.yaml").read_text())


@pytest.mark.parametrize("mutate, key, allowed", [
    (lambda t: t["weights"].update(bits=64), "weights.bits", "[2, 48]"),
    (lambda t: t["weights"].update(bits="nine"), "weights.bits", "an integer"),
    (lambda t: t["traces"].update(rounding="nearest"), "traces.rounding", "'stochastic'"),
    (lambda t: t["sigmoid"].update(interpolate=1), "sigmoid.interpolate", "a boolean"),
    (lambda t: t["usp"].update(colour="red"), "usp.colour", "allowed: bits"),
    (lambda t: t.update(extra=1), "extra", "allowed: name"),
    (lambda t: t["post"].pop("frac"), "post.frac", "missing"),
    (lambda t: t.update(kind="analog"), "kind", "'fixed', 'learning_engine', 'float64'"),
    (lambda t: t["traces"].update(frac=7), "traces.frac", "< traces.bits"),
    (lambda t: t["post"].update(bits=60), "post.bits", "<= 64"),
])
def test_bad_config_gives_one_line_naming_file_and_key(tmp_path, mutate, key, allowed):
    tree = _tree()
    mutate(tree)
    path = _write(tmp_path, tree)
    with pytest.raises(ConfigError) as err:
        load(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(path) in msg and f"'{key}'" in msg and allowed in msg


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "x.yaml"
    bad.write_text("traces: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "none.yaml")


def test_float_config_rejects_fixed_point_keys(tmp_path):
    path = _write(tmp_path, {"name": "f", "kind": "float64", "weights": {"bits": 8}})
    with pytest.raises(ConfigError, match="'weights'"):
        load(path)


def test_overrides_are_revalidated():
    cfg = load("fxp16").with_overrides(**{"weights.bits": 12})
    assert cfg["weights"]["bits"] == 12 and cfg["traces"] == load("fxp16")["traces"]
    with pytest.raises(ConfigError, match="weights.bits"):
        load("fxp16").with_overrides(**{"weights.bits": 1})
    with pytest.raises(ConfigError, match="unknown key 'weights.colour'"):
        load("fxp16").with_overrides(**{"weights.colour": 1})


def test_schema_is_documented():
    text = Path(hwconfig.CONFIG_DIR, "README.md").read_text()
    for section, spec in list(hwconfig.SCHEMA.items()) + list(hwconfig.LE_SCHEMA.items()):
        keys = [section] if not isinstance(spec, dict) else [f"{section}.{k}" for k in spec]
        for key in keys:
            assert f"`{key}`" in text, key


def test_learning_engine_schema_matches_the_spec_records():
    # every field of the engine/neuron/mapping records is a config key, and nothing else
    import dataclasses
    from emulator.learning.constants import EngineSpec, MappingSpec, NeuronSpec
    for section, cls in (("engine", EngineSpec), ("neuron", NeuronSpec), ("mapping", MappingSpec)):
        assert set(hwconfig.LE_SCHEMA[section]) == {f.name for f in dataclasses.fields(cls)}, section
    # and the shipped loihi2 sets the engine to Lava 0.10's values
    from emulator.learning.constants import DEFAULT_ENGINE
    assert EngineSpec(**hwconfig.load("loihi2")["engine"]) == DEFAULT_ENGINE
