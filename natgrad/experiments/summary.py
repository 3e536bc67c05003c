"""``natgrad experiment all``: the six experiments and a one-page summary.

One row per figure: the paper's effect, float64's value, the chip's value with its spread,
and a verdict with its tolerance (the experiment's ``effect_config.targets``).  Written as
``summary.md``, ``summary.html`` and ``summary.json`` next to each experiment's folder.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

__all__ = ["ORDER", "rows", "write_summary"]

ORDER = ("fig3de", "fig3f", "fig4", "fig5", "fig7", "fig12")

PAPER = {
    "fig3de": "natural and approximate paths run straight to w*; Euclid's is L-shaped",
    "fig3f": "natural-gradient rules converge before Euclid",
    "fig4": "somatic weight change independent of the synapse's distance (democracy)",
    "fig5": "weight change inversely proportional to the USP variance",
    "fig7": "homo- and heterosynaptic changes of opposite or equal sign in regimes O1, O2, S",
    "fig12": "the approximate update's angle to the natural one is far below Euclid's",
}


def _fmt(x, nd=3):
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        return f"{x:.{nd}g}"
    return str(x)


def _row(name: str, r: dict, label: str | None) -> dict:
    """Float value, chip value (with spread) and targets of one experiment's result."""
    e, ec = r.get("effect", {}), r.get("effect_config") or {}
    key = f"approx@{label}" if label else None
    out = {"figure": name, "paper_effect": PAPER[name], "float": None, "chip": None,
           "spread": None, "targets": ec.get("targets", []), "wall_s": r.get("wall_s")}
    if name == "fig3de":
        out["float"] = f"approx path angle {_fmt(e['paths']['approx']['angle_to_straight_line_deg'])} deg " \
                       f"(Euclid {_fmt(e['paths']['euclid']['angle_to_straight_line_deg'])} deg)"
        if key and key in ec:
            out["chip"] = f"{_fmt(ec[key]['angle_to_straight_line_deg'])} deg"
    elif name == "fig3f":
        out["float"] = f"late KL approx/Euclid {_fmt(e.get('kl_late_ratio_to_euclid', {}).get('approx'))}; " \
                       f"t(RMSE<thr) approx {_fmt(e['t_rmse_below_s'].get('approx'))} s, Euclid " \
                       f"{_fmt(e['t_rmse_below_s'].get('euclid'))} s"
        if key:
            pt = (ec.get("per_trial") or {}).get("kl_late_ratio_to_float_approx") or {}
            out["chip"] = f"late KL / float approx {_fmt(ec.get('kl_late_ratio_to_float_approx'))}; " \
                          f"t(RMSE<thr) {_fmt(ec['t_rmse_below_s'].get(key))} s"
            out["spread"] = f"per-trial ratio {_fmt(pt.get('mean'))} +- {_fmt(pt.get('ci95'))} (95 % CI, n={pt.get('n')})"
    elif name == "fig4":
        out["float"] = f"approx: max deviation from flat {_fmt(e['approx']['max_rel_deviation_from_flat'])}"
        if key and key in ec:
            out["chip"] = f"somatic change / float approx {_fmt(ec[key]['ratio_to_float_approx'])}"
    elif name == "fig5":
        out["float"] = f"approx log-log slope vs variance {_fmt(e['approx']['loglog_slope_vs_variance'])}"
        pc = (r.get("effect_config_paired") or {})
        if pc:
            pr = pc["paired"]
            out["targets"] = pc.get("targets", [])
            out["chip"] = f"paired RMS diff / float sd {_fmt(pr['ratio_per_seed_rms_to_float_sd'])}; " \
                          f"correlation {_fmt(pr['correlation'])}"
            out["spread"] = f"float seed sd (median) {_fmt(pr['float_seed_sd_median'])} %, {pr['n_seeds']} seeds"
    elif name == "fig7":
        out["float"] = f"regimes {e.get('regimes')}; opposite signs on {_fmt(e.get('fraction_opposite_sign'))} of the map"
        pr = ec.get("paired")
        if pr:
            out["chip"] = f"corr {_fmt(pr['correlation'])}, RMS diff {_fmt(pr['rms_mean_difference'])} %-pts, " \
                          f"sign agreement {_fmt(pr['sign_agreement_resolved'])}"
            out["spread"] = f"RMS diff se {_fmt(pr['rms_mean_difference_se'])}; float seed sd " \
                            f"{_fmt(pr['float_seed_sd_median'])} %; {pr['n_seeds']} seeds"
    elif name == "fig12":
        a = e.get("mean_angles_deg", {})
        out["float"] = "approx/Euclid angle to natural: " + ", ".join(
            f"{k} {_fmt(v['nat_approx_euclidean'], 2)}/{_fmt(v['nat_euclid_euclidean'], 2)}" for k, v in a.items())
        if "max_angle_diff_to_float_deg" in ec:
            out["chip"] = f"max angle difference to float approx {_fmt(ec['max_angle_diff_to_float_deg'])} deg"
            out["spread"] = ec.get("direction")
    passes = [t.get("pass") for t in out["targets"]]
    out["verdict"] = (None if not passes else False if False in passes
                      else "not resolved" if None in passes else True)
    return out


