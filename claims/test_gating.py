"""Gates of the Titans memory: forgetting α, momentum η, θ scale, and the sensitivity to
memory width, α and chunk (refresh) size. Read-outs and decoding: ``titans/probes/mixers.py``.

Overwrite stream (``gating.forgetting-helps``, ``gating.momentum-helps``; registry notes)
    ``tokens`` steps; at each, with probability ``p_overwrite`` one of ``pool`` keys is re-bound to
    a fresh value, otherwise a fresh random distractor pair is written. At the end every pool key
    is queried for its latest value (candidates: every value written + 64 foils). The pool keys'
    latest writes split into *new* facts (age ≤ the median age) and *old* ones. Every gate setting
    runs on the same streams, in one batch (``row_index``): α ∈ {0} ∪ grid; η ∈ {0, 0.9} at equal
    θ, α; θ × {1/4, 1/2, 1, 2, 4}; and η = 0 at the same total step ``θ/(1 − η)`` (a control
    for the confound that momentum also scales the step). The α that ``gating.forgetting-helps``
    judges is chosen beforehand on dev streams (the same stream at ``mixers.DEV_SEEDS``, which no
    evaluation stream uses), never on the evaluation streams.

Size/refresh grid (``reviewer.memory-size-refresh``)
    ``kv_stream_rebinding`` (16 pairs, 8 re-bound, filler gaps) at width d_k ∈ widths; the
    chunked-parallel form (``memory_scan``) with chunk ∈ chunks and α ∈ alphas; θ, η the recall
    default (θ from the dev task at that width). The token recurrence (chunk 1) is recorded as a
    reference outside the grid.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from claims.registry import CLAIMS
from titans.probes import mixers as M
from titans.reporting import mean_ci
from titans.reporting.verdicts import sanity, settle
from titans.tasks import derived_seed, kv_stream_overwrites, kv_stream_rebinding

FORGET, MOMENTUM, GRID = "gating.forgetting-helps", "gating.momentum-helps", "reviewer.memory-size-refresh"
THETA_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)

# Why a row is measured not to reproduce at CI scale (the mechanism only; the run's numbers are in
# its assertion message and the report).
MECHANISMS = {
    "test_momentum_helps": (
        "At equal theta momentum hurts: eta multiplies every write by up to 1/(1-eta) and overshoots on "
        "this over-capacity stream; the matched-step control (eta 0 at theta/(1-eta)) fails as well, so "
        "the step size, not momentum as such, is the cause (the theta sweep is recorded)."
    ),
    "test_memory_size_refresh": (
        "Fragile in the chunk (refresh) size: the filler keys repeat many times inside a long chunk and "
        "their gradients, all taken at the chunk-start weights, add up coherently, so recall collapses "
        "in those cells while others recall well. The token recurrence (outside the grid) is recorded "
        "beside."
    ),
}


def _conditions(spec: M.MemorySpec, alphas) -> dict[str, dict]:
    c = {f"α={a:g}": dict(alpha=a, eta=spec.eta, theta=spec.theta) for a in [0.0] + list(alphas)}
    c["η=0"] = dict(alpha=0.0, eta=0.0, theta=spec.theta)
    for s in THETA_SCALES:
        if s != 1.0:
            c[f"θ x{s:g}"] = dict(alpha=0.0, eta=spec.eta, theta=spec.theta * s)
    c["η=0, θ/(1-η) matched"] = dict(alpha=0.0, eta=0.0, theta=spec.theta / (1 - spec.eta))
    return c


def _condition_hits(streams, spec: M.MemorySpec, conds: dict, foil_seeds) -> dict:
    """``{condition: hits (streams, pool)}``: every gate setting of ``conds`` on the same streams, in
    one batch (``row_index``); candidates are each stream's values + the foils of ``foil_seeds``."""
    d = streams[0].keys.shape[1]
    K = np.stack([s.keys for s in streams])
    V = np.stack([s.values for s in streams])
    T, n = K.shape[1], len(streams)
    rows = np.tile(np.arange(n), len(conds))
    gate = lambda key: np.repeat(np.asarray([c[key] for c in conds.values()], np.float32), n)[:, None]  # noqa: E731
    Q = np.stack([s.queries for s in streams])[rows]
    with np.errstate(all="ignore"):
        y = M.memory_reads(spec, K, V, [T - 1], Q, seed=0, lr=gate("theta"), momentum=gate("eta"),
                           decay=gate("alpha"), row_index=rows).reads[:, 0]
    cands = [np.concatenate([M.candidate_first_index(s.values)[0], M.foils(f, M.N_FOILS, d)])
             for s, f in zip(streams, foil_seeds)]
    return {name: np.stack([M.is_target(y[i * n + b], cands[b][None], streams[b].targets) for b in range(n)])
            for i, name in enumerate(conds)}


