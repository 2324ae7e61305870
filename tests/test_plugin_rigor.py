"""The claims plugin's rigor rules, end to end with ``pytester``: a failed sanity check is an error
even under a ``not_reproduced`` (strict xfail) marker, and ``--seeds`` replaces the registry's seeds.
"""

from __future__ import annotations

import json

import pytest

from titans.reporting import report as R
from titans.reporting.plugin import parse_seeds

pytest_plugins = ["pytester"]

REGISTRY = """
from claims.registry import Claim

def _c(cid, scales):
    return Claim(id=cid, statement=f"seed: fake claim {cid}", source="tests", metric="score",
                 direction=">=", threshold=0.5, scales=scales, test="test_rigor.py", kind="paper")

CLAIMS = {c.id: c for c in [
    _c("fake.seeded", {"ci": {"desc": "tiny", "seeds": [0, 1, 2], "n": 3},
                       "full": {"desc": "big", "seeds": [0, 1, 2, 3, 4], "n": 3}}),
    _c("fake.unseeded", {"ci": {"desc": "tiny", "rounds": 5}, "full": {"desc": "big"}}),
    _c("fake.sanity", {"ci": {"desc": "tiny"}, "full": {"desc": "big"}}),
    _c("fake.sanity-plain-xfail", {"ci": {"desc": "tiny"}, "full": {"desc": "big"}}),
    _c("fake.assert", {"ci": {"desc": "tiny"}, "full": {"desc": "big"}}),
]}
"""

TESTS = """
import pytest
from titans.reporting import mean_ci
from titans.reporting.verdicts import sanity, settle
from rigor_registry import CLAIMS


@pytest.mark.claim("fake.seeded")
def test_seeded(claim, claim_record, scale):
    seeds = CLAIMS["fake.seeded"].scales[scale]["seeds"]  # as the claim modules read them
    assert list(claim.scales[scale]["seeds"]) == list(seeds)
    assert claim.scales[scale]["n"] == 3  # the other entries are kept
    claim_record.seeds(seeds)
    claim_record.value("score", mean_ci([0.9 + 0.01 * s for s in seeds]))
    settle(claim, mean_ci([0.9 + 0.01 * s for s in seeds]))


@pytest.mark.claim("fake.unseeded")
def test_unseeded(claim, claim_record, scale):
    assert "seeds" not in claim.scales[scale]
    claim_record.value("score", 1.0)


@pytest.mark.claim("fake.sanity")
@pytest.mark.not_reproduced("ci", reason="the mechanism")
def test_sanity(claim, claim_record):
    claim_record.value("score", 0.1)
    sanity(False, "the NumPy helper disagrees with the op")
    assert claim.holds(0.1)


@pytest.mark.claim("fake.sanity-plain-xfail")
@pytest.mark.xfail(strict=True, reason="no raises= given")
def test_sanity_plain_xfail(claim, claim_record):
    sanity(1 > 2, "stream does not follow its protocol")


@pytest.mark.claim("fake.assert")
@pytest.mark.not_reproduced("ci", reason="the mechanism")
def test_assert(claim, claim_record):
    sanity(True, "never raised")
    claim_record.value("score", 0.1)
    assert claim.holds(0.1), claim.describe(0.1)
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.syspathinsert()
    pytester.makeini("[pytest]\nclaims_registry = rigor_registry\n")
    pytester.makepyfile(rigor_registry=REGISTRY, test_rigor=TESTS)
    return pytester


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "-p", "titans.reporting.plugin", "-p", "no:hypothesispytest", "-p", "no:benchmark",
        "-p", "no:cacheprovider", "--strict-markers", *args,
    )


def _rows(pytester: pytest.Pytester) -> tuple[dict, dict[str, dict]]:
    doc = json.loads((pytester.path / "reports" / "claims.json").read_text())
    return doc, {r["nodeid"].split("::")[-1]: r for r in doc["results"]}


def test_sanity_error_is_an_error_not_an_expected_failure(project: pytest.Pytester):
    result = _run(project, "-k", "sanity or assert")
    result.assert_outcomes(failed=2, xfailed=1)
    _, rows = _rows(project)
    for name in ("test_sanity", "test_sanity_plain_xfail"):
        row = rows[name]
        assert row["verdict"] == R.ERROR, row
        assert row["outcome"] == "failed"
        assert row["exception"]["type"] == "SanityError" and row["exception"]["assertion"] is False
        assert row["reason"].startswith("SanityError: ")
    assert "the NumPy helper disagrees with the op" in rows["test_sanity"]["reason"]
    # a failed threshold assert under the same marker stays an expected failure: not reproduced
    assert rows["test_assert"]["verdict"] == R.NOT_REPRODUCED
    assert rows["test_assert"]["outcome"] == "xfailed"
    result.stdout.fnmatch_lines(["*error*fake.sanity *", "*-> SanityError: the NumPy helper disagrees*"])


def test_seeds_option_replaces_the_registry_seeds(project: pytest.Pytester):
    result = _run(project, "-k", "seeded", "--seeds", "3, 4,5")
    result.assert_outcomes(passed=2)
    doc, rows = _rows(project)
    assert rows["test_seeded"]["seeds"] == [3, 4, 5]
    assert doc["seeds"] == {"source": "--seeds", "seeds": [3, 4, 5], "claims": ["fake.seeded"]}
    # the report's registry copy carries the seeds that ran; the other scale is untouched
    assert doc["claims"]["fake.seeded"]["scales"]["ci"]["seeds"] == [3, 4, 5]
    assert doc["claims"]["fake.seeded"]["scales"]["full"]["seeds"] == [0, 1, 2, 3, 4]
    result.stdout.fnmatch_lines(["seeds 3,4,5 (--seeds) in place of the registry's, for 1 claim(s)"])


def test_seeds_option_at_full_scale_and_default(project: pytest.Pytester):
    _run(project, "-k", "seeded and not unseeded", "--scale=full", "--seeds=7,8").assert_outcomes(passed=1)
    doc, rows = _rows(project)
    assert rows["test_seeded"]["seeds"] == [7, 8]
    assert doc["claims"]["fake.seeded"]["scales"]["ci"]["seeds"] == [0, 1, 2]
    _run(project, "-k", "seeded and not unseeded").assert_outcomes(passed=1)
    doc, rows = _rows(project)
    assert rows["test_seeded"]["seeds"] == [0, 1, 2] and doc["seeds"] == {"source": "registry"}


@pytest.mark.parametrize("value", ["", "1,,2", "a", "1,x", "-1", "1.5", "2,2", " "])
def test_seeds_option_rejects_bad_values(project: pytest.Pytester, value):
    result = _run(project, f"--seeds={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--seeds*"])


def test_parse_seeds():
    assert parse_seeds("0") == [0]
    assert parse_seeds(" 10 , 2,3 ") == [10, 2, 3]
    for bad in ("", "1,", "+1", "-0", "1e3", "٣", "1,1"):
        with pytest.raises(Exception, match="--seeds"):
            parse_seeds(bad)


FIGURE_TEST = """
import pytest
from titans.reporting import mean_ci
from titans.reporting.verdicts import settle


