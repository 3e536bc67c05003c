"""Quantization error report: PNG figures, report.md, report.html (images inline) and
report.json.  Files are first written to a temporary folder and moved into place at the end,
so a failure leaves nothing half-written."""
from __future__ import annotations

import base64
import json
import shutil
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

FIGURES = ("learning_curves.png", "weight_trajectories.png", "error_over_time.png",
           "error_histograms.png", "range_use.png")



def _ci_text(ci95) -> str:
    """' +- x (95 % CI over trials)', or why there is none."""
    import math
    if ci95 is None or not math.isfinite(ci95):
        return " (no interval: one trial has no spread)"
    return f" +- {ci95:.2g} (95 % CI over trials)"

def _fig_learning(report, path):
    c = report["curves"]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(c["t_s"], c["float"]["rate_rmse_hz"], label="approx. natural, float64", lw=2)
    ax.plot(c["t_s"], c["chip"]["rate_rmse_hz"], "--", label=f"approx. natural, {report['config']['name']}", lw=2)
    eu = c["euclid_float"]["rate_rmse_hz"]
    if eu is not None:
        ax.plot(np.linspace(0, c["t_s"][-1], len(eu)), eu, ":", label="Euclidean, float64", color="gray")
    ax.set_xlabel("time [s]")
    ax.set_ylabel("output-rate RMSE on test set [Hz]")
    ax.set_title("Learning curves (mean over trials, identical spikes)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fig_weights(report, fl, fx, path):
    t = fl.record_t_s
    wf, wx = fl.record["weights"][:, 0, 0], fx.record["weights"][:, 0, 0]
    idx = np.linspace(0, wf.shape[1] - 1, 6).astype(int)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for n, i in enumerate(idx):
        col = f"C{n}"
        ax.plot(t, wf[:, i], color=col, lw=1.5, label="float64" if n == 0 else None)
        ax.plot(t, wx[:, i], "--", color=col, lw=1.5, label=report["config"]["name"] if n == 0 else None)
    ax.set_xlabel("time [s]")
    ax.set_ylabel("weight")
    ax.set_title("Weight trajectories, trial 0 (6 synapses): fixed vs float")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _errors(report, fl, fx, series=None):
    """Chip minus float per variable, in LSB of the chip's format (``series['errors']`` when
    given: the learning engine's, whose variables are not the float run's records)."""
    if series is not None:
        return series["errors"]
    out = {}
    for name, row in report["variables"].items():
        out[name] = (fx.record[name] - fl.record[name]) / row["lsb"]
    return out


def _grid(n):
    cols = 3
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(10, 2.6 * rows), squeeze=False)
    return fig, axes.ravel()


