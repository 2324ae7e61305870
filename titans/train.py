"""A small, readable training loop for the synthetic tasks, and its command-line entry point.

AdamW with linear warmup and cosine decay, gradient clipping, seeded data (every batch is a pure
function of the run's seed and the step), progress lines with loss and tokens/s, checkpoints as
safetensors (weights) plus JSON (the configuration), and evaluation on the tasks.

    python -m titans.train --model mac --task mqar --seq-len 128 --task-option n_pairs=8 --steps 400 --lr 3e-3

Task and model options are ``KEY=VALUE`` keywords of the task generator (``titans.tasks``) or the
model's ``ModelArgs``; a VALUE that is valid JSON is parsed as JSON (``8``, ``null``, ``true``,
``[1, 2]``), anything else is a string (``haystack=filler``). The task's ``vocab_size`` defaults to
the model's and may not exceed it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np

from titans._cache import configure_allocator
from titans import _checks, tasks
from titans.models import MODELS, SIZES, create_model, model_args

# Task name -> generator; each is called as generator(batch, seq_len, seed=..., **task_options).
TASKS = {
    "mqar": tasks.mqar,
    "far_pointer": tasks.far_pointer,
    "rebinding": tasks.rebinding,
    "selective_copy": tasks.selective_copy,
}


@dataclass
class TrainConfig:
    """One training run: a model at a size, a task, and the optimization schedule.

    ``sync_every``: steps between host reads of the loss (divergence is found at most that late);
    ``curve_every``: steps between validation-accuracy points of the learning curve (0: none),
    on ``eval_examples`` held-out sequences; ``compile``: compile the training step.
    ``stop_accuracy``: stop once the last ``stop_patience`` points of the learning curve all reach
    this validation accuracy (None: always train ``steps`` steps; needs ``curve_every``)."""

    model: str = "transformer"
    size: str = "tiny"
    model_options: dict = field(default_factory=dict)
    task: str = "mqar"
    task_options: dict = field(default_factory=dict)
    seq_len: int = 128
    batch_size: int = 32
    steps: int = 300
    lr: float = 3e-3
    warmup: int = 30
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    log_every: int = 50
    sync_every: int = 10
    curve_every: int = 0
    eval_examples: int = 256
    compile: bool = True
    stop_accuracy: float | None = None
    stop_patience: int = 2

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {sorted(TASKS)}, got {self.task!r}")
        for name in ("seq_len", "batch_size", "steps", "log_every", "sync_every", "eval_examples"):
            _checks.positive_int(name, getattr(self, name))
        _checks.nonnegative_int("curve_every", self.curve_every)
        _checks.positive_int("stop_patience", self.stop_patience)
        if self.stop_accuracy is not None:
            value = self.stop_accuracy
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 < value <= 1):
                raise ValueError(f"stop_accuracy must be None or lie in (0, 1], got {value!r}")
            if not self.curve_every:
                raise ValueError("stop_accuracy needs curve_every > 0 (it stops on the learning curve)")
        if not isinstance(self.compile, bool):
            raise TypeError(f"compile must be a bool, got {self.compile!r}")
        _checks.nonnegative_int("warmup", self.warmup)
        _checks.nonnegative_int("seed", self.seed)
        for name in ("lr", "grad_clip"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        model_args(self.model, self.size, **self.model_options)  # validates the model and options


def task_batch(task: str, batch_size: int, seq_len: int, seed: int, **options) -> tasks.TaskBatch:
    return TASKS[task](batch_size, seq_len, seed=seed, **options)


# The learning curve's held-out batch: its seed lies outside every run's training and evaluation
# streams (and the validation streams at run seed + 10_000 that the claims select on).
CURVE_SEED_OFFSET = 2**20


def _data_seed(run_seed: int, step: int, split: str) -> int:
    """Disjoint, reproducible seeds for the training and evaluation streams."""
    return (run_seed * 1_000_003 + step) * 2 + (1 if split == "eval" else 0)


def loss_and_accuracy(model, inputs: mx.array, targets: mx.array):
    """Cross-entropy and exact-match accuracy over the scored positions (targets != -100)."""
    logits = model(inputs)
    scored = targets != tasks.IGNORE
    safe = mx.where(scored, targets, 0)
    losses = nn.losses.cross_entropy(logits.astype(mx.float32), safe, reduction="none")
    n = mx.maximum(mx.sum(scored), 1)
    loss = mx.sum(mx.where(scored, losses, 0)) / n
    correct = mx.sum(mx.where(scored, mx.argmax(logits, axis=-1) == targets, False)) / n
    return loss, correct


def schedule(config: TrainConfig):
    warmup = min(config.warmup, config.steps - 1)
    cosine = optim.cosine_decay(config.lr, max(config.steps - warmup, 1), config.lr * config.min_lr_ratio)
    if warmup == 0:
        return cosine
    return optim.join_schedules([optim.linear_schedule(config.lr / warmup, config.lr, warmup), cosine], [warmup])


@dataclass
class TrainResult:
    """``losses`` and ``accuracies`` per step on the training batches (one per step trained);
    ``curve`` is ``[(step, validation accuracy)]`` every ``config.curve_every`` steps (empty if 0);
    ``stopped_early``: the run reached ``config.stop_accuracy`` before ``config.steps``."""

    config: TrainConfig
    losses: list
    accuracies: list
    curve: list
    final_loss: float
    seconds: float
    tokens_per_s: float
    diverged: bool

    @property
    def stopped_early(self) -> bool:
        return not self.diverged and len(self.losses) < self.config.steps


def make_step(model, optimizer, grad_clip: float, *, compiled: bool = True):
    """One optimization step ``step(inputs, targets) -> (loss, accuracy)`` (mlx-lm style): the
    model, optimizer and random states are the compiled function's implicit inputs and outputs,
    so the whole forward, backward, clipping and AdamW update is one compiled graph."""
    value_and_grad = nn.value_and_grad(model, loss_and_accuracy)

    def step(inputs, targets):
        (loss, acc), grads = value_and_grad(model, inputs, targets)
        grads, _ = optim.clip_grad_norm(grads, grad_clip)
        optimizer.update(model, grads)
        return loss, acc

    if not compiled:
        return step
    state = [model.state, optimizer.state, mx.random.state]
    return mx.compile(step, inputs=state, outputs=state)


def train(config: TrainConfig, *, model=None, log=sys.stderr) -> tuple[nn.Module, TrainResult]:
    """Train ``config.model`` on ``config.task``; returns the model and a summary.

    Steps are dispatched asynchronously and the host reads the losses back every ``sync_every``
    steps (each batch is generated while the previous step computes). A non-finite loss stops
    the run at that step and is reported as ``diverged`` (never silently continued); the model
    is then left as it was after the steps that were dispatched.
    """
    if model is None:
        model = create_model(config.model, config.size, seed=config.seed, **config.model_options)
    mx.random.seed(config.seed)
    optimizer = optim.AdamW(learning_rate=schedule(config), weight_decay=config.weight_decay)
    optimizer.init(model.trainable_parameters())
    step_fn = make_step(model, optimizer, config.grad_clip, compiled=config.compile)
    state = [model.state, optimizer.state]
    validation = None
    if config.curve_every:
        validation = task_batch(config.task, config.eval_examples, config.seq_len,
                                _data_seed(config.seed + CURVE_SEED_OFFSET, 0, "eval"), **config.task_options)
    losses, accuracies, curve, pending = [], [], [], []
    diverged, stopped_early, tokens_seen, start = False, False, 0, time.perf_counter()
    vocab = model.args.vocab_size

    def sync() -> bool:
        """Read back the pending losses; False at the first non-finite one."""
        nonlocal diverged
        for step_index, loss, acc in pending:
            value = loss.item()
            losses.append(value)
            accuracies.append(acc.item())
            if not math.isfinite(value):
                diverged = True
                if log is not None:
                    print(f"[train {config.model}] step {step_index}: loss is {value}; stopping (diverged)", file=log)
                break
        pending.clear()
        return not diverged

    for step in range(config.steps):
        batch = task_batch(config.task, config.batch_size, config.seq_len, _data_seed(config.seed, step, "train"),
                           **config.task_options)
        if step == 0:
            _checks.token_ids("task inputs", batch.inputs, vocab)
        loss, acc = step_fn(mx.array(batch.inputs), mx.array(batch.targets))
        mx.async_eval(state, loss, acc)
        pending.append((step, loss, acc))
        tokens_seen += batch.inputs.size
        last = step + 1 == config.steps
        curve_due = bool(config.curve_every) and ((step + 1) % config.curve_every == 0 or last)
        log_due = log is not None and ((step + 1) % config.log_every == 0 or last)
        if len(pending) >= config.sync_every or last or curve_due or log_due:
            if not sync():
                break
        if curve_due:
            curve.append((step + 1, batch_accuracy(model, validation)))
            recent = curve[-config.stop_patience:]
            if (config.stop_accuracy is not None and not last and len(recent) == config.stop_patience
                    and all(acc >= config.stop_accuracy for _, acc in recent)):
                stopped_early = True
                if log is not None:
                    print(f"[train {config.model}] step {step + 1}: validation accuracy >= {config.stop_accuracy:g} "
                          f"at the last {config.stop_patience} curve points; stopping", file=log, flush=True)
        if log_due:
            elapsed = time.perf_counter() - start
            print(f"[train {config.model}/{config.task} lr={config.lr:g}] step {step + 1}/{config.steps} "
                  f"loss {losses[-1]:.3f} acc {accuracies[-1]:.3f} {tokens_seen / elapsed:,.0f} tok/s",
                  file=log, flush=True)
        if stopped_early:
            break
    seconds = time.perf_counter() - start
    tail = losses[-max(1, len(losses) // 10):]
    return model, TrainResult(config, losses, accuracies, curve, float(np.mean(tail)), seconds,
                              tokens_seen / seconds, diverged)


def _predict(model, batch: tasks.TaskBatch):
    """Argmax predictions of ``model`` on ``batch``, which of them are correct and scored, and the
    cross-entropy at each scored position (0 elsewhere)."""
    logits = model(mx.array(batch.inputs)).astype(mx.float32)
    scored = batch.targets != tasks.IGNORE
    safe = mx.array(np.where(scored, batch.targets, 0))
    predictions = np.array(mx.argmax(logits, axis=-1))
    losses = np.where(scored, np.array(nn.losses.cross_entropy(logits, safe, reduction="none")), 0.0)
    return predictions, (predictions == batch.targets) & scored, scored, losses


def batch_accuracy(model, batch: tasks.TaskBatch, batch_size: int = 64) -> float:
    """Exact-match accuracy of ``model`` over the scored positions of ``batch``."""
    hits = total = 0
    for i in range(0, len(batch.inputs), batch_size):
        part = tasks.TaskBatch(batch.inputs[i : i + batch_size], batch.targets[i : i + batch_size])
        _, correct, scored, _ = _predict(model, part)
        hits, total = hits + int(correct.sum()), total + int(scored.sum())
    return hits / max(total, 1)


def evaluate(model, task: str, *, seq_len: int, n_examples: int = 256, batch_size: int = 64, seed: int = 0,
             by: str | None = None, **options) -> dict:
    """Exact-match accuracy on fresh evaluation data (seeds disjoint from training).

    Returns ``{"accuracy": float, "loss": float, "per_example": np.ndarray}`` (``loss``: the mean
    cross-entropy over the scored positions) and, with ``by`` (a meta key such as ``"distance"``),
    ``"by": {group: (accuracy, count)}`` over all batches.
    """
    _checks.positive_int("n_examples", n_examples)
    per_example, groups, loss_sum, n_scored = [], {}, 0.0, 0
    for i in range(math.ceil(n_examples / batch_size)):
        batch = task_batch(task, min(batch_size, n_examples - i * batch_size), seq_len,
                           _data_seed(seed, i, "eval"), **options)
        if hasattr(model, "args"):
            _checks.token_ids("task inputs", batch.inputs, model.args.vocab_size)
        predictions, correct, scored, losses = _predict(model, batch)
        per_example.append(correct.sum(1) / np.maximum(scored.sum(1), 1))
        loss_sum, n_scored = loss_sum + float(losses.sum()), n_scored + int(scored.sum())
        if by is not None:
            for key, (acc, count) in tasks.accuracy_by(by, predictions, batch).items():
                hits, total = groups.get(key, (0.0, 0))
                groups[key] = (hits + acc * count, total + count)
    per_example = np.concatenate(per_example)
    result = {"accuracy": float(per_example.mean()), "loss": loss_sum / max(n_scored, 1), "per_example": per_example}
    if by is not None:
        result["by"] = {k: (hits / total, total) for k, (hits, total) in sorted(groups.items())}
    return result


def save_checkpoint(model, config: TrainConfig, path) -> Path:
    """Weights as safetensors, the configuration as JSON beside them."""
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(str(path))
    path.with_suffix(".json").write_text(json.dumps(asdict(config), indent=2))
    return path


def load_checkpoint(path):
    """Rebuild the model from the JSON configuration and load its safetensors weights."""
    path = Path(path).with_suffix(".safetensors")
    config = TrainConfig(**json.loads(path.with_suffix(".json").read_text()))
    model = create_model(config.model, config.size, **config.model_options)
    model.load_weights(str(path))
    return model, config


def _parse_options(pairs: list[str]) -> dict:
    """``["n_pairs=8", "haystack=filler"]`` -> ``{"n_pairs": 8, "haystack": "filler"}``: each VALUE is
    parsed as JSON when it is valid JSON, and kept as a string otherwise."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"options are KEY=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _task_vocab(task_options: dict, model_vocab: int, task: str) -> dict:
    """The task's options with ``vocab_size`` defaulting to the model's; a larger one is refused."""
    vocab = task_options.get("vocab_size", model_vocab)
    if isinstance(vocab, int) and not isinstance(vocab, bool) and vocab > model_vocab:
        raise ValueError(f"task {task} vocab_size={vocab} exceeds the model's vocab_size={model_vocab}; "
                         f"use --task-option vocab_size=N with N <= {model_vocab} (or a larger model vocabulary)")
    return {**task_options, "vocab_size": vocab}


