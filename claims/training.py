"""The trained tier's experiments: typed training runs, executed in parallel worker processes and
cached for the session, so that every claim test that needs a run reuses the same one.

A ``TrainingRun`` is a frozen description of one configuration (model, options, task, schedule,
seed, evaluation). ``run_trainings(runs)`` returns one ``TrainingOutcome`` per run: it trains the
runs not yet cached, ``workers`` at a time (spawned processes, one BLAS thread each: the tiny
models' step is mostly single-threaded elementwise work, so processes scale where threads do
not). Verdicts live in the tests; this module only measures.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["TrainingOutcome", "TrainingRun", "default_workers", "run_trainings", "smoke_grid"]

# Validation data (model selection) and evaluation data (reported numbers) never share a seed.
VALIDATION_SEED_OFFSET = 10_000


@dataclass(frozen=True)
class TrainingRun:
    """One training configuration. Options are stored as sorted JSON so that runs hash.

    What the trained model is measured on besides accuracy: ``group_by`` (a task meta key such as
    ``"distance"``) also groups the evaluation accuracy by that key; ``cost_batch > 0`` times a
    forward pass of that many sequences at each evaluation length (tokens/s, peak memory);
    ``utilization_examples > 0`` records the memory utilization
    (:func:`titans.analysis.model_memory_utilization`) on that many evaluation sequences at the
    longest evaluation length (models with a neural memory only)."""

    model: str
    seed: int
    lr: float
    steps: int
    task: str
    seq_len: int
    task_options: str = "{}"
    model_options: str = "{}"
    size: str = "tiny"
    batch_size: int = 32
    warmup: int = 30
    eval_lengths: tuple = ()
    eval_examples: int = 256
    curve_every: int = 0
    stop_accuracy: float | None = None
    stop_patience: int = 2
    group_by: str = ""
    cost_batch: int = 0
    utilization_examples: int = 0

    def __post_init__(self):
        from titans import _checks

        for name in ("cost_batch", "utilization_examples"):
            _checks.nonnegative_int(name, getattr(self, name))

    @classmethod
    def make(cls, *, task_options: dict | None = None, model_options: dict | None = None, **fields) -> TrainingRun:
        return cls(task_options=json.dumps(task_options or {}, sort_keys=True),
                   model_options=json.dumps(model_options or {}, sort_keys=True), **fields)

    def config(self):
        from titans.train import TrainConfig

        return TrainConfig(
            model=self.model, size=self.size, model_options=json.loads(self.model_options), task=self.task,
            task_options=json.loads(self.task_options), seq_len=self.seq_len, batch_size=self.batch_size,
            steps=self.steps, lr=self.lr, warmup=min(self.warmup, self.steps // 2), seed=self.seed,
            log_every=10**9, curve_every=self.curve_every, eval_examples=self.eval_examples,
            stop_accuracy=self.stop_accuracy, stop_patience=self.stop_patience,
        )


@dataclass(frozen=True)
class TrainingOutcome:
    """What one run measured. ``accuracy`` maps each evaluation length to the exact-match accuracy
    on evaluation data (seed ``run.seed``); ``validation`` is the accuracy at the training length
    on validation data (seed ``run.seed + VALIDATION_SEED_OFFSET``), for model selection, and
    ``validation_loss`` the cross-entropy there; all are NaN for a diverged run. ``accuracy_by``
    maps each evaluation length to ``{group: (accuracy, count)}`` (with ``run.group_by``);
    ``cost`` maps each evaluation length to the forward pass's ``tokens_per_s`` and
    ``peak_bytes`` (with ``run.cost_batch``); ``utilization`` is the memory utilization with the
    evaluation sequences' ``marks`` (with ``run.utilization_examples``). ``curve`` is ``[(step,
    validation accuracy)]``; ``stopped_early``: the run met its stopping rule
    (``TrainingRun.stop_accuracy``) before its last step."""

    run: TrainingRun
    diverged: bool
    steps_done: int
    losses: tuple
    curve: tuple
    validation: float
    validation_loss: float = float("nan")
    accuracy: dict = field(default_factory=dict)
    accuracy_by: dict = field(default_factory=dict)
    cost: dict = field(default_factory=dict)
    utilization: dict | None = None
    tokens_per_s: float = float("nan")
    seconds: float = float("nan")
    parameters: int = 0

    @property
    def stopped_early(self) -> bool:
        return not self.diverged and self.steps_done < self.run.steps

    def accuracy_at(self, length: int) -> float:
        return self.accuracy.get(length, float("nan"))


def train_and_evaluate(run: TrainingRun) -> TrainingOutcome:
    """Train ``run`` and evaluate it (in the calling process)."""
    import titans  # BLAS before MLX in a fresh worker

    titans.configure_allocator()
    from titans.train import evaluate, train

    config = run.config()
    start = time.perf_counter()
    model, result = train(config, log=None)
    nan = float("nan")
    validation, validation_loss, accuracy, accuracy_by, cost, utilization = nan, nan, {}, {}, {}, None
    if not result.diverged:
        options = json.loads(run.task_options)
        validated = evaluate(model, run.task, seq_len=run.seq_len, n_examples=run.eval_examples,
                             seed=run.seed + VALIDATION_SEED_OFFSET, **options)
        validation, validation_loss = validated["accuracy"], validated["loss"]
        for length in run.eval_lengths:
            measured = evaluate(model, run.task, seq_len=length, n_examples=run.eval_examples, seed=run.seed,
                                by=run.group_by or None, **options)
            accuracy[length] = measured["accuracy"]
            if run.group_by:
                accuracy_by[length] = measured["by"]
        if run.cost_batch:
            cost = {length: forward_cost(model, length, run.cost_batch) for length in run.eval_lengths}
        if run.utilization_examples and run.eval_lengths:
            utilization = _utilization(model, run, max(run.eval_lengths), options)
    return TrainingOutcome(
        run=run, diverged=result.diverged, steps_done=len(result.losses), losses=tuple(result.losses),
        curve=tuple(result.curve), validation=validation, validation_loss=validation_loss, accuracy=accuracy,
        accuracy_by=accuracy_by, cost=cost, utilization=utilization, tokens_per_s=result.tokens_per_s,
        seconds=time.perf_counter() - start, parameters=model.num_parameters(embeddings=False),
    )


def forward_cost(model, seq_len: int, batch_size: int, rounds: int = 3) -> dict:
    """``{"tokens_per_s", "peak_bytes"}`` of ``model``'s forward pass on ``batch_size`` random
    sequences of ``seq_len`` tokens: the fastest of ``rounds`` timed calls after one untimed call,
    and MLX's peak memory over the timed calls above what was resident before them."""
    import mlx.core as mx
    import numpy as np

    from titans import _checks

    for name, value in (("seq_len", seq_len), ("batch_size", batch_size), ("rounds", rounds)):
        _checks.positive_int(name, value)
    tokens = mx.array(np.random.default_rng(0).integers(0, model.args.vocab_size, (batch_size, seq_len)),
                      dtype=mx.int32)
    mx.eval(model(tokens))
    resident = mx.get_active_memory()
    mx.reset_peak_memory()
    best = float("inf")
    for _ in range(rounds):
        begin = time.perf_counter()
        mx.eval(model(tokens))
        best = min(best, time.perf_counter() - begin)
    return {"tokens_per_s": batch_size * seq_len / best, "peak_bytes": int(mx.get_peak_memory() - resident)}


