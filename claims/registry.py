"""The claims registry: every checked claim, its exact statement and its pre-registered threshold.

This module is the **single place** where thresholds live. A claim test names its claim with
``@pytest.mark.claim("<id>")`` and compares its measurement with ``CLAIMS[id].threshold`` (or
``claim.holds(value)``, which applies the registered direction); it never hard-codes a number.
Changing a threshold is a change of the pre-registration and belongs in a reviewed commit here.

Statement conventions
    ``paper Abstract: "..."``   verbatim sentence of arXiv 2501.00663v1 (the PDF abstract);
    ``ref §x: ...``             the paper's content as worded in ``shared/reference/titans-paper.md``
                                (text in quotes there is quoted as it appears there);
    ``seed: ...``               the project's task wording (failure cases, reviewer prompts and the
                                operational form of a paper claim at toy scale), paraphrased.

``scales`` maps each ``--scale`` (``ci``, ``full``) to a dict with a ``desc`` string plus the sizes,
lengths and seeds the test should use; tests read them as ``claim.scales[scale]``.

``direction`` is one of ``>=``, ``<=``, ``>``, ``<``, ``==`` (threshold a number or bool) or ``in``
(threshold a closed interval ``(low, high)``).

``kind`` says where a claim comes from (``Claim.origin``): the paper (``paper``, ``table``), the seed
(``failure-case``, ``reviewer``) or the harness itself (``control``, and ``sanity`` for structural
checks that can only fail on a bug; the report lists them apart from the claims).

Every claim carries the date it was registered (``registered``) and, in order, every amendment made
after that (``amendments``). ``claims/registry.lock.json`` holds a hash of each claim's metric,
direction, threshold and scales with its number of amendments; ``tests/test_registry.py`` fails when
those fields change without a new amendment. ``python -m claims.registry --lock`` rewrites the lock
(it refuses while a claim changed without one); ``--check`` lists what is out of date.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

__all__ = [
    "CLAIMS", "DIRECTIONS", "KINDS", "LOCKED_FIELDS", "LOCK_PATH", "ORIGINS", "SCALES", "Amendment",
    "Claim", "lock_entries", "lock_hash", "lock_problems", "read_lock", "render_lock", "write_lock",
]

DIRECTIONS = (">=", "<=", ">", "<", "==", "in")
# kind -> origin. control: a check of the harness's own protocol (e.g. that a model learned);
# sanity: a structural check of the implementation that can only fail on a bug.
ORIGINS = {
    "paper": "paper", "table": "paper",
    "failure-case": "seed", "reviewer": "seed",
    "control": "harness", "sanity": "harness",
}
KINDS = tuple(ORIGINS)
SCALES = ("ci", "full")


def _iso_date(text: Any, what: str) -> str:
    """``text`` if it is an ISO date ``YYYY-MM-DD``; a ``ValueError`` naming ``what`` otherwise."""
    try:
        ok = isinstance(text, str) and len(text) == 10 and _dt.date.fromisoformat(text).isoformat() == text
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{what} must be an ISO date YYYY-MM-DD, got {text!r}")
    return text


@dataclass(frozen=True)
class Amendment:
    """A change to a registered claim after a run: when, what changed, why, and what the rule in
    force before it had measured (the report shows every amendment)."""

    date: str
    what: str
    why: str
    before: str

    def __post_init__(self) -> None:
        for name in ("date", "what", "why", "before"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"amendment {name} is required")
        _iso_date(self.date, "amendment date")

    def to_dict(self) -> dict[str, str]:
        return {"date": self.date, "what": self.what, "why": self.why, "before": self.before}


@dataclass(frozen=True, repr=False)
class Claim:
    """One pre-registered, testable claim (``registered``: ISO date; amendments oldest first)."""

    id: str
    statement: str
    source: str
    metric: str
    direction: str
    threshold: Any
    scales: Mapping[str, Mapping[str, Any]]
    test: str
    kind: str
    notes: str = ""
    amendments: tuple = ()
    registered: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "amendments", tuple(self.amendments))
        for a in self.amendments:
            if not isinstance(a, Amendment):
                raise TypeError(f"{self.id}: amendments must be Amendment instances, got {type(a).__name__}")
        if self.registered:
            _iso_date(self.registered, f"{self.id}: registered")
        dates = [a.date for a in self.amendments]
        if dates != sorted(dates):
            raise ValueError(f"{self.id}: amendments must be in date order, got {dates}")
        if self.registered and dates and dates[0] < self.registered:
            raise ValueError(f"{self.id}: amendment dated {dates[0]} precedes registration {self.registered}")
        if not self.id or self.id != self.id.strip() or " " in self.id:
            raise ValueError(f"bad claim id {self.id!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"{self.id}: direction {self.direction!r} not in {DIRECTIONS}")
        if self.kind not in KINDS:
            raise ValueError(f"{self.id}: kind {self.kind!r} not in {KINDS}")
        if not self.statement.strip() or not self.metric.strip() or not self.source.strip():
            raise ValueError(f"{self.id}: statement, metric and source are required")
        if self.direction == "in":
            low, high = self.threshold
            if not low <= high:
                raise ValueError(f"{self.id}: empty interval {self.threshold!r}")
            object.__setattr__(self, "threshold", (low, high))
        elif not isinstance(self.threshold, (int, float, bool)):
            raise ValueError(f"{self.id}: threshold must be a number or bool")
        missing = [s for s in SCALES if s not in self.scales]
        if missing:
            raise ValueError(f"{self.id}: scales lack {missing}")
        frozen = {}
        for scale, params in self.scales.items():
            params = {"desc": params} if isinstance(params, str) else dict(params)
            if "desc" not in params:
                raise ValueError(f"{self.id}: scales[{scale!r}] needs a 'desc'")
            frozen[scale] = MappingProxyType(params)
        object.__setattr__(self, "scales", MappingProxyType(frozen))

    def __hash__(self) -> int:  # the scales mapping is unhashable; ids are unique
        return hash(self.id)

    def __repr__(self) -> str:  # short: it appears in pytest's assertion introspection
        return f"Claim({self.id!r}: {self.threshold_text})"

    def holds(self, value: Any) -> bool:
        """Whether ``value`` satisfies ``direction threshold`` (NaN never does)."""
        if isinstance(value, float) and math.isnan(value):
            return False
        d, t = self.direction, self.threshold
        if d == ">=":
            return value >= t
        if d == "<=":
            return value <= t
        if d == ">":
            return value > t
        if d == "<":
            return value < t
        if d == "==":
            return value == t
        return t[0] <= value <= t[1]

    @property
    def origin(self) -> str:
        """``paper``, ``seed`` or ``harness``: where the claim comes from (see ``ORIGINS``)."""
        return ORIGINS[self.kind]

    @property
    def threshold_text(self) -> str:
        if self.direction == "in":
            return f"in [{self.threshold[0]:g}, {self.threshold[1]:g}]"
        t = self.threshold
        return f"{self.direction} {t if isinstance(t, bool) else format(t, 'g')}"

    def describe(self, value: Any) -> str:
        """Assertion message: ``"<id>: measured <value> vs threshold <dir> <t> (<metric>)"``."""
        shown = format(value, ".6g") if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        return f"{self.id}: measured {shown} vs threshold {self.threshold_text} ({self.metric})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "statement": self.statement,
            "source": self.source,
            "metric": self.metric,
            "direction": self.direction,
            "threshold": list(self.threshold) if self.direction == "in" else self.threshold,
            "threshold_text": self.threshold_text,
            "scales": {k: dict(v) for k, v in self.scales.items()},
            "test": self.test,
            "kind": self.kind,
            "origin": self.origin,
            "registered": self.registered,
            "notes": self.notes,
            "amendments": [a.to_dict() for a in self.amendments],
        }


_STATIC = {
    "ci": {"desc": "static data: numbers printed in the paper (no compute)"},
    "full": {"desc": "static data: numbers printed in the paper (no compute)"},
}
_PAPER = "arXiv 2501.00663v1"
_ABSTRACT_MEMORY = (
    'paper Abstract: "We present a new neural long-term memory module that learns to memorize '
    "historical context and helps an attention to attend to the current context while utilizing "
    'long past information."'
)
_ABSTRACT_SPEED = (
    'paper Abstract: "We show that this neural memory has the advantage of a fast parallelizable '
    'training while maintaining a fast inference."'
)
_ABSTRACT_2M = (
    'paper Abstract: "They further can effectively scale to larger than 2M context window size '
    'with higher accuracy in needle-in-haystack tasks compared to baselines."'
)
_ABSTRACT_QUADRATIC = (
    'paper Abstract: "This more accurate modeling of dependencies, however, comes with a quadratic '
    'cost, limiting the model to a fixed-length context." Titans are presented as removing this '
    "limit without losing accuracy."
)
_SEEDS_CI = [0, 1, 2]
_SEEDS_FULL = [0, 1, 2, 3, 4]

# The learning-control protocol (claims/test_trained.py, trained.models-learn), also the training
# protocol of the trained comparisons, the ablations and the schedule grid: every model of
# titans.models (TITANS + BASELINES) at the tiny size's parameter budget, trained on the far
# pointer (one KEY k v needle at a random depth of a repeated-filler haystack, queried at the end)
# at L=64, inside every model's attention window (64) -- an in-window recall task. Evaluation data
# (seed = run seed) never overlaps training or validation data.
_CONTROL = {
    "ci": {"desc": "size micro (d=32, 2 layers, vocab 64 = the task's, +-5% non-embedding params); far "
                   "pointer, filler haystack, vocab 64; train L=64, up to 1200 steps x 32 seqs (warm-up 30, "
                   "cosine over 1200 steps), stopping once validation accuracy >= 0.99 at 2 consecutive "
                   "curve points; lr grid {1e-3, 2e-3, 4e-3}: the lr with the best seed-0 validation "
                   "accuracy (its own held-out sequences), then seeds 1-2 at that lr; eval L=64 and 256 "
                   "(window 64); 3 seeds; learning curve every 25 steps on 256 validation sequences",
           "size": "micro", "task": "far_pointer",
           "task_options": {"haystack": "filler", "vocab_size": 64, "depth": None},
           "train_length": 64, "eval_lengths": [64, 256], "window": 64, "steps": 1200,
           "stop_accuracy": 0.99, "stop_patience": 2,
           "batch_size": 32, "lrs": [1e-3, 2e-3, 4e-3], "seeds": _SEEDS_CI, "eval_examples": 256,
           "curve_every": 25},
    "full": {"desc": "as ci with up to 2000 steps (same stopping rule), lr grid {3e-4, 1e-3, 3e-3} (best on "
                     "seed-0 validation), eval L=64, 256, 1024, 4096; 5 seeds",
             "size": "tiny", "task": "far_pointer",
             "task_options": {"haystack": "filler", "vocab_size": 64, "depth": None},
             "train_length": 64, "eval_lengths": [64, 256, 1024, 4096], "window": 64, "steps": 2000,
             "stop_accuracy": 0.99, "stop_patience": 2,
             "batch_size": 32, "lrs": [3e-4, 1e-3, 3e-3], "seeds": _SEEDS_FULL, "eval_examples": 512,
             "curve_every": 100},
}
_AMENDED = "2026-12-02"
_TRAINED_AMENDMENT = Amendment(
    date=_AMENDED,
    what="CI protocol: from 1 seed, lr 3e-3, 200 steps, LMM/MAC + 3 baselines to the learning-control "
         "protocol (_CONTROL: 3 seeds, lr 1e-3, 300 steps, all 7 models, one row per Titans variant); "
         "a model that fails its learning control (trained.models-learn) makes the comparison "
         "inconclusive instead of not reproduced. Threshold unchanged.",
    why="Under the old protocol the Titans models had not learned (at chance after 200 steps), so "
        "its verdict measured the protocol, not Titans; MAC also diverged at lr 3e-3.",
    before="Transformer++ solved most far-pointer queries while LMM, MAC and RetNet were at chance "
           "after 200 steps (recorded as not reproduced).",
)
_MEMORY_DEFAULTS_AMENDMENT = Amendment(
    date=_AMENDED,
    what="The protocol's models and NeuralMemory are built with the current MemoryConfig defaults: "
         "normalized values and memory outputs, momentum <= 0.9, theta max 0.1, gate biases "
         "(0, 2.2, -7) (was: the literal memory, theta max 0.02, biases (-2, 2.2, -4)). Metric and "
         "threshold unchanged.",
    why="The literal memory stored nothing at its initial gates and diverged under outer training; "
        "the claims measure the memory the library now ships.",
    before="Supported in the earlier CI runs, except LMM's linear-time ratio, inconclusive in the last "
           "of them (4.08, 95% CI 3.42-4.74).",
)

_CONTROL_STEPS_AMENDMENT = Amendment(
    date="2026-12-02",
    what="Control protocol: up to 1200 steps (cosine over 1200) instead of exactly 300, stopping once the "
         "validation learning curve (its own held-out sequences, never the evaluation data) is >= 0.99 "
         "at 2 consecutive points (25 steps apart; at the full scale up to 2000 steps, points 100 steps "
         "apart). Metric, threshold, lr, seeds and evaluation unchanged. The comparisons now set models "
         "side by side at an equal step budget rather than equal steps: each run stops once it has "
         "learned, and the steps each run trained are recorded in the control rows.",
    why="At 300 steps the runs were cut while still learning: with seeds 0-2 one LMM seed and one MAL seed "
        "were below the bar with rising curves, and RetNet had not started to learn, so the control "
        "measured the step budget, not whether the model learns. Exploratory runs before this amendment "
        "(seeds 0-2): LMM and MAL reached 1.0 within 600 steps without the stopping rule; with it and 600 "
        "steps, RetNet learned on 2 of 3 seeds (after 450-475 steps) and MAL seed 0 stayed near 0.8, "
        "uniformly over distance (at lr 2e-3 the same seed stalled at 0.5 with 11 of its 21 value tokens "
        "never predicted); with 1200 steps (cosine over 1200) MAL seed 0 left its plateau after about "
        "450 steps. The stopping rule keeps the cost of the longer budget near the old one.",
    before="300 steps: MAC 0.98 and MAG 1.00 supported; LMM 0.95 (95% CI 0.83-1.07) and MAL 0.95 "
           "(0.74-1.16) inconclusive; RetNet not reproduced; the comparisons that involve LMM or MAL "
           "inconclusive (did not learn).",
)

_MICRO_GRID_AMENDMENT = Amendment(
    date="2026-12-02",
    what="CI control protocol: the models are size micro (d=32, vocab 64, parameters matched at that "
         "size) instead of tiny (d=64, vocab 512), and the lr is selected from the grid {1e-3, 2e-3, "
         "4e-3} on seed-0 validation accuracy (seeds 1-2 then train at the selected lr) instead of "
         "fixed at 1e-3. Task, steps, stopping rule, evaluation, metric and threshold unchanged.",
    why="The trained comparison needs an lr grid of >= 3 values per model chosen on validation data "
        "(one fixed lr favours the models it was tuned on), and the grid of tiny models does not fit "
        "the CI budget: the trained tier already took about 18 of the job's 30 minutes. The micro "
        "step costs 0.5-0.76 of the tiny step (single-thread medians: LMM 0.56, MAC 0.51, MAG 0.52, "
        "MAL 0.66, Transformer++ 0.76, SWA 0.49, RetNet 0.55), which pays for the grid. The model, "
        "not the seeds or the grid, was shrunk. Exploratory runs before this amendment (seed 0, lr "
        "2e-3): micro MAC and MAL reached 0.99 / 0.99 at L=64 within 400 steps.",
    before="Tiny models at lr 1e-3: all seven controls supported (Transformer++, SWA, MAG, MAL 1.00; "
           "LMM and RetNet 0.997; MAC 0.978, 95% CI 0.924-1.031); at the training length LMM, MAG, MAL "
           "within 5 points of Transformer++ (supported), MAC -2.2 (inconclusive); at 4x the window "
           "every variant inconclusive against SWA (LMM +28, MAC +5, MAG -14, MAL -11 points).",
)

_ABLATION_LR_AMENDMENT = Amendment(
    date="2026-12-02",
    what="The ablated LMM trains at the lr selected (on seed-0 validation) for the full LMM, with the "
         "same seeds, instead of selecting its own lr from the grid; the metric is computed as "
         "registered, from the validation loss (the test had compared the mean training loss over the "
         "last tenth of the steps); a run that diverges makes the row inconclusive.",
    why="An ablation compares one change at a time: a separately tuned lr would fold the lr's effect "
        "into the component's; and the registered metric is the validation loss.",
    before="Nothing measured: full scale only, never run.",
)

_NO_STOPPING_AMENDMENT = Amendment(
    date="2026-12-02",
    what="The full-scale protocol this claim inherits from the learning control gained a stopping rule "
         "(stop once validation accuracy >= 0.99 twice); this claim switches it off (stop_accuracy None) "
         "and trains every step, as before.",
    why="Its metric compares runs at fixed step counts (final loss, or a schedule's steps); runs "
        "stopped at different steps would bias it.",
    before="Nothing measured: full scale only, never run.",
)

_TIMING_RULE_AMENDED = "2026-11-25"


def _paired_timing_amendment(before: str) -> Amendment:
    """The timing claims' move from a min-over-rounds ratio to the interval over paired rounds."""
    return Amendment(
        date=_TIMING_RULE_AMENDED,
        what="Rule: from 'forward wall time ratio time(4L)/time(L), min over rounds', judged by its value "
             "against the threshold, to the mean of the paired-round ratios (4L timed right after L) "
             "judged by its 95% interval: supported when the whole interval lies on the threshold's "
             "side, not reproduced when it lies wholly on the other side, inconclusive otherwise. "
             "Threshold and lengths unchanged.",
        why="On the shared 2-core CPU the round-to-round noise is of the order of the margin in the "
            "threshold, so one min-over-rounds ratio can land on either side of it by chance; the "
            "interval over paired rounds says when a run cannot decide.",
        before=before,
    )