def _fig_err_time(report, errs, t, path):
    fig, axes = _grid(len(errs))
    for ax, (name, e) in zip(axes, errs.items()):
        ax.plot(t, np.sqrt(np.mean(e.reshape(e.shape[0], -1) ** 2, axis=1)))
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("RMS error [LSB]", fontsize=8)
        ax.set_xlabel("time [s]", fontsize=8)
    for ax in axes[len(errs):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _fig_err_hist(errs, path):
    fig, axes = _grid(len(errs))
    for ax, (name, e) in zip(axes, errs.items()):
        ax.hist(e.ravel(), bins=60, color="C1")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("fixed - float [LSB]", fontsize=8)
        ax.set_yscale("log")
    for ax in axes[len(errs):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _fig_range(report, fl, path, values=None):
    """hls4ml-style: observed |value| spread (log2) against the format's [LSB, max]: the 1st
    percentile and the median of the float run's recorded steps, its largest |value| over
    every step (the running extremes of the report's table).  ``values``: the recorded
    values per variable when they are not the float run's records (the learning engine's:
    the float counterpart, or the chip's own for a variable without one)."""
    names = list(report["variables"])
    clipped = False
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.5))
    for n, name in enumerate(names):
        row = report["variables"][name]
        a = np.abs(np.asarray(values[name] if values is not None else fl.record[name]).ravel())
        a = a[np.isfinite(a) & (a > 0)]
        top = max(abs(row["range_lo"]), abs(row["range_hi"]))
        ax.plot([np.log2(row["lsb"]), np.log2(top)], [n, n], color="lightgray", lw=10,
                solid_capstyle="butt", label="representable [LSB, max]" if n == 0 else None)
        if a.size:
            lo, med, hi = np.log2(np.percentile(a, [1, 50, 100]))
            ends = [row["float_min"], row["float_max"]] if row["float_min"] is not None \
                else [row["chip_min"], row["chip_max"]]
            peak = max(abs(v) for v in ends)
            if peak > 0:                   # every step, not only the recorded ones
                hi = max(hi, np.log2(peak))
            floor = np.log2(row["lsb"]) - 8           # tails far below the LSB are clipped
            if lo < floor:
                ax.plot([floor], [n], "<", color="C0", ms=6,
                        label="clipped tail (below LSB / 256)" if not clipped else None)
                clipped, lo = True, floor
            ax.plot([lo, hi], [n, n], color="C0", lw=4,
                    label="float |value|: p1 (recorded) .. max (every step)" if n == 0 else None)
            ax.plot([med], [n], "k|", ms=12)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("log2 |value|")
    ax.set_title("Range use (float run) against each format")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _markdown(report) -> str:
    cfg = report["config"]
    lines = [f"# natgrad quantization report: {cfg['name']}", "",
             f"Task: Fig 3 teacher-student (N = {report['N']}, 10/50 Hz), {report['trials']} trials, "
             f"{report['steps']} steps of {report['dt_s'] * 1e3:g} ms, seed {report['seed']}. "
             f"Float64 approximate rule against the config ({cfg['kind_text']}) on "
             "identical spikes.", ""] + _verdict_box(report) + [
             "## Learning curves", "", report.get("story", {}).get("sentence", ""), "",
             "![learning curves](learning_curves.png)", "",
             "| t [s] | float RMSE [Hz] | chip RMSE [Hz] |", "|---|---|---|"]
    c = report["curves"]
    step = max(1, len(c["t_s"]) // 10)
    for n in range(0, len(c["t_s"]), step):
        lines.append(f"| {c['t_s'][n]:.2f} | {c['float']['rate_rmse_hz'][n]:.3f} | "
                     f"{c['chip']['rate_rmse_hz'][n]:.3f} |")
    w = report["weights"]
    lines += ["", "## Final weight error against float", "",
              f"RMS {w['final_rmse_vs_float']:.3g}, max {w['final_max_abs_vs_float']:.3g} "
              f"(RMS weight change learned in float: {w['learned_change_rms_float']:.3g}).", "",
              "![weights](weight_trajectories.png)", ""]
    dep = report.get("deployment")
    if dep:
        lines += ["## The design judged, as a deployment", "",
                  f"`{dep['files']}` holds exactly the design this report judged (design digest "
                  f"`{dep['design_digest'][:16]}...`); `{dep['same_as']}` writes the same bits.", ""]
    if report["variables"]:
        local_note, closing_note = report["variables_note"]
        lines += ["## Per-variable error, in LSB of the fixed format", "",
                  "*Local* = the chip's value against float arithmetic on the chip's own state "
                  "at the same step " + local_note + ". *Trajectory* = the chip's value against "
                  "the float run's at the same step (includes the divergence of the two runs). "
                  "SNR = spread of the signal / RMS error." + closing_note, ""]
        lines += [
                  "| variable | format | local bias | local noise | local SNR | trajectory bias | "
                  "trajectory noise | trajectory SNR |", "|---|---|---|---|---|---|---|---|"]
        for name, r in report["variables"].items():
            loc, tra = r.get("local"), r.get("trajectory", {})
            lb = f"{loc['bias_lsb']:.3g}" if loc else "-"
            ln = f"{loc['noise_lsb']:.3g}" if loc else "-"
            ls = _num(loc.get("snr")) if loc else "-"
            tb, tn = ((f"{tra['bias_lsb']:.3g}", f"{tra['noise_lsb']:.3g}") if tra
                      else ("-", "-"))
            lines.append(f"| {name} | {r['format']} | {lb} | {ln} | {ls} | {tb} | {tn} | "
                         f"{_num(tra.get('snr')) if tra else '-'} |")
        notes = []                    # each variable's reference, where its backend names one
        for name, r in report["variables"].items():
            what = []
            if r.get("local_reference"):
                what.append(f"local against {r['local_reference']}")
            if r.get("no_local"):
                what.append(f"no local reference: {r['no_local']}")
            if r.get("no_trajectory") and r.get("no_trajectory") != r.get("no_local"):
                what.append(f"no trajectory: {r['no_trajectory']}")
            if what:
                notes.append(f"* **{name}**: " + "; ".join(what) + ".")
        if notes:
            lines += [""] + notes
        lines += ["", "![error over time](error_over_time.png)", "",
                  "![error histograms](error_histograms.png)", "",
                  "## Overflow, saturation, underflow and headroom", "",
                  "The datapath saturates (never wraps), so overflow is always 0. Underflow = a "
                  "nonzero weight update rounded to zero. The float and chip ranges are the "
                  "smallest and largest value over every step of every trial (running extremes "
                  "counted inside the kernels; the weights include their initial values); the "
                  "headroom is log2 of the format's largest magnitude over the larger of the "
                  "two (negative: float needs more range than the format has).", "",
                  "| variable | overflow | saturation | underflow | first step | float range | "
                  "chip range | format range | headroom [bits] |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, r in report["variables"].items():
            first = ", ".join(f"{k} @ {v}" for k, v in r["first_step"].items()) or "-"
            head = "-" if r["headroom_bits"] is None else f"{r['headroom_bits']:.2f}"
            chip = (f"[{r['chip_min']:.3g}, {r['chip_max']:.3g}]" if "chip_min" in r else "-")
            flr = (f"[{r['float_min']:.3g}, {r['float_max']:.3g}]"
                   if r.get("float_min") is not None else "- (no float counterpart)")
            lines.append(f"| {name} | {r['overflow']} | {r['saturation']} | {r['underflow']} | "
                         f"{first} | {flr} | {chip} | "
                         f"[{r['range_lo']:.3g}, {r['range_hi']:.3g}] | {head} |")
        lines += ["", "![range use](range_use.png)", ""]
    u = report.get("updates")
    if u:
        lines += ["## Weight updates", "",
                  f"At the recorded steps, the chip's update before its final rounding "
                  f"(P x B from its own state) has median size {_num(u['median_size_lsb'])} weight "
                  f"LSB; {100 * u['fraction_below_half_lsb']:.1f} % of the {u['n_updates']} updates "
                  f"and {100 * u['magnitude_share_below_half_lsb']:.1f} % of the update magnitude "
                  "lie below half an LSB (lost to round-to-nearest, noise under stochastic "
                  f"rounding). Cosine between chip and float updates: "
                  f"{_num(u['cosine_fixed_vs_float'])}.", "",
                  "![update sizes](update_sizes.png)", ""]
        real = u.get("realised")
        if real:
            err = real.get("error_vs_asked") or {}
            lines += [f"Realised on the chip (the weights with hidden bits after minus before "
                      f"the step, in multiples of {real['quantum_lsb']:g} LSB): "
                      f"{100 * (real['fraction_zero'] or 0):.1f} % of the updates are 0; "
                      f"against the update asked for, bias {_num(err.get('bias_lsb'))} and "
                      f"noise {_num(err.get('noise_lsb'))} LSB; cosine with float "
                      f"{_num(real['cosine_realised_vs_float'])}.", ""]
    tf = report.get("third_factor")
    if tf:
        lines += ["## Third factor", ""] + _third_factor_lines(tf) + [""]
    na = report.get("not_applicable")
    if na:
        lines += ["## Sections not applicable", ""] + [f"* {k}: {v}." for k, v in na.items()] \
            + [""]
    x = report["crosscheck"]
    verdict = ("not run: " + x.get("detail", "")) if x.get("lava_bit_exact") is None else (
        "bit-exact" if x["lava_bit_exact"] else "MISMATCH")
    lines += ["## Lava cross-check", "",
              f"{cfg['lava_text']} vs emulator over {x.get('steps', 0)} steps: **{verdict}**.", "",
              "## Provenance", "", "```", json.dumps(report["provenance"], indent=1),
              json.dumps(report["config"]["tree"], indent=1), "```", ""]
    return "\n".join(lines)


def _third_factor_lines(tf: dict) -> list[str]:
    """The third-factor section: the coding, and what was sent, carried and clipped."""
    if "sent_positive" not in tf:                       # the datapath's one word
        return [f"The post factor travels as {tf['coding']}; it saturated "
                f"{tf['saturations']} times in {tf['neuron_steps']} neuron steps "
                f"({100 * tf['saturated_share']:.3g} %)."]
    unit = tf["sent_unit"]
    coding = (f"graded levels 0..{tf['levels']} (E_n = {tf['E_n']:.3g} negative, E_p = "
              f"{tf['E_p']:.3g} positive, y1 = {tf['y_unit']} per level)"
              if tf["coding"] == "graded" else f"events of E_q = {tf['E_n']:.3g}")
    out = [f"The post factor travels as {coding}, every {tf['t_epoch']} step(s). "
           f"Sent: {tf['sent_positive']} positive and {tf['sent_negative']} negative {unit} "
           f"in {tf['neuron_steps']} neuron steps ({tf['sent_per_neuron_step']:.3g} per step). "
           f"Carried: {tf['carries']} steps ({100 * tf['carry_share']:.3g} %) left post factor "
           f"for later steps" + (f" (RMS {tf['carry_rms_in_E_n']:.3g} E_n at the recorded "
                                 "steps" + (f", at most {tf['carry_max_abs_in_E_n']:.3g} E_n"
                                            if "carry_max_abs_in_E_n" in tf else "") + ")"
                                 if "carry_rms_in_E_n" in tf else "") + ".", "",
           "| counter | count |", "|---|---|"]
    for key in ("carry_saturations", "vq_saturations", "gamma_saturations", "word_saturations",
                "input_saturations", "tag_2_saturations", "accumulator_saturations",
                "weight_saturations", "trace_saturations"):
        out.append(f"| {key.replace('_', ' ')} | {tf[key]} |")
    lev = tf.get("level_counts_at_recorded_steps")
    if lev:
        out += ["", "Signed levels coded at the recorded steps: "
                + ", ".join(f"{k}: {v}" for k, v in lev.items()) + "."]
    return out


def _num(x) -> str:
    return "-" if x is None else f"{x:.3g}"


def _verdict_box(report) -> list[str]:
    """The report's first lines: yes or no, by how much, the bottleneck and what to change."""
    v = report.get("verdict")
    if not v:
        return []
    yes = {"tracks": "YES", "does not track": "NO"}.get(v.get("status"), "NOT RESOLVED")
    pct = (f" ({v['excess_pct_of_learned']:+.1f} % of the {v['learned_hz']:.3g} Hz float "
           "learned)" if v.get("excess_pct_of_learned") is not None else "")
    lo, hi = v["late_window_s"]
    return ["## Verdict", "",
            f"> **Does {report['config']['name']} track float64 within {v['tolerance_hz']:.3g} Hz? "
            f"{yes}.** Late-window ({lo:g}-{hi:g} s) excess output-rate RMSE "
            f"{v['excess_hz']:+.3g} Hz{_ci_text(v['excess_ci95_hz'])}{pct}.",
            ">",
            f"> {v['resolve'][0].upper() + v['resolve'][1:]}.",
            ">",
            f"> **Bottleneck: {v['bottleneck']}.** {v['evidence']}.",
            ">",
            f"> **What to change:** {v['advice']}.",
            ">",
            f"> Rule: {v['rule']}.", ""]


def _fig_updates(report, path):
    u = report["updates"]
    edges = np.asarray(u["size_hist_edges_lsb"])
    counts = np.asarray(u["size_hist_counts"])
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    ax.bar(np.arange(len(counts)), counts, color="C0")
    ax.set_xticks(np.arange(len(counts)), [f"<{e:g}" for e in edges[1:]], rotation=60, fontsize=7)
    k = int(np.searchsorted(edges[1:], 0.5))
    ax.axvline(k + 0.5, color="r", ls="--", label="half a weight LSB")
    ax.set_xlabel("|update| before the final rounding [weight LSB]")
    ax.set_ylabel("count")
    ax.set_yscale("log")
    ax.set_title("Update sizes at the recorded steps")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _html(md: str, folder: Path) -> str:
    """Minimal markdown-to-HTML (headings, tables, images inline as data URIs, code)."""
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>natgrad report</title>",
           "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
           "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
           "img{max-width:100%}.verdict{background:#f4f6fa;border-left:4px solid #36c;"
           "padding:2px 10px}</style></head><body>"]
    in_table = in_code = False
    for line in md.splitlines():
        if line.startswith("```"):
            out.append("</pre>" if in_code else "<pre>")
            in_code = not in_code
            continue
        if in_code:
            out.append(_esc(line))
            continue
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            if not in_table:
                out.append("<table>")
                in_table = True
            out.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            out.append("</table>")
            in_table = False
        if line.startswith(">"):
            out.append(f"<div class='verdict'>{_esc(line.lstrip('>').strip())}</div>")
            continue
        if line.startswith("!["):
            name = line[line.index("(") + 1:line.index(")")]
            data = base64.b64encode((folder / name).read_bytes()).decode()
            out.append(f"<p><img src='data:image/png;base64,{data}' alt='{_esc(name)}'></p>")
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{_esc(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            out.append(f"<p>{_esc(line)}</p>")
    if in_table:
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)


def _esc(text: str) -> str:
    import html
    t = html.escape(text)
    while "**" in t:
        t = t.replace("**", "<b>", 1).replace("**", "</b>", 1)
    return t


def write_report(report: dict, fl, fx, out: Path, extra=None, series=None) -> None:
    """Write every report file into ``out`` (atomically per file set); ``extra(folder)``
    adds further files (the judged design's deployment) to the same set.  ``series``:
    ``{'errors': {name: chip - float in LSB}, 'values': {name: recorded values}}`` for the
    error and range figures when the variables are not the float run's records (the
    learning engine's)."""
    out = Path(out)
    tmp = Path(tempfile.mkdtemp(prefix=".natgrad-", dir=out))
    try:
        _fig_learning(report, tmp / "learning_curves.png")
        _fig_weights(report, fl, fx, tmp / "weight_trajectories.png")
        if report["variables"]:
            errs = _errors(report, fl, fx, series)
            _fig_err_time(report, errs, fl.record_t_s, tmp / "error_over_time.png")
            _fig_err_hist(errs, tmp / "error_histograms.png")
            _fig_range(report, fl, tmp / "range_use.png",
                       None if series is None else series["values"])
        if report.get("updates"):
            _fig_updates(report, tmp / "update_sizes.png")
        md = _markdown(report)
        (tmp / "report.md").write_text(md)
        (tmp / "report.html").write_text(_html(md, tmp))
        (tmp / "report.json").write_text(json.dumps(report, indent=1, default=_json_default))
        if extra is not None:
            extra(tmp)
        for f in tmp.iterdir():
            if f.is_dir() and (out / f.name).is_dir():
                shutil.rmtree(out / f.name)       # this report's own folder from a former run
            shutil.move(str(f), out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)
