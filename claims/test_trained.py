"""Trained comparison: Titans variants vs Transformer++ (full and sliding-window) and RetNet at the
same parameter budget, on the far-pointer task (protocol: ``claims.registry._TRAINED``).

Every model is trained in the run (never loaded from committed weights or numbers). For each model
and seed the learning rate is chosen from the grid by accuracy on validation data (its own seeds);
the reported accuracies come from separate evaluation data at the training length and beyond the
attention window. "Titans" in a comparison is the best Titans variant trained, as zoology reports
the best learning rate.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from claims.registry import CLAIMS
from titans.reporting import mean_ci
from titans.train import TrainConfig, evaluate, train

VALIDATION_SEED_OFFSET = 10_000  # selection data never overlaps the reported evaluation data

# Verdicts measured at CI scale (the measured numbers are in the report); full scale is open.
NOT_REPRODUCED_AT_CI = {
    "trained.titans-vs-transformer-moderate": (
        "not reproduced at CI scale: after 200 steps Transformer++ solves most far-pointer queries while "
        "LMM and MAC (and RetNet) are still at chance; in a 400-step probe MAC began learning only after "
        "~250 steps. Recurrent and hybrid mixers learn this recall task later (as zoology reports for "
        "recurrent models); whether the gap closes is the full-scale protocol's question."),
    "failure.benchmark-sensitivity": (
        "not reproduced at CI scale: the Titans variants are still at chance after 200 steps, so they show "
        "no advantage at 4x the window, where sliding-window Transformer++ has fallen to ~25%."),
    "failure.training-instability": (
        "the failure is present at CI scale: with theta max 1.0 all 6 runs (tiny LMM and MAC, 3 seeds) "
        "diverge to a non-finite loss; the inner memory explodes when repeated keys add their "
        "chunk-start gradients under momentum near 1 (the default theta max 0.02 trains finitely)."),
}


def _protocol(scale: str) -> dict:
    return dict(CLAIMS["trained.titans-vs-transformer-moderate"].scales[scale])


def _overrides(name: str, protocol: dict, extra: tuple) -> dict:
    """Model options: the protocol's window for the windowed models, plus ablation overrides."""
    options = dict(extra)
    if name in ("transformer_swa", "mag", "mal"):
        options.setdefault("window", protocol["window"])
    return options


