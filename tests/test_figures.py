"""Tests of ``titans.reporting.figures``: claim figures from a synthetic claims.json, grouping and
scales, the report refresh, the plugin hook, the memory-utilization figure, the notebook lint."""

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

pytest.importorskip("matplotlib")

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def _row(cid, nodeid, curves, verdict="supported"):
    return {
        "nodeid": nodeid, "claim_id": cid, "verdict": verdict, "outcome": "passed", "reason": "", "scale": "ci",
        "measured": "recall = 0.9 ± 0.05 (n=3)", "threshold": ">= 0.8", "statement": f"seed: {cid}",
        "kind": "paper", "figure": None, "values": [], "seeds": [0, 1, 2], "curves": curves, "notes": [],
    }


def _curve(name, x, y, **meta):
    return {"name": name, "x": list(x), "y": list(y), "meta": meta}


def _claim(cid):
    return {"id": cid, "statement": f"seed: the statement of {cid}", "threshold_text": ">= 0.8", "test": "t.py",
            "kind": "paper"}


def synthetic_doc() -> dict:
    """A claims.json as the claim tests will write it, plus the awkward cases."""
    results = []
    for L in (1024, 4096):  # recall vs distance per mixer, one test per length
        d = [1, 4, 16, 64, 256, L - 1]
        results.append(_row("recall.far", f"claims/test_recall.py::test_far[{L}]", [
            _curve(m, d, [max(0.0, 1 - i * x / L) for x in d], x_label="distance", y_label="recall", length=L, mixer=m)
            for i, m in enumerate(["attention", "SWA", "memory (deep)"])
        ]))
    lens = [1024, 4096, 16384, 65536]
    for m, e in (("lmm", 1.0), ("transformer", 2.0)):  # tokens/s and memory per model, one test each
        results.append(_row("throughput.scaling", f"claims/test_tp.py::test_scaling[{m}]", [
            _curve(m, lens, [1e5 * (n / 1024) ** (1 - e) for n in lens], x_label="sequence length",
                   y_label="throughput", y_unit="tokens/s", model=m),
            _curve(m, lens, [1e6 * (n / 1024) ** e for n in lens], x_label="sequence length",
                   y_label="peak memory", y_unit="bytes", model=m),
        ]))
    results.append(_row("capacity.depth", "claims/test_cap.py::test_capacity", [
        _curve(f"depth {k}", [4, 8, 16, 32], [1.0, 0.9, 0.5 + 0.1 * k, 0.1 * k], x_label="stored pairs",
               y_label="recall", y_low=[0.9, 0.8, 0.4, 0.0], y_high=[1.0, 1.0, 0.8, 0.5], depth=k, hline=0.05,
               hline_label="chance")
        for k in (1, 2, 3)
    ]))
    results.append(_row("ablation.bars", "claims/test_t5.py::test_order", [
        _curve("cost", ["w/o Weight Decay", "w/o Momentum", "w/o Convolution"], [2.0, "nan", 1.0])
    ]))
    results.append(_row("edge.cases", "claims/test_edge.py::test_edge[x]", [
        _curve("one point", [3], [0.5]),
        _curve("all nan", [1, 2, 3], ["nan", "inf", None], weird={"nested": [1, 2]}),
        _curve("empty", [], []),
        _curve("gated", [0, 0.001, 0.01, 0.1], [0.1, 0.5, 0.7, "-inf"], x_label="forget gate", y_label="recall"),
    ], verdict="error"))
    results.append(_row("no.curves", "claims/test_none.py::test_none", []))
    claims = {r["claim_id"]: _claim(r["claim_id"]) for r in results}
    claims["never.run"] = _claim("never.run")
    return {
        "schema": 1, "generated": "2026-01-01T00:00:00+00:00", "scale": "ci", "exitstatus": 0, "git_commit": "abc",
        "command": "pytest", "environment": {"mlx": "x"}, "counts": {"supported": 7}, "results": results,
        "not_run": ["never.run"], "claims": claims,
    }


WITH_CURVES = {"recall.far", "throughput.scaling", "capacity.depth", "ablation.bars", "edge.cases"}


def _axes(fig):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def test_small_multiples_by_length_and_log_log_throughput():
    series = F.claim_series(synthetic_doc())
    recall = F.claim_figure("recall.far", series["recall.far"])
    axes = _axes(recall)
    assert [ax.get_title() for ax in axes] == ["length = 1k", "length = 4k"]
    assert all(len(ax.get_lines()) == 3 for ax in axes)
    assert all(ax.get_xscale() == "log" and ax.get_ylabel() == "recall" for ax in axes)
    assert axes[0].get_xlabel() == "distance (tokens)"
    legend = recall.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["attention", "SWA", "memory (deep)"]
    # colours are per label and the same in every panel
    assert [ln.get_color() for ln in axes[0].get_lines()] == [ln.get_color() for ln in axes[1].get_lines()]

    tp = F.claim_figure("throughput.scaling", series["throughput.scaling"])
    axes = _axes(tp)
    assert len(axes) == 2  # tokens/s and memory never share an axes; the two models overlay
    assert all(len(ax.get_lines()) == 2 for ax in axes)
    assert all(ax.get_xscale() == "log" and ax.get_yscale() == "log" for ax in axes)
    assert [ax.get_ylabel() for ax in axes] == ["throughput (tokens/s)", "peak memory (MiB)"]
    assert axes[0].get_xlabel() == "sequence length (tokens)"