_SANITY_AMENDED = "2026-12-02"


def _sanity_amendment(why: str) -> Amendment:
    """Re-classification of a structural check as a sanity row."""
    return Amendment(
        date=_SANITY_AMENDED,
        what="Re-classified from kind 'paper' to 'sanity': a structural check, listed apart from the "
             "claims in the report and counted separately. Metric, threshold and protocol unchanged.",
        why=why,
        before="Listed and counted among the paper claims; the measurement and its verdict are "
               "unaffected by the re-classification.",
    )


_RIGOR_AMENDED = "2026-12-02"  # seeds, vacuous passes, harder headline protocols


def _seeds_amendment(ci_before: list, full_before: list, ci_after: list, full_after: list, before: str) -> Amendment:
    """The amendment that gives a claim at least 3 seeds at CI scale (5 at full)."""
    return Amendment(
        date=_RIGOR_AMENDED,
        what=f"Seeds: CI from {ci_before} to {ci_after}, full from {full_before} to {full_after}. Metric, "
             "threshold and the rest of the protocol unchanged.",
        why="Every stochastic claim runs at least 3 seeds at CI scale: with one seed the 95% "
            "interval is undefined, with two it has one degree of freedom.",
        before=before,
    )


def _recall_rows_amendment(rows: str, before: str) -> Amendment:
    """The amendment that runs the far-pointer headline claims on three haystacks and in both memory forms."""
    return Amendment(
        date=_RIGOR_AMENDED,
        what=f"Protocol: one row per {rows}. Forms: the token recurrence (chunk 1, registered) and the "
             "chunked-parallel form the models use (chunk 64, MemoryConfig's default chunk_size; "
             "memory_scan itself), theta chosen on the same dev task for each depth and form. "
             "Haystacks: the verdict covers the filler haystack (registered) and 'needles' (the same "
             "filler with 16 distinct novel distractor pairs at random steps, within the memories' "
             "O(d_k) capacity); the random haystack (a fresh pair every step) is recorded beside the "
             "filler rows and not judged, because at every registered distance more fresh pairs "
             "follow the needle than a d_k = 32 memory can hold (recall.random-haystack-capacity's "
             "question). A row's needle is the same on every haystack (paired). The registered rows "
             "(filler, token recurrence) are computed exactly as before. Threshold unchanged.",
        why="The headline recall claims were measured on one easy haystack (4 repeated "
            "pairs) and only in the token recurrence, which the models do not run (they use the "
            "chunked form with chunk 64). Disclosure: the needles and random haystacks and the "
            "chunk-64 form were run at these settings (16 distractors = d_k/2, chosen beforehand) "
            "before this amendment was written; so was theta 0.05 on the needles haystack, which "
            "recalls it, but theta stays the dev task's choice.",
        before=before,
    )


_STABILITY_CONFIGS = ["MemoryConfig.paper() initial gates", "MemoryConfig() initial gates", "recall default"]