def _utilization(model, run: TrainingRun, length: int, options: dict) -> dict | None:
    """Memory utilization on ``run.utilization_examples`` evaluation sequences of ``length`` tokens
    (``None`` for a model without a neural memory); ``marks`` are the first sequence's needle and
    query positions, ``needle_pos`` those of every sequence."""
    from titans.analysis import model_memory_utilization
    from titans.layers import NeuralMemory
    from titans.train import _data_seed, task_batch

    if not any(isinstance(getattr(block, "memory", None), NeuralMemory) for block in model.layers):
        return None
    batch = task_batch(run.task, run.utilization_examples, length, _data_seed(run.seed, 0, "eval"), **options)
    marks = {key: int(batch.meta[f"{key}_pos"][0]) for key in ("needle", "query") if f"{key}_pos" in batch.meta}
    result = model_memory_utilization(model, batch.inputs, marks=marks)
    if "needle_pos" in batch.meta:
        result["needle_pos"] = [int(p) for p in batch.meta["needle_pos"]]
    return result


def smoke_grid(protocol: Mapping) -> dict:
    """``protocol`` (a registry scale of a trained claim) cut to a smoke grid: the same models, lr
    grid, options, lengths and evaluation lengths, but 2 steps per run (a schedule's distinct step
    counts become 2, 4, ...), batch 4, 2 evaluation examples (1 where a claim measures ``examples``
    sequences), a learning-curve point every step, and its first two seeds. It checks that the
    protocol runs end to end; its numbers mean nothing."""
    if not isinstance(protocol, Mapping):
        raise TypeError(f"protocol must be a mapping, got {type(protocol).__name__}")
    p = dict(protocol)
    if "steps" in p:
        p["steps"] = 2
    if "batch_size" in p:
        p["batch_size"] = 4
    if "eval_examples" in p:
        p["eval_examples"] = 2
    if "examples" in p:
        p["examples"] = 1
    if p.get("curve_every"):
        p["curve_every"] = 1
    if "seeds" in p:
        if not isinstance(p["seeds"], (list, tuple)) or not p["seeds"]:
            raise ValueError(f"protocol['seeds'] must be a non-empty list, got {p['seeds']!r}")
        p["seeds"] = list(p["seeds"][:2])
    if "schedules" in p:
        if not all(isinstance(s, (list, tuple)) and len(s) == 2 for s in p["schedules"]):
            raise ValueError(f"protocol['schedules'] must be [lr, steps] pairs, got {p['schedules']!r}")
        steps = {s: 2 * (i + 1) for i, s in enumerate(sorted({s for _, s in p["schedules"]}))}
        p["schedules"] = [[lr, steps[s]] for lr, s in p["schedules"]]
    return p


