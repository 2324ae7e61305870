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


def test_full_scale_trained_protocol_runs_end_to_end(tmp_path):
    """Every trained claim test at ``--scale=full`` on the smoke grid (one row per test function; the
    schedule grid, which only repeats the control's runs at other step counts, is left out for
    time) ends with the smoke-grid skip: nothing errs before the verdict."""
    selection = ("test_model_learns_in_window_recall and lmm or test_titans_close_to_transformer and mac "
                 "or test_titans_advantage_beyond_the_window and mag or test_training_stays_finite "
                 "or test_ablation_costs_accuracy and momentum")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "claims/test_trained.py", "--scale=full", "--smoke-grid", "-k", selection,
         "-p", "no:cacheprovider", "-q", f"--claims-report-dir={tmp_path}", f"--junitxml={tmp_path / 'junit.xml'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    rows = json.loads((tmp_path / "claims.json").read_text())["results"]
    ran = {(row["claim_id"], row["nodeid"].split("::")[-1]) for row in rows}
    expected = {"trained.models-learn", "trained.titans-vs-transformer-moderate", "failure.benchmark-sensitivity",
                "failure.training-instability", "trained.ablation-momentum"}
    assert {cid for cid, _ in ran} == expected, sorted(ran)
    assert len(rows) == 6  # both rows of the instability claim
    for row in rows:
        assert "smoke grid" in row["reason"], (row["nodeid"], row["verdict"], row["reason"])
