"""The trained tier: learning controls, trained comparisons and training stability.

Every model is trained in the run (never loaded from committed weights or numbers) by
``claims.training``, which runs the configurations in parallel worker processes and caches them
for the session: the comparisons reuse the control runs. Protocols live in the registry
(``_CONTROL`` and the claims' ``scales``).

* ``trained.models-learn`` (one row per model) -- the learning control: in-window far-pointer
  recall at the training length, over seeds, no run diverging. A comparison that involves a model
  which failed its control is *inconclusive (did not learn)*.
* ``trained.titans-vs-transformer-moderate`` / ``failure.benchmark-sensitivity`` /
  ``trained.recall-beyond-reach`` (one row per Titans variant) -- per-seed accuracy differences
  against Transformer++ at the training length, against sliding-window Transformer++ at 4x the
  window, and against it on the needles beyond the reach of the stacked windows; curves of accuracy
  by length and by needle distance with seed bands, and each model's forward cost beside them.
* ``trained.surprise-writes`` (one row per Titans variant) -- the trained memory's write strength
  at the needle over the median token (§3.1), with the heatmaps of the seed-0 runs.
* ``failure.training-instability`` -- the paper-literal memory over a θ x lr grid, and the
  stabilized default memory over the lr grid.
* Full scale only: the Table 5 ablations and the schedule ranking.

``--smoke-grid`` runs every protocol of the chosen scale with 2 steps per run and no verdicts.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pytest

from claims.registry import CLAIMS
from claims.training import TrainingRun, run_trainings, smoke_grid
from titans.layers.neural_memory import MemoryConfig
from titans.models import BASELINES, TITANS, model_args
from titans.reporting import mean_ci
from titans.reporting.verdicts import inconclusive, sanity, settle

CONTROL = "trained.models-learn"
MODELS = (*TITANS, *BASELINES)


# --smoke-grid (claims/conftest.py), read once per module by the autouse fixture below
_OPTIONS = {"smoke_grid": False}
SMOKE_GRID_REASON = "smoke grid: the protocol ran end to end on claims.training.smoke_grid; no verdict"


def _scale_protocol(claim_id: str, scale: str) -> dict:
    """The registry protocol of ``claim_id`` at ``scale`` (cut to the smoke grid under --smoke-grid)."""
    p = {**CLAIMS[claim_id].scales[scale], "scale": scale}
    return smoke_grid(p) if _OPTIONS["smoke_grid"] else p


def _protocol(scale: str) -> dict:
    return _scale_protocol(CONTROL, scale)


def _settle(claim, summary, *, what: str = "") -> None:
    """``settle``, except on the smoke grid, where the run only shows that the protocol works."""
    if _OPTIONS["smoke_grid"]:
        pytest.skip(f"{SMOKE_GRID_REASON} ({what or claim.id}: {summary.mean:.4g})")
    settle(claim, summary, what=what)


# sequences per timed forward pass of the trained models (the cost beside the accuracy)
COST_BATCH = 16
SURPRISE = "trained.surprise-writes"


def _run(name: str, seed: int, lr: float, p: dict, *, steps: int | None = None, model_options=None,
         curve_every: int | None = None, evaluate: bool = True, measure: bool = True) -> TrainingRun:
    """One run of protocol ``p``; with a learning curve it also takes the protocol's stopping rule.
    An evaluated run with ``measure`` also measures its accuracy by distance, its forward cost at
    each evaluation length and (Titans) its memory utilization for ``trained.surprise-writes``."""
    options = dict(model_options or {})
    if name in ("transformer_swa", "mag", "mal"):
        options.setdefault("window", p["window"])
    curve_every = p["curve_every"] if curve_every is None else curve_every
    measure = evaluate and measure
    utilization = _scale_protocol(SURPRISE, p["scale"])["examples"] if measure and name in TITANS else 0
    cost_batch = 1 if _OPTIONS["smoke_grid"] else COST_BATCH
    return TrainingRun.make(
        model=name, seed=seed, lr=lr, steps=steps or p["steps"], task=p["task"], seq_len=p["train_length"],
        task_options=p["task_options"], model_options=options, size=p["size"], batch_size=p["batch_size"],
        eval_lengths=tuple(p["eval_lengths"]) if evaluate else (), eval_examples=p["eval_examples"],
        curve_every=curve_every, stop_accuracy=p["stop_accuracy"] if curve_every else None,
        stop_patience=p["stop_patience"], group_by="distance" if measure else "",
        cost_batch=cost_batch if measure else 0, utilization_examples=utilization,
    )


def protocol_runs(scale: str, models=MODELS, model_options=None, *, stopping: bool = True) -> dict:
    """``{model: [outcome per seed]}`` under the control protocol: the lr of the grid with the best
    seed-0 validation accuracy (zoology; a tie goes to the first lr of the grid), then every seed at
    that lr. All models train together; ``run_trainings`` caches the runs, so repeated calls train
    nothing again. ``stopping=False`` trains every step (for metrics compared at a fixed step
    count, such as the validation loss of the ablations)."""
    p = _protocol(scale)
    if not stopping:
        p["stop_accuracy"] = None
    first, others = _first_stage(p, models, model_options)
    outcomes = dict(zip(first, run_trainings([*first.values(), *others])))
    best = {}
    for m in models:
        candidates = [(outcomes[(m, lr)], lr) for lr in p["lrs"] if not outcomes[(m, lr)].diverged]
        best[m] = max(candidates, key=lambda c: c[0].validation)[1] if candidates else p["lrs"][0]
    rest = {(m, s): _run(m, s, best[m], p, model_options=model_options) for m in models for s in p["seeds"][1:]}
    rest_outcomes = dict(zip(rest, run_trainings(rest.values())))
    return {m: [outcomes[(m, best[m])]] + [rest_outcomes[(m, s)] for s in p["seeds"][1:]] for m in models}


def _first_stage(p: dict, models=MODELS, model_options=None) -> tuple[dict, list]:
    """The runs that need no model selection: ``{(model, lr): run}`` for seed 0 at every lr of the
    grid, and, with a one-value grid, the other seeds' runs (nothing to select first)."""
    first = {(m, lr): _run(m, p["seeds"][0], lr, p, model_options=model_options) for m in models for lr in p["lrs"]}
    others = [_run(m, s, p["lrs"][0], p, model_options=model_options)
              for m in models for s in p["seeds"][1:]] if len(p["lrs"]) == 1 else []
    return first, others