def default_workers() -> int:
    """``TITANS_TRAIN_WORKERS`` if set, else one per CPU core on the CPU and 1 on an accelerator."""
    chosen = os.environ.get("TITANS_TRAIN_WORKERS", "").strip()
    if chosen:
        value = int(chosen)
        if value < 1:
            raise ValueError(f"TITANS_TRAIN_WORKERS must be >= 1, got {chosen!r}")
        return value
    import mlx.core as mx

    return (os.cpu_count() or 1) if mx.default_device() == mx.cpu else 1


_CACHE: dict[TrainingRun, TrainingOutcome] = {}


def run_trainings(runs, workers: int | None = None) -> list[TrainingOutcome]:
    """Outcomes of ``runs`` (in order), training those not cached in this session."""
    runs = list(runs)
    for run in runs:
        if not isinstance(run, TrainingRun):
            raise TypeError(f"runs must be TrainingRun instances, got {type(run).__name__}")
    todo = list(dict.fromkeys(r for r in runs if r not in _CACHE))
    workers = default_workers() if workers is None else workers
    if len(todo) == 1 or workers == 1:
        for run in todo:
            _CACHE[run] = train_and_evaluate(run)
    elif todo:
        saved = os.environ.get("OPENBLAS_NUM_THREADS")
        os.environ["OPENBLAS_NUM_THREADS"] = "1"  # read by each spawned worker when it loads BLAS
        try:
            with multiprocessing.get_context("spawn").Pool(min(workers, len(todo))) as pool:
                # longest first (Titans hybrids) so that the pool finishes together
                order = sorted(todo, key=lambda r: -r.steps * _relative_cost(r.model))
                for outcome in pool.imap_unordered(train_and_evaluate, order):
                    _CACHE[outcome.run] = outcome
        finally:
            if saved is None:
                os.environ.pop("OPENBLAS_NUM_THREADS", None)
            else:
                os.environ["OPENBLAS_NUM_THREADS"] = saved
    return [_CACHE[run] for run in runs]


def _relative_cost(model: str) -> float:
    """Rough relative step cost of the tiny models, used only to order the work queue."""
    return {"mac": 4.0, "mag": 3.0, "mal": 3.0, "lmm": 2.5}.get(model, 1.0)

