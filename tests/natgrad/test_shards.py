"""Sharded experiments: Fig 3F's numbers are identical for 1, 2 and 3
shards, on the serial, local-pool and Dask LocalCluster executors, and a run resumed from
its shard cache equals an uninterrupted one.  Fig 12's learning curves (the Fig 3F protocol
at other rate pairs) run through the same shards."""
import json
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
    assert len(list((tmp_path / "cache").glob("*.npz"))) == len(shard_ranges(3, shard_trials))


def test_dask_local_cluster_gives_identical_numbers(reference):
    res = fig3f(config=load("loihi2_ideal"), shard_trials=2, executor="dask", workers=2, **KW)
    assert _numbers(res) == reference


def _one_cached_shard(cache, shards=slice(0, 1)):
    """Run the first shard(s) of KW's three one-trial shards into ``cache``; the shard
    function, its arguments and the config."""
    from natgrad.experiments.fig3 import FIG3F_PRESETS, fig3f_shard
    p = json.loads(json.dumps(dict(FIG3F_PRESETS["small"], **KW), default=list))
    cfg = load("loihi2_ideal")
    run_shards(fig3f_shard, (p, 0, cfg.tree), shard_ranges(3, 1)[shards], cache=cache)
    return fig3f_shard, (p, 0, cfg.tree), cfg


def test_resumed_run_equals_uninterrupted(reference, tmp_path):
    # an "interrupted" run: only the first of three shards finished and reached the cache
    from natgrad.experiments import shards as S
    cache = tmp_path / "cache"
    fn, args, cfg = _one_cached_shard(cache)
    assert len(list(cache.glob("*.npz"))) == 1
    # the cached shard is really reused: a valid shard with other numbers shows in the result
    f = next(cache.glob("*.npz"))
    inputs = S._inputs(fn.__module__ + "." + fn.__name__, args, np.arange(1))
    good = S.read_shard(f, inputs)
    bad = S.read_shard(f, inputs)
    bad["rules"]["approx"]["rmse"] = bad["rules"]["approx"]["rmse"] + 1.0
    S.write_shard(f, bad, inputs)
    poisoned = fig3f(config=cfg, shard_trials=1, cache=cache, **KW)
    assert _numbers(poisoned) != reference
    S.write_shard(f, good, inputs)
    resumed = fig3f(config=cfg, shard_trials=1, cache=cache, **KW)
    assert _numbers(resumed) == reference
    assert len(list(cache.glob("*.npz"))) == 3


def _damage_truncated(f, other):
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _damage_other_config(f, other):
    # a complete, self-consistent shard computed for other inputs, under this shard's name
    f.write_bytes(other.read_bytes())


def _damage_digest(f, other):
    # one number changed inside the file, the recorded digest left as it was
    import zipfile
    with zipfile.ZipFile(f) as z:
        members = {n: z.read(n) for n in z.namelist()}
    a = np.load(f)["a1"].copy()
    a.flat[0] += 1.0
    import io
    buf = io.BytesIO()
    np.save(buf, a)
    members["a1.npy"] = buf.getvalue()
    with zipfile.ZipFile(f, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)


@pytest.mark.parametrize("damage,reason", [
    (_damage_truncated, "unreadable"),
    (_damage_other_config, "computed for other inputs"),
    (_damage_digest, "do not match their digest")])
def test_untrusted_shard_is_recomputed_with_one_warning(reference, tmp_path, capsys,
                                                         damage, reason):
    """A truncated shard, a shard from another config, a shard whose
    contents do not match its digest: each is recomputed with one warning line naming the
    file and the reason, never loaded and never a traceback; the numbers are the reference."""
    cache, other_cache = tmp_path / "cache", tmp_path / "other"
    _one_cached_shard(cache)
    from natgrad.experiments.fig3 import FIG3F_PRESETS, fig3f_shard
    p = json.loads(json.dumps(dict(FIG3F_PRESETS["small"], **KW), default=list))
    run_shards(fig3f_shard, (p, 0, load("fxp16").tree), shard_ranges(3, 1)[:1],
               cache=other_cache)
    f = next(cache.glob("*.npz"))
    damage(f, next(other_cache.glob("*.npz")))
    capsys.readouterr()
    res = fig3f(config=load("loihi2_ideal"), shard_trials=1, cache=cache, **KW)
    assert _numbers(res) == reference
    err = [ln for ln in capsys.readouterr().err.splitlines() if "cache shard" in ln]
    assert len(err) == 1 and str(f) in err[0] and reason in err[0], err


def test_the_cache_holds_no_pickle(tmp_path):
    """Shards are npz with plain arrays: numpy refuses any object array in them."""
    cache = tmp_path / "cache"
    _one_cached_shard(cache)
    f = next(cache.glob("*.npz"))
    with np.load(f, allow_pickle=False) as z:
        assert all(z[k].dtype.kind in "biufc" for k in z.files)
    assert not list(cache.glob("*.pkl")) and not list(cache.glob(".*tmp*"))