def test_labels_follow_the_series_across_panels():
    # as claims/test_recall.py records them: names spell out the length, two tests repeat the baselines
    curves = []
    for src in ("L_M=1", "L_M=2"):
        for L in (256, 1024):
            for mixer in ("attention", f"memory {src}"):
                curves.append(F.Series(f"{mixer} @ L={L}", [1, 16, L - 1], [1.0, 0.5, 0.1], {
                    "xlabel": "distance", "ylabel": "recall accuracy", "mixer": mixer, "length": L}, source=src))
    fig = F.claim_figure("recall", curves)
    axes = _axes(fig)
    assert [ax.get_title() for ax in axes] == ["length = 256", "length = 1k"]
    assert all(len(ax.get_lines()) == 3 for ax in axes)  # attention drawn once, not per test
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["attention", "memory L_M=1", "memory L_M=2"]
    assert all(ax.get_xscale() == "log" for ax in axes)  # one scale for both panels
    # as claims/test_throughput.py records them: a shared prefix, an explicit figure key
    lens = [1024, 2048, 4096]
    tp = [F.Series(f"forward {what}: {m}", lens, [v * (i + 1) for v in (1.0, 2.0, 4.0)],
                   {"xlabel": "sequence length (tokens)", "ylabel": what, "figure": what})
          for what in ("tokens/s", "peak memory (MiB)") for i, m in enumerate(("lmm", "transformer"))]
    fig = F.claim_figure("tp", tp)
    assert [ax.get_title() for ax in _axes(fig)] == ["tokens/s", "peak memory (MiB)"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["lmm", "transformer"]
    colors = [[ln.get_color() for ln in ax.get_lines()] for ax in _axes(fig)]
    assert colors[0] == colors[1]
    # a flat memory curve is drawn from 0, not zoomed into its noise
    flat = F.curves_figure([{"name": "cache", "x": [1, 2, 3], "y": [10.0, 10.1, 9.9],
                             "meta": {"ylabel": "cache (MiB)"}}])
    assert _axes(flat)[0].get_ylim()[0] == 0


def test_bands_reference_lines_and_categories():
    series = F.claim_series(synthetic_doc())
    cap = F.claim_figure("capacity.depth", series["capacity.depth"], {"statement": "s", "threshold_text": ">= 1"})
    (ax,) = _axes(cap)
    assert len(ax.collections) == 3  # one uncertainty band per curve
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["depth 1", "depth 2", "depth 3", "chance"]
    assert "threshold >= 1" in cap.get_suptitle()

    bars = F.claim_figure("ablation.bars", series["ablation.bars"])
    (ax,) = _axes(bars)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["w/o Weight\nDecay", "w/o Momentum", "w/o\nConvolution"]
    assert len(ax.patches) == 2 and any(t.get_text() == "n/a" for t in ax.texts)


def test_awkward_curves_still_draw():
    series = F.claim_series(synthetic_doc())["edge.cases"]
    fig = F.claim_figure("edge.cases", series, rows=[{"verdict": "error", "measured": "—"}])
    axes = _axes(fig)
    assert len(axes) == 2  # unlabelled curves, and the "recall" one
    assert "⚠ error" in fig.get_suptitle()
    gated = next(ax for ax in axes if ax.get_ylabel() == "recall")
    assert gated.get_xscale() == "symlog"  # a geometric sweep that starts at 0
    assert F.figure_to_png(fig).startswith(PNG)
    empty = F.curves_figure([{"name": "nothing", "x": [], "y": []}], title="t")
    assert any("no finite values" in t.get_text() for ax in _axes(empty) for t in ax.texts)
    assert F.figure_to_png(empty).startswith(PNG)
    nan_only = F.curves_figure([{"name": "n", "x": [1, 2], "y": ["nan", None]}])
    assert any("no finite values" in t.get_text() for t in _axes(nan_only)[0].texts)


@pytest.mark.parametrize(
    ("value", "text"),
    [(8192, "8k"), (65536, "64k"), (1 << 20, "1M"), (1500, "1.5k"), (2.5e6, "2.5M"), (0.25, "0.25"), (0, "0"),
     (math.nan, "")],
)
def test_human_ticks(value, text):
    assert F.human(value) == text


def test_cli_draws_one_figure_per_claim_with_curves_and_refreshes_the_report(tmp_path: Path):
    js = tmp_path / "claims.json"
    js.write_text(json.dumps(synthetic_doc()))
    out = tmp_path / "figures"
    out.mkdir()
    (out / "no.curves.png").write_bytes(PNG + b"stale")  # from an earlier run
    (out / "never.run.png").write_bytes(PNG + b"stale")
    (out / "memory-utilization.png").write_bytes(PNG)  # not a claim figure: kept, and linked
    assert F.main([str(js)]) == 0
    for cid in WITH_CURVES:
        data = (out / f"{cid}.png").read_bytes()
        assert data.startswith(PNG) and len(data) > 5_000, cid
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{c}.png" for c in WITH_CURVES] + ["memory-utilization.png"])
    assert (out / "memory-utilization.png").read_bytes() == PNG
    md = (tmp_path / "claims.md").read_text()
    assert "## Figures" in md
    for cid in WITH_CURVES:
        assert f"![{cid}](figures/{cid}.png)" in md and f"[figure](figures/{cid}.png)" in md
    assert "![no.curves]" not in md
    assert "![Memory utilization (titans.analysis)](figures/memory-utilization.png)" in md
    section = md.split("### `recall.far`", 1)[1].split("![", 1)[0]
    assert "**supported** · recall = 0.9 ± 0.05 (n=3) (threshold >= 0.8) · `test_far[1024]`" in section
    doc = json.loads(js.read_text())
    assert doc["figures"]["recall.far"] == "figures/recall.far.png"
    assert doc["figures"]["memory-utilization"] == "figures/memory-utilization.png"
    assert "| `never.run` |" in md  # not-run rows are rebuilt from the registry copy
    assert F.main([str(tmp_path / "missing.json")]) == 2


def test_one_broken_claim_costs_only_its_own_figure(tmp_path: Path, monkeypatch):
    draw = F.claim_figure

    def flaky(cid, *args, **kwargs):
        if cid == "capacity.depth":
            raise RuntimeError("boom")
        return draw(cid, *args, **kwargs)

    monkeypatch.setattr(F, "claim_figure", flaky)
    doc = synthetic_doc()
    doc["results"] = [r for r in doc["results"] if r["claim_id"] in ("capacity.depth", "ablation.bars")]
    (tmp_path / "claims.json").write_text(json.dumps(doc))
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "capacity.depth.png").write_bytes(PNG)  # an old one must not survive
    note = F.after_session(tmp_path, F._rows_from_json(doc), {})
    assert note.startswith("figures: 1 written") and "1 failed: capacity.depth: RuntimeError: boom" in note
    assert not (tmp_path / "figures" / "capacity.depth.png").exists()
    assert "![capacity.depth]" not in (tmp_path / "claims.md").read_text()


