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
from dataclasses import dataclass, field

__all__ = ["TrainingOutcome", "TrainingRun", "default_workers", "run_trainings"]

# Validation data (model selection) and evaluation data (reported numbers) never share a seed.
VALIDATION_SEED_OFFSET = 10_000


@dataclass(frozen=True)
class TrainingRun:
    """One training configuration. Options are stored as sorted JSON so that runs hash."""

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
    on validation data (seed ``run.seed + VALIDATION_SEED_OFFSET``), for model selection; both are
    NaN for a diverged run. ``curve`` is ``[(step, validation accuracy)]``; ``stopped_early``: the
    run met its stopping rule (``TrainingRun.stop_accuracy``) before its last step."""

    run: TrainingRun
    diverged: bool
    steps_done: int
    losses: tuple
    curve: tuple
    validation: float
    accuracy: dict = field(default_factory=dict)
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
    validation, accuracy = nan, {}
    if not result.diverged:
        options = json.loads(run.task_options)
        validation = evaluate(model, run.task, seq_len=run.seq_len, n_examples=run.eval_examples,
                              seed=run.seed + VALIDATION_SEED_OFFSET, **options)["accuracy"]
        accuracy = {length: evaluate(model, run.task, seq_len=length, n_examples=run.eval_examples,
                                     seed=run.seed, **options)["accuracy"] for length in run.eval_lengths}
    return TrainingOutcome(
        run=run, diverged=result.diverged, steps_done=len(result.losses), losses=tuple(result.losses),
        curve=tuple(result.curve), validation=validation, accuracy=accuracy, tokens_per_s=result.tokens_per_s,
        seconds=time.perf_counter() - start, parameters=model.num_parameters(embeddings=False),
    )


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

