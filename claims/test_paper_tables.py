"""Claims recomputed from the paper's own Tables 1, 2 and 5 (data in ``claims/paper_tables.py``).

Each test records the recomputed number and asserts it against the registered threshold
(``claims/registry.py``). Rows/cases that are known not to reproduce are
``xfail(strict=True, raises=AssertionError)`` whose reason names what disagrees (the numbers come
from the assertion message, which the report appends), so they are reported as *not reproduced*,
and fail loudly if the data ever changes so that they pass.
"""

from __future__ import annotations

import math

import pytest

from claims import paper_tables as T
from titans.reporting.verdicts import sanity

# ---------------------------------------------------------------------------------------------
# Table 1: Avg = mean of the 8 accuracy columns
# ---------------------------------------------------------------------------------------------


def _avg_params():
    params = []
    for r in T.TABLE1:
        if r.acc is None:
            continue
        marks = ()
        if r.key in T.KNOWN_AVG_MISMATCHES:
            marks = pytest.mark.xfail(
                strict=True,
                raises=AssertionError,
                reason="the printed Avg is not the mean of the row's 8 accuracy cells (ref §5.2)",
            )
        params.append(pytest.param(r, id=r.key, marks=marks))
    return params


@pytest.mark.claim("table1.avg-consistent")
@pytest.mark.parametrize("row", _avg_params())
def test_table1_avg_consistent(row, claim, claim_record):
    recomputed = T.recomputed_avg(row)
    deviation = round(abs(row.avg - recomputed), 6)  # rounded: 0.01 must compare as 0.01
    claim_record.value("abs_deviation", deviation, unit="points")
    claim_record.value("recomputed_avg", recomputed, unit="points")
    claim_record.value("printed_avg", row.avg, unit="points")
    assert claim.holds(deviation), claim.describe(deviation) + f"; printed {row.avg}, recomputed {recomputed:.4f}"


def test_known_avg_mismatches_match_the_reference():
    """The reference's recomputed numbers (ref §5.2) agree with ours; every known row exists."""
    for key, stated in T.KNOWN_AVG_MISMATCHES.items():
        r = next(r for r in T.TABLE1 if r.key == key)
        assert math.isclose(T.recomputed_avg(r), stated, abs_tol=0.006), key


# ---------------------------------------------------------------------------------------------
# Table 1: comparisons between rows
# ---------------------------------------------------------------------------------------------

HYBRIDS = ("Titans-MAC", "Titans-MAG", "Titans-MAL")
HYBRID_BASELINES = ("Samba", "GDN-H2")
TITANS = ("Titans-LMM",) + HYBRIDS


def _hybrid_margin(scale: str) -> tuple[float, str]:
    titans = {m: T.row(m, scale).avg for m in HYBRIDS}
    base = {m: T.row(m, scale).avg for m in HYBRID_BASELINES}
    worst = min(titans, key=titans.get)
    best = max(base, key=base.get)
    margin = round(titans[worst] - base[best], 6)
    detail = f"weakest hybrid {worst} {titans[worst]:.2f} vs best baseline {best} {base[best]:.2f}"
    return margin, detail


def _hybrid_params():
    params = []
    for scale in ("400M", "760M"):
        marks = ()
        if scale == "760M":
            marks = pytest.mark.xfail(
                strict=True,
                raises=AssertionError,
                reason="at 760M a Titans hybrid's printed Avg is below a hybrid baseline's (ref §5.2)",
            )
        params.append(pytest.param(scale, id=scale, marks=marks))
    return params


@pytest.mark.claim("table1.hybrids-beat-hybrid-baselines")
@pytest.mark.parametrize("scale", _hybrid_params())
def test_table1_hybrids_beat_hybrid_baselines(scale, claim, claim_record):
    margin, detail = _hybrid_margin(scale)
    claim_record.value("margin", margin, unit="Avg points")
    claim_record.note(f"{scale}: {detail}")
    assert claim.holds(margin), claim.describe(margin) + f"; {detail}"


@pytest.mark.claim("table1.lmm-best-nonhybrid")
@pytest.mark.parametrize("column", ["wiki_ppl", "avg"])
@pytest.mark.parametrize("scale", ["340M", "400M", "760M"])
def test_table1_lmm_best_nonhybrid(scale, column, claim, claim_record):
    lmm = getattr(T.row("Titans-LMM", scale), column)
    others = {
        r.model: getattr(r, column)
        for r in T.rows_at(scale)
        if not r.hybrid and r.model != "Titans-LMM" and getattr(r, column) is not None
    }
    sanity(others, f"no other non-hybrid row with {column} at {scale}")
    if column == "wiki_ppl":  # lower is better
        rival = min(others, key=others.get)
        margin = round(others[rival] - lmm, 6)
    else:
        rival = max(others, key=others.get)
        margin = round(lmm - others[rival], 6)
    claim_record.value("margin", margin, unit="ppl" if column == "wiki_ppl" else "Avg points")
    claim_record.note(f"{scale} {column}: LMM {lmm} vs best other non-hybrid {rival} {others[rival]}")
    assert claim.holds(margin), claim.describe(margin) + f"; LMM {lmm} vs {rival} {others[rival]}"