@functools.lru_cache(maxsize=None)
def overwrite_run(scale: str) -> dict:
    cfg = CLAIMS[FORGET].scales[scale]
    d, T, seeds, trials = cfg["d_k"], cfg["tokens"], list(cfg["seeds"]), cfg["trials"]
    streams = [kv_stream_overwrites(d, T, cfg["pool"], cfg["p_overwrite"], derived_seed(s, t, 8))
               for s in seeds for t in range(trials)]
    K = np.stack([s.keys for s in streams])
    V = np.stack([s.values for s in streams])
    spec = M.calibrated(M.TITANS_DEFAULT, d)
    conds = _conditions(spec, cfg["alphas"])
    n = len(streams)
    err = M.check_online_against_memory_scan(spec, K, V)
    sanity(err < 1e-4, f"online_scan disagrees with memory_scan(chunk_size=1): max rel diff {err:.2e}")
    all_hits = _condition_hits(streams, spec, conds, range(n))
    ages = np.stack([s.meta["age"] for s in streams])
    new = ages <= np.median(ages, axis=1, keepdims=True)
    out = {}
    for name, hits in all_hits.items():  # hits (n, pool)
        per_row = lambda mask: np.array([hits[b][mask[b]].mean() if mask[b].any() else np.nan for b in range(n)])  # noqa: E731
        out[name] = dict(all=hits.mean(axis=1).reshape(len(seeds), trials).mean(1),
                         new=np.nanmean(per_row(new).reshape(len(seeds), trials), axis=1),
                         old=np.nanmean(per_row(~new).reshape(len(seeds), trials), axis=1))
    return dict(results=out, conds=conds, seeds=seeds, spec=spec, check=err)


@functools.lru_cache(maxsize=None)
def dev_alpha(scale: str) -> tuple[str, dict]:
    """The α of the registered grid chosen on dev streams: the overwrite stream at the dev seeds
    ``mixers.DEV_SEEDS`` (seeds no evaluation stream uses; foils from the same seeds), best mean
    recall of the latest values (ties: the smaller α). Returns its condition name and the dev
    recall of every α (α = 0 included, for the record)."""
    cfg = CLAIMS[FORGET].scales[scale]
    sanity(cfg["alpha_selection"] == "dev", f"unknown alpha_selection {cfg['alpha_selection']!r}")
    d, T = cfg["d_k"], cfg["tokens"]
    streams = [kv_stream_overwrites(d, T, cfg["pool"], cfg["p_overwrite"], seed) for seed in M.DEV_SEEDS]
    spec = M.calibrated(M.TITANS_DEFAULT, d)
    conds = {f"α={a:g}": dict(alpha=a, eta=spec.eta, theta=spec.theta) for a in [0.0] + list(cfg["alphas"])}
    dev = {name: float(hits.mean()) for name, hits in _condition_hits(streams, spec, conds, M.DEV_SEEDS).items()}
    grid = [f"α={a:g}" for a in cfg["alphas"]]
    return max(grid, key=lambda k: dev[k]), dev  # max keeps the first (smallest α) of equal values