_ALL: list[Claim] = [
    # ---------------------------------------------------------------- abstract (paper) claims
    Claim(
        id="abstract.long-context-recall",
        statement=_ABSTRACT_MEMORY,
        source=f"{_PAPER}, Abstract; §4 (MAC/MAG)",
        metric="recall accuracy (fraction) of a hybrid (memory + windowed attention) on key-value "
        "pairs placed beyond the attention window; min over distances",
        direction=">=",
        threshold=0.9,
        scales={
            "ci": {"desc": "attention window 256; pairs 1k-4k tokens back; 3 seeds; rows: memory form "
                   "(token recurrence, chunk 64) x haystack (filler, needles = filler + 16 distractor "
                   "pairs); random haystack recorded, not judged",
                   "window": 256, "distances": [1024, 4096], "seeds": _SEEDS_CI,
                   "chunks": [1, 64], "haystacks": ["filler", "needles"], "recorded_haystacks": ["random"]},
            "full": {"desc": "window 512; pairs 4k-64k back; 5 seeds; rows as ci",
                     "window": 512, "distances": [4096, 16384, 65536], "seeds": _SEEDS_FULL,
                     "chunks": [1, 64], "haystacks": ["filler", "needles"], "recorded_haystacks": ["random"]},
        },
        test="claims/test_recall.py",
        kind="paper",
        registered="2026-11-25",
        notes="Attention alone fails this by construction (recall.swa-beyond-window); the memory "
        "branch must carry the information across the window. Rows and haystacks: those of "
        "recall.far-pointer-titans (same streams), the hybrid with the L_M=2 memory in each form; the "
        "L_M=1 memory is recorded beside.",
        amendments=(_recall_rows_amendment(
            "memory form (the hybrid with the L_M=2 memory) x judged haystack",
            "Filler haystack, token recurrence only: 0.917, 95% CI [0.558, 1.275] (n=3), recorded as "
            "inconclusive (the L_M=1 memory's hybrid 1.0 +- 0 beside)."),),
    ),
    Claim(
        id="abstract.fast-parallel-training",
        statement=_ABSTRACT_SPEED,
        source=f"{_PAPER}, Abstract; §3.2 (chunked parallel training)",
        metric="speed-up (x) of the chunked parallel memory forward+backward (gradients w.r.t. every "
        "input) over the fastest token-by-token recurrence of the same function (compiled, "
        "hand-written per-token gradients), at matching outputs and gradients",
        direction=">=",
        threshold=2.0,
        scales={
            "ci": {"desc": "L=2048, chunk 64, d=64, 1 head; token form: compiled per chunk, hand-written "
                   "per-token gradients", "length": 2048, "chunk": 64, "d": 64,
                   "token_form": "compiled-chunk-loop"},
            "full": {"desc": "L=16384, chunk 64, d=128; token form as ci", "length": 16384, "chunk": 64,
                     "d": 128, "token_form": "compiled-chunk-loop"},
        },
        test="claims/test_throughput.py",
        kind="paper",
        registered="2026-11-25",
        notes="Outputs, loss and the gradients w.r.t. every input of the two forms must agree (1e-4 "
        "relative, a sanity check on the first, untimed call) before the times are compared; the "
        "speed-up is what 'parallelizable' buys on this hardware. The token form "
        "(claims/test_throughput.py::token_recurrence) computes memory_scan's function token by "
        "token: per-token gradients at the chunk-start weights by the hand-written rank-one "
        "backprop, W_t materialized at every token, one mx.compile'd call per chunk; its outer "
        "gradient comes from MLX autodiff, as the chunked form's does.",
        amendments=(Amendment(
            date=_RIGOR_AMENDED,
            what="Comparison: the token-by-token side is the fastest token recurrence of the same "
                 "function we have (compiled per chunk with mx.compile, per-token gradients by the "
                 "hand-written rank-one backprop) instead of memory_scan_reference (an uncompiled token "
                 "loop taking every per-token gradient with mx.grad); the step takes the gradients "
                 "w.r.t. every input (initial weights, q, k, v, theta, eta, alpha) instead of the "
                 "weights and q; the first call of each form is checked (outputs, loss, every gradient "
                 "within 1e-4 relative) before the timed rounds; the chunked form runs without input "
                 "validation. Threshold unchanged.",
            why="The comparison was against a deliberately slow reference: its per-token mx.grad is what "
                "makes it slow, not the recurrence. Measured here before the change, on the CI inputs: "
                "a compiled call per token was no faster than the reference, memory_scan with chunk 1 "
                "(a different function, the online rule) about 4x slower, a compiled backward "
                "(mx.compile of the vjp) slower than MLX's autodiff; one compiled call per chunk of "
                "tokens was the fastest.",
            before="speed-up over memory_scan_reference 30.4x, 95% CI [20.5, 40.4] (3 paired rounds; "
                   "token 4.42 s, chunked 0.135 s at the minimum), recorded as supported.",
        ),),
    ),
    Claim(
        id="abstract.fast-inference",
        statement=_ABSTRACT_SPEED,
        source=f"{_PAPER}, Abstract",
        metric="per-token decode time at context 4L / at context L (memory-only decode)",
        direction="<=",
        threshold=1.25,
        scales={
            "ci": {"desc": "L=1024 -> 4096; NeuralMemory of size small; 16 steps x 5 rounds",
                   "L": 1024, "factor": 4, "steps": 16, "rounds": 5},
            "full": {"desc": "L=16384 -> 65536; NeuralMemory of size small; 16 steps x 9 rounds",
                     "L": 16384, "factor": 4, "steps": 16, "rounds": 9},
        },
        test="claims/test_throughput.py",
        kind="paper",
        registered="2026-11-25",
        notes="Constant per-token cost; a KV-cache model grows linearly instead. 1.25 allows timing "
        "noise on a shared 2-core CPU.",
        amendments=(_MEMORY_DEFAULTS_AMENDMENT,),
    ),
    Claim(
        id="abstract.beyond-quadratic",
        statement=_ABSTRACT_QUADRATIC,
        source=f"{_PAPER}, Abstract; §1",
        metric="needle-recall accuracy (fraction) of the Titans memory at the longest length run, "
        "where full attention's cost is super-linear",
        direction=">=",
        threshold=0.9,
        scales={
            "ci": {"desc": "the longest stream of recall.far-pointer-titans' filler run (32k), deep "
                   "memory L_M=2, mean over its distances; 3 seeds x 8 trials", "seeds": _SEEDS_CI},
            "full": {"desc": "the longest stream of the full filler run (512k); 5 seeds x 16 trials",
                     "seeds": _SEEDS_FULL},
        },
        test="claims/test_recall.py",
        kind="paper",
        registered="2026-11-25",
        notes="Read together with throughput.linear-titans and throughput.attention-superlinear: "
        "accuracy kept while the cost stays linear.",
    ),
    Claim(
        id="abstract.2m-context",
        statement=_ABSTRACT_2M,
        source=f"{_PAPER}, Abstract; §5.4 Fig. 6 (BABILong)",
        metric="needle-recall accuracy (fraction) of the Titans memory after streaming the full "
        "length",
        direction=">=",
        threshold=0.9,
        scales={
            "ci": {"desc": "262,144 tokens (the 2M statement itself needs --scale=full); 3 seeds",
                   "length": 262_144, "seeds": _SEEDS_CI},
            "full": {"desc": "2,097,152 tokens; 5 seeds", "length": 2_097_152, "seeds": _SEEDS_FULL},
        },
        test="claims/test_recall.py",
        kind="paper",
        registered="2026-11-25",
        notes="The paper's evidence is plot-only (ref §5.5: BABILong curves, x-axis to ~1e7); ATLAS "
        "reports +80% over Titans on BABILong at 10M (ref §7). Synthetic needle, not BABILong.",
        amendments=(_seeds_amendment(
            [0], [0, 1], _SEEDS_CI, _SEEDS_FULL,
            "1 seed: needle recall 1.0 after 262,144 tokens (n=1, no interval), recorded as "
            "inconclusive."),),
    ),
    # ---------------------------------------------------------------- throughput / decode
    Claim(
        id="throughput.linear-titans",
        statement="seed: Titans' forward time is linear in sequence length, time(4L)/time(L) <= 4.6 "
        'at CI lengths. Paper anchor, ref §5.5 (Fig. 8): "tokens/s roughly constant in length for '
        'all depths (linear time)".',
        source=f"{_PAPER}, §5.5 Fig. 8; §5.8 Fig. 9",
        metric="forward wall time ratio time(4L)/time(L) (mean over paired rounds (4L timed right after L), verdict from the 95% CI: inconclusive when it straddles the threshold; shared CPU: noise only "
        "adds time)",
        direction="<=",
        threshold=4.6,
        scales={
            "ci": {"desc": "L=2048 vs 8192; LMM and MAC, size small, batch 1", "L": 2048,
                   "factor": 4, "models": ["lmm", "mac"]},
            "full": {"desc": "L=16384 vs 65536; LMM, MAC, MAG, MAL, size small, batch 1",
                     "L": 16384, "factor": 4, "models": ["lmm", "mac", "mag", "mal"]},
        },
        test="claims/test_throughput.py",
        kind="paper",
        registered="2026-11-25",
        notes="4.6 = 4 x 1.15 tolerance for timing noise.",
        amendments=(_paired_timing_amendment(
            "Not recorded as not reproduced under the min-over-rounds rule; the runs' numbers were not "
            "kept in the repository."), _MEMORY_DEFAULTS_AMENDMENT),
    ),
    Claim(
        id="throughput.linear-retnet",
        statement="seed: RetNet (chunkwise retention) forward time is linear in sequence length, "
        "time(4L)/time(L) <= 4.6 at CI lengths.",
        source="RetNet chunkwise form (ref baselines §1.1); baseline for Titans §5.8",
        metric="forward wall time ratio time(4L)/time(L) (mean over paired rounds (4L timed right after L), verdict from the 95% CI: inconclusive when it straddles the threshold; shared CPU: noise only "
        "adds time)",
        direction="<=",
        threshold=4.6,
        scales={
            "ci": {"desc": "L=2048 vs 8192", "L": 2048, "factor": 4},
            "full": {"desc": "L=16384 vs 65536", "L": 16384, "factor": 4},
        },
        test="claims/test_throughput.py",
        kind="paper",
        registered="2026-11-25",
        notes="Same protocol as throughput.linear-titans.",
        amendments=(_paired_timing_amendment(
            "min-over-rounds ratio 4.81 and 4.76 in two runs against <= 4.6 (RetNet forward 0.414 -> "
            "1.994 s and 0.377 -> 1.794 s at 2048 -> 8192; pairwise medians 4.50 and 4.51), recorded "
            "as not reproduced (strict xfail)."),),
    ),
    Claim(
        id="throughput.attention-superlinear",
        statement="seed: full causal attention is super-linear in sequence length (the quadratic "
        "cost of the paper's Abstract), time(4L)/time(L) >= 6.0.",
        source=f"{_PAPER}, Abstract; ref baselines §8 (CPU SDPA timings)",
        metric="forward wall time ratio time(4L)/time(L) (mean over paired rounds (4L timed right after L), verdict from the 95% CI: inconclusive when it straddles the threshold; shared CPU: noise only "
        "adds time)",
        direction=">=",
        threshold=6.0,
        scales={
            "ci": {"desc": "L=2048 vs 8192", "L": 2048, "factor": 4},
            "full": {"desc": "L=4096 vs 16384", "L": 4096, "factor": 4},
        },
        test="claims/test_throughput.py",
        kind="paper",
        registered="2026-11-25",
        notes="Asymptotically 16; ref baselines §8 measured 14.7 (SDPA 4k -> 16k, CPU). 6.0 demands "
        "a clear quadratic term while allowing fixed overheads at short L.",
        amendments=(_paired_timing_amendment(
            "Not recorded as not reproduced under the min-over-rounds rule; the runs' numbers were not "
            "kept in the repository."),),
    ),
    Claim(
        id="decode.state-flat-titans",
        statement="seed: the Titans decoding state (memory weights + momentum) does not grow with "
        "context length.",
        source=f"{_PAPER}, §3 (memory as fixed-size parameters); Abstract (fast inference)",
        metric="decode state bytes after 4L tokens / after L tokens",
        direction="<=",
        threshold=1.0,
        scales={
            "ci": {"desc": "L=1024 -> 4096; LMM, MAC, MAG, MAL, size small", "L": 1024,
                   "factor": 4, "models": ["lmm", "mac", "mag", "mal"]},
            "full": {"desc": "L=16384 -> 65536; LMM, MAC, MAG, MAL, size small", "L": 16384,
                     "factor": 4, "models": ["lmm", "mac", "mag", "mal"]},
        },
        test="claims/test_throughput.py",
        kind="sanity",
        registered="2026-11-25",
        notes="Counts the memory/LMM state; attention-window caches of hybrids are bounded by the "
        "window and reported separately.",
        amendments=(_MEMORY_DEFAULTS_AMENDMENT, _sanity_amendment(
            "The Titans decoding state is a fixed set of memory weight and momentum arrays by "
            "construction: growth would mean a cache bug, not a finding about the paper.")),
    ),
    Claim(
        id="decode.kv-cache-grows",
        statement="seed: a full-attention decoder's KV cache grows linearly with context length.",
        source="contrast case for decode.state-flat-titans",
        metric="bytes of the keys/values held by the KV cache after 4L tokens / after L tokens (the preallocated room is recorded beside)",
        direction=">=",
        threshold=3.5,
        scales={
            "ci": {"desc": "L=1024 -> 4096", "L": 1024, "factor": 4},
            "full": {"desc": "L=16384 -> 65536", "L": 16384, "factor": 4},
        },
        test="claims/test_throughput.py",
        kind="sanity",
        registered="2026-11-25",
        notes="Exactly 4 for a pure cache; persistent/prefix tokens lower it slightly.",
        amendments=(Amendment(
            date=_TIMING_RULE_AMENDED,
            what="Metric: from 'KV-cache bytes after 4L tokens / after L tokens' (the cache's allocation) "
                 "to the bytes of the keys/values the cache holds; the allocation ratio is recorded "
                 "beside. Threshold and lengths unchanged.",
            why="KVCache allocates room in steps of 256 positions, so the allocation ratio depends on "
                "where L and 4L fall on that grid (after a 1024-token prefill the first decode step "
                "allocates 1280 positions, the prefill to 4096 exactly 4100); the claim is about what "
                "the cache holds.",
            before="allocation ratio 3.203 (5,242,880 -> 16,793,600 bytes) against >= 3.5, recorded as "
                   "not reproduced (strict xfail), while the stored positions grew 4.0x.",
        ), _sanity_amendment(
            "A full-attention cache holds the keys and values of every position by construction: "
            "bytes that do not grow with the context would mean a cache bug, not a finding about the "
            "paper.")),
    ),
    Claim(
        id="streaming.constant-memory",
        statement="seed: the Titans memory streams >= 256k tokens (CI) / 2M tokens (full) at "
        "constant memory.",
        source=f"{_PAPER}, Abstract (>2M context)",
        metric="peak memory in the last quarter of the stream / peak in the first quarter",
        direction="<=",
        threshold=1.10,
        scales={
            "ci": {"desc": "262,144 tokens in pieces of 8,192 (memory of size small)",
                   "tokens": 262_144, "piece": 8192},
            "full": {"desc": "2,097,152 tokens in pieces of 8,192 (memory of size small)",
                     "tokens": 2_097_152, "piece": 8192},
        },
        test="claims/test_throughput.py",
        kind="sanity",
        registered="2026-11-25",
        notes="Measure MLX active/peak memory (or RSS) per quarter; the stream must complete.",
        amendments=(_sanity_amendment(
            "The scan carries a fixed-size state between pieces and its inputs are made per piece: "
            "peak memory that grows with the stream would mean a leak, not a finding about the paper."),),
    ),
    # ---------------------------------------------------------------- recall
    Claim(
        id="recall.far-pointer-titans",
        statement="seed: the Titans memory keeps >= 0.9 recall of a key-value pair on the filler "
        "haystack at every distance between write and query.",
        source=f"{_PAPER}, §5.3 (S-NIAH) in token form (ref baselines §5.3)",
        metric="min over distances of recall accuracy (fraction)",
        direction=">=",
        threshold=0.9,
        scales={
            "ci": {"desc": "distances 64 .. 16k in streams of 8k and 32k; d_k=32; 8 trials x 3 seeds; "
                   "rows: depth x memory form (token recurrence, chunk 64) x haystack (filler, needles = "
                   "filler + 16 distractor pairs); random haystack recorded, not judged",
                   "distances": [64, 256, 1024, 4096, 16384], "seeds": _SEEDS_CI,
                   "lengths": [8192, 32768], "trials": 8, "d_k": 32, "depths": [1, 2],
                   "chunks": [1, 64], "haystacks": ["filler", "needles"], "recorded_haystacks": ["random"],
                   "n_distractors": 16},
            "full": {"desc": "distances 64 .. 256k in streams of 8k .. 512k; 16 trials x 5 seeds; rows as ci",
                     "distances": [64, 1024, 16384, 65536, 262144], "seeds": _SEEDS_FULL,
                     "lengths": [8192, 32768, 65536, 524288], "trials": 16, "d_k": 32,
                     "depths": [1, 2], "chunks": [1, 64], "haystacks": ["filler", "needles"],
                     "recorded_haystacks": ["random"], "n_distractors": 16},
        },
        test="claims/test_recall.py",
        kind="paper",
        registered="2026-11-25",
        notes="Paper anchor: table2.mac-sniah-16k (MAC >= 95% S-NIAH at 16K). Protocol "
        "(titans/probes/mixers.py): fixed untrained mixers on kv_stream_far_pointer; a stream of length L "
        "holds the needle at L-1-D (D = largest registered distance < L) and is read at every "
        "registered distance d <= D; nearest-neighbour decoding among the written values + 64 "
        "foils. Memory: token recurrence (chunk 1), eta 0.9, alpha 0, theta chosen per depth on a "
        "dev task (8 pairs + 256 filler writes, seeds 90000+), deep memory hidden 2 d_k. One test "
        "row per depth (L_M = 1, 2). SWA, full attention, RetNet and the hybrid are read on the "
        "same rows. Since the 2026-12-02 amendment also the chunk-64 form and the needles haystack "
        "(rows) and the random haystack (recorded).",
        amendments=(_recall_rows_amendment(
            "memory depth x memory form x judged haystack",
            "Filler haystack, token recurrence only: L_M=1 1.0 +- 0 (supported), L_M=2 0.917, 95% CI "
            "[0.558, 1.275] (inconclusive), n=3."),),
    ),
    Claim(
        id="recall.swa-beyond-window",
        statement="seed: sliding-window attention falls to chance when the pair lies beyond its "
        "window.",
        source="contrast case for recall.far-pointer-titans (SWA is the short-term memory of MAG/MAL)",
        metric="max over distances > window of (recall accuracy - chance accuracy)",
        direction="<=",
        threshold=0.05,
        scales={
            "ci": {"desc": "window 256; distances 512 .. 4k; 3 seeds", "window": 256,
                   "distances": [512, 1024, 4096], "seeds": _SEEDS_CI},
            "full": {"desc": "window 512; distances 1k .. 64k; 5 seeds", "window": 512,
                     "distances": [1024, 4096, 65536], "seeds": _SEEDS_FULL},
        },
        test="claims/test_recall.py",
        kind="sanity",
        registered="2026-11-25",
        notes="chance = 1/(number of candidate values).",
        amendments=(_sanity_amendment(
            "Attention restricted to a window cannot read a pair written before it: recall above "
            "chance beyond the window would mean a masking bug, not a finding about the paper."),),
    ),
    # ---------------------------------------------------------------- capacity
    Claim(
        id="capacity.deep-vs-matrix",
        statement="ref §7 (ATLAS, arXiv 2505.23735, Thm. 1): deep MLP memory stores about "
        "O(d_k d_v) pairs versus O(d_k) for a matrix; ref §1: L_M >= 2 'is argued strictly more "
        "expressive'. seed: deeper memory holds more pairs at equal width.",
        source=f"{_PAPER}, §3.1 and §5.5; ATLAS Prop. 1 / Thm. 1",
        metric="pairs recalled at >= 0.9 accuracy by an L_M=2 memory / by an L_M=1 memory, equal d_k",
        direction=">=",
        threshold=1.25,
        scales={
            "ci": {"desc": "d_k=32; pairs 8..256; 16 passes, best theta per depth; 3 seeds",
                   "d_k": 32, "pairs": [8, 16, 32, 64, 128, 256], "depths": [1, 2],
                   "seeds": _SEEDS_CI, "passes": 16, "thetas": [0.003, 0.01, 0.03, 0.1, 0.3]},
            "full": {"desc": "d_k=64; pairs 16..1024; depths 1-4; 5 seeds", "d_k": 64,
                     "pairs": [16, 32, 64, 128, 256, 512, 1024], "depths": [1, 2, 3, 4],
                     "seeds": _SEEDS_FULL, "passes": 64,
                     "thetas": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]},
        },
        test="claims/test_capacity.py",
        kind="paper",
        registered="2026-11-25",
        notes="Equal width: hidden width = d_k; several passes over the pairs allowed (capacity, "
        "not one-shot learning speed). Protocol: kv_stream_pairs written `passes` times (order "
        "reshuffled each pass) by the token recurrence (eta 0.9, alpha 0), then every key "
        "queried; nearest-neighbour decoding among the pairs' values + 64 foils; theta = the grid "
        "value with the largest capacity per depth (same grid and passes for every depth).",
    ),
    Claim(
        id="capacity.matrix-dk",
        statement="ref §7 (ATLAS Prop. 1): a matrix memory under the delta/l2 rule stores at most "
        "O(d_k) linearly independent key-value pairs. seed: matrix memory holds ~O(d_k) pairs.",
        source="ATLAS (arXiv 2505.23735) Prop. 1; Titans App. C",
        metric="pairs stored at >= 0.9 recall / d_k (matrix memory)",
        direction="in",
        threshold=(0.5, 2.0),
        scales={
            "ci": {"desc": "d_k in {16, 32}; pairs d_k x {1/4 .. 4}; 16 passes; 3 seeds",
                   "d_k": [16, 32], "seeds": _SEEDS_CI, "passes": 16,
                   "pair_fractions": [0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 2.5, 3, 4],
                   "thetas": [0.003, 0.01, 0.03, 0.1, 0.3]},
            "full": {"desc": "d_k in {16, 32, 64, 128}; 5 seeds", "d_k": [16, 32, 64, 128],
                     "seeds": _SEEDS_FULL, "passes": 64,
                     "pair_fractions": [0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 2.5, 3, 4],
                     "thetas": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]},
        },
        test="claims/test_capacity.py",
        kind="paper",
        registered="2026-11-25",
        notes="Checks both that the capacity scales with d_k and that it does not exceed it by much.",
    ),
    # ---------------------------------------------------------------- stability
    Claim(
        id="stability.streaming-bounded",
        statement="seed: with l2-normalized keys the memory stays finite (no NaN/Inf) and its weight "
        "norm stays bounded over >= 256k streamed tokens.",
        source=f"{_PAPER}, §4.4 (l2-normalized q, k); lucidrains issues #22/#29/#53 (ref §6.1)",
        metric="max ||M||_F over the second half of the stream / max over the first half",
        direction="<=",
        threshold=1.5,
        scales={
            "ci": {"desc": "262,144 tokens; 3 seeds; rows: MemoryConfig.paper() initial gates "
                   "(registered), MemoryConfig() initial gates, recall default; judged only when alive "
                   "(the last 64 writes change their keys' reads and the weights moved from init, each "
                   ">= 0.01 relative), else inconclusive", "tokens": 262_144, "seeds": _SEEDS_CI,
                   "piece": 8192, "d_k": 32, "configs": _STABILITY_CONFIGS, "recent": 64,
                   "alive_tol": 0.01},
            "full": {"desc": "2,097,152 tokens; 5 seeds; rows and liveness as ci", "tokens": 2_097_152,
                     "seeds": _SEEDS_FULL, "piece": 8192, "d_k": 32, "configs": _STABILITY_CONFIGS,
                     "recent": 64, "alive_tol": 0.01},
        },
        test="claims/test_stability.py",
        kind="paper",
        registered="2026-11-25",
        notes="The test must also assert that every state is finite (a NaN makes the ratio NaN, "
        "which never satisfies the threshold). Random unit keys, values N(0, 1/d); one test row per "
        "configuration: the initial gates of MemoryConfig.paper() (the configuration registered as "
        "'the NeuralMemory initial gates': L_M=2, hidden 2 d_k, chunk 64, theta 0.02 sigmoid(-2), "
        "eta sigmoid(2.2), alpha sigmoid(-4)), the initial gates of the library's default "
        "MemoryConfig() (a different configuration: theta 0.1 sigmoid(0), eta 0.9 sigmoid(2.2), "
        "alpha sigmoid(-7), chunk 64, normalized values and memory output) and the recall default "
        "(matrix memory, token recurrence, alpha 0). A row whose memory is not alive (see scales) is "
        "inconclusive: a memory that stores nothing cannot show boundedness.",
        amendments=(Amendment(
            date="2026-11-25",
            what="Protocol: the first half of the stream, the ratio's denominator, includes the initial "
                 "weights (t = 0) besides the state after each piece; a collapse of the memory to M = 0 "
                 "is recorded as its own value and note. Metric wording, threshold and scales "
                 "unchanged.",
            why="In the first run the memory with the NeuralMemory initial gates collapsed to M = 0 "
                "within the first piece, so both maxima were 0 and the ratio said nothing about "
                "boundedness.",
            before="0/0: the ratio was NaN for the NeuralMemory-gate configuration (maximum norm 0 in "
                   "both halves), which never satisfies the threshold.",
        ), _seeds_amendment(
            [0, 1], [0, 1, 2], _SEEDS_CI, _SEEDS_FULL,
            "2 seeds: recall-default row 0.830, 95% CI [0.479, 1.182]; NeuralMemory-initial-gate row "
            "0 +- 0 (the memory collapsed to M = 0); both recorded as supported.",
        ), Amendment(
            date=_RIGOR_AMENDED,
            what="Protocol: boundedness is judged only for a memory that is alive. Per seed, at the end "
                 "of the stream, the last 64 writes must change the reads of their own keys by >= 0.01 "
                 "||V|| and the weights must have moved >= 0.01 from their initial value (relative to "
                 "the larger of the initial and final norm); otherwise the row is inconclusive. The "
                 "reads' distance from the reads at init is recorded and decides nothing (a memory that "
                 "collapsed to M = 0 reads differently from its random init while storing nothing). "
                 "Rows: the registered configuration, now named 'MemoryConfig.paper() initial gates' "
                 "(unchanged), the recall default (unchanged) and a new row with the initial gates of "
                 "the library's default MemoryConfig() (theta 0.1 sigmoid(0), eta 0.9 sigmoid(2.2), "
                 "alpha sigmoid(-7), chunk 64, normalized values and memory output). Metric and "
                 "threshold unchanged.",
            why="A memory that stores nothing is trivially bounded: with the registered gates the memory "
                "collapses to M = 0 within the first piece, so that row passed vacuously. The registered "
                "gates were those a fresh NeuralMemory had then; a fresh NeuralMemory now starts with "
                "MemoryConfig(), a different configuration, so it gets a row of its own.",
            before="The NeuralMemory-initial-gate row was recorded as supported with ratio 0 +- 0 "
                   "(n=2): max ||M||_F 9.78 (the initial weights), final ||M||_F 0.",
        )),
    ),
    # ---------------------------------------------------------------- gating (paper's Table 2 explanation)
    Claim(
        id="gating.forgetting-helps",
        statement="ref §5.3: the paper explains Table 2 by 'forgetting beats DeltaNet' (and "
        "'momentum + forgetting beat TTT'). seed: data-dependent forgetting (alpha > 0) improves "
        "recall of the latest value on a stream with overwrites.",
        source=f"{_PAPER}, §3.1 eq. 13-14; §5.3",
        metric="recall accuracy of the latest value, with forgetting minus alpha=0 (fraction points)",
        direction=">=",
        threshold=0.05,
        scales={
            "ci": {"desc": "d_k=32; 4k-token stream, 25% overwrites; alpha chosen on 8 dev streams; "
                   "3 seeds", "d_k": 32, "tokens": 4096, "seeds": _SEEDS_CI, "pool": 16,
                   "p_overwrite": 0.25, "alphas": [1e-3, 1e-2, 1e-1], "trials": 8, "alpha_selection": "dev"},
            "full": {"desc": "d_k=64; 64k-token stream; alpha chosen on 8 dev streams; 5 seeds",
                     "d_k": 64, "tokens": 65536, "seeds": _SEEDS_FULL, "pool": 16, "p_overwrite": 0.25,
                     "alphas": [1e-4, 1e-3, 1e-2, 1e-1], "trials": 8, "alpha_selection": "dev"},
        },
        test="claims/test_gating.py",
        kind="paper",
        registered="2026-11-25",
        notes="Stream: each step re-binds one of `pool` keys to a fresh value with probability "
        "p_overwrite, else writes a fresh random distractor pair; at the end every pool key is "
        "queried for its latest value. Constant (untrained) alpha; the measured difference is "
        "recall at the alpha of the grid chosen on dev streams (the same stream at the dev seeds "
        "titans.probes.mixers.DEV_SEEDS, never used for evaluation; best mean recall, ties to the "
        "smaller alpha) minus alpha = 0, on the evaluation streams. Matrix memory, recall-default "
        "theta and eta.",
        amendments=(Amendment(
            date=_RIGOR_AMENDED,
            what="Protocol: the alpha of the grid is chosen on dev streams (the overwrite stream at the "
                 "dev seeds of titans.probes.mixers.DEV_SEEDS, foils from the same seeds) and then "
                 "evaluated on the evaluation streams; before, the best alpha of the grid was chosen "
                 "on the evaluation streams themselves. The old quantity is recorded beside and decides "
                 "nothing. Metric and threshold unchanged.",
            why="Choosing the best of a grid on the evaluation data biases the difference upward "
                "(selection on the measured noise); theta is already chosen on a dev task.",
            before="alpha = 0.1 chosen on the evaluation streams: 0.201, 95% CI [0.171, 0.230] (n=3), "
                   "recorded as supported.",
        ),),
    ),
    Claim(
        id="gating.momentum-helps",
        statement="ref §5.3: 'momentum + forgetting beat TTT'. seed: momentum (eta > 0) improves "
        "recall on a long stream compared with eta = 0 at equal theta, alpha.",
        source=f"{_PAPER}, §3.1 eq. 9-10; §5.3",
        metric="recall accuracy with momentum minus without (fraction points), mean over seeds",
        direction=">",
        threshold=0.0,
        scales={
            "ci": {"desc": "d_k=32; 4k-token stream; 3 seeds", "d_k": 32, "tokens": 4096,
                   "seeds": _SEEDS_CI, "pool": 16, "p_overwrite": 0.25, "trials": 8},
            "full": {"desc": "d_k=64; 64k-token stream; 5 seeds", "d_k": 64, "tokens": 65536,
                     "seeds": _SEEDS_FULL, "pool": 16, "p_overwrite": 0.25, "trials": 8},
        },
        test="claims/test_gating.py",
        kind="paper",
        registered="2026-11-25",
    ),
    # ---------------------------------------------------------------- trained comparisons
    Claim(
        id="trained.surprise-writes",
        statement="ref §3.1 (eq. 8-10): the memory learns by surprise, 'an event that violates the "
        "expectations (being surprising) is more memorable'; the momentary surprise is the gradient "
        "of the associative loss, scaled by the data-dependent theta_t. seed: in a trained Titans "
        "model the memory writes the needle (a novel KEY k v in a repeated filler) more strongly than "
        "a typical token of the haystack.",
        source=f"{_PAPER}, §3.1 eq. 8-10",
        metric="write strength theta_t ||grad l_t|| at the needle's three tokens over the median "
        "write strength of the sequence (mean over layers and heads; geometric mean over the "
        "sequences of a seed), mean over seeds",
        direction=">",
        threshold=1.0,
        scales={
            "ci": {"desc": "each Titans variant's learning-control runs (_CONTROL ci, 3 seeds): 16 "
                   "evaluation sequences at the longest evaluation length (256)", "examples": 16,
                   "seeds": _SEEDS_CI},
            "full": {"desc": "each Titans variant's learning-control runs (_CONTROL full, 5 seeds): 16 "
                     "evaluation sequences at the longest evaluation length (4096)", "examples": 16,
                     "seeds": _SEEDS_FULL},
        },
        test="claims/test_trained.py",
        kind="paper",
        registered="2026-12-02",
        notes="1.0 = the needle is written as strongly as a typical token. The write strength is "
        "titans.analysis.model_memory_utilization's (theta_t times the norm of token t's gradient of "
        "eq. 12 at the chunk-start weights). A variant that failed its learning control is "
        "inconclusive (did not learn). The same runs' heatmaps (seed 0) are a report figure.",
    ),
    Claim(
        id="trained.recall-beyond-reach",
        statement=_ABSTRACT_2M + " seed: trained Titans keep recall beyond the attention window, where "
        "sliding-window attention falls to chance (one row per variant).",
        source=f"{_PAPER}, Abstract; §5.4 (needle in a haystack, BABILong)",
        metric="far-pointer accuracy on the needles farther than the windowed attention can reach "
        "(n_layers x window tokens) at the longest evaluation length: Titans variant minus "
        "sliding-window Transformer++ (accuracy points, 0-100), mean over seeds of the per-seed "
        "difference",
        direction=">=",
        threshold=5.0,
        scales={
            "ci": {"desc": "the learning-control runs (_CONTROL ci, size micro, 3 seeds): needles at "
                   "distance > 2 x 64 = 128 of the L=256 evaluation", "seeds": _SEEDS_CI},
            "full": {"desc": "the learning-control runs (_CONTROL full, 5 seeds): needles at distance > "
                     "2 x 64 = 128 of the L=4096 evaluation", "seeds": _SEEDS_FULL},
        },
        test="claims/test_trained.py",
        kind="paper",
        registered="2026-12-02",
        notes="The reach of stacked sliding windows is n_layers x window: a 2-layer SWA still "
        "recalls needles between one and two windows away, so 'beyond the window' is measured beyond "
        "that reach. 5 points = the seed's bar of failure.benchmark-sensitivity, not chosen on data. "
        "Titans minus RetNet and minus full Transformer++ on the same needles are recorded beside. "
        "Disclosure: registered after one exploratory run of the amended control protocol (seeds 0-2, "
        "this harness's machine) whose accuracy-by-distance curves were seen: on needles in (128, 256] "
        "at L=256, roughly LMM 51%, MAC 53%, MAG, MAL, SWA and RetNet about 5%, Transformer++ 98% "
        "(means over seeds, wide seed bands for LMM and MAC).",
    ),
    Claim(
        id="trained.titans-vs-transformer-moderate",
        statement="seed: a small trained Titans model is within a few points (defined: 5 accuracy "
        "points) of Transformer++ at moderate length. Paper: Titans 'more effective than "
        "Transformers' (Abstract; Table 1).",
        source=f"{_PAPER}, Abstract; §5.2 Table 1",
        metric="Titans accuracy - Transformer++ accuracy at moderate length (accuracy points, 0-100)",
        direction=">=",
        threshold=-5.0,
        scales=_CONTROL,
        test="claims/test_trained.py",
        kind="paper",
        registered="2026-11-25",
        notes="Equal parameter budget (ref baselines §3) and equal step budget (each run stops once it "
        "has learned, see trained.models-learn); one row per Titans "
        "variant; mean over seeds of the per-seed difference, verdict from its 95% CI. Moderate "
        "length = the training length.",
        amendments=(_TRAINED_AMENDMENT, _CONTROL_STEPS_AMENDMENT, _MICRO_GRID_AMENDMENT),
    ),
]