@pytest.fixture(scope="module", autouse=True)
def _train_selected_runs_together(request):
    """Queue the independent runs of every selected test of this module in one worker pool, longest
    first, so that no worker idles between experiments (each test then reads its runs from the
    session cache; what it measures is unchanged)."""
    scale = request.config.getoption("scale")
    _OPTIONS["smoke_grid"] = bool(request.config.getoption("smoke_grid"))
    selected = {getattr(item, "originalname", item.name) for item in request.session.items
                if getattr(item, "module", None) is request.module}
    runs = []
    if selected & {"test_model_learns_in_window_recall", "test_titans_close_to_transformer_at_moderate_length",
                   "test_titans_advantage_beyond_the_window", "test_titans_recall_beyond_the_reach_of_the_window",
                   "test_trained_memory_writes_the_needle_strongly"}:
        first, others = _first_stage(_protocol(scale))
        runs += [*first.values(), *others]
    if "test_training_stays_finite" in selected:
        runs += [run for row in INSTABILITY_ROWS for run in _instability_grid(row, scale)[1]]
    if runs:
        run_trainings(runs)


def _accuracy(outcome, length: int) -> float:
    return float("nan") if outcome.diverged else outcome.accuracy_at(length)


def control_verdict(name: str, scale: str) -> tuple[bool, str]:
    """Whether ``name`` passed its learning control under this scale's protocol, and why not."""
    p = _protocol(scale)
    runs = protocol_runs(scale)[name]
    accuracies = [_accuracy(r, p["train_length"]) for r in runs]
    diverged = [r.run.seed for r in runs if r.diverged]
    if diverged:
        return False, f"{name} diverged (seeds {diverged})"
    summary = mean_ci(accuracies)
    claim = CLAIMS[CONTROL]
    if summary.ci_low is not None and claim.holds(summary.ci_low):
        return True, ""
    return False, (f"{name} reached {summary.mean:.3f} at L={p['train_length']} "
                   f"(95% CI [{summary.ci_low:.3f}, {summary.ci_high:.3f}]), control bar {claim.threshold_text}")


