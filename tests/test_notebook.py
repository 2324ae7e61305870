"""The exported notebook (what CI publishes) shows every claim row of a report, with the code hidden."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "titans_claims.py"
MARIMO = Path(sys.executable).with_name("marimo")
sys.path.insert(0, str(NOTEBOOK.parent))
from check_export import main as check_export, missing_claim_ids  # noqa: E402


def _report(n_run: int, n_not_run: int) -> dict:
    verdicts = ["supported", "not reproduced", "inconclusive", "error"]
    results = [
        {"claim_id": f"family{i % 5}.synthetic-claim-{i:03d}", "nodeid": f"claims/test_x.py::test_{i}",
         "verdict": verdicts[i % len(verdicts)], "threshold": ">= 0.9", "scale": "ci",
         "values": [{"name": "accuracy", "mean": 0.5 + i / 1000, "ci_low": 0.4, "ci_high": 0.6, "n": 3}]}
        for i in range(n_run)
    ]
    not_run = [f"unrun.synthetic-claim-{i:03d}" for i in range(n_not_run)]
    counts = {v: sum(r["verdict"] == v for r in results) for v in verdicts}
    return {"schema": 1, "generated": "2026-01-01T00:00:00+00:00", "scale": "ci", "counts": counts,
            "results": results, "not_run": not_run, "claims": {}}


@pytest.mark.skipif(shutil.which(str(MARIMO)) is None, reason="marimo is not installed (extra 'notebook')")
def test_export_embeds_every_claim_row_and_hides_code(tmp_path):
    doc = _report(n_run=40, n_not_run=7)  # more rows than a paged table embeds
    (tmp_path / "claims.json").write_text(json.dumps(doc), encoding="utf-8")
    out = tmp_path / "notebook.html"
    subprocess.run([str(MARIMO), "export", "html", "--no-include-code", str(NOTEBOOK), "-o", str(out), "--",
                    "--reports", str(tmp_path), "--live", "false"], check=True, capture_output=True, timeout=300)
    html = out.read_text(encoding="utf-8")
    assert missing_claim_ids(doc, html) == []
    assert check_export([str(tmp_path / "claims.json"), str(out)]) == 0
    assert "Summary" in html and "inconclusive" in html
    assert "mixer_picker = mo.ui.multiselect" not in html  # the code is not in the export


def test_check_export_names_missing_ids(tmp_path, capsys):
    doc = _report(n_run=3, n_not_run=1)
    (tmp_path / "claims.json").write_text(json.dumps(doc), encoding="utf-8")
    html = tmp_path / "page.html"
    html.write_text("<p>family0.synthetic-claim-000 family1.synthetic-claim-001</p>", encoding="utf-8")
    assert check_export([str(tmp_path / "claims.json"), str(html)]) == 1
    err = capsys.readouterr().err
    assert "family2.synthetic-claim-002" in err and "unrun.synthetic-claim-000" in err
    assert check_export([str(tmp_path / "missing.json"), str(html)]) == 2
