"""Tests of ``titans.reporting.figures``: figures drawn from what each curve states (panels, scales,
labels, colours by key, bytes, categories, gaps), spec validation, the PNG per claim (stale ones
removed), the report written once after the figures (plugin and ``python -m``), the extra figure
link, the memory-utilization heatmaps and the notebook lint."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from titans.reporting import figures as F
from titans.reporting import report as R
from titans.reporting.figures import publish

pytest.importorskip("matplotlib")

pytest_plugins = ["pytester"]

# Draw once at import (collection), so that every matplotlib module drawing needs is loaded before
# any in-process pytester run: a module first imported inside such a run is dropped from
# sys.modules after it, and a second copy of matplotlib then fails (classes no longer match).
F.figure_to_png(F.curves_figure([{"name": "warm-up", "x": [1, 2], "y": [1, 2], "meta": {"yscale": "log"}}]))

REPO = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def _curve(name, x, y, **meta):
    return {"name": name, "x": list(x), "y": list(y), "meta": meta}


def _axes(fig):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def _legend(fig):
    legends = list(fig.legends) + [ax.get_legend() for ax in _axes(fig) if ax.get_legend() is not None]
    return [t.get_text() for lg in legends for t in lg.get_texts()]


def _colors(ax):
    return [ln.get_color() for ln in ax.get_lines() if ln.get_label() and not ln.get_label().startswith("_")]


# --------------------------------------------------------------------------------------------
# Panels, scales, labels
# --------------------------------------------------------------------------------------------


def test_unstated_means_one_linear_panel_even_for_geometric_data():
    # lengths 1k..64k and a throughput label: the old code made this log-log; nothing is guessed now
    fig = F.curves_figure([_curve("lmm", [1024, 4096, 16384, 65536], [1e5, 9e4, 8e4, 7e4]),
                           _curve("transformer", [1024, 4096, 16384, 65536], [1e5, 5e4, 2e4, 1e4])])
    (ax,) = _axes(fig)
    assert ax.get_xscale() == ax.get_yscale() == "linear"
    assert ax.get_title() == "" and ax.get_xlabel() == "" and ax.get_ylabel() == ""
    assert _legend(fig) == ["lmm", "transformer"]


def test_panels_in_order_of_first_appearance_with_their_stated_axes():
    lens = [1024, 4096, 16384]
    curves = []
    for m in ("lmm", "transformer"):
        curves.append(_curve(f"tokens/s {m}", lens, [1e5, 5e4, 2e4], panel="speed", series=m, xscale="log2",
                             yscale="log", xlabel="sequence length (tokens)", ylabel="tokens/s"))
        curves.append(_curve(f"memory {m}", lens, [1e6, 4e6, 16e6], panel="memory", series=m, xscale="log2",
                             xlabel="sequence length (tokens)", ylabel="peak memory", yunit="bytes"))
    fig = F.curves_figure(curves, title="t")
    speed, memory = _axes(fig)
    assert [speed.get_title(), memory.get_title()] == ["speed", "memory"]
    assert speed.get_xscale() == speed.get_yscale() == "log" and speed.xaxis.get_transform().base == 2
    assert speed.yaxis.get_transform().base == 10
    assert memory.get_xscale() == "log" and memory.get_yscale() == "linear"
    assert speed.get_xlabel() == "sequence length (tokens)"  # as given: no unit appended
    assert speed.get_ylabel() == "tokens/s" and memory.get_ylabel() == "peak memory (MiB)"
    assert _legend(fig) == ["lmm", "transformer"]  # one entry per series over both panels
    assert _colors(speed) == _colors(memory)


def test_symlog_and_log_mask_what_they_cannot_show():
    fig = F.curves_figure([
        _curve("gate", [0, 0.001, 0.01, 0.1], [0.1, 0.5, 0.7, 0.8], panel="a", xscale="symlog"),
        _curve("speed", [1, 10, 100], [0.0, 5.0, 50.0], panel="b", yscale="log"),
    ])
    a, b = _axes(fig)
    assert a.get_xscale() == "symlog" and a.xaxis.get_transform().linthresh == pytest.approx(0.001)
    assert b.get_yscale() == "log"


def test_panels_must_agree_on_what_they_state():
    with pytest.raises(ValueError, match="different xlabel"):
        F.curves_figure([_curve("a", [1, 2], [1, 2], xlabel="θ"), _curve("b", [1, 2], [1, 2], xlabel="α")])
    with pytest.raises(ValueError, match="different xscale"):
        F.curves_figure([_curve("a", [1, 2], [1, 2], xscale="log"), _curve("b", [1, 2], [1, 2], xscale="log2")])
    # stated by one curve, unstated by the other: the panel takes the stated value
    fig = F.curves_figure([_curve("a", [1, 10, 100], [1, 2, 3], xscale="log", ylabel="y"),
                           _curve("b", [1, 10, 100], [3, 2, 1])])
    assert _axes(fig)[0].get_xscale() == "log" and _axes(fig)[0].get_ylabel() == "y"
    with pytest.raises(ValueError, match="categories"):
        F.curves_figure([_curve("bars", ["a", "b"], [1, 2], xscale="log")])


def test_ylim_stated_bounds_with_a_margin_and_shared_ranges():
    fig = F.curves_figure([_curve("r", [1, 2, 3], [0.2, 0.3, 0.4], ylim=[0, 1], ylabel="recall")])
    lo, hi = _axes(fig)[0].get_ylim()
    assert lo == pytest.approx(-0.03) and hi == pytest.approx(1.03)
    fig = F.curves_figure([_curve("c", [1, 2, 3], [10.0, 10.1, 9.9], ylim=[0, None])])
    lo, hi = _axes(fig)[0].get_ylim()
    assert lo < 0 and hi < 11  # the lower bound stated, the upper one matplotlib's
    # panels with the same y label share their range
    fig = F.curves_figure([_curve("a", [1, 2], [0, 1], panel="p", ylabel="acc"),
                           _curve("b", [1, 2], [5, 9], panel="q", ylabel="acc")])
    p, q = _axes(fig)
    assert p.get_ylim() == q.get_ylim() and p.get_ylim()[1] >= 9


# --------------------------------------------------------------------------------------------
# Colours and legend
# --------------------------------------------------------------------------------------------


def test_colours_by_key_across_panels_and_fixed_colours_by_exact_name():
    curves = []
    for L in (256, 1024):
        for mixer in ("attention", "memory L_M=2", "my mixer"):
            curves.append(_curve(f"{mixer} @ L={L}", [1, 16, L - 1], [1.0, 0.5, 0.1], panel=f"L = {L}",
                                 series=mixer, xscale="log"))
    fig = F.curves_figure(curves)
    a, b = _axes(fig)
    assert [a.get_title(), b.get_title()] == ["L = 256", "L = 1024"]
    assert _colors(a) == _colors(b)
    assert _colors(a)[:2] == [F.KNOWN_COLORS["attention"], F.KNOWN_COLORS["memory L_M=2"]]
    # an unknown key takes the first palette colour that no known key of this figure holds
    assert _colors(a)[2] == next(c for c in F.PALETTE if c not in _colors(a)[:2])
    assert _legend(fig) == ["attention", "memory L_M=2", "my mixer"]
    # exact names only: a name that merely contains "attention" gets no fixed colour
    assert F.color_map(["full attention + memory"]) == {"full attention + memory": F.PALETTE[0]}
    assert F.color_map(["x", "y", "SWA"]) == {"x": F.PALETTE[0], "y": F.PALETTE[1], "SWA": F.KNOWN_COLORS["SWA"]}
    # the same known key has the same colour in another figure, wherever it appears
    other = F.curves_figure([_curve("z", [1, 2], [1, 2]), _curve("attention", [1, 2], [2, 1])])
    assert _colors(_axes(other)[0])[1] == F.KNOWN_COLORS["attention"]


def test_color_key_groups_curves_and_series_labels_merge():
    # seeds of one model: one colour (the model's), one legend entry
    curves = [_curve(f"MAC, seed {s}", [0, 10, 20], [0.1, 0.5, 0.9 - s / 10], series="MAC") for s in range(3)]
    curves.append(_curve("baseline", [0, 10, 20], [0.1, 0.2, 0.3], color_key="attention"))
    fig = F.curves_figure(curves)
    (ax,) = _axes(fig)
    assert _colors(ax) == [F.KNOWN_COLORS["MAC"]] * 3 + [F.KNOWN_COLORS["attention"]]
    assert _legend(fig) == ["MAC", "baseline"]
    # a colour key taken twice in a figure: the second known key falling on a used colour cycles
    assert F.color_map(["LMM", "memory L_M=2"]) == {"LMM": F.KNOWN_COLORS["LMM"], "memory L_M=2": F.PALETTE[0]}


# --------------------------------------------------------------------------------------------
# Bands, reference lines, bytes, categories, gaps
# --------------------------------------------------------------------------------------------


def test_bands_error_bars_and_reference_lines():
    fig = F.curves_figure([
        _curve(f"depth {k}", [4, 8, 16], [1.0, 0.5 + 0.1 * k, 0.1 * k], y_low=[0.9, 0.4, 0.0],
               y_high=[1.0, 0.8, 0.5], hline=0.05, hline_label="chance", vline=[8], vline_label="d_k")
        for k in (1, 2)
    ] + [_curve("with err", [4, 8, 16], [0.3, 0.3, 0.3], yerr=[0.1, 0.1, "nan"])])
    (ax,) = _axes(fig)
    assert len([c for c in ax.collections if type(c).__name__ == "FillBetweenPolyCollection"
                or type(c).__name__ == "PolyCollection"]) >= 2
    assert _legend(fig) == ["depth 1", "depth 2", "with err", "chance", "d_k"]


def test_bytes_are_shown_in_binary_units_with_reference_lines_scaled():
    fig = F.curves_figure([_curve("cache", [1, 2, 3], [3 * 2**30, 3.1 * 2**30, 3.2 * 2**30], yunit="bytes",
                                  ylabel="decode cache", hline=2**31)])
    (ax,) = _axes(fig)
    assert ax.get_ylabel() == "decode cache (GiB)"
    line, ref = ax.get_lines()
    assert max(line.get_ydata()) == pytest.approx(3.2) and ref.get_ydata()[0] == pytest.approx(2.0)
    small = F.curves_figure([_curve("s", [1], [512], yunit="bytes")])
    assert _axes(small)[0].get_ylabel() == "bytes"


def test_categories_gaps_and_empty_panels():
    bars = F.curves_figure([_curve("cost", ["w/o Weight Decay", "w/o Momentum", "w/o Convolution"], [2.0, "nan", 1.0],
                                   ylabel="cost")])
    (ax,) = _axes(bars)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["w/o Weight\nDecay", "w/o Momentum", "w/o\nConvolution"]
    assert len(ax.patches) == 2 and any(t.get_text() == "n/a" for t in ax.texts)
    fig = F.curves_figure([
        _curve("one point", [3], [0.5], panel="a"),
        _curve("all nan", [1, 2, 3], ["nan", "inf", None], panel="b"),
        _curve("empty", [], [], panel="c"),
        _curve("gap", [1, 2, 3, 4], [0.1, None, 0.7, "-inf"], panel="d"),
    ])
    a, b, c, d = _axes(fig)
    assert any(t.get_text() == "0.5" for t in a.texts)  # a lone point carries its value
    assert any("no finite values" in t.get_text() for t in b.texts)
    assert any("no finite values" in t.get_text() for t in c.texts)
    ys = d.get_lines()[0].get_ydata()
    assert math.isnan(ys[1]) and math.isnan(ys[3])
    assert F.figure_to_png(fig).startswith(PNG)


def test_the_same_curve_from_several_tests_is_drawn_once():
    rows = [{"claim_id": "c", "verdict": "supported", "curves": [_curve("attention", [1, 2], [1, 0.5])]},
            {"claim_id": "c", "verdict": "supported", "curves": [_curve("attention", [1, 2], [1, 0.5]),
                                                                 _curve("memory", [1, 2], [1, 1])]}]
    fig = F.claim_figure("c", F.claim_series(rows)["c"], rows)
    assert len(_axes(fig)[0].get_lines()) == 2
    assert "✓ supported (2/2)" in fig.get_suptitle()


@pytest.mark.parametrize(
    ("value", "text"),
    [(8192, "8k"), (65536, "64k"), (1 << 20, "1M"), (1500, "1.5k"), (2.5e6, "2.5M"), (0.25, "0.25"), (0, "0"),
     (math.nan, "")],
)
def test_human_ticks(value, text):
    assert F.human(value) == text


# --------------------------------------------------------------------------------------------
# The spec is checked when recorded
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("meta", "match"), [
    ({"xscale": "logarithmic"}, "xscale"),
    ({"yscale": "log10"}, "yscale"),
    ({"panel": ["a"]}, "panel"),
    ({"ylabel": 3}, "ylabel"),
    ({"yunit": "MiB"}, "yunit"),
    ({"ylim": [0]}, "ylim"),
    ({"y_low": [0, 0, 0]}, "both y_low and y_high"),
    ({"y_low": [0, 0], "y_high": [1, 1, 1]}, "entries for 3 points"),
    ({"yerr": [0.1]}, "entries for 3 points"),
    ({"hline": "chance"}, "hline"),
])
def test_bad_specs_are_refused_when_recorded(meta, match):
    rec = R.ClaimRecord("c", lambda *a: None)
    with pytest.raises(ValueError, match=match):
        rec.curve("bad", [1, 2, 3], [1, 2, 3], **meta)


def test_good_specs_and_free_data_are_recorded():
    recorded = []
    rec = R.ClaimRecord("c", lambda name, value: recorded.append(json.loads(value)))
    rec.curve("ok", np.array([1, 2]), [float("nan"), 1.0], panel=3, xscale="log2", ylim=[0, None], y_low=[0, 0],
              y_high=[1, 1], hline=np.float32(0.5), mixer="SWA", widths=[1, 2])
    assert recorded[0]["meta"]["hline"] == 0.5 and recorded[0]["meta"]["mixer"] == "SWA"
    assert set(F.SPEC_KEYS) >= {"panel", "xscale", "yscale", "xlabel", "ylabel", "series", "color_key", "yunit"}


# --------------------------------------------------------------------------------------------
# PNG per claim, stale ones removed; the report written once (plugin) or again once (CLI)
# --------------------------------------------------------------------------------------------


def _row(cid, nodeid, curves, verdict="supported"):
    return {
        "nodeid": nodeid, "claim_id": cid, "verdict": verdict, "outcome": "passed", "reason": "", "scale": "ci",
        "measured": "recall = 0.9 ± 0.05 (n=3)", "threshold": ">= 0.8", "statement": f"seed: {cid}",
        "kind": "paper", "figure": None, "values": [], "seeds": [0, 1, 2], "curves": curves, "notes": [],
    }


def _claim(cid):
    return {"id": cid, "statement": f"seed: {cid}", "threshold_text": ">= 0.8", "test": "t.py", "kind": "paper",
            "origin": "paper", "amendments": []}


def synthetic_doc() -> dict:
    rows = [
        _row("recall.far", "claims/test_recall.py::test_far[1k]", [
            _curve(m, [1, 16, 256], [1.0, 0.5, 0.1], panel="L = 1k", series=m, xscale="log", ylim=[0, 1])
            for m in ("attention", "SWA")]),
        _row("ablation.bars", "claims/test_t5.py::test_order", [_curve("cost", ["a", "b"], [2.0, 1.0])]),
        _row("broken", "claims/test_b.py::test_b", [_curve("a", [1], [1], xlabel="x"), _curve("b", [1], [1], xlabel="y")]),
        _row("no.curves", "claims/test_none.py::test_none", []),
    ]
    claims = {r["claim_id"]: _claim(r["claim_id"]) for r in rows}
    claims["never.run"] = _claim("never.run")
    meta = {"generated": "2026-01-01T00:00:00+00:00", "scale": "ci", "exitstatus": 0, "git_commit": "abc",
            "command": "pytest", "environment": {"mlx": "x"}}
    return R.json_doc(rows + [{**_row("never.run", "t.py", []), "verdict": R.NOT_RUN}], meta, claims)


def test_write_claim_figures_draws_once_per_claim_and_removes_stale_ones(tmp_path: Path):
    out = tmp_path / "figures"
    out.mkdir()
    for stale in ("no.curves", "never.run", "broken"):
        (out / f"{stale}.png").write_bytes(PNG + b"stale")
    (out / "memory-utilization.png").write_bytes(PNG)  # not a claim figure: kept
    errors: list[str] = []
    rows = R.rows_from_doc(synthetic_doc())
    made = F.write_claim_figures(rows, out, errors=errors)
    assert sorted(made) == ["ablation.bars", "recall.far"]
    assert sorted(p.name for p in out.iterdir()) == ["ablation.bars.png", "memory-utilization.png", "recall.far.png"]
    assert (out / "recall.far.png").read_bytes().startswith(PNG) and (out / "recall.far.png").stat().st_size > 5_000
    assert len(errors) == 1 and errors[0].startswith("broken: ValueError: the default panel: curves state different xlabel")


def test_cli_redraws_from_json_and_writes_the_report_again_once(tmp_path: Path, monkeypatch):
    js = tmp_path / "claims.json"
    doc = synthetic_doc()
    doc["extra_figures"] = [{"title": "Memory utilization (titans.analysis)", "path": "figures/memory-utilization.png"}]
    js.write_text(json.dumps(doc))
    out = tmp_path / "figures"
    out.mkdir()
    (out / "no.curves.png").write_bytes(PNG + b"stale")
    (out / "memory-utilization.png").write_bytes(PNG)
    writes = []
    render = R.render_markdown
    monkeypatch.setattr(R, "render_markdown", lambda *a: writes.append("md") or render(*a))
    assert F.main([str(js)]) == 0
    assert writes == ["md"]
    assert not (out / "no.curves.png").exists()
    md = (tmp_path / "claims.md").read_text()
    assert "![recall.far](figures/recall.far.png)" in md and "[figure](figures/recall.far.png)" in md
    assert "![no.curves]" not in md and "![broken]" not in md
    assert "![Memory utilization (titans.analysis)](figures/memory-utilization.png)" in md  # linked in the JSON
    assert "| `never.run` |" in md  # not-run rows are rebuilt from the registry copy
    section = md.split("### `recall.far`", 1)[1].split("![", 1)[0]
    assert "**supported** · recall = 0.9 ± 0.05 (n=3) (threshold >= 0.8) · `test_far[1k]`" in section
    new = json.loads(js.read_text())
    assert new["figures"] == {"recall.far": "figures/recall.far.png", "ablation.bars": "figures/ablation.bars.png"}
    assert new["extra_figures"] == doc["extra_figures"]
    assert new["results"][0]["curves"] == doc["results"][0]["curves"] and new["claims"] == doc["claims"]
    assert new["generated"] == doc["generated"] and new["not_run"] == ["never.run"]
    # elsewhere: the report is left alone
    before = js.read_text()
    assert F.main([str(js), "--out", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "recall.far.png").is_file() and js.read_text() == before
    assert F.main([str(tmp_path / "missing.json")]) == 2


def test_add_extra_figure_links_it_once(tmp_path: Path):
    (tmp_path / "claims.json").write_text(json.dumps(synthetic_doc()))
    F.add_extra_figure(tmp_path, F.MEMORY_UTILIZATION_TITLE, "figures/memory-utilization.png")
    F.add_extra_figure(tmp_path, F.MEMORY_UTILIZATION_TITLE, "figures/memory-utilization.png")
    md = (tmp_path / "claims.md").read_text()
    assert md.count("![Memory utilization (titans.analysis)](figures/memory-utilization.png)") == 1
    doc = json.loads((tmp_path / "claims.json").read_text())
    assert doc["extra_figures"] == [{"title": F.MEMORY_UTILIZATION_TITLE, "path": "figures/memory-utilization.png"}]


def test_draw_report_figures_sets_the_rows_links(tmp_path: Path, monkeypatch):
    rows = R.rows_from_doc(synthetic_doc())
    rows[-1]["figure"] = "figures/never.run.png"  # whatever a row held before: replaced
    note = F.draw_report_figures(tmp_path, rows)
    assert note.startswith(f"figures: 2 written to {tmp_path / 'figures'}; 1 failed: broken: ValueError")
    assert {r["claim_id"]: r["figure"] for r in rows} == {
        "recall.far": "figures/recall.far.png", "ablation.bars": "figures/ablation.bars.png", "broken": None,
        "no.curves": None, "never.run": None}
    rows[0]["curves"][0]["meta"]["x_label"] = "old"
    assert "x_label -> xlabel (curve 'attention')" in F.draw_report_figures(tmp_path, rows)
    # without matplotlib: nothing drawn, stale figures removed, no links
    monkeypatch.setattr(publish, "matplotlib_available", lambda: False)
    note = F.draw_report_figures(tmp_path, rows)
    assert "matplotlib is not installed" in note
    assert not list((tmp_path / "figures").glob("*.png")) and all(r["figure"] is None for r in rows)


# --------------------------------------------------------------------------------------------
# The plugin: figures first, then the report once, linking this session's figures only
# --------------------------------------------------------------------------------------------

REGISTRY = """
from claims.registry import Claim