# --------------------------------------------------------------------------------------------
# learning controls
# --------------------------------------------------------------------------------------------

@pytest.mark.claim(CONTROL)
@pytest.mark.parametrize("name", MODELS)
def test_model_learns_in_window_recall(name, claim, claim_record, scale):
    p = _protocol(scale)
    runs = protocol_runs(scale)[name]
    length = p["train_length"]
    accuracies = [_accuracy(r, length) for r in runs]
    summary = mean_ci([a if not math.isnan(a) else 0.0 for a in accuracies])
    claim_record.value(f"accuracy_{name}_L{length}", summary)
    claim_record.seeds([r.run.seed for r in runs])
    for r in runs:
        if r.curve:
            steps, acc = zip(*r.curve)
            claim_record.curve(f"{name}, seed {r.run.seed}", list(steps), list(acc), panel=name,
                               series=f"seed {r.run.seed}", xlabel="training step", ylabel="validation accuracy",
                               ylim=[0, 1], hline=claim.threshold, hline_label="control threshold", model=name,
                               seed=r.run.seed)
    first, _ = _first_stage(p, (name,))
    grid = {lr: o for (_, lr), o in zip(first, run_trainings(first.values()))}
    claim_record.note(f"{name}: lr grid, seed-0 validation accuracy (steps trained): " + ", ".join(
        f"{lr:g}: {'diverged' if o.diverged else f'{o.validation:.3f}'} ({o.steps_done})" for lr, o in grid.items()))
    _record_cost(claim_record, name, runs, p["eval_lengths"])
    claim_record.note(f"{name}: lr {runs[0].run.lr:g}, {runs[0].parameters:,} non-embedding parameters, "
                      f"training {np.mean([r.tokens_per_s for r in runs]):,.0f} tokens/s per worker, "
                      f"wall time by seed {[round(r.seconds) for r in runs]} s, "
                      f"steps trained by seed {[r.steps_done for r in runs]} (stopping rule met: "
                      f"{[r.run.seed for r in runs if r.stopped_early]}), "
                      f"diverged seeds {[r.run.seed for r in runs if r.diverged]}, accuracy by seed "
                      f"{[round(a, 3) for a in accuracies]}")
    assert not any(r.diverged for r in runs), f"{CONTROL} [{name}]: runs diverged: {[r.run.seed for r in runs if r.diverged]}"
    _settle(claim, summary, what=name)


# --------------------------------------------------------------------------------------------
# trained comparisons
# --------------------------------------------------------------------------------------------


def _require_learned(*names: str, scale: str) -> None:
    failed = [why for ok, why in (control_verdict(n, scale) for n in names) if not ok]
    if _OPTIONS["smoke_grid"]:
        pytest.skip(f"{SMOKE_GRID_REASON} (controls: {'; '.join(failed) or 'passed'})")
    if failed:
        inconclusive("did not learn: " + "; ".join(failed))


def _points(outcome, length: int) -> float:
    return 100.0 * _accuracy(outcome, length)


