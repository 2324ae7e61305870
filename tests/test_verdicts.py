"""The interval decision rule (``titans.reporting.verdicts``)."""

import math

import pytest

from claims.registry import Claim
from titans.reporting import MeanCI
from titans.reporting.verdicts import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    SUPPORTED,
    SanityError,
    interval_verdict,
    sanity,
    settle,
)

SCALES = {"ci": {"desc": "x"}, "full": {"desc": "y"}}


def claim(direction, threshold):
    return Claim("t.x", "seed: x", "s", "m", direction, threshold, SCALES, "claims/test_x.py", "paper")


@pytest.mark.parametrize(
    "direction, threshold, interval, expected",
    [
        (">=", 0.9, (0.95, 0.92, 0.98), SUPPORTED),
        (">=", 0.9, (0.95, 0.9, 0.99), SUPPORTED),  # the bound on the threshold counts (>=)
        (">", 0.9, (0.95, 0.9, 0.99), INCONCLUSIVE),
        (">=", 0.9, (0.8, 0.7, 0.89), NOT_REPRODUCED),
        (">=", 0.9, (0.9, 0.8, 1.0), INCONCLUSIVE),
        ("<=", 0.0, (0.0, 0.0, 0.0), SUPPORTED),
        ("<=", 0.0, (0.4, 0.1, 0.7), NOT_REPRODUCED),
        ("<=", 4.6, (4.5, 4.1, 4.9), INCONCLUSIVE),
        ("in", (0.5, 2.0), (1.0, 0.7, 1.5), SUPPORTED),
        ("in", (0.5, 2.0), (3.0, 2.5, 3.5), NOT_REPRODUCED),
        ("in", (0.5, 2.0), (1.9, 1.5, 2.4), INCONCLUSIVE),
    ],
)
def test_interval_rule(direction, threshold, interval, expected):
    mean, low, high = interval
    assert interval_verdict(claim(direction, threshold), MeanCI(mean, low, high, 3)) == expected


def test_no_interval_is_inconclusive_and_nan_is_not_reproduced():
    c = claim(">=", 0.9)
    assert interval_verdict(c, MeanCI(1.0, None, None, 1)) == INCONCLUSIVE
    assert interval_verdict(c, MeanCI(math.nan, math.nan, math.nan, 3)) == NOT_REPRODUCED


def test_settle_outcomes():
    c = claim(">=", 0.9)
    assert settle(c, MeanCI(0.95, 0.92, 0.98, 3)) == SUPPORTED
    with pytest.raises(AssertionError, match=r"not reproduced: t.x \[row\]: 0.8, 95% CI \[0.7, 0.85\]"):
        settle(c, MeanCI(0.8, 0.7, 0.85, 3), what="row")
    with pytest.raises(pytest.skip.Exception, match="inconclusive: the interval straddles"):
        settle(c, MeanCI(0.9, 0.8, 1.0, 3))


def test_sanity_raises_an_error_that_is_not_an_assertion():
    sanity(True, "never raised")
    with pytest.raises(SanityError, match="helper disagrees"):
        sanity(False, "helper disagrees")
    assert not issubclass(SanityError, AssertionError)  # else xfail(raises=AssertionError) swallows it
    try:
        sanity(0, "zero is false")
    except AssertionError:  # pragma: no cover - the point of the test
        pytest.fail("SanityError was caught as an AssertionError")
    except SanityError:
        pass