def test_after_session_without_matplotlib(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(F, "matplotlib_available", lambda: False)
    note = F.after_session(tmp_path, [], {})
    assert "matplotlib is not installed" in note and not (tmp_path / "figures").exists()


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
# The plugin draws the figures at the end of a claims session
# --------------------------------------------------------------------------------------------

REGISTRY = """
from claims.registry import Claim

_S = {"ci": {"desc": "tiny"}, "full": {"desc": "big"}}
CLAIMS = {c.id: c for c in [
    Claim(id=i, statement=f"seed: {i}", source="tests", metric="m", direction=">=", threshold=0.5,
          scales=_S, test="test_fake.py", kind="paper")
    for i in ("fake.curve", "fake.plain")
]}
"""

TESTS = """
import pytest

@pytest.mark.claim("fake.curve")
@pytest.mark.parametrize("n", [64, 128])
def test_curve(n, claim_record):
    claim_record.value("recall", 0.9)
    claim_record.curve("memory", [1, 4, 16, n], [1.0, 0.9, 0.5, float("nan")], x_label="distance",
                       y_label="recall", length=n)

@pytest.mark.claim("fake.plain")
def test_plain(claim_record):
    claim_record.value("recall", 0.7)
"""


def test_plugin_draws_figures_and_embeds_them(pytester: pytest.Pytester):
    pytester.syspathinsert()
    pytester.makeini("[pytest]\nclaims_registry = fake_registry\n")
    pytester.makepyfile(fake_registry=REGISTRY, test_fake=TESTS)
    result = pytester.runpytest("-p", "titans.reporting.plugin", "-p", "no:hypothesispytest", "-p", "no:benchmark",
                                "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    figs = pytester.path / "reports" / "figures"
    assert sorted(p.name for p in figs.iterdir()) == ["fake.curve.png"]
    assert (figs / "fake.curve.png").read_bytes().startswith(PNG)
    md = (pytester.path / "reports" / "claims.md").read_text()
    assert "![fake.curve](figures/fake.curve.png)" in md and "[figure](figures/fake.curve.png)" in md
    doc = json.loads((pytester.path / "reports" / "claims.json").read_text())
    assert doc["figures"] == {"fake.curve": "figures/fake.curve.png"}
    assert "figures: 1 written to" in result.stdout.str()


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