def _seed_band(per_seed: list) -> tuple[list, list, list]:
    """``(mean, low, high)`` over seeds at each x of ``per_seed`` (a list of per-seed lists): the
    mean and its 95% interval (the mean where there is no interval; NaN entries dropped)."""
    mean, low, high = [], [], []
    for column in zip(*per_seed):
        values = [v for v in column if not math.isnan(v)]
        summary = mean_ci(values) if values else None
        m = float("nan") if summary is None else summary.mean
        mean.append(m)
        low.append(m if summary is None or summary.ci_low is None else summary.ci_low)
        high.append(m if summary is None or summary.ci_high is None else summary.ci_high)
    return mean, low, high


def _record_length_curves(claim_record, runs: dict, lengths: list, models, row: str) -> None:
    """Accuracy against evaluation length, mean over seeds with its 95% band: one panel per row
    (``row``), one curve per model it compares, coloured by model across the rows' panels."""
    for name in models:
        mean, low, high = _seed_band([[_points(r, L) for L in lengths] for r in runs[name]])
        claim_record.curve(f"{name} ({row} row)", lengths, mean, y_low=low, y_high=high, panel=f"{row} row",
                           series=name, xlabel="evaluation length (tokens)", ylabel="far-pointer accuracy (%)",
                           xscale="log2", ylim=[0, 100], model=name)


def _distance_edges(length: int) -> list:
    """Octave bins of needle distance up to ``length``: ``[0, 8, 16, ..., length]``."""
    edges, edge = [0], 8
    while edge < length:
        edges.append(edge)
        edge *= 2
    return edges + [length]


def _points_within(outcome, length: int, lo: float, hi: float) -> float:
    """Accuracy (points) of ``outcome`` at ``length`` on the needles at distance in ``(lo, hi]``
    (NaN if there are none, or the run diverged)."""
    cells = [(acc, n) for d, (acc, n) in outcome.accuracy_by.get(length, {}).items() if lo < d <= hi]
    total = sum(n for _, n in cells)
    return 100.0 * sum(acc * n for acc, n in cells) / total if total else float("nan")


def _binned_points(outcome, length: int, edges: list) -> list:
    """Accuracy (points) of ``outcome`` at ``length`` per distance bin ``(lo, hi]`` (NaN if empty)."""
    return [_points_within(outcome, length, lo, hi) for lo, hi in zip(edges[:-1], edges[1:])]


def _record_distance_curves(claim_record, runs: dict, length: int, models, row: str, window: int) -> None:
    """Accuracy against needle distance at evaluation length ``length``, mean over seeds with its
    95% band, one curve per model (x: each octave bin's upper edge; the window dashed)."""
    edges = _distance_edges(length)
    for name in models:
        mean, low, high = _seed_band([_binned_points(r, length, edges) for r in runs[name]])
        claim_record.curve(f"{name} by distance at L={length} ({row} row)", edges[1:], mean, y_low=low, y_high=high,
                           panel=f"{row} row, by distance at L={length}", series=name,
                           xlabel="needle distance (tokens, octave bins)", ylabel="far-pointer accuracy (%)",
                           xscale="log2", ylim=[0, 100], vline=window, vline_label="window", model=name)