_ABLATIONS = [
    ("weight-decay", "w/o Weight Decay", "forgetting gate alpha fixed to 0"),
    ("momentum", "w/o Momentum", "eta fixed to 0"),
    ("convolution", "w/o Convolution", "no depthwise conv after q/k/v projections"),
    ("persistent-memory", "w/o Persistent Memory", "N_p = 0"),
    ("deep-memory", "Linear Memory", "L_M = 1 instead of 2"),
]
for _slug, _row, _how in _ABLATIONS:
    _ALL.append(
        Claim(
            id=f"trained.ablation-{_slug}",
            statement=f"ref §5.4 (Table 5, row '{_row}'): removing this component from the LMM "
            "hurts. seed: the Table 5 direction holds for a small trained LMM "
            f"({_how}).",
            source=f"{_PAPER}, §5.5 Table 5",
            metric="validation loss of the ablated LMM - full LMM (nats/token), mean over seeds",
            direction=">",
            threshold=0.0,
            scales={
                "ci": {"desc": "full scale only (the ablation grid does not fit the CI budget)",
                       "skip": True},
                "full": {**_CONTROL["full"], "stop_accuracy": None,
                         "desc": "tiny LMM, the learning-control protocol (full), every run trains all "
                                 "its steps"},
            },
            test="claims/test_trained.py",
            kind="paper",
            registered="2026-11-25",
            notes="Direction only; the paper's magnitudes come from 400M models (ref §5.4).",
            amendments=(_NO_STOPPING_AMENDMENT, _ABLATION_LR_AMENDMENT),
        )
    )

