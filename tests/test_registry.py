"""Tests of the claims registry's history: registration dates, amendments, kinds and the lock file.

The lock (``claims/registry.lock.json``) holds a hash of every claim's metric, direction, threshold
and scales with its number of amendments; a locked field that changes without a new amendment fails
here.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from claims import registry as reg
from claims.registry import CLAIMS, KINDS, LOCK_PATH, ORIGINS, Amendment, Claim

REPO = Path(__file__).resolve().parents[1]
_S = {"ci": {"desc": "tiny", "n": 3}, "full": {"desc": "big", "n": [1, 2]}}
_A = Amendment("2026-02-01", "more seeds", "noise", "0.4 on 1 seed")

SANITY = {
    "recall.swa-beyond-window", "decode.state-flat-titans", "decode.kv-cache-grows",
    "streaming.constant-memory", "interference.persistent-untouched",
}


def _fresh_registry():
    """``claims/registry.py`` loaded anew: the claims plugin's ``--seeds`` edits the imported
    module's ``CLAIMS`` in place, which is not a change of the registration."""
    spec = importlib.util.spec_from_file_location("_registry_as_written", REPO / "claims" / "registry.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def _claim(cid="x.y", **changes) -> Claim:
    fields = dict(id=cid, statement="seed: x", source="tests", metric="score", direction=">=",
                  threshold=0.5, scales=_S, test="claims/test_x.py", kind="paper", registered="2026-01-01")
    fields.update(changes)
    return Claim(**fields)


# --------------------------------------------------------------------------------------------
# The lock file
# --------------------------------------------------------------------------------------------


def test_lock_file_is_current():
    """Fails when a claim's metric, direction, threshold or scales changed without an amendment,
    or when the lock is out of date (new, removed or newly amended claims)."""
    written = _fresh_registry()
    unamended, stale = written.lock_problems(written.read_lock(LOCK_PATH))
    assert not unamended, "\n".join(unamended)
    assert not stale, "\n".join(stale)
    assert LOCK_PATH.read_text(encoding="utf-8") == written.render_lock(), (
        "claims/registry.lock.json is not in its canonical form; regenerate it: python -m claims.registry --lock")


def test_lock_is_deterministic_sorted_and_small():
    text = reg.render_lock()
    assert text == reg.render_lock() and text.endswith("}\n")
    doc = json.loads(text)
    assert doc["fields"] == list(reg.LOCKED_FIELDS)
    assert list(doc["claims"]) == sorted(CLAIMS) and doc["claims"] == reg.lock_entries()
    assert len(text.splitlines()) == len(CLAIMS) + 5  # one line per claim


def test_lock_hash_covers_exactly_the_locked_fields():
    base = _claim()
    h = reg.lock_hash(base)
    for changes in ({"metric": "other"}, {"direction": ">"}, {"threshold": 0.6},
                    {"scales": {**_S, "ci": {"desc": "tiny", "n": 4}}},
                    {"scales": {**_S, "ci": {"desc": "tiny!", "n": 3}}}):
        assert reg.lock_hash(dataclasses.replace(base, **changes)) != h, changes
    for changes in ({"statement": "seed: y"}, {"notes": "n"}, {"kind": "sanity"}, {"test": "claims/test_z.py"},
                    {"source": "s"}, {"amendments": (_A,)}, {"registered": "2026-01-02"}):
        assert reg.lock_hash(dataclasses.replace(base, **changes)) == h, changes
    assert reg.lock_hash(_claim(scales={"full": _S["full"], "ci": _S["ci"]})) == h  # key order is irrelevant


def test_unamended_change_names_the_claim_and_asks_for_an_amendment():
    lock = reg.lock_entries({"x.y": _claim(), "x.z": _claim("x.z")})
    changed = {"x.y": _claim(threshold=0.7), "x.z": _claim("x.z")}
    unamended, stale = reg.lock_problems(lock, changed)
    assert stale == [] and len(unamended) == 1
    assert unamended[0].startswith("x.y: ") and "add an Amendment" in unamended[0]
    assert "python -m claims.registry --lock" in unamended[0]


def test_amended_change_only_needs_a_new_lock():
    lock = reg.lock_entries({"x.y": _claim()})
    unamended, stale = reg.lock_problems(lock, {"x.y": _claim(threshold=0.7, amendments=(_A,))})
    assert unamended == [] and len(stale) == 1 and "regenerate the lock" in stale[0]
    unamended, stale = reg.lock_problems(lock, {"x.y": _claim(amendments=(_A,))})  # e.g. a re-classification
    assert unamended == [] and len(stale) == 1 and "x.y: 1 new amendment(s)" in stale[0]


def test_new_and_removed_claims_make_the_lock_stale():
    lock = reg.lock_entries({"x.old": _claim("x.old")})
    unamended, stale = reg.lock_problems(lock, {"x.new": _claim("x.new")})
    assert unamended == []
    assert any(s.startswith("x.new: not in the lock") for s in stale)
    assert any(s.startswith("x.old: locked but no longer registered") for s in stale)
    assert all("python -m claims.registry --lock" in s for s in stale)


def test_removed_amendment_is_never_fine():
    lock = reg.lock_entries({"x.y": _claim(amendments=(_A,))})
    unamended, _ = reg.lock_problems(lock, {"x.y": _claim(amendments=(_A,)[:0])})
    assert len(unamended) == 1 and "amendments are never removed" in unamended[0]


def test_write_lock_refuses_an_unamended_change(tmp_path):
    path = tmp_path / "lock.json"
    claims = {"x.y": _claim()}
    assert reg.write_lock(path, claims) == path
    before = path.read_text()
    with pytest.raises(ValueError, match=r"not written:\nx\.y: .*add an Amendment"):
        reg.write_lock(path, {"x.y": _claim(metric="other")})
    assert path.read_text() == before
    reg.write_lock(path, {"x.y": _claim(metric="other", amendments=(_A,))})
    assert reg.read_lock(path) == reg.lock_entries({"x.y": _claim(metric="other", amendments=(_A,))})


def test_read_lock_rejects_other_fields(tmp_path):
    path = tmp_path / "lock.json"
    path.write_text(json.dumps({"fields": ["metric"], "claims": {}}))
    with pytest.raises(ValueError, match="regenerate it"):
        reg.read_lock(path)
    assert reg.read_lock(tmp_path / "absent.json") == {}


def test_cli_check_and_lock(tmp_path, capsys):
    path = tmp_path / "lock.json"
    assert reg.main(["--check", "--lock-file", str(path)]) == 1
    assert "not in the lock" in capsys.readouterr().out
    assert reg.main(["--lock", "--lock-file", str(path)]) == 0
    assert path.read_text() == reg.render_lock()
    assert reg.main(["--check", "--lock-file", str(path)]) == 0
    with pytest.raises(SystemExit):
        reg.main([])  # one of --lock / --check is required


def test_module_entry_point_checks_the_committed_lock():
    out = subprocess.run([sys.executable, "-m", "claims.registry", "--check"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


# --------------------------------------------------------------------------------------------
# Registration dates and amendments
# --------------------------------------------------------------------------------------------


def test_every_claim_has_its_registration_date_and_ordered_amendments():
    for cid, c in CLAIMS.items():
        assert len(c.registered) == 10 and c.registered.startswith("2026-"), cid
        dates = [a.date for a in c.amendments]
        assert dates == sorted(dates) and all(d >= c.registered for d in dates), cid
        d = c.to_dict()
        assert d["registered"] == c.registered and d["origin"] == c.origin
        assert d["amendments"] == [a.to_dict() for a in c.amendments]


def test_registry_claims_need_a_registration_date():
    with pytest.raises(ValueError, match="x.y: a registered claim needs its registration date"):
        reg._build([_claim(registered="")])


@pytest.mark.parametrize("bad", ["2026-1-01", "2026-13-01", "yesterday", "2026-01-01T00:00"])
def test_dates_must_be_iso(bad):
    with pytest.raises(ValueError, match=f"x.y: registered must be an ISO date YYYY-MM-DD, got '{bad}'"):
        _claim(registered=bad)
    with pytest.raises(ValueError, match="amendment date must be an ISO date"):
        Amendment(bad, "what", "why", "before")


def test_amendments_are_dated_after_registration_and_in_order():
    with pytest.raises(ValueError, match="x.y: amendment dated 2026-02-01 precedes registration 2026-03-01"):
        _claim(registered="2026-03-01", amendments=(_A,))
    later = Amendment("2026-03-01", "w", "y", "b")
    with pytest.raises(ValueError, match="x.y: amendments must be in date order"):
        _claim(amendments=(later, _A))
    assert _claim(amendments=(_A, later)).amendments == (_A, later)


def test_past_amendments_are_recorded():
    kv = CLAIMS["decode.kv-cache-grows"].amendments[0]
    assert kv.date == "2026-11-25" and "KV-cache bytes" in kv.what and "3.203" in kv.before
    for cid in ("throughput.linear-titans", "throughput.linear-retnet", "throughput.attention-superlinear"):
        timing = CLAIMS[cid].amendments[0]
        assert timing.date == "2026-11-25" and "min over rounds" in timing.what and "inconclusive" in timing.what
    assert "4.81 and 4.76" in CLAIMS["throughput.linear-retnet"].amendments[0].before
    bounded = CLAIMS["stability.streaming-bounded"].amendments[0]
    assert bounded.date == "2026-11-25" and "t = 0" in bounded.what and "0/0" in bounded.before


def test_every_seeded_claim_runs_at_least_three_seeds_at_ci():
    """A claim that takes seeds runs >= 3 at CI scale (an interval needs them) and no
    fewer at full scale."""
    few = {cid: c.scales["ci"]["seeds"] for cid, c in CLAIMS.items()
           if "seeds" in c.scales["ci"] and len(c.scales["ci"]["seeds"]) < 3}
    assert not few, f"fewer than 3 seeds at CI scale: {few}"
    shrunk = {cid for cid, c in CLAIMS.items()
              if "seeds" in c.scales["ci"] and len(c.scales["full"].get("seeds", ())) < len(c.scales["ci"]["seeds"])}
    assert not shrunk, f"fewer seeds at full scale than at CI: {sorted(shrunk)}"


# --------------------------------------------------------------------------------------------
# Kinds and origins
# --------------------------------------------------------------------------------------------


def test_kinds_and_origins():
    assert set(KINDS) == set(ORIGINS) and set(ORIGINS.values()) == {"paper", "seed", "harness"}
    assert {ORIGINS[k] for k in ("paper", "table")} == {"paper"}
    assert {ORIGINS[k] for k in ("failure-case", "reviewer")} == {"seed"}
    assert {ORIGINS[k] for k in ("control", "sanity")} == {"harness"}
    assert _claim(kind="sanity").origin == "harness" and _claim(kind="reviewer").origin == "seed"


def test_structural_checks_are_sanity_rows_with_the_reclassification_recorded():
    assert {cid for cid, c in CLAIMS.items() if c.kind == "sanity"} == SANITY
    for cid in SANITY:
        last = CLAIMS[cid].amendments[-1]
        assert "Re-classified from kind 'paper' to 'sanity'" in last.what, cid
        assert "unchanged" in last.what, cid