@lru_cache(maxsize=None)
def _train_and_evaluate(name: str, seed: int, lr: float, steps: int, scale: str, extra: tuple = ()) -> dict:
    """Train one configuration; accuracy per evaluation length and on validation data."""
    p = _protocol(scale)
    config = TrainConfig(
        model=name, size=p["size"], model_options=_overrides(name, p, extra), task=p["task"],
        task_options=dict(p["task_options"]), seq_len=p["train_length"], batch_size=p["batch_size"],
        steps=steps, lr=lr, warmup=min(30, steps // 10), seed=seed, log_every=max(steps // 4, 1),
    )
    model, result = train(config)
    if result.diverged:
        return {"diverged": True, "validation": float("nan"), "accuracy": {}, "loss": float("nan")}
    options = dict(p["task_options"])
    validation = evaluate(model, p["task"], seq_len=p["train_length"], n_examples=p["eval_examples"],
                          seed=seed + VALIDATION_SEED_OFFSET, **options)["accuracy"]
    accuracy = {length: evaluate(model, p["task"], seq_len=length, n_examples=p["eval_examples"], seed=seed,
                                 **options)["accuracy"] for length in p["eval_lengths"]}
    return {"diverged": False, "validation": validation, "accuracy": accuracy, "loss": result.final_loss}


def best_run(name: str, seed: int, scale: str, steps: int | None = None, lrs=None, extra: tuple = ()) -> dict:
    """The run with the best validation accuracy over the learning-rate grid."""
    p = _protocol(scale)
    runs = [
        dict(_train_and_evaluate(name, seed, lr, steps or p["steps"], scale, extra), lr=lr)
        for lr in (lrs or p["lrs"])
    ]
    finite = [r for r in runs if not r["diverged"]]
    if not finite:
        return {"diverged": True, "accuracy": {}, "lr": None, "validation": float("nan"), "loss": float("nan")}
    return max(finite, key=lambda r: r["validation"])


def _accuracy(run: dict, length: int) -> float:
    """Accuracy in points (0-100); a diverged run scores NaN, which never passes a claim."""
    return 100.0 * run["accuracy"].get(length, float("nan"))


def _record_curves(claim_record, runs: dict, lengths: list) -> None:
    for name, per_seed in runs.items():
        means = [float(np.mean([_accuracy(r, length) for r in per_seed])) for length in lengths]
        claim_record.curve(name, lengths, means, xlabel="evaluation length (tokens)",
                           ylabel="far-pointer accuracy (%)", model=name)


def _all_runs(scale: str) -> dict:
    p = _protocol(scale)
    return {name: [best_run(name, seed, scale) for seed in p["seeds"]] for name in [*p["titans"], *p["baselines"]]}


def _best_titans(runs: dict, p: dict, length: int, seed_index: int) -> float:
    scores = [_accuracy(runs[name][seed_index], length) for name in p["titans"]]
    return max(scores) if not all(np.isnan(scores)) else float("nan")


@pytest.mark.claim("trained.titans-vs-transformer-moderate")
@pytest.mark.not_reproduced("ci", reason=NOT_REPRODUCED_AT_CI["trained.titans-vs-transformer-moderate"])
def test_titans_close_to_transformer_at_moderate_length(claim, claim_record, scale):
    p = _protocol(scale)
    runs = _all_runs(scale)
    length = p["train_length"]
    gaps = [_best_titans(runs, p, length, i) - _accuracy(runs["transformer"][i], length) for i in range(len(p["seeds"]))]
    summary = mean_ci(gaps)
    claim_record.value("titans_minus_transformer_points", summary, unit="accuracy points")
    claim_record.seeds(p["seeds"])
    for name, per_seed in runs.items():
        claim_record.value(f"accuracy_{name}_L{length}", mean_ci([_accuracy(r, length) for r in per_seed]), unit="%")
        claim_record.note(f"{name}: lr {[r['lr'] for r in per_seed]}, diverged {[r['diverged'] for r in per_seed]}")
    _record_curves(claim_record, runs, p["eval_lengths"])
    assert claim.holds(summary.mean), claim.describe(summary.mean)


@pytest.mark.claim("failure.benchmark-sensitivity")
@pytest.mark.not_reproduced("ci", reason=NOT_REPRODUCED_AT_CI["failure.benchmark-sensitivity"])
def test_titans_advantage_beyond_the_window(claim, claim_record, scale):
    p = _protocol(scale)
    runs = _all_runs(scale)
    far = 4 * p["window"]
    if far not in p["eval_lengths"]:
        pytest.fail(f"the protocol must evaluate at 4x the window ({far})")
    advantage = [_best_titans(runs, p, far, i) - _accuracy(runs["transformer_swa"][i], far) for i in range(len(p["seeds"]))]
    summary = mean_ci(advantage)
    claim_record.value("titans_minus_swa_points_at_4x_window", summary, unit="accuracy points")
    claim_record.seeds(p["seeds"])
    for length in p["eval_lengths"]:
        for name in ("transformer_swa", "retnet"):
            gap = [_best_titans(runs, p, length, i) - _accuracy(runs[name][i], length) for i in range(len(p["seeds"]))]
            claim_record.value(f"titans_minus_{name}_L{length}", mean_ci(gap), unit="accuracy points")
    _record_curves(claim_record, runs, p["eval_lengths"])
    assert claim.holds(summary.mean), claim.describe(summary.mean)


ABLATIONS = {
    "weight-decay": (("memory", {"decay": False}),),
    "momentum": (("memory", {"momentum": False}),),
    "convolution": (("memory", {"conv_kernel": 0}),),
    "persistent-memory": (("n_persistent", 0),),
    "deep-memory": (("memory", {"depth": 1}),),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "component",
    [pytest.param(c, marks=pytest.mark.claim(f"trained.ablation-{c}")) for c in sorted(ABLATIONS)],
)
def test_ablation_costs_accuracy(component, claim, claim_record, scale):
    """Table 5 direction: removing a component of the LMM raises its validation loss."""
    p = dict(claim.scales[scale])
    full = [best_run("lmm", seed, scale)["loss"] for seed in p["seeds"]]
    ablated = [best_run("lmm", seed, scale, extra=ABLATIONS[component])["loss"] for seed in p["seeds"]]
    summary = mean_ci(np.array(ablated) - np.array(full))
    claim_record.value("loss_ablated_minus_full", summary, unit="nats/token")
    claim_record.seeds(p["seeds"])
    assert claim.holds(summary.mean), claim.describe(summary.mean)


@pytest.mark.slow
@pytest.mark.claim("reviewer.architecture-vs-schedule")
def test_ranking_holds_across_schedules(claim, claim_record, scale):
    p = dict(claim.scales[scale])
    length = p["train_length"]
    wins = []
    for lr, steps in p["schedules"]:
        for seed in p["seeds"]:
            titans = max(_accuracy(best_run(n, seed, scale, steps=steps, lrs=[lr]), length) for n in p["titans"])
            wins.append(float(titans >= _accuracy(best_run("transformer", seed, scale, steps=steps, lrs=[lr]), length)))
    summary = mean_ci(wins)
    claim_record.value("fraction_schedules_titans_ge_transformer", summary)
    claim_record.seeds(p["seeds"])
    assert claim.holds(summary.mean), claim.describe(summary.mean)


def _unstable(losses: list, warmup: int) -> bool:
    """Non-finite, or a spike above twice the running minimum after warm-up (the registry metric)."""
    if not all(np.isfinite(losses)):
        return True
    running_min = np.minimum.accumulate(losses)
    return bool(np.any(np.array(losses[warmup:]) > 2 * running_min[warmup:]))


@pytest.mark.claim("failure.training-instability")
@pytest.mark.not_reproduced("ci", reason=NOT_REPRODUCED_AT_CI["failure.training-instability"])
def test_outer_training_stays_finite(claim, claim_record, scale):
    p, proto = dict(claim.scales[scale]), _protocol(scale)
    length = p.get("length", proto["train_length"])
    outcomes, details = [], []
    for name in p["models"]:
        for seed in p["seeds"]:
            config = TrainConfig(
                model=name, size=proto["size"], task=proto["task"], task_options=dict(proto["task_options"]),
                model_options={"memory": {"lr_scale": p["theta_max"], "depth": p["memory_depth"]}},
                seq_len=length, batch_size=proto["batch_size"], steps=p["steps"], lr=proto["lrs"][0],
                warmup=min(30, p["steps"] // 10), seed=seed, log_every=max(p["steps"] // 4, 1),
            )
            _, result = train(config)
            unstable = _unstable(result.losses, config.warmup)
            outcomes.append(float(unstable))
            details.append(f"{name} seed {seed}: {'diverged' if result.diverged else 'finite'} after "
                           f"{len(result.losses)} steps{' (spike)' if unstable and not result.diverged else ''}")
    summary = mean_ci(outcomes)
    claim_record.value("fraction of unstable runs", summary)
    claim_record.seeds(list(p["seeds"]))
    claim_record.note("; ".join(details))
    assert claim.holds(summary.mean), claim.describe(summary.mean)