def _record_sweeps(claim_record, run):
    res = run["results"]
    alphas = [k for k in res if k.startswith("α=")]
    for part in ("all", "new", "old"):
        claim_record.curve(f"recall ({part} facts) vs α", [run["conds"][a]["alpha"] for a in alphas],
                           [float(np.mean(res[a][part])) for a in alphas], xlabel="forgetting rate α",
                           ylabel="recall of the latest value", series=f"{part} facts", ylim=[0, 1],
                           panel="vs forgetting rate α", xscale="symlog")
        thetas = ["θ x0.25", "θ x0.5", "α=0", "θ x2", "θ x4"]
        claim_record.curve(f"recall ({part} facts) vs θ scale", list(THETA_SCALES),
                           [float(np.mean(res[t][part])) for t in thetas], xlabel="θ / θ_default",
                           ylabel="recall of the latest value", series=f"{part} facts", ylim=[0, 1],
                           panel="vs θ scale (α = 0)", xscale="log2")
        claim_record.curve(f"recall ({part} facts) vs η", [0.0, run["spec"].eta],
                           [float(np.mean(res["η=0"][part])), float(np.mean(res["α=0"][part]))],
                           xlabel="momentum η (equal θ, α = 0)", ylabel="recall of the latest value",
                           series=f"{part} facts", ylim=[0, 1], panel="vs momentum η (α = 0)")
    best = {part: max(res, key=lambda k: float(np.mean(res[k][part]))) for part in ("all", "new", "old")}
    claim_record.note("best setting: " + ", ".join(f"{p} facts -> {k}" for p, k in best.items())
                      + "; " + "; ".join(f"{k}: all {np.mean(v['all']):.3f} new {np.mean(v['new']):.3f} "
                                         f"old {np.mean(v['old']):.3f}" for k, v in res.items()))
    claim_record.note(f"base {run['spec'].label()}; online vs memory_scan {run['check']:.1e}")


@pytest.mark.claim(FORGET)
def test_forgetting_helps(claim, claim_record, scale):
    run = overwrite_run(scale)
    res = run["results"]
    alphas = [k for k in res if k.startswith("α=") and k != "α=0"]
    chosen, dev = dev_alpha(scale)
    sanity(chosen in alphas, f"the dev-selected {chosen} is not a condition of the evaluation run")
    gain = res[chosen]["all"] - res["α=0"]["all"]
    headline = mean_ci(gain)
    claim_record.value(f"recall(α chosen on dev streams: {chosen}) - recall(α=0)", headline)
    claim_record.seeds(run["seeds"])
    claim_record.value("recall at α=0", mean_ci(res["α=0"]["all"]))
    for a in alphas:
        claim_record.value(f"recall at {a}", mean_ci(res[a]["all"]))
    for a, r in dev.items():
        claim_record.value(f"dev recall at {a} ({len(M.DEV_SEEDS)} dev streams)", r)
    best_eval = max(alphas, key=lambda k: float(np.mean(res[k]["all"])))
    claim_record.value(f"recorded, decides nothing: the best α on the evaluation streams ({best_eval}) - α=0",
                       mean_ci(res[best_eval]["all"] - res["α=0"]["all"]))
    claim_record.note(f"α selected on dev streams (mixers.DEV_SEEDS): {chosen}; evaluated on the "
                      f"{len(run['seeds'])} x trials evaluation streams")
    _record_sweeps(claim_record, run)
    settle(claim, headline, what=chosen)


@pytest.mark.claim(MOMENTUM)
@pytest.mark.not_reproduced("ci", reason=MECHANISMS["test_momentum_helps"])
def test_momentum_helps(claim, claim_record, scale):
    run = overwrite_run(scale)
    res = run["results"]
    gain = res["α=0"]["all"] - res["η=0"]["all"]
    headline = mean_ci(gain)
    claim_record.value(f"recall(η={run['spec'].eta:g}) - recall(η=0), equal θ, α=0", headline)
    claim_record.seeds(run["seeds"])
    claim_record.value("recall with momentum", mean_ci(res["α=0"]["all"]))
    claim_record.value("recall without momentum (equal θ)", mean_ci(res["η=0"]["all"]))
    claim_record.value("recall without momentum at the same total step θ/(1-η)",
                       mean_ci(res["η=0, θ/(1-η) matched"]["all"]))
    _record_sweeps(claim_record, run)
    settle(claim, headline, what=f"η={run['spec'].eta:g} vs η=0")


# --------------------------------------------------------------------------------------------
# reviewer.memory-size-refresh
# --------------------------------------------------------------------------------------------


