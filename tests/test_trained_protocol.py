"""The trained tier's protocols, end to end: the full-scale protocol (lr grid, selection on seed-0
validation, the other seeds at the selected lr, ablations, the instability grid, evaluation up to
its longest length) runs on the smoke grid, and ``smoke_grid`` keeps a protocol's structure."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from claims.registry import CLAIMS
from claims.training import smoke_grid
from titans.models import create_model

ROOT = Path(__file__).resolve().parents[1]


def test_smoke_grid_keeps_the_structure_and_cuts_the_cost():
    full = CLAIMS["reviewer.architecture-vs-schedule"].scales["full"]
    smoke = smoke_grid(full)
    assert smoke["lrs"] == full["lrs"] and smoke["eval_lengths"] == full["eval_lengths"]
    assert smoke["task"] == full["task"] and smoke["size"] == full["size"]
    assert smoke["steps"] == 2 and smoke["batch_size"] == 4 and smoke["eval_examples"] == 2
    assert smoke["seeds"] == list(full["seeds"][:2])
    # a schedule's distinct step counts stay distinct and ordered; its lrs stay
    assert [lr for lr, _ in smoke["schedules"]] == [lr for lr, _ in full["schedules"]]
    order = sorted({s for _, s in full["schedules"]})
    assert [s for _, s in smoke["schedules"]] == [2 * (order.index(s) + 1) for _, s in full["schedules"]]
    assert full["steps"] > 2  # the registry is untouched
    with pytest.raises(TypeError, match="protocol"):
        smoke_grid([("steps", 2)])


def _smoke(tmp_path, scale: str, selection: str | None = None) -> list:
    """Run ``claims/test_trained.py`` at ``scale`` on the smoke grid; the report's rows."""
    command = [sys.executable, "-m", "pytest", "claims/test_trained.py", f"--scale={scale}", "--smoke-grid",
               "-p", "no:cacheprovider", "-q", f"--claims-report-dir={tmp_path}"]
    done = subprocess.run(command + (["-k", selection] if selection else []), cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    rows = [r for r in json.loads((tmp_path / "claims.json").read_text())["results"]
            if "runs with --scale=full" not in r["reason"]]
    for row in rows:  # every selected test reached its verdict and was stopped there
        assert "smoke grid" in row["reason"], (row["nodeid"], row["verdict"], row["reason"])
    return rows


def test_ci_scale_trained_protocol_runs_end_to_end(tmp_path):
    """Every trained claim test that runs at CI scale (learning controls with the lr grid, the
    comparisons, beyond-reach recall, surprise with its heatmaps, instability) on the smoke grid."""
    rows = _smoke(tmp_path, "ci")
    ran = {row["claim_id"] for row in rows}
    assert ran == {c.id for c in CLAIMS.values()
                   if c.test == "claims/test_trained.py" and not c.scales["ci"].get("skip")}
    assert (tmp_path / "figures" / "memory-utilization-trained.png").is_file() or not _has_matplotlib()


def test_full_scale_ablation_runs_end_to_end(tmp_path):
    """A full-scale-only protocol on the smoke grid: a Table 5 ablation (the full LMM's lr grid, then
    the ablated LMM at the selected lr, evaluated up to the full lengths). The instability grid at
    full scale is checked below for its models; the schedule grid (the control's runs at other step
    counts) is left to ``./run claims --scale=full --smoke-grid -k test_trained
    --claims-report-dir reports/smoke`` for time."""
    rows = _smoke(tmp_path, "full", "test_ablation_costs_accuracy and momentum")
    assert [row["claim_id"] for row in rows] == ["trained.ablation-momentum"]


def test_full_scale_instability_grid_builds_its_models():
    """The full-scale instability grid's depth-4 memory exceeds the tiny parameter budget; its models
    keep the default SwiGLU width instead, so they build, with more parameters than the budget."""
    from claims.test_trained import INSTABILITY_ROWS, _instability_grid

    for row in INSTABILITY_ROWS:
        _, runs = _instability_grid(row, "full")
        assert runs and all(json.loads(r.model_options)["memory"]["depth"] == 4 for r in runs)
        for run in {(r.model, r.model_options): r for r in runs}.values():
            model = create_model(run.model, run.size, **json.loads(run.model_options))
            budget = create_model("transformer", run.size).num_parameters(embeddings=False)
            assert model.num_parameters(embeddings=False) > 1.05 * budget  # beyond the matched band


def _has_matplotlib() -> bool:
    from titans.reporting.figures import matplotlib_available

    return matplotlib_available()
