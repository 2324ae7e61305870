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

from titans import _checks, tasks
from titans.models import create_model, model_args

# Task name -> generator; each is called as generator(batch, seq_len, seed=..., **task_options).
TASKS = {
    "mqar": tasks.mqar,
    "far_pointer": tasks.far_pointer,
    "rebinding": tasks.rebinding,
    "selective_copy": tasks.selective_copy,
    "noisy_recall": tasks.noisy_recall,
}


@dataclass
class TrainConfig:
    """One training run: a model at a size, a task, and the optimization schedule."""

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

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {sorted(TASKS)}, got {self.task!r}")
        for name in ("seq_len", "batch_size", "steps", "log_every"):
            _checks.positive_int(name, getattr(self, name))
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
    config: TrainConfig
    losses: list
    final_loss: float
    seconds: float
    tokens_per_s: float
    diverged: bool


def train(config: TrainConfig, *, model=None, log=sys.stderr) -> tuple[nn.Module, TrainResult]:
    """Train ``config.model`` on ``config.task``; returns the model and a summary.

    A non-finite loss stops the run and is reported as ``diverged`` (never silently continued).
    """
    if model is None:
        model = create_model(config.model, config.size, seed=config.seed, **config.model_options)
    mx.random.seed(config.seed)
    optimizer = optim.AdamW(learning_rate=schedule(config), weight_decay=config.weight_decay)
    value_and_grad = nn.value_and_grad(model, loss_and_accuracy)
    losses, diverged, start = [], False, time.perf_counter()
    tokens_seen = 0
    for step in range(config.steps):
        batch = task_batch(config.task, config.batch_size, config.seq_len, _data_seed(config.seed, step, "train"),
                           **config.task_options)
        inputs, targets = mx.array(batch.inputs), mx.array(batch.targets)
        (loss, acc), grads = value_and_grad(model, inputs, targets)
        grads, _ = optim.clip_grad_norm(grads, config.grad_clip)
        optimizer.update(model, grads)
        mx.eval(model.parameters(), optimizer.state, loss, acc)
        tokens_seen += inputs.size
        loss_value = loss.item()
        losses.append(loss_value)
        if not math.isfinite(loss_value):
            diverged = True
            print(f"[train {config.model}] step {step}: loss is {loss_value}; stopping (diverged)", file=log)
            break
        if log is not None and ((step + 1) % config.log_every == 0 or step + 1 == config.steps):
            elapsed = time.perf_counter() - start
            print(f"[train {config.model}/{config.task} lr={config.lr:g}] step {step + 1}/{config.steps} "
                  f"loss {loss_value:.3f} acc {acc.item():.3f} {tokens_seen / elapsed:,.0f} tok/s", file=log, flush=True)
    seconds = time.perf_counter() - start
    tail = losses[-max(1, len(losses) // 10):]
    return model, TrainResult(config, losses, float(np.mean(tail)), seconds, tokens_seen / seconds, diverged)


def evaluate(model, task: str, *, seq_len: int, n_examples: int = 256, batch_size: int = 64, seed: int = 0,
             by: str | None = None, **options) -> dict:
    """Exact-match accuracy on fresh evaluation data (seeds disjoint from training).

    Returns ``{"accuracy": float, "per_example": np.ndarray}`` and, with ``by`` (a meta key such as
    ``"distance"``), ``"by": {group: (accuracy, count)}`` over all batches.
    """
    _checks.positive_int("n_examples", n_examples)
    per_example, groups = [], {}
    for i in range(math.ceil(n_examples / batch_size)):
        batch = task_batch(task, min(batch_size, n_examples - i * batch_size), seq_len,
                           _data_seed(seed, i, "eval"), **options)
        logits = model(mx.array(batch.inputs))
        predictions = np.array(mx.argmax(logits, axis=-1))
        scored = batch.targets != tasks.IGNORE
        correct = (predictions == batch.targets) & scored
        per_example.append(correct.sum(1) / np.maximum(scored.sum(1), 1))
        if by is not None:
            for key, (acc, count) in tasks.accuracy_by(by, predictions, batch).items():
                hits, total = groups.get(key, (0.0, 0))
                groups[key] = (hits + acc * count, total + count)
    per_example = np.concatenate(per_example)
    result = {"accuracy": float(per_example.mean()), "per_example": per_example}
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
    from titans.models import MODELS, SIZES

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
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--eval-lengths", type=_lengths, default=[], help="comma-separated lengths to evaluate at")
    parser.add_argument("--save", default=None, help="checkpoint path (.safetensors)")
    args = parser.parse_args(argv)
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
                      "diverged": result.diverged}))
    for length in args.eval_lengths:
        accuracy = evaluate(model, config.task, seq_len=length, seed=config.seed, **config.task_options)["accuracy"]
        print(json.dumps({"eval_seq_len": length, "accuracy": accuracy}))
    if args.save:
        print(f"saved {save_checkpoint(model, config, args.save)}")
    return 1 if result.diverged else 0


if __name__ == "__main__":
    sys.exit(main())