_ALL += [
    # ---------------------------------------------------------------- seed failure cases
    Claim(
        id="failure.drift-staleness",
        statement="seed (failure case: memory drift/staleness): after a key is re-written with a new "
        "value, the memory returns the latest value rather than a stale one. Passes if the failure "
        "is absent.",
        source="seed failure case; forgetting-MQAR protocol (ref baselines §5.1)",
        metric="accuracy of returning the latest value for overwritten keys (fraction)",
        direction=">=",
        threshold=0.9,
        scales={
            "ci": {"desc": "d_k=32; 16 keys each re-written 1-3 times; 8 filler writes after "
                   "every binding, 64 at the end; 8 trials x 3 seeds", "d_k": 32,
                   "keys": 16, "seeds": _SEEDS_CI, "rewrites": [1, 3], "gap": 8, "tail": 64,
                   "trials": 8, "depths": [1, 2]},
            "full": {"desc": "d_k=64; 48 keys; 16 trials x 5 seeds", "d_k": 64, "keys": 48,
                     "seeds": _SEEDS_FULL, "rewrites": [1, 3], "gap": 8, "tail": 64,
                     "trials": 16, "depths": [1, 2]},
        },
        test="claims/test_drift.py",
        kind="failure-case",
        registered="2026-11-25",
    ),
    Claim(
        id="failure.interference",
        statement="seed (failure case: interference between contextual and persistent memory): "
        "adding persistent-memory tokens does not degrade in-context recall. Passes if the failure "
        "is absent.",
        source=f"seed failure case; {_PAPER} §3.3 (persistent memory)",
        metric="recall with persistent memory - recall without (fraction points); min over the "
        "mixers (memory L_M=1, L_M=2, SWA with persistent prefix, MAC-style hybrid) and N_p > 0",
        direction=">=",
        threshold=-0.05,
        scales={
            "ci": {"desc": "N_p in {0, 4, 16}; needle + 8 distractor pairs over filler, L=2048, "
                   "window 256; 16 trials x 3 seeds", "n_persistent": [0, 4, 16],
                   "seeds": _SEEDS_CI, "d_k": 32, "seq_len": 2048, "n_distractors": 8,
                   "window": 256, "trials": 16},
            "full": {"desc": "N_p in {0, 4, 16, 64}; L=8192; 32 trials x 5 seeds",
                     "n_persistent": [0, 4, 16, 64], "seeds": _SEEDS_FULL, "d_k": 32,
                     "seq_len": 8192, "n_distractors": 8, "window": 512, "trials": 32},
        },
        notes="Mixer level (titans/probes/mixers.py): N_p fixed random persistent pairs are written to the "
        "memory before the context (as MAG/LMM feed [p || x] to the memory) and are always visible "
        "to the attention (n_prefix). Recall vs number of distractors and forgetting vs age are "
        "recorded as curves in the same test.",
        test="claims/test_interference.py",
        kind="failure-case",
        registered="2026-11-25",
    ),
    Claim(
        id="failure.capacity-too-small",
        statement="seed (failure case: capacity mismatch, too small): a memory too small for the "
        "number of stored pairs loses detail. Passes if the failure is observed (a physical limit, "
        "cf. capacity.matrix-dk).",
        source="seed failure case; ATLAS Prop. 1 (ref §7)",
        metric="recall accuracy (fraction) of a matrix memory holding 4 d_k pairs",
        direction="<=",
        threshold=0.5,
        scales={
            "ci": {"desc": "d_k=32, 128 pairs; 16 passes, best theta; 3 seeds", "d_k": 32,
                   "pairs": 128, "seeds": _SEEDS_CI, "passes": 16,
                   "thetas": [0.003, 0.01, 0.03, 0.1, 0.3]},
            "full": {"desc": "d_k=64, 256 pairs; 5 seeds", "d_k": 64, "pairs": 256,
                     "seeds": _SEEDS_FULL, "passes": 64,
                     "thetas": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]},
        },
        test="claims/test_capacity.py",
        kind="failure-case",
        registered="2026-11-25",
    ),
    Claim(
        id="failure.capacity-too-large",
        statement="seed (failure case: capacity mismatch, too large): a memory much larger than "
        "needed erodes the gains. Passes if the failure is absent: widening the memory 4x beyond "
        "the task's need costs at most 5 recall points.",
        source="seed failure case",
        metric="recall with 4x memory width - recall at the needed width (fraction points)",
        direction=">=",
        threshold=-0.05,
        scales={
            "ci": {"desc": "widths d_k, 4 d_k with d_k=32; 3 seeds", "d_k": 32, "widen": 4,
                   "seeds": _SEEDS_CI, "depth": 2, "pairs": 32, "passes": 16,
                   "thetas": [0.003, 0.01, 0.03, 0.1, 0.3]},
            "full": {"desc": "widths d_k .. 8 d_k with d_k=64; 5 seeds", "d_k": 64, "widen": 8,
                     "seeds": _SEEDS_FULL, "depth": 2, "pairs": 64, "passes": 64,
                     "thetas": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]},
        },
        test="claims/test_capacity.py",
        kind="failure-case",
        registered="2026-11-25",
        notes="Same inner learning rate schedule across widths (no per-width tuning). Width = "
        "hidden width of an L_M=2 memory; the task needs `pairs` = d_k pairs; theta = the best "
        "grid value for width d_k, used unchanged for the wider memory.",
    ),
    Claim(
        id="failure.training-instability",
        statement="seed (failure case: training instability): outer-loop training of Titans stays "
        "finite and free of loss spikes; writing to memory during training 'can cause exploding "
        "activations if not normalized' (lucidrains issues report NaN/divergence, ref §6.1). Passes "
        "if the failure is absent.",
        source="seed failure case; lucidrains/titans-pytorch #22, #29, #53 (ref §6.1)",
        metric="fraction of runs whose training loss becomes non-finite or exceeds 2x its running "
        "minimum after warm-up",
        direction="<=",
        threshold=0.0,
        scales={
            "ci": {"desc": "tiny MAC and LMM on the learning-control task (far pointer L=64), 100 "
                   "steps, lr {1e-3, 3e-3}, 3 seeds; two rows: the paper-literal memory "
                   "(MemoryConfig.paper(), theta max {0.02, 1.0}) and the stabilized default memory "
                   "(theta max 0.1)",
                   "steps": 100, "seeds": _SEEDS_CI, "lrs": [1e-3, 3e-3], "models": ["lmm", "mac"],
                   "size": "tiny", "literal_theta_max": [0.02, 1.0], "stabilized_theta_max": [0.1]},
            "full": {"desc": "1000 steps, memory depth 4, L=256, lr {3e-4, 1e-3, 3e-3}; 5 seeds",
                     "steps": 1000, "seeds": _SEEDS_FULL, "lrs": [3e-4, 1e-3, 3e-3], "models": ["lmm", "mac"],
                     "size": "tiny",
                     "literal_theta_max": [0.02, 0.1, 1.0], "stabilized_theta_max": [0.1, 1.0],
                     "memory_depth": 4, "length": 256},
        },
        test="claims/test_trained.py",
        kind="failure-case",
        registered="2026-11-25",
        notes="Both rows use the learning-control task (_CONTROL) with 'steps' steps. The literal row "
        "shows where the failure is present; the stabilized row whether the stabilizers remove it.",
        amendments=(Amendment(
            date=_AMENDED,
            what="Two rows instead of one: the paper-literal memory over a theta x lr grid, and the "
                 "stabilized default memory over the lr grid; 100 steps instead of 200 (CI budget); lr grid "
                 "{1e-3, 3e-3} instead of 3e-3 alone.",
            why="The memory gained stabilizers (normalized values and outputs, bounded momentum); the "
                "seed asks where training diverges without them and whether it does with them.",
            before="theta max 1.0, lr 3e-3, 200 steps: all 6 runs (tiny LMM and MAC, 3 seeds) diverged "
                   "(recorded as the failure present).",
        ), Amendment(
            date="2026-12-02",
            what="The model size is stated in the claim ('size': tiny, as its description always said) "
                 "instead of taken from the learning-control protocol, whose CI models moved to size "
                 "micro; nothing this claim runs at CI scale changes. At full scale the depth-4 memory "
                 "exceeds the tiny parameter budget (the models could not be built), so those models keep "
                 "the default model's SwiGLU width and are not matched in parameters (the claim is about "
                 "stability, not a comparison).",
            why="The claim measures the tiny models it registered; the control's move to micro (for its "
                "lr grid) must not change it silently.",
            before="Tiny models (from the control protocol): paper-literal 13 of 24 runs unstable (not "
                   "reproduced: the failure is present), stabilized 0 of 12 (supported).",
        )),
    ),
    Claim(
        id="failure.benchmark-sensitivity",
        statement="seed (failure case: benchmark sensitivity): Titans' advantage over attention "
        "vanishes at moderate length (inside the attention window) and appears only beyond it. "
        "Passes if the advantage persists beyond the window (>= 5 accuracy points).",
        source="seed failure case; Titans Revisited (arXiv 2510.09551, ref §7)",
        metric="Titans accuracy - Transformer++ (windowed) accuracy at 4x the window (accuracy "
        "points, 0-100)",
        direction=">=",
        threshold=5.0,
        scales=_CONTROL,
        test="claims/test_trained.py",
        kind="failure-case",
        registered="2026-11-25",
        notes="One row per Titans variant; mean over seeds of the per-seed difference, verdict from "
        "its 95% CI. The advantage at every length is recorded as a curve; the moderate-length gap "
        "is trained.titans-vs-transformer-moderate.",
        amendments=(_TRAINED_AMENDMENT, _CONTROL_STEPS_AMENDMENT, _MICRO_GRID_AMENDMENT),
    ),
    # ---------------------------------------------------------------- reviewer prompts
    Claim(
        id="reviewer.long-horizon-drift",
        statement="seed (reviewer: drift over very long horizons): a pair written at the start is "
        "still recalled after a very long stream of unrelated tokens.",
        source="reviewer prompt",
        metric="recall after H filler tokens / recall right after writing (ratio)",
        direction=">=",
        threshold=0.8,
        scales={
            "ci": {"desc": "H = 64k; alpha 1e-4 (sweep 0 .. 1e-3 alongside); 4 trials x 3 seeds",
                   "horizon": 65_536, "seeds": _SEEDS_CI, "alpha": 1e-4,
                   "alphas": [0.0, 1e-6, 1e-5, 1e-4, 1e-3], "trials": 4, "d_k": 32},
            "full": {"desc": "H = 1M; 3 seeds", "horizon": 1_048_576, "seeds": [0, 1, 2],
                     "alpha": 1e-4, "alphas": [0.0, 1e-6, 1e-5, 1e-4, 1e-3], "trials": 8,
                     "d_k": 32},
        },
        test="claims/test_drift.py",
        kind="reviewer",
        registered="2026-11-25",
        notes="With a fixed small forgetting rate: alpha = 1e-4, the rate of the ref §6.1 "
        "measurement of titans-pytorch. Untrained gates, so no learned alpha: alpha = 0 and the "
        "sweep are reported alongside. Matrix memory, default gates, filler haystack; the pair "
        "is written at step 256; 'right after writing' = 64 steps later.",
    ),
    Claim(
        id="reviewer.memory-size-refresh",
        statement="seed (reviewer: sensitivity to memory size and refresh policy): recall is not "
        "fragile in memory width, forgetting rate and chunk (refresh) size.",
        source="reviewer prompt; ref §4 (unspecified knobs)",
        metric="max - min recall over the grid of widths x alpha x chunk sizes, excluding settings "
        "below the task's capacity need (fraction points)",
        direction="<=",
        threshold=0.2,
        scales={
            "ci": {"desc": "width {32, 64} x alpha {1e-3, 1e-2} x chunk {16, 64}; 3 seeds",
                   "widths": [32, 64], "alphas": [1e-3, 1e-2], "chunks": [16, 64], "seeds": _SEEDS_CI,
                   "task": {"n_pairs": 16, "n_rebinds": 8, "gap": 64, "tail": 64,
                            "haystack": "filler"}, "trials": 8},
            "full": {"desc": "width {32, 64, 128} x alpha {1e-4 .. 1e-1} x chunk {1, 16, 64, 256}; 5 seeds",
                     "widths": [32, 64, 128], "alphas": [1e-4, 1e-3, 1e-2, 1e-1],
                     "chunks": [1, 16, 64, 256], "seeds": _SEEDS_FULL,
                     "task": {"n_pairs": 16, "n_rebinds": 8, "gap": 64, "tail": 64,
                              "haystack": "filler"}, "trials": 16},
        },
        test="claims/test_gating.py",
        kind="reviewer",
        registered="2026-11-25",
        notes="Record the whole grid as a curve/table. Task: kv_stream_rebinding (16 pairs, 8 "
        "rebound, filler gaps), recall of the latest values; width = d_k = d_v of the matrix "
        "memory (16 pairs + 4 filler keys fit both widths); theta, eta as the recall default.",
        amendments=(_seeds_amendment(
            [0, 1], [0, 1, 2], _SEEDS_CI, _SEEDS_FULL,
            "2 seeds: max - min 0.742, 95% CI [0.444, 1.040] (n=2), recorded as not reproduced "
            "(strict xfail)."),),
    ),
    Claim(
        id="reviewer.architecture-vs-schedule",
        statement="seed (reviewer: are gains architecture-specific or training-schedule-dependent?): "
        "Titans' advantage keeps its sign across training schedules.",
        source="reviewer prompt",
        metric="fraction of schedules (lr x steps grid) in which Titans >= Transformer++",
        direction=">=",
        threshold=0.75,
        scales={
            "ci": {"desc": "full scale only (a schedule grid does not fit the CI budget)", "skip": True},
            "full": {**_CONTROL["full"], "stop_accuracy": None,
                     "desc": "the learning-control protocol (full) under schedules lr {1e-3, 3e-3} x steps "
                     "{1000, 2000}, every run trains all its steps; 5 seeds",
                     "schedules": [[1e-3, 1000], [1e-3, 2000], [3e-3, 1000], [3e-3, 2000]]},
        },
        test="claims/test_trained.py",
        kind="reviewer",
        registered="2026-11-25",
        amendments=(_NO_STOPPING_AMENDMENT,),
    ),
    # ---------------------------------------------------------------- paper tables (data checks)
    Claim(
        id="table1.avg-consistent",
        statement="ref §5.2: Table 1's Avg column is the mean of the 8 accuracy columns (LMB acc, "
        "PIQA, Hella, Wino, ARC-e, ARC-c, SIQA, BoolQ).",
        source=f"{_PAPER}, §5.2 Table 1",
        metric="|printed Avg - mean of the 8 accuracy cells| (points)",
        direction="<=",
        threshold=0.01,
        scales=_STATIC,
        test="claims/test_paper_tables.py::test_table1_avg_consistent",
        kind="table",
        registered="2026-11-25",
        notes="±0.01 because the paper rounds inconsistently (ref §5.2). Known mismatches: TTT-760M, "
        "GDN-H2-400M, LMM-400M (xfail strict).",
    ),
    Claim(
        id="table1.hybrids-beat-hybrid-baselines",
        statement='ref §5.2 (paper prose): "all three hybrids outperform Samba and GDN-H2" '
        "(Titans MAC, MAG, MAL vs the hybrid baselines, on Avg).",
        source=f"{_PAPER}, §5.2 Table 1",
        metric="min Avg over Titans MAC/MAG/MAL - max Avg over Samba, GDN-H2 (points)",
        direction=">",
        threshold=0.0,
        scales=_STATIC,
        test="claims/test_paper_tables.py::test_table1_hybrids_beat_hybrid_baselines",
        kind="table",
        registered="2026-11-25",
        notes="Only 400M and 760M have hybrid-baseline Avgs in the reference. At 760M MAL (50.97) is "
        "below Samba (51.08) and GDN-H2 (51.49).",
    ),
    Claim(
        id="table1.lmm-best-nonhybrid",
        statement="ref §5.2: Titans (LMM) is the best non-hybrid model at every size on Wiki ppl and "
        "on Avg.",
        source=f"{_PAPER}, §5.2 Table 1",
        metric="margin of LMM over the best other non-hybrid row (ppl: other - LMM; Avg: LMM - other)",
        direction=">",
        threshold=0.0,
        scales=_STATIC,
        test="claims/test_paper_tables.py::test_table1_lmm_best_nonhybrid",
        kind="table",
        registered="2026-11-25",
        notes="Checked against the non-hybrid rows in the reference subset: Transformer++, RetNet "
        "(and TTT-760M Avg, recomputed).",
    ),
    Claim(
        id="table1.titans-beat-transformer-retnet",
        statement='paper Abstract: "Titans are more effective than Transformers and recent modern '
        'linear recurrent models." Checked as: every Titans variant beats Transformer++ and RetNet on '
        "Avg at every scale.",
        source=f"{_PAPER}, Abstract; §5.2 Table 1",
        metric="min Avg over Titans variants - max Avg over Transformer++, RetNet (points)",
        direction=">",
        threshold=0.0,
        scales=_STATIC,
        test="claims/test_paper_tables.py::test_table1_titans_beat_transformer_retnet",
        kind="table",
        registered="2026-11-25",
    ),
    Claim(
        id="table2.mac-sniah-16k",
        statement="ref §5.3 (Table 2): Titans-MAC keeps S-NIAH accuracy >= 95% at 16K on passkey, "
        "number and word (the anchor for recall.far-pointer-titans).",
        source=f"{_PAPER}, §5.3 Table 2",
        metric="min over PK/N/W of MAC's S-NIAH accuracy at 16K (%)",
        direction=">=",
        threshold=95.0,
        scales=_STATIC,
        test="claims/test_paper_tables.py::test_table2_mac_sniah_16k",
        kind="table",
        registered="2026-11-25",
    ),
    Claim(
        id="table2.lmm-beats-recurrent",
        statement="ref §5.3: the paper explains Table 2 by 'momentum + forgetting beat TTT; deep "
        "memory beats Mamba2; forgetting beats DeltaNet'. Checked as: Titans (LMM) has a higher "
        "mean S-NIAH accuracy than each.",
        source=f"{_PAPER}, §5.3 Table 2",
        metric="mean of LMM's 12 S-NIAH cells - mean of the baseline's (points)",
        direction=">",
        threshold=0.0,
        scales=_STATIC,
        test="claims/test_paper_tables.py::test_table2_lmm_beats_recurrent",
        kind="table",
        registered="2026-11-25",
        notes="Cell by cell it does not hold: TTT and DeltaNet beat LMM on PK4K, DeltaNet on PK8K.",
    ),
    Claim(
        id="table5.decoded",
        statement="ref §5.4: Table 5's rows LMM, +Attn (MAC/MAG/MAL) are 400M models: LM ppl = "
        "mean(Wiki, LMB ppl) of Table 1 at 400M, Reasoning = Table 1 400M Avg, Long-context = mean "
        "of the 12 Table 2 S-NIAH cells (although the text says BABILong).",
        source=f"{_PAPER}, §5.5 Table 5 vs Tables 1, 2",
        metric="|Table 5 cell - value derived from Tables 1/2| (points)",
        direction="<=",
        threshold=0.01,
        scales=_STATIC,
        test="claims/test_paper_tables.py::test_table5_decoded",
        kind="table",
        registered="2026-11-25",
    ),
    Claim(
        id="table5.ablation-ordering",
        statement="ref §5.4: the paper's ranking of LMM components by the cost of removing them: "
        "weight decay > momentum > convolution > persistent memory.",
        source=f"{_PAPER}, §5.5 Table 5",
        metric="smallest gap between consecutive costs in the ranking (cost = worsening vs LMM on "
        "the column; points)",
        direction=">",
        threshold=0.0,
        scales=_STATIC,
        test="claims/test_paper_tables.py::test_table5_ablation_ordering",
        kind="table",
        registered="2026-11-25",
    ),
    Claim(
        id="table5.deep-memory-helps",
        statement="ref §5.4: 'deep memory also helps' (Table 5: Linear Memory is worse than the "
        "deep LMM).",
        source=f"{_PAPER}, §5.5 Table 5",
        metric="cost of Linear Memory vs LMM on the column (points; positive = worse)",
        direction=">",
        threshold=0.0,
        scales=_STATIC,
        test="claims/test_paper_tables.py::test_table5_deep_memory_helps",
        kind="table",
        registered="2026-11-25",
    ),
]