@pytest.mark.claim("table1.titans-beat-transformer-retnet")
@pytest.mark.parametrize("scale", ["340M", "400M", "760M"])
def test_table1_titans_beat_transformer_retnet(scale, claim, claim_record):
    titans = {m: T.row(m, scale).avg for m in TITANS}
    base = {m: T.row(m, scale).avg for m in ("Transformer++", "RetNet")}
    worst, best = min(titans, key=titans.get), max(base, key=base.get)
    margin = round(titans[worst] - base[best], 6)
    claim_record.value("margin", margin, unit="Avg points")
    claim_record.note(f"{scale}: weakest Titans {worst} {titans[worst]} vs best of T++/RetNet {best} {base[best]}")
    assert claim.holds(margin), claim.describe(margin)


# ---------------------------------------------------------------------------------------------
# Table 2: S-NIAH
# ---------------------------------------------------------------------------------------------


@pytest.mark.claim("table2.mac-sniah-16k")
def test_table2_mac_sniah_16k(claim, claim_record):
    cells = dict(zip(T.SNIAH_COLUMNS, T.TABLE2["Titans-MAC"]))
    at16k = {c: v for c, v in cells.items() if c.endswith("16K")}
    worst = min(at16k.values())
    claim_record.value("min_accuracy_16k", worst, unit="%")
    for task, prefix in (("passkey", "PK"), ("number", "N"), ("word", "W")):
        claim_record.curve(
            f"Titans-MAC S-NIAH {task}",
            x=[2048, 4096, 8192, 16384],
            y=[cells[f"{prefix}{n}"] for n in ("2K", "4K", "8K", "16K")],
            series=f"S-NIAH-{prefix} ({task})",
            xlabel="context length (tokens)",
            ylabel="Titans-MAC accuracy (%), Table 2",
            xscale="log2",
            ylim=[0, 100],
        )
    assert claim.holds(worst), claim.describe(worst) + f"; {at16k}"


@pytest.mark.claim("table2.lmm-beats-recurrent")
@pytest.mark.parametrize("baseline", ["TTT", "Mamba2", "DeltaNet"])
def test_table2_lmm_beats_recurrent(baseline, claim, claim_record):
    margin = round(T.sniah_mean("Titans-LMM") - T.sniah_mean(baseline), 6)
    claim_record.value("mean_margin", margin, unit="accuracy points")
    lost = [c for c, a, b in zip(T.SNIAH_COLUMNS, T.TABLE2["Titans-LMM"], T.TABLE2[baseline]) if a < b]
    if lost:
        claim_record.note(f"cells where {baseline} beats LMM: {', '.join(lost)}")
    assert claim.holds(margin), claim.describe(margin)


# ---------------------------------------------------------------------------------------------
# Table 5: decoded from Tables 1/2, ablation ordering
# ---------------------------------------------------------------------------------------------


def _table5_derived(variant: str, column: str) -> float:
    model = T.TABLE5_FROM_TABLE1[variant]
    r = T.row(model, "400M")
    if column == "LM ppl":
        return (r.wiki_ppl + r.lmb_ppl) / 2.0
    if column == "Reasoning":
        return r.avg
    return T.sniah_mean(model)


@pytest.mark.claim("table5.decoded")
@pytest.mark.parametrize("column", T.TABLE5_COLUMNS)
@pytest.mark.parametrize("variant", list(T.TABLE5_FROM_TABLE1))
def test_table5_decoded(variant, column, claim, claim_record):
    printed = T.TABLE5[variant][T.TABLE5_COLUMNS.index(column)]
    derived = _table5_derived(variant, column)
    deviation = round(abs(printed - derived), 6)
    claim_record.value("abs_deviation", deviation)
    claim_record.value("derived", derived)
    claim_record.value("printed", printed)
    assert claim.holds(deviation), claim.describe(deviation) + f"; printed {printed}, derived {derived:.4f}"


@pytest.mark.claim("table5.ablation-ordering")
@pytest.mark.parametrize("column", T.TABLE5_COLUMNS)
def test_table5_ablation_ordering(column, claim, claim_record):
    costs = T.ablation_costs(column)
    ranked = [costs[name] for name in T.ABLATION_RANKING]
    gaps = [round(a - b, 6) for a, b in zip(ranked, ranked[1:])]
    smallest = min(gaps)
    claim_record.value("smallest_gap", smallest)
    claim_record.curve(f"ablation cost ({column})", x=list(T.ABLATION_RANKING), y=ranked, panel=column,
                       series="cost of removing the component (> 0: worse than LMM)",
                       xlabel="variant, in the paper's order (largest cost first)", ylabel=f"{column} cost vs LMM")
    assert claim.holds(smallest), claim.describe(smallest) + f"; costs {dict(zip(T.ABLATION_RANKING, ranked))}"


@pytest.mark.claim("table5.deep-memory-helps")
@pytest.mark.parametrize("column", T.TABLE5_COLUMNS)
def test_table5_deep_memory_helps(column, claim, claim_record):
    cost = T.ablation_costs(column)["Linear Memory"]
    claim_record.value("cost_of_linear_memory", cost)
    assert claim.holds(cost), claim.describe(cost)
