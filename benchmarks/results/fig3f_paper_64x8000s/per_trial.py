"""Per-trial late RMSE (mean over 7000-8000 s) of the paper-scale Fig 3F run, from its shard cache.

    uv run python benchmarks/results/fig3f_paper_64x8000s/per_trial.py CACHE_DIR
"""
import json, sys
import numpy as np
from emulator.hwconfig import load
from natgrad.experiments.fig3 import FIG3F_PRESETS, fig3f_shard
from natgrad.experiments.shards import cached_shards, run_shards, shard_ranges
p = json.loads(json.dumps(dict(FIG3F_PRESETS["paper"], n_trials=64), default=list))
args = (p, 0, load("loihi2").tree)
sh = cached_shards(fig3f_shard, args, shard_ranges(64, 2), sys.argv[1])
parts = run_shards(fig3f_shard, args, sh, cache=sys.argv[1])
t = np.asarray(parts[0]["t_s"]); late = t >= 7000
chip = np.concatenate([np.asarray(pp["chip"]["rmse"]) for pp in parts], 1)[late].mean(0)
fl = {r: np.concatenate([np.asarray(pp["rules"][r]["rmse"]) for pp in parts], 1)[late].mean(0) for r in parts[0]["rules"]}
print("trials", chip.size)
for r, v in fl.items():
    print(f"{r:8s} late RMSE median {np.median(v):.3f} [{v.min():.2f}, {v.max():.2f}]")
print(f"chip     late RMSE median {np.median(chip):.3f} [{chip.min():.2f}, {chip.max():.2f}]")
ratio = chip / fl["approx"]
print("chip/float approx per trial: median %.2f, quartiles %.2f %.2f, >2x in %d of %d" % (np.median(ratio), *np.percentile(ratio, [25, 75]), (ratio > 2).sum(), ratio.size))
print("sorted chip late RMSE:", np.round(np.sort(chip), 2))