# ---------------------------------------------------------------- token-mixer claims
_ALL += [
    Claim(
        id="recall.retnet-fades",
        statement="seed: RetNet retention fades beyond the horizon of its slowest decay: it "
        "recalls a pair written inside the horizon and falls to chance beyond it (gamma_h = "
        "1 - 2^(-5-h), 8 heads, slowest horizon 1/(1 - gamma_7) = 4096 tokens).",
        source="RetNet multi-scale decay (ref baselines §1.2); contrast case for "
        "recall.far-pointer-titans",
        metric="recall at the shortest registered distance minus the max over distances >= 4 x "
        "4096 of (recall - chance) (fraction points); filler haystack, the rows of "
        "recall.far-pointer-titans",
        direction=">=",
        threshold=0.85,
        scales={
            "ci": {"desc": "distances 64 .. 16k (beyond: 16k); 8 trials x 3 seeds",
                   "distances": [64, 256, 1024, 4096, 16384], "horizon": 4096,
                   "seeds": _SEEDS_CI},
            "full": {"desc": "distances 64 .. 256k (beyond: 64k, 256k); 16 trials x 5 seeds",
                     "distances": [64, 1024, 16384, 65536, 262144], "horizon": 4096,
                     "seeds": _SEEDS_FULL},
        },
        test="claims/test_recall.py",
        kind="paper",
        registered="2026-11-25",
        notes="0.85 = the 0.9 recall bar of recall.far-pointer-titans minus the 0.05 chance "
        "margin of recall.swa-beyond-window: 'fades' requires recall first. Identity projections, "
        "heads decoded by the mean cosine (titans/probes/mixers.py). Disclosure: registered after an "
        "exploratory 8k run had shown RetNet at 0 recall on this haystack; the threshold derives "
        "from the two registered bars, not from that run.",
    ),
    Claim(
        id="recall.random-haystack-capacity",
        statement="ref §7 (ATLAS Prop. 1): a matrix memory stores O(d_k) pairs. seed: on the "
        "random-distractor haystack (a fresh pair written every step) the Titans matrix memory "
        "recalls the needle up to about d_k writes later, not far beyond.",
        source="ATLAS (arXiv 2505.23735) Prop. 1; seed (issue 5: where the memory's capacity ends)",
        metric="largest distance (writes after the needle) at which recall >= 0.9, divided by d_k "
        "(matrix memory, recall-default gates)",
        direction="in",
        threshold=(0.5, 2.0),
        scales={
            "ci": {"desc": "d_k=32; needle 4096 writes before the end of an 8k stream; distances "
                   "1..128 and 192..4096; 8 trials x 3 seeds", "d_k": 32, "length": 8192,
                   "max_distance": 4096, "trials": 8, "seeds": _SEEDS_CI},
            "full": {"desc": "d_k=64; 32k stream; 16 trials x 5 seeds", "d_k": 64,
                     "length": 32768, "max_distance": 16384, "trials": 16,
                     "seeds": _SEEDS_FULL},
        },
        test="claims/test_recall.py",
        kind="paper",
        registered="2026-11-25",
        notes="Interval as capacity.matrix-dk. The deep memory and the other mixers are recorded "
        "alongside (curves). Disclosure: an exploratory run (theta 0.05, before the dev-task "
        "theta choice) gave 16/32 = 0.5 before this entry was written.",
    ),
    Claim(
        id="interference.persistent-untouched",
        statement="ref §1 / §3.3: persistent memory is learnable, input-independent and 'fixed at "
        "test time'. seed: test-time memory writes never change the persistent tokens.",
        source=f"{_PAPER}, §3.3 eq. 19",
        metric="every persistent parameter of the tiny LMM, MAC, MAG and MAL is bit-identical "
        "after a prefill + decode that updated the memory state (bool)",
        direction="==",
        threshold=True,
        scales={
            "ci": {"desc": "size tiny; prefill 96 tokens + 8 decode steps; seed 0",
                   "models": ["lmm", "mac", "mag", "mal"], "tokens": 96, "decode": 8},
            "full": {"desc": "same as ci", "models": ["lmm", "mac", "mag", "mal"],
                     "tokens": 96, "decode": 8},
        },
        test="claims/test_interference.py",
        kind="sanity",
        registered="2026-11-25",
        notes="The test also requires that the memory state did change (else 'untouched' is "
        "vacuous).",
        amendments=(_MEMORY_DEFAULTS_AMENDMENT, _sanity_amendment(
            "Test-time writes update the memory state in the cache, never model parameters: a "
            "changed persistent token would mean a bug, not a finding about the paper.")),
    ),
    Claim(
        id="drift.surprise-refresh",
        statement="ref §3.1: surprising tokens are memorized more strongly (momentary surprise = "
        "the gradient of the associative loss). seed: writes whose rate rises with the momentary "
        "surprise ||M(k_t) - v_t|| pick up a rebinding at its first presentations and the stale "
        "value does not come back.",
        source=f"{_PAPER}, §3.1 eq. 8-10",
        metric="fraction of trials in which recall of the rebound key returns the new value within "
        "2 presentation periods after the switch and never returns the old value afterwards "
        "(surprise-gated matrix memory)",
        direction=">=",
        threshold=0.9,
        scales={
            "ci": {"desc": "d_k=32; binding shown every 4 tokens over filler, 16 times old, 32 "
                   "times new; periodic refresh P in {4, 16, 64}; 16 trials x 3 seeds",
                   "d_k": 32, "period": 4, "before": 16, "after": 32, "refresh": [4, 16, 64],
                   "trials": 16, "seeds": _SEEDS_CI},
            "full": {"desc": "d_k=64; 32 trials x 5 seeds", "d_k": 64, "period": 4,
                     "before": 16, "after": 32, "refresh": [4, 16, 64], "trials": 32,
                     "seeds": _SEEDS_FULL},
        },
        test="claims/test_drift.py",
        kind="paper",
        registered="2026-11-25",
        notes="theta_t = theta min(1, (s_t / s_ref)^2) with s_ref = 1 (the expected ||v||: the "
        "error on an unknown pair). Constant-rate writes and periodic refresh (theta > 0 only at "
        "t = 0 mod P) are recorded alongside: latency (tokens until the new value is recalled) and "
        "stale-return rate. 0.9 = the registry's recall bar.",
    ),
    Claim(
        id="stability.divergence-detected",
        statement="seed (failure case: divergence): without key normalization the memory "
        "diverges for large theta; the divergence is detected and reported as a clear error naming the position "
        "(titans.diagnostics.MemoryDivergedError) instead of a silent NaN or a crash.",
        source=f"{_PAPER}, §4.4 (l2-normalized keys); lucidrains issues #22/#29/#53 (ref §6.1)",
        metric="fraction of runs over the theta grid (unnormalized Gaussian keys) that either stay "
        "finite and bounded or raise MemoryDivergedError with the position; at least one run must "
        "diverge",
        direction=">=",
        threshold=1.0,
        scales={
            "ci": {"desc": "d_k=32, 8k tokens, chunk 16, theta 1e-4 .. 0.1; 3 seeds", "d_k": 32,
                   "tokens": 8192, "chunk": 16,
                   "thetas": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1], "max_norm": 1e4,
                   "seeds": _SEEDS_CI},
            "full": {"desc": "64k tokens; 5 seeds", "d_k": 32, "tokens": 65536, "chunk": 16,
                     "thetas": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1], "max_norm": 1e4,
                     "seeds": _SEEDS_FULL},
        },
        test="claims/test_stability.py",
        kind="failure-case",
        registered="2026-11-25",
        notes="The boundary theta* (smallest divergent theta) is recorded with the l2-normalized "
        "control at the same thetas.",
        amendments=(_seeds_amendment(
            [0, 1], [0, 1, 2], _SEEDS_CI, _SEEDS_FULL,
            "2 seeds: fraction 1 +- 0 (n=2), 8 divergent runs detected, smallest divergent theta 0.003 "
            "in both seeds; recorded as supported."),),
    ),
]

