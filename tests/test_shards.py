"""Sharded experiments (issue 13 item 4): Fig 3F's numbers are identical for 1, 2 and 3
shards, on the serial, local-pool and Dask LocalCluster executors, and a run resumed from
its shard cache equals an uninterrupted one."""
import json
import pickle

import numpy as np
import pytest

from emulator.hwconfig import load
from natgrad.experiments import fig3f
from natgrad.experiments.common import jsonable
from natgrad.experiments.shards import run_shards, shard_ranges

KW = dict(n_trials=3, T_s=3.0, eval_s=1.0, late_window_s=(2.0, 3.0), batch=2)


def _numbers(res) -> str:
    keys = ("curves", "effect", "curves_config", "effect_config", "counters")
    return json.dumps({k: jsonable(res[k]) for k in keys if k in res}, sort_keys=True)


@pytest.fixture(scope="module")
def reference():
    return _numbers(fig3f(config=load("loihi2_ideal"), **KW))


@pytest.mark.parametrize("shard_trials,executor", [(1, "serial"), (2, "local"), (3, "serial"),
                                                    (1, "local")])
def test_any_sharding_gives_identical_numbers(reference, shard_trials, executor, tmp_path):
    res = fig3f(config=load("loihi2_ideal"), shard_trials=shard_trials, executor=executor,
                cache=tmp_path / "cache", **KW)
    assert _numbers(res) == reference
    assert len(list((tmp_path / "cache").glob("*.pkl"))) == len(shard_ranges(3, shard_trials))


def test_dask_local_cluster_gives_identical_numbers(reference):
    res = fig3f(config=load("loihi2_ideal"), shard_trials=2, executor="dask", workers=2, **KW)
    assert _numbers(res) == reference


def test_resumed_run_equals_uninterrupted(reference, tmp_path):
    # an "interrupted" run: only the first of three shards finished and reached the cache
    from natgrad.experiments.fig3 import fig3f_shard
    from natgrad.experiments.fig3 import FIG3F_PRESETS
    cache = tmp_path / "cache"
    p = json.loads(json.dumps(dict(FIG3F_PRESETS["small"], **KW), default=list))
    cfg = load("loihi2_ideal")
    run_shards(fig3f_shard, (p, 0, cfg.tree), shard_ranges(3, 1)[:1], cache=cache)
    assert len(list(cache.glob("*.pkl"))) == 1
    # the cached shard is really reused: poison it, and the resumed run must show it
    f = next(cache.glob("*.pkl"))
    good = pickle.loads(f.read_bytes())
    bad = json.loads(json.dumps(good, default=lambda a: np.asarray(a).tolist()))
    bad["rules"]["approx"]["rmse"] = (np.asarray(bad["rules"]["approx"]["rmse"]) + 1.0)
    for r in bad["rules"]:
        for k in bad["rules"][r]:
            bad["rules"][r][k] = np.asarray(bad["rules"][r][k])
    bad["t_s"] = np.asarray(bad["t_s"])
    for k in ("t_s", "rmse", "kl", "wdist"):
        bad["chip"][k] = np.asarray(bad["chip"][k])
    f.write_bytes(pickle.dumps(bad))
    poisoned = fig3f(config=cfg, shard_trials=1, cache=cache, **KW)
    assert _numbers(poisoned) != reference
    f.write_bytes(pickle.dumps(good))
    resumed = fig3f(config=cfg, shard_trials=1, cache=cache, **KW)
    assert _numbers(resumed) == reference
    assert len(list(cache.glob("*.pkl"))) == 3


def test_learning_engine_and_float_threads_equal_pool_workers():
    """On ``loihi2`` (learning engine) one shard in this process runs its trials on threads
    (float rules and engine), the pool's workers run them serially: same numbers."""
    cfg = load("loihi2")
    one = fig3f(config=cfg, **KW)
    two = fig3f(config=cfg, shard_trials=2, executor="local", **KW)
    assert _numbers(one) == _numbers(two)
    assert one["effect_config"]["per_trial"]["n_trials"] == 3


def test_trials_option_is_fig3f_only(capsys):
    from natgrad.cli import main
    with pytest.raises(SystemExit) as exc:
        main(["experiment", "fig4", "--trials", "3"])
    assert exc.value.code == 2
    assert "fig3f only" in capsys.readouterr().err


def test_cached_only_reports_the_finished_shards(tmp_path):
    """An unfinished run (2 of 3 one-trial shards cached) reports on those two trials, with
    the numbers the finished run has for them; nothing is computed."""
    from natgrad.experiments.fig3 import FIG3F_PRESETS, fig3f_shard
    cache = tmp_path / "cache"
    cfg = load("loihi2_ideal")
    p = json.loads(json.dumps(dict(FIG3F_PRESETS["small"], **KW), default=list))
    run_shards(fig3f_shard, (p, 0, cfg.tree), shard_ranges(3, 1)[:2], cache=cache)
    part = fig3f(config=cfg, shard_trials=1, cache=cache, cached_only=True, **KW)
    assert part["shards"] == {"done": 2, "total": 3, "trials_done": 2}
    assert len(list(cache.glob("*.pkl"))) == 2            # nothing new was computed
    full = fig3f(config=cfg, shard_trials=1, cache=cache, **KW)
    for rule in ("euclid", "natural", "approx"):      # trials 0 and 1, bit for bit
        np.testing.assert_array_equal(np.asarray(part["per_trial_kl_late"][rule]),
                                      np.asarray(full["per_trial_kl_late"][rule])[:2])
    assert part["effect_config"]["per_trial"]["n_trials"] == 2
    assert full["effect_config"]["per_trial"]["n_trials"] == 3
    with pytest.raises(ValueError, match="no finished shard"):
        fig3f(config=cfg, shard_trials=1, cache=tmp_path / "empty", cached_only=True, **KW)