def rows(results: dict, label: str | None) -> list[dict]:
    return [_row(n, results[n], label) for n in ORDER if n in results]


def _targets_text(ts) -> str:
    parts = []
    for t in ts:
        v = t.get("value")
        tgt = t.get("target")
        ok = {True: "pass", None: "NOT RESOLVED"}.get(t.get("pass"), "FAIL")
        if tgt is None:
            parts.append(f"{t['what']}: {ok}" + (f" ({v})" if isinstance(v, str) else ""))
        else:
            parts.append(f"{t['what']} = {_fmt(v)}"
                         + (f" +- {_fmt(t['ci95'])}" if t.get("ci95") is not None else "")
                         + f" (target {tgt}): {ok}"
                         + (f" by {_fmt(abs(t['margin']))}" if t.get("margin") is not None
                            and t.get("pass") is not None else "")
                         + (f"; {t['resolve']}" if t.get("resolve") else "")
                         + (f"; {t['responsible']}" if t.get("responsible") and not t.get("pass") else ""))
    return "; ".join(parts) or "-"


def _verdict_word(v) -> str:
    return {True: "PASS", False: "FAIL", "not resolved": "NOT RESOLVED"}.get(
        v, "no target (shown for context)")


def write_summary(out: Path, results: dict, label: str | None, meta: dict) -> dict:
    """Write summary.md, summary.html and summary.json into ``out``; returns the record."""
    rs = rows(results, label)
    rec = {"config": label, **meta, "rows": rs,
           "all_pass": all(r["verdict"] is True for r in rs if r["verdict"] is not None)}
    head = ["figure", "paper's effect", "float64", f"{label or 'chip'}", "spread", "verdict (targets)"]
    md = [f"# natgrad experiments: float64 against {label or '(no chip config)'}", "",
          f"scale {meta.get('scale')}, seed {meta.get('seed')}, wall time {meta.get('wall_s')} s", "",
          "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rs:
        md.append("| " + " | ".join(x.replace("|", "\\|") for x in (
            r["figure"], r["paper_effect"], r["float"] or "-", r["chip"] or "-", r["spread"] or "-",
            f"**{_verdict_word(r['verdict'])}**" + (": " + _targets_text(r["targets"])
                                                     if r["targets"] else ""))) + " |")
    (out / "summary.md").write_text("\n".join(md) + "\n")
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in (
            r["figure"], r["paper_effect"], r["float"] or "-", r["chip"] or "-", r["spread"] or "-",
            _verdict_word(r["verdict"]) + (": " + _targets_text(r["targets"])
                                           if r["targets"] else ""))) + "</tr>" for r in rs)
    (out / "summary.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>natgrad experiments</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}</style></head><body>"
        f"<h1>natgrad experiments: float64 against {html.escape(str(label))}</h1>"
        f"<p>scale {meta.get('scale')}, seed {meta.get('seed')}, wall time {meta.get('wall_s')} s</p>"
        f"<table><tr>{cells}</tr>{body}</table></body></html>\n")
    (out / "summary.json").write_text(json.dumps(rec, indent=1, default=str))
    return rec