def _record_cost(claim_record, name: str, runs: list, lengths: list) -> None:
    """The trained model's forward cost beside its accuracy: tokens/s and peak memory of a forward
    pass of the run's ``cost_batch`` sequences at each evaluation length (mean over seeds), one
    curve per model in two shared panels, and the numbers in a note."""
    measured = [r for r in runs if r.cost]
    if not measured:
        return
    speed = [float(np.mean([r.cost[L]["tokens_per_s"] for r in measured])) for L in lengths]
    peak = [float(np.mean([r.cost[L]["peak_bytes"] for r in measured])) for L in lengths]
    accuracy = [float(np.mean([_points(r, L) for r in runs])) for L in lengths]
    batch = measured[0].run.cost_batch
    claim_record.curve(f"{name} forward tokens/s", lengths, speed, panel="trained models: forward tokens/s",
                       series=name, xlabel="evaluation length (tokens)", ylabel=f"tokens/s (batch {batch})",
                       xscale="log2", yscale="log", model=name)
    claim_record.curve(f"{name} forward peak memory", lengths, peak, panel="trained models: forward peak memory",
                       series=name, xlabel="evaluation length (tokens)", ylabel="peak memory above resident",
                       yunit="bytes", xscale="log2", yscale="log", model=name)
    claim_record.note(f"{name} cost beside accuracy (mean over seeds; forward pass of {batch} sequences, timed in "
                      "its training worker after training, while other workers may still train): " + "; ".join(
                          f"L={L}: {a:.1f}% accuracy, {v:,.0f} tokens/s, {b / 2**20:.2f} MiB"
                          for L, a, v, b in zip(lengths, accuracy, speed, peak)))


@pytest.mark.claim("trained.titans-vs-transformer-moderate")
@pytest.mark.parametrize("variant", TITANS)
def test_titans_close_to_transformer_at_moderate_length(variant, claim, claim_record, scale):
    p = _protocol(scale)
    runs = protocol_runs(scale)
    length = p["train_length"]
    gaps = [_points(a, length) - _points(b, length) for a, b in zip(runs[variant], runs["transformer"])]
    claim_record.value(f"{variant}_minus_transformer_points_L{length}", mean_ci(gaps), unit="accuracy points")
    claim_record.seeds(p["seeds"])
    _record_length_curves(claim_record, runs, p["eval_lengths"], (variant, "transformer"), variant)
    _require_learned(variant, "transformer", scale=scale)
    _settle(claim, mean_ci(gaps), what=variant)


# Rows measured not to reproduce at CI scale: strict xfail there only (the reason says what the
# measurement shows; the run's numbers are in the assertion and the report).
_NO_CARRY = ("trained at L=64, where every needle lies inside the window, {name}'s memory does not carry "
             "the needle beyond the reach of its windows: on needles farther than two windows it is at "
             "chance, like sliding-window attention (curves by distance)")
BEYOND_WINDOW_NOT_REPRODUCED = {
    "mag": _NO_CARRY.format(name="MAG") + ", so at 4x the window it does not exceed SWA.",
    "mal": _NO_CARRY.format(name="MAL") + "; between one and two windows, where SWA's stacked windows "
           "still reach, MAL already falls, so at 4x the window it recalls less than SWA.",
}
BEYOND_REACH_NOT_REPRODUCED = {name: _NO_CARRY.format(name=name.upper()) + "." for name in ("mag", "mal")}


def _marked(rows: dict):
    """The Titans variants as parameters, the rows of ``rows`` with their CI-scale not-reproduced marker."""
    return [pytest.param(v, marks=pytest.mark.not_reproduced("ci", reason=rows[v])) if v in rows else v
            for v in TITANS]


@pytest.mark.claim("failure.benchmark-sensitivity")
@pytest.mark.parametrize("variant", _marked(BEYOND_WINDOW_NOT_REPRODUCED))
def test_titans_advantage_beyond_the_window(variant, claim, claim_record, scale):
    p = _protocol(scale)
    runs = protocol_runs(scale)
    far = 4 * p["window"]
    if far not in p["eval_lengths"]:
        pytest.fail(f"the protocol must evaluate at 4x the window ({far})")
    advantage = [_points(a, far) - _points(b, far) for a, b in zip(runs[variant], runs["transformer_swa"])]
    claim_record.value(f"{variant}_minus_swa_points_L{far}", mean_ci(advantage), unit="accuracy points")
    claim_record.seeds(p["seeds"])
    for length in p["eval_lengths"]:
        for other in ("transformer_swa", "transformer", "retnet"):
            gap = [_points(a, length) - _points(b, length) for a, b in zip(runs[variant], runs[other])]
            claim_record.value(f"{variant}_minus_{other}_L{length}", mean_ci(gap), unit="accuracy points")
    compared = (variant, "transformer_swa", "transformer", "retnet")
    _record_length_curves(claim_record, runs, p["eval_lengths"], compared, variant)
    _record_distance_curves(claim_record, runs, max(p["eval_lengths"]), compared, variant, p["window"])
    _require_learned(variant, "transformer_swa", scale=scale)
    _settle(claim, mean_ci(advantage), what=variant)


