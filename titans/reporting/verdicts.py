"""One decision rule for a claim measured on a sample (seeds, rounds, runs).

The verdict compares the 95% interval of the mean with the registered threshold: *supported* when
the whole interval lies on the threshold's side, *not reproduced* when it lies wholly on the other
side, *inconclusive* otherwise (a single sample has no interval: its mean decides only when the
claim is structural, never here). ``settle`` turns the verdict into the test outcome: it returns
(supported), raises ``AssertionError`` with the run's own numbers (not reproduced) or skips with
``inconclusive: ...`` (inconclusive).

A check of the harness itself (a NumPy helper against the op it transcribes, a generated stream
against its protocol, a registered grid that produced no cell) is not a verdict: ``sanity`` raises
:class:`SanityError`, which is deliberately *not* an ``AssertionError``, so a claim marked
``not_reproduced`` (a strict ``xfail(raises=AssertionError)``) reports it as an *error* instead of
counting a broken helper as the claim failing.
"""

from __future__ import annotations

import math

import pytest

from titans.reporting import MeanCI
from titans.reporting.report import INCONCLUSIVE_PREFIX

__all__ = [
    "INCONCLUSIVE",
    "NOT_REPRODUCED",
    "SUPPORTED",
    "SanityError",
    "inconclusive",
    "interval_verdict",
    "sanity",
    "settle",
]

SUPPORTED, NOT_REPRODUCED, INCONCLUSIVE = "supported", "not reproduced", "inconclusive"


class SanityError(Exception):
    """A consistency check of the harness failed: the measurement cannot be trusted, so the test is
    an error, never *not reproduced* (not an ``AssertionError`` on purpose; see the module doc)."""


def sanity(condition, message: str) -> None:
    """Raise :class:`SanityError` with ``message`` unless ``condition`` holds.

    For checks of the harness (helpers, generated data, protocol bookkeeping), never for the
    claim's threshold, which ``settle`` or a plain ``assert claim.holds(...)`` judges."""
    if not condition:
        raise SanityError(message)


def interval_verdict(claim, summary: MeanCI) -> str:
    """The verdict of ``summary`` against ``claim``'s direction and threshold (see module doc)."""
    if summary.mean is None or math.isnan(summary.mean):
        return NOT_REPRODUCED
    if summary.ci_low is None or summary.ci_high is None:
        return INCONCLUSIVE
    low, high = summary.ci_low, summary.ci_high
    if claim.direction == "in":
        lo, hi = claim.threshold
        if lo <= low and high <= hi:
            return SUPPORTED
        return NOT_REPRODUCED if high < lo or low > hi else INCONCLUSIVE
    if claim.direction in (">=", ">"):
        if claim.holds(low):
            return SUPPORTED
        return NOT_REPRODUCED if not claim.holds(high) else INCONCLUSIVE
    if claim.direction in ("<=", "<"):
        if claim.holds(high):
            return SUPPORTED
        return NOT_REPRODUCED if not claim.holds(low) else INCONCLUSIVE
    raise ValueError(f"{claim.id}: direction {claim.direction!r} has no interval rule")


def _interval(summary: MeanCI) -> str:
    if summary.ci_low is None:
        return f"{summary.mean:.4g} (n={summary.n}, no interval)"
    return f"{summary.mean:.4g}, 95% CI [{summary.ci_low:.4g}, {summary.ci_high:.4g}] (n={summary.n})"


def inconclusive(reason: str):
    """Skip the test with an ``inconclusive:`` reason (the report shows it as inconclusive)."""
    pytest.skip(f"{INCONCLUSIVE_PREFIX}: {reason}")


def settle(claim, summary: MeanCI, *, what: str = "") -> str:
    """Apply the rule: return on *supported*, raise on *not reproduced*, skip on *inconclusive*."""
    verdict = interval_verdict(claim, summary)
    label = f" [{what}]" if what else ""
    text = f"{claim.id}{label}: {_interval(summary)} vs threshold {claim.threshold_text} ({claim.metric})"
    if verdict == SUPPORTED:
        return verdict
    if verdict == INCONCLUSIVE:
        inconclusive(f"the interval straddles the threshold: {text}")
    raise AssertionError(f"not reproduced: {text}")