def test_learning_engine_and_float_threads_equal_pool_workers():
    """On ``loihi2`` (learning engine) one shard in this process runs its trials on threads
    (float rules and engine), the pool's workers run them serially: same numbers."""
    cfg = load("loihi2")
    one = fig3f(config=cfg, **KW)
    two = fig3f(config=cfg, shard_trials=2, executor="local", **KW)
    assert _numbers(one) == _numbers(two)
    assert one["effect_config"]["per_trial"]["n_trials"] == 3


def test_trials_option_is_for_the_sharded_experiments_only(capsys):
    import argparse

    from natgrad.cli import main
    from natgrad.experiments import _shard_kwargs, add_parser
    with pytest.raises(SystemExit) as exc:
        main(["experiment", "fig4", "--trials", "3"])
    assert exc.value.code == 2
    assert "fig3f and fig12 only" in capsys.readouterr().err
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    kw = _shard_kwargs(parser.parse_args(["experiment", "fig12", "--trials", "5",
                                          "--shard-trials", "2", "--executor", "local"]))
    assert kw["lc_trials"] == 5 and "n_trials" not in kw
    assert (kw["shard_trials"], kw["executor"]) == (2, "local")
    kw = _shard_kwargs(parser.parse_args(["experiment", "fig3f", "--trials", "5"]))
    assert kw["n_trials"] == 5 and "lc_trials" not in kw


#: Fig 12 with the smallest angle part and Fig 3F-sized learning curves at two rate pairs
KW12 = dict(pairs=((10.0, 10.0),), n_weights=2, n_samples=2, sample_steps=50,
            lc_pairs=((10.0, 50.0), (20.0, 40.0)), lc_trials=3, lc_T_s=3.0, lc_eval_s=1.0,
            lc_late_window_s=(2.0, 3.0))


def _curves_numbers(res) -> str:
    lc = {k: {kk: v for kk, v in e.items() if kk != "shards"}
          for k, e in res["learning_curves"].items()}
    return json.dumps(jsonable(lc), sort_keys=True)


def test_fig12_learning_curves_shard_like_fig3f(tmp_path):
    """Fig 12's curves: the same numbers unsharded, in one-trial shards on the serial
    executor and in two-trial shards on the local pool (one cache file per shard and pair);
    and at the 10/50-Hz pair they are Fig 3F's curves (same protocol, task and seed)."""
    from natgrad.experiments import fig12
    cfg = load("loihi2_ideal")
    whole = fig12(config=cfg, **KW12)
    assert whole["learning_curves"]["10/50"]["shards"] == {"done": 1, "total": 1,
                                                           "trials_done": 3}
    one = fig12(config=cfg, shard_trials=1, cache=tmp_path / "c1", **KW12)
    two = fig12(config=cfg, shard_trials=2, executor="local", cache=tmp_path / "c2", **KW12)
    assert _curves_numbers(one) == _curves_numbers(whole) == _curves_numbers(two)
    assert len(list((tmp_path / "c1").glob("*.npz"))) == 2 * 3
    assert len(list((tmp_path / "c2").glob("*.npz"))) == 2 * 2
    f3 = fig3f(config=cfg, n_trials=3, T_s=3.0, eval_s=1.0, late_window_s=(2.0, 3.0),
               batch=50, eta_scale=4.0)
    c12 = whole["learning_curves"]["10/50"]["curves"]
    for rule in ("euclid", "natural", "approx"):
        np.testing.assert_array_equal(c12[rule]["kl_mean"], f3["curves"][rule]["kl_mean"])
    np.testing.assert_array_equal(c12["approx@loihi2_ideal"]["rmse_mean"],
                                  f3["curves_config"]["approx@loihi2_ideal"]["rmse_mean"])
    # a different rate pair is a different task: its curves differ
    assert not np.array_equal(whole["learning_curves"]["20/40"]["curves"]["approx"]["kl_mean"],
                              c12["approx"]["kl_mean"])


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
    assert len(list(cache.glob("*.npz"))) == 2            # nothing new was computed
    full = fig3f(config=cfg, shard_trials=1, cache=cache, **KW)
    for rule in ("euclid", "natural", "approx"):      # trials 0 and 1, bit for bit
        np.testing.assert_array_equal(np.asarray(part["per_trial_kl_late"][rule]),
                                      np.asarray(full["per_trial_kl_late"][rule])[:2])
    assert part["effect_config"]["per_trial"]["n_trials"] == 2
    assert full["effect_config"]["per_trial"]["n_trials"] == 3
    with pytest.raises(ValueError, match="no finished shard"):
        fig3f(config=cfg, shard_trials=1, cache=tmp_path / "empty", cached_only=True, **KW)


@pytest.mark.parametrize("name", ["fig3f", "fig12"])
def test_cached_only_on_an_empty_cache_is_a_one_line_error(name, tmp_path, capsys):
    from natgrad.cli import main
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exc:
        main(["experiment", name, "--cached-only", "--cache", str(tmp_path / "empty"),
              "--out", str(tmp_path / "out"), "--quiet"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no finished shard of this run" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