@pytest.mark.claim("trained.recall-beyond-reach")
@pytest.mark.parametrize("variant", _marked(BEYOND_REACH_NOT_REPRODUCED))
def test_titans_recall_beyond_the_reach_of_the_window(variant, claim, claim_record, scale):
    p = _protocol(scale)
    runs = protocol_runs(scale)
    length = max(p["eval_lengths"])
    reach = model_args("transformer_swa", p["size"]).n_layers * p["window"]
    sanity(length > reach, f"the longest evaluation length {length} must exceed the windows' reach {reach}")
    points = {m: [_points_within(r, length, reach, math.inf) for r in runs[m]]
              for m in (variant, "transformer_swa", "retnet", "transformer")}
    advantage = [a - b for a, b in zip(points[variant], points["transformer_swa"])]
    claim_record.value(f"{variant}_minus_swa_points_beyond_{reach}_L{length}", mean_ci(advantage),
                       unit="accuracy points")
    for other in ("retnet", "transformer"):
        claim_record.value(f"{variant}_minus_{other}_points_beyond_{reach}_L{length}",
                           mean_ci([a - b for a, b in zip(points[variant], points[other])]), unit="accuracy points")
    claim_record.seeds(p["seeds"])
    claim_record.note(f"accuracy (%) on needles beyond {reach} tokens at L={length}, by seed: " + "; ".join(
        f"{m} {[round(v, 1) for v in values]}" for m, values in points.items()))
    _record_distance_curves(claim_record, runs, length, tuple(points), variant, p["window"])
    _require_learned(variant, "transformer_swa", scale=scale)
    _settle(claim, mean_ci(advantage), what=variant)


def needle_write_ratio(utilization: dict | None) -> float:
    """The ``trained.surprise-writes`` metric of one run: per sequence, the write strength
    θ_t‖∇ℓ_t‖ averaged over layers and heads at each token, its mean at the needle's three tokens
    (``KEY k v``) over its median over the tokens; the geometric mean over the sequences (NaN
    without utilization)."""
    if utilization is None:
        return float("nan")
    per_token = np.asarray(utilization["write_strength"], dtype=np.float64).mean(axis=(1, 2))  # (B, T)
    ratios = [per_token[b, p:p + 3].mean() / np.median(per_token[b]) for b, p in enumerate(utilization["needle_pos"])]
    return float(np.exp(np.mean(np.log(ratios))))


def _draw_trained_heatmaps(report_figure, runs: dict, length: int, size: str) -> None:
    """The memory-utilization heatmaps of each Titans variant's seed-0 control run."""
    from titans.reporting import figures

    results = [dict(runs[m][0].utilization, model=m.upper()) for m in TITANS if runs[m][0].utilization]
    if results:
        title = (f"Memory utilization of the trained {size} Titans (seed 0, learning-control runs) on one "
                 f"{length}-token far-pointer evaluation sequence (dashed: needle and query)")
        report_figure("Memory utilization of the trained models (trained.surprise-writes)",
                      "memory-utilization-trained", lambda: figures.memory_utilization_figure(results, title))


