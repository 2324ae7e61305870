"""Claim-reporting helpers: confidence intervals and the record object.

This subpackage has no MLX dependency at import time. The pytest side lives in
:mod:`titans.reporting.plugin` (options, fixtures, hooks) and the report model and rendering in
:mod:`titans.reporting.report`.

``mean_ci`` returns a :class:`MeanCI` whose field order matches ``record.value``::

    record.value("accuracy", *mean_ci(per_seed_accuracies))
"""

from __future__ import annotations

import math
from typing import Iterable, NamedTuple

__all__ = ["MeanCI", "mean_ci", "t_cdf", "t_quantile"]


# --------------------------------------------------------------------------------------------
# Student-t quantile (no scipy): regularized incomplete beta by Lentz's continued fraction,
# t CDF from it, quantile by bisection (monotone, robust, full double precision).
# --------------------------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction for the regularized incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = tiny if abs(d) < tiny else d
    d = 1.0 / d
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) for a, b > 0, 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """CDF of Student's t distribution with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"df must be positive, got {df}")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Inverse CDF of Student's t: the ``t`` with ``t_cdf(t, df) == p`` (0 < p < 1)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p}")
    if df <= 0:
        raise ValueError(f"df must be positive, got {df}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    # Bisection on a monotone function that stays accurate everywhere: near the centre the
    # central mass P(0 < T <= t) = I_{t^2/(df+t^2)}(1/2, df/2) / 2 (1 - tail would cancel there),
    # in the tail the tail mass P(T > t) = I_{df/(df+t^2)}(df/2, 1/2) / 2 (p - 1/2 would lose digits).
    if p < 0.75:
        target = p - 0.5

        def below(t: float) -> bool:
            return 0.5 * _betainc(0.5, df / 2.0, t * t / (df + t * t)) < target

    else:
        target = 1.0 - p

        def below(t: float) -> bool:
            return 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t)) > target

    lo, hi = 0.0, 1.0
    while below(hi):
        lo, hi = hi, hi * 2.0
        if hi > 1e300:  # pragma: no cover - p indistinguishable from 1
            return math.inf
    for _ in range(2100):
        mid = 0.5 * (lo + hi)
        if below(mid):
            lo = mid
        else:
            hi = mid
        if hi - lo <= 4e-16 * hi:
            break
    return 0.5 * (lo + hi)


class MeanCI(NamedTuple):
    """Sample mean with a two-sided t confidence interval (``None`` bounds when n < 2)."""

    mean: float
    ci_low: float | None
    ci_high: float | None
    n: int


def mean_ci(samples: Iterable[float], confidence: float = 0.95) -> MeanCI:
    """Mean and two-sided Student-t confidence interval of ``samples``.

    ``half_width = t_{(1+confidence)/2, n-1} * s / sqrt(n)`` with ``s`` the sample standard
    deviation (ddof=1). With a single sample the interval is undefined and returned as ``None``.
    Accepts any iterable of numbers (Python floats, numpy or MLX scalars, a 1-D array).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if hasattr(samples, "tolist"):
        samples = samples.tolist()
    xs = [float(x) for x in samples]
    n = len(xs)
    if n == 0:
        raise ValueError("mean_ci needs at least one sample")
    mean = math.fsum(xs) / n
    if n == 1:
        return MeanCI(mean, None, None, 1)
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * math.sqrt(var / n)
    return MeanCI(mean, mean - half, mean + half, n)