@pytest.mark.claim(GRID)
@pytest.mark.not_reproduced("ci", reason=MECHANISMS["test_memory_size_refresh"])
def test_memory_size_refresh(claim, claim_record, scale):
    cfg = claim.scales[scale]
    task, seeds, trials = cfg["task"], list(cfg["seeds"]), cfg["trials"]
    cells, reference = {}, {}
    for width in cfg["widths"]:
        streams = [kv_stream_rebinding(width, width, task["n_pairs"], task["n_rebinds"], seed=derived_seed(s, t, width, 9),
                                       gap=task["gap"], tail=task["tail"], haystack=task["haystack"])
                   for s in seeds for t in range(trials)]
        K = np.stack([s.keys for s in streams])
        V = np.stack([s.values for s in streams])
        Q = np.stack([s.queries for s in streams])
        T = K.shape[1]
        cands = [np.concatenate([M.candidate_first_index(s.values)[0], M.foils(b, M.N_FOILS, width)])
                 for b, s in enumerate(streams)]
        spec = M.calibrated(M.TITANS_DEFAULT, width)
        err = M.check_online_against_memory_scan(spec, K, V)  # the reference rows' NumPy recurrence
        sanity(err < 1e-4, f"online_scan disagrees with memory_scan(chunk_size=1) at d_k={width}: "
                           f"max rel diff {err:.2e}")

        def recall(sp):
            with np.errstate(all="ignore"):
                y = M.memory_reads(sp, K, V, [T - 1], Q, seed=0).reads[:, 0]
            hits = np.array([M.is_target(y[b], cands[b][None], s.targets).mean() for b, s in enumerate(streams)])
            return hits.reshape(len(seeds), trials).mean(axis=1)

        for alpha in cfg["alphas"]:
            reference[(width, alpha)] = recall(spec.but(alpha=alpha))
            for chunk in cfg["chunks"]:
                cells[(width, alpha, chunk)] = recall(spec.but(alpha=alpha, chunk=chunk))
    means = {k: float(np.mean(v)) for k, v in cells.items()}
    spread_per_seed = np.max(np.stack(list(cells.values())), axis=0) - np.min(np.stack(list(cells.values())), axis=0)
    high, low = max(means, key=means.get), min(means, key=means.get)
    # per seed, the difference of the two cells whose seed means are extreme: its mean is the
    # registered max - min of the seed-mean cells, and its spread over seeds gives the interval
    headline = mean_ci(cells[high] - cells[low])
    claim_record.value("max - min recall over width x α x chunk (seed-mean cells)", headline)
    claim_record.seeds(seeds)
    claim_record.value("max - min over the grid within each seed", mean_ci(spread_per_seed))
    keys = list(cells)
    claim_record.curve("recall per grid cell", [f"d={w} α={a:g} chunk={c}" for w, a, c in keys],
                       [means[k] for k in keys], xlabel="cell: width d, forgetting α, chunk",
                       ylabel="recall of the latest value", panel="every grid cell",
                       series="recall (seed mean)", ylim=[0, 1])
    for chunk in cfg["chunks"]:
        claim_record.curve(f"recall vs width, chunk {chunk}", list(cfg["widths"]),
                           [float(np.mean([means[(w, a, chunk)] for a in cfg["alphas"]])) for w in cfg["widths"]],
                           xlabel="memory width d_k", ylabel="recall (mean over α)",
                           panel="vs memory width (mean over α)", series=f"chunk {chunk}", xscale="log2", ylim=[0, 1])
    claim_record.note("cells: " + "; ".join(f"d={w} α={a:g} chunk={c}: {means[(w, a, c)]:.3f}" for w, a, c in keys)
                      + " | token recurrence (chunk 1, outside the grid): "
                      + "; ".join(f"d={w} α={a:g}: {np.mean(v):.3f}" for (w, a), v in reference.items()))
    claim_record.note("no setting excluded: 16 pairs + 4 filler keys fit both widths")
    claim_record.note("extreme cells: " + ", ".join(f"{tag} d={w} α={a:g} chunk={c}"
                                                     for tag, (w, a, c) in (("highest", high), ("lowest", low))))
    settle(claim, headline, what="highest - lowest cell")