@pytest.mark.claim(SURPRISE)
@pytest.mark.parametrize("variant", TITANS)
def test_trained_memory_writes_the_needle_strongly(variant, claim, claim_record, scale, report_figure):
    p = _protocol(scale)
    runs = protocol_runs(scale)
    ratios = [needle_write_ratio(r.utilization) for r in runs[variant]]
    measured = [r for r in ratios if not math.isnan(r)]
    if measured:
        claim_record.value(f"needle_write_strength_over_median_{variant}", mean_ci(measured))
    claim_record.seeds([r.run.seed for r in runs[variant]])
    claim_record.note(f"{variant}: ratio by seed {[round(r, 3) for r in ratios]} (NaN: no utilization or a zero "
                      f"median) on {_scale_protocol(SURPRISE, scale)['examples']} sequences of "
                      f"{max(p['eval_lengths'])} tokens")
    if variant == TITANS[0]:
        _draw_trained_heatmaps(report_figure, runs, max(p["eval_lengths"]), p["size"])
    _require_learned(variant, scale=scale)
    if len(measured) < len(ratios):
        missing = [r.run.seed for r, x in zip(runs[variant], ratios) if math.isnan(x)]
        inconclusive(f"{variant}: no ratio for seeds {missing}")
    _settle(claim, mean_ci(measured), what=variant)


# --------------------------------------------------------------------------------------------
# training stability, both ways
# --------------------------------------------------------------------------------------------


def unstable(losses, warmup: int) -> bool:
    """Non-finite, or a spike above twice the running minimum after warm-up (the registry metric)."""
    losses = np.asarray(losses, dtype=np.float64)
    if not np.all(np.isfinite(losses)):
        return True
    running_min = np.minimum.accumulate(losses)
    return bool(np.any(losses[warmup:] > 2 * running_min[warmup:]))


def _memory_changes(config: MemoryConfig) -> dict:
    """The options of ``config`` that differ from the defaults (so the size's own options stay)."""
    default = asdict(MemoryConfig())
    return {k: v for k, v in asdict(config).items() if v != default[k]}


INSTABILITY_ROWS = {
    "paper-literal": lambda theta: {"memory": _memory_changes(MemoryConfig.paper(lr_scale=theta))},
    "stabilized": lambda theta: {"memory": _memory_changes(MemoryConfig(lr_scale=theta))},
}
INSTABILITY_NOT_REPRODUCED = {
    "paper-literal": "the paper-literal memory (no normalization inside the memory, unbounded "
                     "momentum) explodes under outer training: repeated keys add their chunk-start "
                     "gradients coherently, and the momentum gate drifts towards 1.",
}


def _instability_grid(row: str, scale: str) -> tuple[list, list]:
    """``(grid, runs)`` of one row of the instability claim: ``(model, θ max, lr, seed)`` cells and
    their runs (the control task, the claim's steps, no learning curve). A ``memory_depth`` beyond
    what the size's parameter budget holds keeps the default model's SwiGLU width (stability, not a
    comparison at matched parameters)."""
    p, proto = _scale_protocol("failure.training-instability", scale), _protocol(scale)
    proto = {**proto, "train_length": p.get("length", proto["train_length"]), "size": p["size"]}
    thetas = p["literal_theta_max"] if row == "paper-literal" else p["stabilized_theta_max"]
    extra = {"depth": p["memory_depth"]} if "memory_depth" in p else {}
    grid = [(m, theta, lr, s) for m in p["models"] for theta in thetas for lr in p["lrs"] for s in p["seeds"]]
    runs = []
    for m, theta, lr, s in grid:
        options = INSTABILITY_ROWS[row](theta)
        options["memory"].update(extra)
        if extra:  # a deeper memory than the size's budget holds: the rest of the model stays as by default
            options["mlp_hidden"] = model_args(m, proto["size"]).mlp_hidden
        runs.append(_run(m, s, lr, proto, steps=p["steps"], model_options=options, curve_every=0, evaluate=False))
    return grid, runs


@pytest.mark.claim("failure.training-instability")
@pytest.mark.parametrize("row", [
    pytest.param(r, marks=pytest.mark.not_reproduced("ci", reason=INSTABILITY_NOT_REPRODUCED[r]))
    if r in INSTABILITY_NOT_REPRODUCED else r for r in INSTABILITY_ROWS])
