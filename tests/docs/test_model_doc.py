"""``docs/model.md`` against the code: the constants table holds the code's numbers, the
coefficient table the exact coefficients, and every ``docs/*.md#anchor`` that the repository
cites exists.
"""
from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from emulator.metrics import TEST_TRAIN_STEPS
from emulator.params import NeuronParams
from emulator.reference import ETA_CODE, ETA_CODE_SCALED, coefficients, eta_to_paper
from emulator.task import fig3_task

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "model.md").read_text()

#: Names a row's ``code`` cell may use; ``NeuronParams`` is an instance with the defaults.
NAMESPACE = {"NeuronParams": NeuronParams(), "ETA_CODE": ETA_CODE, "ETA_CODE_SCALED": ETA_CODE_SCALED,
             "eta_to_paper": eta_to_paper, "fig3_task": fig3_task, "TEST_TRAIN_STEPS": TEST_TRAIN_STEPS}


def section(anchor: str) -> str:
    """The text of the section that starts at ``<a id="anchor">``, up to the next heading of
    the same or a higher level."""
    body = DOC[DOC.index(f'<a id="{anchor}"></a>'):]
    head = re.search(r"^(#+) .*$", body, flags=re.M)
    nxt = re.search(rf"^#{{1,{len(head.group(1))}}} ", body[head.end():], flags=re.M)
    return body if nxt is None else body[:head.end() + nxt.start()]


def table_rows(text: str) -> list[list[str]]:
    """Cells of the Markdown table rows in ``text`` (header and separator dropped)."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|")]
    return [r for r in rows[2:]]


def close_to_written(written: str, value: float) -> bool:
    """``value`` rounds to ``written``: within half a unit of the last written digit (a
    written integer-valued float such as ``10.0`` or ``78.0`` likewise)."""
    d = Decimal(written)
    half = Decimal(1).scaleb(d.as_tuple().exponent) / 2
    return abs(Decimal(repr(float(value))) - d) <= half


def constants_rows():
    rows = table_rows(section("constants"))
    assert len(rows) >= 20
    return rows


@pytest.mark.parametrize("row", constants_rows(), ids=lambda r: r[1].strip("`"))
def test_constants_table_matches_the_code(row):
    symbol, code, value, unit, _ = row
    expr = code.strip("`")
    got = eval(expr, {"__builtins__": {}}, NAMESPACE)   # noqa: S307 (the doc's own cells)
    assert close_to_written(value, got), f"{symbol}: docs/model.md says {value}, {expr} = {got!r}"


def test_constants_table_covers_every_neuron_param():
    codes = {r[1].strip("`") for r in constants_rows()}
    for name in NeuronParams.__dataclass_fields__:
        assert f"NeuronParams.{name}" in codes, f"NeuronParams.{name} has no row in docs/model.md"
    for rule in ETA_CODE:
        assert f'ETA_CODE["{rule}"]' in codes


def test_coefficient_table_matches_the_code():
    rows = table_rows(section("coefficient-values"))
    q = fig3_task(1).q
    m, v, gs, g1, g2, g4 = rows[0]
    got = [float(x) for x in coefficients(float(m), float(v), q)]
    assert close_to_written(gs, got[0]) and close_to_written(g1, got[1])
    assert close_to_written(g2, got[2]) and close_to_written(g2, got[3])
    assert close_to_written(g4, got[4])


def test_gamma_s_against_m_within_one_percent():
    """The Fig 10 table quotes 2-4 digits; each entry within 1 %."""
    text = section("coefficient-values")
    fig10 = text[text.index("γ_s = 1/I1 against m"):]
    for cells in table_rows(fig10):
        m = float(cells[0])
        for v, ref in ((4.0, cells[1]), (80.0, cells[2])):
            if ref:
                gs = float(coefficients(m, v, 78.0)[0])
                assert abs(gs / float(ref) - 1) < 0.01, (m, v, gs, ref)


def _anchors(path: Path) -> set[str]:
    return set(re.findall(r'<a id="([a-z0-9-]+)"></a>', path.read_text()))


def test_cited_anchors_exist():
    """Every ``docs/NAME.md#anchor`` (or ``NAME.md#anchor`` inside docs/) cited in the
    repository's code, tests, docs and configs is an anchor of that file."""
    anchors = {p.name: _anchors(p) for p in (ROOT / "docs").glob("*.md")}
    cited = []
    for sub in ("emulator", "natgrad", "fixedpoint", "lava_procs", "tests", "benchmarks", "docs",
                "hw_configs", "tasks"):
        for p in (ROOT / sub).rglob("*"):
            if p.suffix in (".py", ".md", ".yaml") and p.is_file():
                for name, anchor in re.findall(r"(?:docs/)?(\w+\.md)#([a-z0-9-]+)", p.read_text()):
                    if name in anchors:
                        cited.append((str(p.relative_to(ROOT)), name, anchor))
    for name, anchor in re.findall(r"(?:docs/)?(\w+\.md)#([a-z0-9-]+)", (ROOT / "README.md").read_text()):
        if name in anchors:
            cited.append(("README.md", name, anchor))
    assert any(name == "model.md" for _, name, _ in cited)
    missing = [c for c in cited if c[2] not in anchors[c[1]] and c[0] != "tests/docs/test_model_doc.py"]
    assert not missing, missing


def test_anchor_ids_are_unique_and_in_page_links_resolve():
    ids = re.findall(r'<a id="([^"]+)"></a>', DOC)
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z0-9-]+", i) for i in ids)
    assert set(re.findall(r"\]\(#([^)]+)\)", DOC)) <= set(ids)


def test_the_repository_cites_only_itself():
    """A clone has no ../shared: no file cites the specification's sections ('SPEC §') or
    the shared folder; the model is docs/model.md."""
    bad = []
    for path in ROOT.rglob("*"):
        if (path.suffix not in (".py", ".md", ".yaml", ".yml", ".toml") or ".venv" in path.parts
                or ".git" in path.parts or path == Path(__file__)):
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if re.search(r"SPEC ?§|\.\./shared|SPEC\.md", line):
                bad.append(f"{path.relative_to(ROOT)}:{n}")
    assert not bad, bad