# ---------------------------------------------------------------- learning controls
_ALL.append(
    Claim(
        id="trained.models-learn",
        statement="harness control: a model counts as trained only if it learns an in-window recall "
        "task. Each model (LMM, MAC, MAG, MAL, Transformer++, sliding-window Transformer++, RetNet) "
        "reaches >= 0.9 accuracy at the training length, over the seeds, with no run diverging. A "
        "model that fails its control makes every comparison it enters inconclusive ('did not "
        "learn'), never 'not reproduced': an untrained model cannot refute a claim about trained "
        "models.",
        source="harness protocol (seed: 'a model that has not learned cannot refute a claim about "
        "trained models'); zoology MQAR / MAD recall controls (ref baselines §5.1-5.2)",
        metric="far-pointer accuracy (fraction) at the training length on evaluation data, mean over "
        "seeds with its 95% interval; any diverged run fails the row",
        direction=">=",
        threshold=0.9,
        scales=_CONTROL,
        test="claims/test_trained.py",
        kind="control",
        registered="2026-12-02",
        amendments=(_CONTROL_STEPS_AMENDMENT, _MICRO_GRID_AMENDMENT),
        notes="One row per model. The learning curves (validation accuracy against step) are recorded "
        "per model and seed. 0.9 = the recall bar used throughout the registry. Disclosure: lr 1e-3 "
        "was chosen on exploratory seed-0 runs before registration: MAC and LMM did not learn within "
        "300 steps at 3e-3; RetNet learned at none of 1e-3, 3e-3, 1e-2 (nor in 600 steps at 1e-3).",
    )
)