def test_training_stays_finite(row, claim, claim_record, scale):
    p = _scale_protocol(claim.id, scale)
    grid, runs = _instability_grid(row, scale)
    outcomes = run_trainings(runs)
    flags = [float(unstable(o.losses, min(30, p["steps"] // 2))) for o in outcomes]
    summary = mean_ci(flags)
    claim_record.value(f"fraction of unstable runs ({row})", summary)
    claim_record.seeds(p["seeds"])
    table = {}
    for (m, theta, lr, _), o, f in zip(grid, outcomes, flags):
        cell = table.setdefault((m, theta, lr), [])
        cell.append("diverged@%d" % o.steps_done if o.diverged else ("spike" if f else "ok"))
    claim_record.note(f"{row}: " + "; ".join(f"{m} θmax {theta:g} lr {lr:g}: {', '.join(c)}"
                                             for (m, theta, lr), c in table.items()))
    _settle(claim, summary, what=row)


# --------------------------------------------------------------------------------------------
# full scale only: Table 5 ablations and schedule robustness
# --------------------------------------------------------------------------------------------

ABLATIONS = {
    "weight-decay": {"memory": {"decay": False}},
    "momentum": {"memory": {"momentum": False}},
    "convolution": {"memory": {"conv_kernel": 0}},
    "persistent-memory": {"n_persistent": 0},
    "deep-memory": {"memory": {"depth": 1}},
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "component",
    [pytest.param(c, marks=pytest.mark.claim(f"trained.ablation-{c}")) for c in sorted(ABLATIONS)],
)
def test_ablation_costs_accuracy(component, claim, claim_record, scale):
    """Table 5 direction: removing a component of the LMM raises its validation loss (every run
    trains all its steps: losses are compared at the same step count), each ablated run at the lr
    selected for the full LMM and the same seed."""
    stopping = _scale_protocol(claim.id, scale).get("stop_accuracy") is not None  # the registry switches it off
    full = protocol_runs(scale, models=("lmm",), stopping=stopping)["lmm"]
    p = _protocol(scale)
    if not stopping:
        p["stop_accuracy"] = None
    lr = full[0].run.lr  # the ablated model trains at the lr selected for the full LMM
    ablated = run_trainings([_run("lmm", r.run.seed, lr, p, model_options=ABLATIONS[component]) for r in full])
    claim_record.note(f"{component}: lr {lr:g} (selected for the full LMM)")
    claim_record.seeds([r.run.seed for r in full])
    diverged = {"full": [r.run.seed for r in full if r.diverged], "ablated": [r.run.seed for r in ablated if r.diverged]}
    if any(diverged.values()):
        inconclusive(f"diverged seeds {diverged}: no loss to compare")
    summary = mean_ci([a.validation_loss - f.validation_loss for a, f in zip(ablated, full)])
    claim_record.value("loss_ablated_minus_full", summary, unit="nats/token")
    _settle(claim, summary, what=component)


@pytest.mark.slow
@pytest.mark.claim("reviewer.architecture-vs-schedule")
def test_ranking_holds_across_schedules(claim, claim_record, scale):
    p, proto = _scale_protocol(claim.id, scale), _protocol(scale)
    length = proto["train_length"]
    wins = []
    for lr, steps in p["schedules"]:
        runs = {m: run_trainings([_run(m, s, lr, proto, steps=steps, curve_every=0, measure=False) for s in p["seeds"]])
                for m in (*TITANS, "transformer")}
        for i in range(len(p["seeds"])):
            titans = max(_points(runs[m][i], length) for m in TITANS)
            wins.append(float(titans >= _points(runs["transformer"][i], length)))
    summary = mean_ci(wins)
    claim_record.value("fraction_schedules_titans_ge_transformer", summary)
    claim_record.seeds(p["seeds"])
    _settle(claim, summary)