_S = {"ci": {"desc": "tiny"}, "full": {"desc": "big"}}
CLAIMS = {c.id: c for c in [
    Claim(id=i, statement=f"seed: {i}", source="tests", metric="m", direction=">=", threshold=0.5,
          scales=_S, test="test_fake.py", kind="paper")
    for i in ("fake.curve", "fake.plain", "fake.unrun")
]}
"""

TESTS = """
import pytest

@pytest.mark.claim("fake.curve")
@pytest.mark.parametrize("n", [64, 128])
def test_curve(n, claim_record):
    claim_record.value("recall", 0.9)
    claim_record.curve("memory", [1, 4, 16, n], [1.0, 0.9, 0.5, float("nan")], panel=f"L = {n}",
                       xlabel="distance", ylabel="recall", xscale="log2", ylim=[0, 1])

@pytest.mark.claim("fake.plain")
def test_plain(claim_record):
    claim_record.value("recall", 0.7)
"""


def test_plugin_draws_figures_first_then_writes_the_report_once(pytester: pytest.Pytester, monkeypatch):
    pytester.syspathinsert()
    pytester.makeini("[pytest]\nclaims_registry = fake_registry\n")
    pytester.makepyfile(fake_registry=REGISTRY, test_fake=TESTS)
    figs = pytester.path / "reports" / "figures"
    figs.mkdir(parents=True)
    for old in ("fake.plain.png", "fake.unrun.png"):  # from an earlier run whose curves are gone
        (figs / old).write_bytes(PNG + b"old")
    (figs / "memory-utilization.png").write_bytes(PNG)  # drawn elsewhere: kept, not linked
    events = []
    draw, md, js = publish.write_claim_figures, R.render_markdown, R.render_json
    monkeypatch.setattr(publish, "write_claim_figures", lambda *a, **k: events.append("figures") or draw(*a, **k))
    monkeypatch.setattr(R, "render_markdown", lambda *a: events.append("md") or md(*a))
    monkeypatch.setattr(R, "render_json", lambda *a: events.append("json") or js(*a))
    result = pytester.runpytest("-p", "titans.reporting.plugin", "-p", "no:hypothesispytest", "-p", "no:benchmark",
                                "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert events == ["figures", "md", "json"]
    assert sorted(p.name for p in figs.iterdir()) == ["fake.curve.png", "memory-utilization.png"]
    assert (figs / "fake.curve.png").read_bytes().startswith(PNG)
    md_text = (pytester.path / "reports" / "claims.md").read_text()
    assert "![fake.curve](figures/fake.curve.png)" in md_text and "[figure](figures/fake.curve.png)" in md_text
    assert "memory-utilization" not in md_text and "fake.plain.png" not in md_text
    doc = json.loads((pytester.path / "reports" / "claims.json").read_text())
    assert doc["figures"] == {"fake.curve": "figures/fake.curve.png"} and doc["extra_figures"] == []
    assert {r["claim_id"]: r["figure"] for r in doc["results"]} == {
        "fake.curve": "figures/fake.curve.png", "fake.plain": None}
    assert "figures: 1 written to" in result.stdout.str()


# --------------------------------------------------------------------------------------------
# Memory-utilization heatmaps
# --------------------------------------------------------------------------------------------


def _utilization(model, gate: bool, T=40, L=2, H=2):
    rng = np.random.default_rng(0)
    ends = np.arange(7, T, 8)
    return {
        "model": model, "chunk_size": 8, "marks": {"needle": 10, "query": T - 1},
        "write_strength": rng.uniform(1e-4, 1e-2, (1, L, H, T)),
        "weight_norm": rng.uniform(0.5, 2.0, (1, L, H, len(ends))),
        "weight_norm_initial": np.ones((1, L, H)), "chunk_end": ends,
        "attention_norm": rng.uniform(1, 2, (1, L, T)) if gate else None,
        "memory_norm": rng.uniform(0.1, 1, (1, L, T)) if gate else None,
    }


def test_memory_utilization_figure(tmp_path: Path):
    fig = F.memory_utilization_figure([_utilization("LMM", False), _utilization("MAG", True)], "title")
    axes = _axes(fig)
    assert len(axes) == 6  # 3 rows x 2 models
    assert any("no attention branch" in t.get_text() for ax in axes for t in ax.texts)
    assert F.figure_to_png(fig, tmp_path / "m.png").startswith(PNG) and (tmp_path / "m.png").stat().st_size > 5_000
    zero = _utilization("LMM", False)
    zero["write_strength"][:] = 0.0  # θ = 0: nothing to colour on a log scale, said in the panel
    fig = F.memory_utilization_figure([zero])
    assert len(_axes(fig)) == 2 and any("no writes" in t.get_text() for t in _axes(fig)[0].texts)


# --------------------------------------------------------------------------------------------
# The notebook
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("marimo") is None, reason="marimo is not installed")
def test_notebook_passes_marimo_check():
    notebook = REPO / "notebooks" / "titans_claims.py"
    out = subprocess.run([sys.executable, "-m", "marimo", "check", str(notebook)], capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    text = notebook.read_text()
    assert '__generated_with = "0.25.2"' in text and 'app = marimo.App(width="medium")' in text
    assert text.index("import titans") < text.index("from titans import analysis")