def _build(claims: list[Claim]) -> dict[str, Claim]:
    out: dict[str, Claim] = {}
    for c in claims:
        if c.id in out:
            raise ValueError(f"duplicate claim id {c.id!r}")
        if not c.registered:
            raise ValueError(f"{c.id}: a registered claim needs its registration date (registered=)")
        out[c.id] = c
    return out


CLAIMS: dict[str, Claim] = _build(_ALL)


# ---------------------------------------------------------------- the lock
LOCK_PATH = Path(__file__).with_name("registry.lock.json")
LOCKED_FIELDS = ("metric", "direction", "threshold", "scales")
_RELOCK = "python -m claims.registry --lock"


def _plain(obj: Any) -> Any:
    """Plain JSON types (mappings, tuples) for hashing."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def lock_hash(claim: Claim) -> str:
    """sha256 of the canonical JSON of ``claim``'s metric, direction, threshold and scales."""
    fields = {name: _plain(getattr(claim, name)) for name in LOCKED_FIELDS}
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def lock_entries(claims: Mapping[str, Claim] | None = None) -> dict[str, dict[str, Any]]:
    """``{id: {"amendments": n, "sha256": hash}}`` for every claim, sorted by id."""
    claims = CLAIMS if claims is None else claims
    return {cid: {"amendments": len(c.amendments), "sha256": lock_hash(c)} for cid, c in sorted(claims.items())}


def render_lock(claims: Mapping[str, Claim] | None = None) -> str:
    """The lock file's text: one sorted line per claim (deterministic, diff-friendly)."""
    entries = lock_entries(claims)
    lines = ['{', f'  "fields": {json.dumps(list(LOCKED_FIELDS))},', '  "claims": {']
    for i, (cid, entry) in enumerate(entries.items()):
        comma = "," if i < len(entries) - 1 else ""
        lines.append(f"    {json.dumps(cid)}: {json.dumps(entry, sort_keys=True)}{comma}")
    lines += ["  }", "}", ""]
    return "\n".join(lines)


def read_lock(path: str | Path = LOCK_PATH) -> dict[str, dict[str, Any]]:
    """The locked entries of ``path`` (``{}`` when the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return {}
    doc = json.loads(path.read_text(encoding="utf-8"))
    if list(doc.get("fields", [])) != list(LOCKED_FIELDS):
        raise ValueError(f"{path}: locked fields {doc.get('fields')!r} are not {list(LOCKED_FIELDS)}; "
                         f"regenerate it: {_RELOCK}")
    return dict(doc.get("claims", {}))


def lock_problems(lock: Mapping[str, Mapping[str, Any]],
                  claims: Mapping[str, Claim] | None = None) -> tuple[list[str], list[str]]:
    """``(unamended, stale)``: claims whose locked fields changed without a new amendment, and
    every other difference between ``lock`` and the registry (fixed by re-locking)."""
    claims = CLAIMS if claims is None else claims
    current = lock_entries(claims)
    unamended, stale = [], []
    for cid, entry in current.items():
        old = lock.get(cid)
        if old is None:
            stale.append(f"{cid}: not in the lock (a new claim); regenerate the lock: {_RELOCK}")
            continue
        n_old, n_new = int(old.get("amendments", 0)), entry["amendments"]
        if n_new < n_old:
            unamended.append(f"{cid}: {n_old} amendments locked, {n_new} now; amendments are never "
                             "removed, restore them")
        elif old.get("sha256") != entry["sha256"]:
            if n_new == n_old:
                unamended.append(f"{cid}: its {', '.join(LOCKED_FIELDS)} changed after registration "
                                 f"without a new amendment; add an Amendment (date, what, why, before) "
                                 f"to the claim in claims/registry.py, then re-lock: {_RELOCK}")
            else:
                stale.append(f"{cid}: amended, its lock entry is out of date; regenerate the lock: {_RELOCK}")
        elif n_new != n_old:
            stale.append(f"{cid}: {n_new - n_old} new amendment(s) not in the lock; regenerate the lock: {_RELOCK}")
    for cid in sorted(set(lock) - set(current)):
        stale.append(f"{cid}: locked but no longer registered; regenerate the lock: {_RELOCK}")
    return unamended, stale


def write_lock(path: str | Path = LOCK_PATH, claims: Mapping[str, Claim] | None = None) -> Path:
    """Write the lock for ``claims`` to ``path``; a ``ValueError`` naming every claim that changed
    its locked fields without a new amendment (the lock never absorbs an unrecorded change)."""
    path = Path(path)
    unamended, _ = lock_problems(read_lock(path), claims)
    if unamended:
        raise ValueError(f"{path} not written:\n" + "\n".join(unamended))
    path.write_text(render_lock(claims), encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claims.registry",
                                     description="Check or rewrite the claims registry's lock file.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--lock", action="store_true", help="rewrite the lock file from the registry")
    action.add_argument("--check", action="store_true", help="list what is out of date (exit 1 if any)")
    parser.add_argument("--lock-file", default=str(LOCK_PATH), help=f"default: {LOCK_PATH}")
    args = parser.parse_args(argv)
    if args.lock:
        try:
            path = write_lock(args.lock_file)
        except ValueError as err:
            print(err, file=sys.stderr)
            return 1
        print(f"written: {path} ({len(CLAIMS)} claims)")
        return 0
    unamended, stale = lock_problems(read_lock(args.lock_file))
    for line in unamended + stale:
        print(line)
    return 1 if unamended or stale else 0


if __name__ == "__main__":
    sys.exit(main())