def _required_task_options(task: str, task_options: dict) -> list[str]:
    """The generator's keyword arguments without a default that ``task_options`` does not give."""
    import inspect

    skip = {"batch", "seq_len", "seed"}
    return [name for name, p in inspect.signature(TASKS[task]).parameters.items()
            if p.default is inspect.Parameter.empty and name not in skip and name not in task_options
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _lengths(text: str) -> list[int]:
    try:
        lengths = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if any(n <= 0 for n in lengths):
        raise argparse.ArgumentTypeError(f"lengths must be positive, got {text!r}")
    return lengths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m titans.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="transformer", choices=sorted(MODELS))
    parser.add_argument("--size", default="tiny", choices=sorted(SIZES))
    parser.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a ModelArgs override (repeatable); VALUE is JSON if valid, else a string")
    parser.add_argument("--task", default="mqar", choices=sorted(TASKS))
    parser.add_argument("--task-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a task generator keyword (repeatable), e.g. n_pairs=8 or haystack=filler; VALUE is "
                             "JSON if valid, else a string; vocab_size defaults to the model's")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stop-accuracy", type=float, default=None,
                        help="stop once the learning curve (every --curve-every steps) reaches this validation "
                             "accuracy at --stop-patience consecutive points")
    parser.add_argument("--curve-every", type=int, default=0,
                        help="steps between points of the learning curve (validation accuracy); 0: none")
    parser.add_argument("--stop-patience", type=int, default=2)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--eval-lengths", type=_lengths, default=[], help="comma-separated lengths to evaluate at")
    parser.add_argument("--save", default=None, help="checkpoint path (.safetensors)")
    args = parser.parse_args(argv)
    configure_allocator()
    try:
        model_options = _parse_options(args.model_option)
        task_options = _parse_options(args.task_option)
        model_vocab = model_args(args.model, args.size, **model_options).vocab_size
        task_options = _task_vocab(task_options, model_vocab, args.task)
        missing = _required_task_options(args.task, task_options)
        if missing:
            raise ValueError(f"task {args.task} needs option(s) {', '.join(missing)} "
                             f"(e.g. --task-option {missing[0]}=VALUE)")
        config = TrainConfig(
            model=args.model, size=args.size, model_options=model_options, task=args.task,
            task_options=task_options, seq_len=args.seq_len, batch_size=args.batch_size,
            steps=args.steps, lr=args.lr, warmup=args.warmup, seed=args.seed, log_every=args.log_every,
            curve_every=args.curve_every, stop_accuracy=args.stop_accuracy, stop_patience=args.stop_patience,
        )
        # Bad task options (or lengths the task cannot fill) fail here, not after training.
        task_batch(config.task, config.batch_size, config.seq_len, 0, **config.task_options)
        for length in args.eval_lengths:
            try:
                task_batch(config.task, 64, length, 0, **config.task_options)
            except (ValueError, TypeError) as error:
                raise ValueError(f"--eval-lengths {length}: {error}") from None
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    model, result = train(config)
    print(json.dumps({"final_loss": result.final_loss, "tokens_per_s": round(result.tokens_per_s),
                      "diverged": result.diverged, "steps": len(result.losses), "stopped_early": result.stopped_early,
                      "curve": result.curve}))
    for length in args.eval_lengths:
        accuracy = evaluate(model, config.task, seq_len=length, seed=config.seed, **config.task_options)["accuracy"]
        print(json.dumps({"eval_seq_len": length, "accuracy": accuracy}))
    if args.save:
        print(f"saved {save_checkpoint(model, config, args.save)}")
    return 1 if result.diverged else 0


if __name__ == "__main__":
    sys.exit(main())