@pytest.mark.claim("fake.unseeded")
def test_with_figure(claim, claim_record, report_figure):
    import matplotlib.figure
    path = report_figure("A heatmap", "heatmap", lambda: matplotlib.figure.Figure())
    assert path is not None and path.is_file() and path.name == "heatmap.png"
    for stem in ("", "../x", ".hidden"):
        with pytest.raises(ValueError, match="stem"):
            report_figure("t", stem, lambda: None)
    with pytest.raises(TypeError, match="draw"):
        report_figure("t", "ok", None)
    with pytest.raises(TypeError, match="draw"):
        report_figure("t", "ok", lambda: None)
    for title in ("", "two\\nlines", 3):
        with pytest.raises(ValueError, match="title"):
            report_figure(title, "ok", lambda: matplotlib.figure.Figure())
    with pytest.raises(ValueError, match="claim id"):
        report_figure("t", "fake.seeded", lambda: matplotlib.figure.Figure())
    claim_record.value("score", mean_ci([0.9, 0.8, 0.85]))
    settle(claim, mean_ci([0.9, 0.8, 0.85]))
"""


def test_report_figure_is_written_and_linked(project: pytest.Pytester):
    pytest.importorskip("matplotlib")
    project.makepyfile(test_figure=FIGURE_TEST)
    _run(project, "test_figure.py").assert_outcomes(passed=1)
    doc, _ = _rows(project)
    assert doc["extra_figures"] == [{"title": "A heatmap", "path": "figures/heatmap.png"}]
    assert (project.path / "reports" / "figures" / "heatmap.png").is_file()
    assert "![A heatmap](figures/heatmap.png)" in (project.path / "reports" / "claims.md").read_text()
