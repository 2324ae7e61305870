"""Recall vs distance of the token mixers at 8k-64k+: Titans memory vs attention vs
retention, fixed untrained projections (read-outs and decoding: ``titans/probes/mixers.py``).

Far-pointer rows (``kv_stream_far_pointer``, shared by five claims)
    For each length ``L`` of ``recall.far-pointer-titans`` the needle sits at ``p = L-1-D``
    (``D`` = the largest registered distance below ``L``, over the distances of every claim read
    on these rows) and the row is read after steps ``p + d`` for each distance ``d ≤ D`` (plus
    ``d = 1, 16`` for the curves): by causality, the read at ``p + d`` is exactly the far-pointer
    query of a stream of length ``p + d + 1``. ``trials`` rows per seed and length, different
    needles and haystacks per row. Three haystacks, paired (a row's needle is the same in each):

    * ``filler``: 4 pairs repeated in a cycle (the registered haystack);
    * ``needles``: the filler with ``n_distractors`` distinct novel pairs at random steps
      (interference from other facts, within the memories' O(d_k) capacity);
    * ``random``: a fresh pair every step (recorded, not judged: at the registered distances more
      fresh pairs follow the needle than these memories can hold, which is
      ``recall.random-haystack-capacity``'s question).

    Mixers read on the same rows:

    * Titans memory ``L_M = 1`` and ``L_M = 2`` (hidden ``2 d_k``), η 0.9, α 0, in two forms: the
      token recurrence (chunk 1) and the chunked-parallel form the models use (chunk 64,
      ``memory_scan``), θ from the dev task for each depth and form (``mixers.calibrated``);
    * MAC-style hybrid (memory token in the window's softmax, logit ``0.75 τ``) with each memory;
    * on the filler haystack also full softmax attention and sliding-window attention (QKNorm
      temperature ``log2(L² − L)``) and RetNet retention (8 heads, mean-cosine decoding).

    Claims: ``recall.far-pointer-titans`` (one row per memory depth, form and judged haystack),
    ``abstract.long-context-recall`` (hybrid with the ``L_M = 2`` memory, the Titans default depth;
    one row per form and judged haystack), ``recall.swa-beyond-window``, ``abstract.beyond-quadratic``
    and ``recall.retnet-fades`` (filler, token recurrence).

Random haystack, capacity (``haystack="random"``)
    ``recall.random-haystack-capacity``: one row per trial with the needle ``max_distance`` steps
    before the end, the memory read after every step up to 128 writes later and at 192 .. 4096.

Every per-seed number is the mean over that seed's trials; headlines are mean ± 95% CI over seeds.
"""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest

from claims.registry import CLAIMS
from titans.probes import mixers as M
from titans.reporting import mean_ci
from titans.reporting.verdicts import SanityError, sanity, settle
from titans.tasks import derived_seed, kv_stream_far_pointer

FP, SWA, HYB, RET, CAP = (
    "recall.far-pointer-titans",
    "recall.swa-beyond-window",
    "abstract.long-context-recall",
    "recall.retnet-fades",
    "recall.random-haystack-capacity",
)
CURVE_EXTRA_DISTANCES = (1, 16)
ROW_BYTES_BUDGET = 1.5e9  # keys + values + queries of the rows processed together

# Why a row is measured not to reproduce at CI scale (the mechanism only; the run's numbers are in
# its assertion message and the report).
MECHANISMS = {
    "test_retnet_fades": (
        "RetNet does not recall on the filler haystack even at the shortest distance, so nothing can "
        "fade: without a delta rule the repeated filler keys accumulate in every head (crosstalk ~ "
        "horizon x |q.k_filler|) and swamp the needle even inside the fastest head's horizon. Its "
        "short-range recall on the random haystack is in the curves of recall.random-haystack-capacity."
    ),
    "test_random_haystack_capacity": (
        "At the dev-task theta with eta 0.9 each write moves a unit key's read-out by 2 theta/(1-eta), "
        "which overshoots when it exceeds 1, so on a stream of novel pairs the matrix memory does not "
        "reach the recall bar at the registered distances; smaller thetas write too weakly (the capacity "
        "per theta of the dev grid is recorded). Offline, with several passes, the matrix memory does "
        "hold O(d_k) pairs (capacity.matrix-dk)."
    ),
}


CHUNK_FORMS = {1: "token recurrence", 64: "chunk 64"}


def _haystacks(scale: str) -> list[str]:
    """Every haystack the far-pointer claims judge or record (filler first)."""
    names = []
    for cid in (FP, HYB):
        cfg = CLAIMS[cid].scales[scale]
        names += [h for h in list(cfg["haystacks"]) + list(cfg["recorded_haystacks"]) if h not in names]
    return names


@functools.lru_cache(maxsize=None)
def haystack_run(scale: str, haystack: str) -> dict:
    """All mixers on one haystack at every (length, distance) of the far-pointer claims."""
    fp = CLAIMS[FP].scales[scale]
    swa, hyb, ret = (CLAIMS[c].scales[scale] for c in (SWA, HYB, RET))
    d_k, seeds, trials = fp["d_k"], list(fp["seeds"]), fp["trials"]
    distances = sorted(set(fp["distances"]) | set(swa["distances"]) | set(hyb["distances"])
                       | set(ret["distances"]))
    chunks = sorted(set(fp["chunks"]) | set(hyb["chunks"]))
    specs = M.recall_specs(d_k, chunks=chunks)
    windows = {"SWA": swa["window"], "hybrid": hyb["window"]}
    mixers = [M.hybrid_name(name) for name in specs]
    if haystack == "filler":
        mixers = ["attention", "SWA", "RetNet"] + mixers
    options = {"n_needles_distractor": fp["n_distractors"]} if haystack == "needles" else {}
    start = time.perf_counter()
    cells: dict = {}  # (mixer, L, d) -> per-seed accuracy
    chances: dict = {}  # (mixer, L, d) -> per-seed chance level
    nonfinite: dict = {}  # (memory, L, d) -> per-seed fraction of rows whose read-out is not finite
    checks = {}
    for length in fp["lengths"]:
        try:
            res = M.recall_vs_distance(length, distances, d_k=d_k, seeds=seeds, trials=trials, haystack=haystack,
                                       specs=specs, mixers=mixers, windows=windows,
                                       extra_distances=CURVE_EXTRA_DISTANCES, row_bytes=ROW_BYTES_BUDGET,
                                       stream_options=options)
        except RuntimeError as err:  # the stream generator broke its contract
            raise SanityError(str(err)) from err
        # every length checks the NumPy forms on its own rows; the worst disagreement is reported
        checks = {k: max(v, checks.get(k, 0.0)) for k, v in res["checks"].items()}
        for name, per_seed in res["recall"].items():
            for j, d in enumerate(res["distances"]):
                cells[(name, length, d)] = per_seed[:, j]
                chances[(name, length, d)] = res["chance"][name][:, j]
        for name, per_seed in res["nonfinite"].items():
            for j, d in enumerate(res["distances"]):
                nonfinite[(name, length, d)] = per_seed[:, j]
    return dict(cells=cells, chances=chances, nonfinite=nonfinite, seeds=seeds, lengths=list(fp["lengths"]),
                checks=checks, specs=specs, seconds=time.perf_counter() - start, d_k=d_k, haystack=haystack,
                options=options)


def filler_run(scale: str) -> dict:
    """The registered haystack's run, read by the filler-only claims."""
    return haystack_run(scale, "filler")


def _grid(run, name, distances):
    """[(L, d)] cells of ``name`` that exist in ``run`` for the given distances."""
    return [(L, d) for L in run["lengths"] for d in distances if (name, L, d) in run["cells"]]


def _record_curves(claim_record, run, names):
    for name in names:
        for L in run["lengths"]:
            ds = sorted(d for (n, l, d) in run["cells"] if n == name and l == L)
            ys = [float(np.mean(run["cells"][(name, L, d)])) for d in ds]
            suffix = "" if run["haystack"] == "filler" else f", {run['haystack']} haystack"
            claim_record.curve(f"{name} @ L={L}{suffix}", ds, ys, xlabel="distance (writes between needle and query)",
                               ylabel="recall accuracy", xscale="log", panel=f"{run['haystack']} haystack",
                               mixer=name, length=L, haystack=run["haystack"])


def _check_note(claim_record, run):
    claim_record.note("NumPy recurrence vs memory_scan(chunk_size=1) / closed-form retention vs "
                      "retention_recurrent, max relative difference: "
                      + ", ".join(f"{k} {v:.1e}" for k, v in run["checks"].items()))
    for k, v in run["checks"].items():
        sanity(v < 1e-4, f"{k}: read-out helper disagrees with the repo's op ({v:.2e})")


def _min_over_cells(run, name, cells) -> np.ndarray:
    """Per seed, the minimum recall over the given (L, d) cells."""
    return np.min(np.stack([run["cells"][(name, L, d)] for L, d in cells]), axis=0)


def _record_recorded_haystacks(claim_record, claim, scale, name, cells_of, memory):
    """The haystacks a claim records without judging: min recall over its cells, the fraction of
    the memory's read-outs that are not finite, and curves. The NumPy recurrence's check is noted,
    not required: it is the same code the judged haystacks check, and it reads NaN when the memory
    diverges within the checked prefix."""
    for hay in claim.scales[scale]["recorded_haystacks"]:
        run = haystack_run(scale, hay)
        cells = cells_of(run)
        claim_record.value(f"recorded, not judged: min recall, {name}, {hay} haystack",
                           mean_ci(_min_over_cells(run, name, cells)))
        claim_record.value(f"recorded, not judged: fraction of {memory} read-outs not finite, {hay} haystack",
                           float(np.mean([run["nonfinite"][(memory, *c)] for c in cells])))
        claim_record.note(f"{hay} haystack (recorded): NumPy recurrence vs memory_scan(chunk_size=1) "
                          + ", ".join(f"{k} {v:.1e}" for k, v in run["checks"].items()))
        _record_curves(claim_record, run, [name])


# Rows: (memory depth, chunk, haystack). Measured not to reproduce at CI scale (reasons: mechanism only).
_CHUNK64_REASON = (
    "The chunked form takes every gradient inside a 64-token chunk at the chunk-start weights, so "
    "the few repeated haystack keys are written many times with the same stale gradient; their "
    "writes add coherently, overshoot and the memory diverges (its weights grow without bound; the "
    "fraction of non-finite read-outs is recorded), and the hybrid's memory token then swamps even "
    "the in-window attention. At every "
    "theta of the dev grid the chunked memory also fails the dev task (recorded). The token "
    "recurrence solves the filler rows.")
_NEEDLES_REASON = (
    "The dev task (a repeated filler) picks a theta whose single write moves a unit key's read-out by "
    "2 theta/(1-eta) > 1: novel distractor pairs written after the needle are stored with an overshoot "
    "whose residue, through non-orthogonal keys, corrupts the needle's read-out.")


def _row_marks(chunk: int, haystack: str) -> list:
    """The CI-scale not-reproduced marker of a (memory form, haystack) row, if it has one."""
    if chunk != 1:
        return [pytest.mark.not_reproduced("ci", reason=_CHUNK64_REASON)]
    if haystack == "needles":
        return [pytest.mark.not_reproduced("ci", reason=_NEEDLES_REASON)]
    return []


def _rows(depths):
    """Parameters ``(depth, chunk, haystack)`` (``depths`` = None: ``(chunk, haystack)``) over the
    memory forms and the judged haystacks, each with its CI-scale marker."""
    rows = []
    for depth in depths or (None,):
        for chunk, form in CHUNK_FORMS.items():
            for hay in ("filler", "needles"):
                values = (chunk, hay) if depth is None else (depth, chunk, hay)
                prefix = "" if depth is None else f"L_M={depth}-"
                rows.append(pytest.param(*values, marks=_row_marks(chunk, hay),
                                         id=f"{prefix}{form.replace(' ', '-')}-{hay}"))
    return rows


# --------------------------------------------------------------------------------------------
# recall.far-pointer-titans
# --------------------------------------------------------------------------------------------


@pytest.mark.claim(FP)
@pytest.mark.parametrize("depth, chunk, haystack", _rows(depths=(1, 2)))
def test_far_pointer_titans(depth, chunk, haystack, claim, claim_record, scale):
    cfg = claim.scales[scale]
    if depth not in cfg["depths"] or chunk not in cfg["chunks"] or haystack not in cfg["haystacks"]:
        pytest.skip(f"depth {depth}, chunk {chunk}, {haystack} haystack: not a row of this scale's protocol")
    run = haystack_run(scale, haystack)
    name = M.memory_name(depth, chunk)
    cells_of = lambda r: _grid(r, name, cfg["distances"])  # noqa: E731
    cells = cells_of(run)
    per_seed = _min_over_cells(run, name, cells)
    headline = mean_ci(per_seed)
    claim_record.value(f"min recall over (length, distance), {name}, {haystack} haystack", headline)
    claim_record.seeds(run["seeds"])
    for L in run["lengths"]:
        mine = [c for c in cells if c[0] == L]
        if mine:
            claim_record.value(f"min recall at L={L}", mean_ci(_min_over_cells(run, name, mine)))
    claim_record.value("fraction of read-outs not finite (diverged memory)",
                       float(np.mean([run["nonfinite"][(name, *c)] for c in cells])))
    if haystack == "filler":
        _record_recorded_haystacks(claim_record, claim, scale, name, cells_of, name)
    worst = min(cells, key=lambda c: float(np.mean(run["cells"][(name, *c)])))
    spec = run["specs"][name]
    claim_record.note(f"{name}: {spec.label()} (θ from the dev task {M.calibration_record(spec, run['d_k'])}); "
                      f"{haystack} haystack {run['options'] or ''}; worst cell L={worst[0]}, d={worst[1]}; "
                      f"run time {run['seconds']:.1f}s")
    _check_note(claim_record, run)
    _record_curves(claim_record, run, [name])
    settle(claim, headline, what=f"{name}, {haystack} haystack")


# --------------------------------------------------------------------------------------------
# recall.swa-beyond-window
# --------------------------------------------------------------------------------------------


@pytest.mark.claim(SWA)
def test_swa_beyond_window(claim, claim_record, scale):
    run = filler_run(scale)
    window = claim.scales[scale]["window"]
    cells = [c for c in _grid(run, "SWA", claim.scales[scale]["distances"]) if c[1] > window]
    sanity(cells, "no registered distance beyond the window was read")
    excess = np.stack([run["cells"][("SWA", *c)] - run["chances"][("SWA", *c)] for c in cells])
    headline = mean_ci(np.max(excess, axis=0))
    claim_record.value("max over distances > window of (recall - chance)", headline)
    claim_record.seeds(run["seeds"])
    inside = [c for c in _grid(run, "SWA", [1, 16, 64]) if c[1] < window]
    claim_record.value("SWA recall inside the window (d <= 64)",
                       mean_ci(np.mean(np.stack([run["cells"][("SWA", *c)] for c in inside]), axis=0)))
    claim_record.value("chance (mean)", float(np.mean([run["chances"][("SWA", *c)] for c in cells])))
    claim_record.note(f"window {window}; attention temperature log2(L^2 - L); full attention recorded alongside")
    _record_curves(claim_record, run, ["SWA", "attention"])
    settle(claim, headline, what=f"SWA, window {window}")


# --------------------------------------------------------------------------------------------
# abstract.long-context-recall (MAC-style hybrid)
# --------------------------------------------------------------------------------------------


@pytest.mark.claim(HYB)
@pytest.mark.parametrize("chunk, haystack", _rows(depths=None))
def test_long_context_recall_hybrid(chunk, haystack, claim, claim_record, scale):
    cfg = claim.scales[scale]
    if chunk not in cfg["chunks"] or haystack not in cfg["haystacks"]:
        pytest.skip(f"chunk {chunk}, {haystack} haystack: not a row of this scale's protocol")
    run = haystack_run(scale, haystack)
    window = cfg["window"]
    memory = M.memory_name(2, chunk)
    name, name1 = M.hybrid_name(memory), M.hybrid_name(M.memory_name(1, chunk))
    cells_of = lambda r: [c for c in _grid(r, name, cfg["distances"]) if c[1] > window]  # noqa: E731
    cells = cells_of(run)
    sanity(cells, "no registered distance beyond the window was read")
    headline = mean_ci(_min_over_cells(run, name, cells))
    claim_record.value(f"min hybrid recall beyond the window ({memory}), {haystack} haystack", headline)
    claim_record.seeds(run["seeds"])
    claim_record.value("same with the L_M=1 memory", mean_ci(_min_over_cells(run, name1, cells)))
    claim_record.value(f"fraction of {memory} read-outs not finite (diverged memory)",
                       float(np.mean([run["nonfinite"][(memory, *c)] for c in cells])))
    inside = _grid(run, name, [1, 16, 64])
    claim_record.value("hybrid recall inside the window (d <= 64)",
                       mean_ci(np.mean(np.stack([run["cells"][(name, *c)] for c in inside]), axis=0)))
    if haystack == "filler":
        swa = np.max(np.stack([run["cells"][("SWA", *c)] for c in cells]), axis=0)
        claim_record.value("SWA alone beyond the window (max)", mean_ci(swa))
        _record_recorded_haystacks(claim_record, claim, scale, name, cells_of, memory)
    claim_record.note(f"window {window}; memory token logit {M.HYBRID_KAPPA} x temperature (titans/probes/mixers.py); "
                      f"{memory}: {run['specs'][memory].label()}; {haystack} haystack {run['options'] or ''}")
    _record_curves(claim_record, run, [name, name1] + (["SWA"] if haystack == "filler" else []))
    settle(claim, headline, what=f"{name}, {haystack} haystack")


# --------------------------------------------------------------------------------------------
# recall.retnet-fades
# --------------------------------------------------------------------------------------------


@pytest.mark.claim(RET)
@pytest.mark.not_reproduced("ci", reason=MECHANISMS["test_retnet_fades"])
def test_retnet_fades(claim, claim_record, scale):
    run = filler_run(scale)
    cfg = claim.scales[scale]
    shortest = min(cfg["distances"])
    near = np.mean(np.stack([run["cells"][("RetNet", *c)] for c in _grid(run, "RetNet", [shortest])]), axis=0)
    far_cells = _grid(run, "RetNet", [d for d in cfg["distances"] if d >= 4 * cfg["horizon"]])
    sanity(far_cells, "no registered distance beyond 4 x horizon was read")
    far = np.max(np.stack([run["cells"][("RetNet", *c)] - run["chances"][("RetNet", *c)]
                           for c in far_cells]), axis=0)
    headline = mean_ci(near - far)
    claim_record.value("recall(d=shortest) - max beyond 4x horizon of (recall - chance)", headline)
    claim_record.seeds(run["seeds"])
    claim_record.value(f"RetNet recall at d={shortest}", mean_ci(near))
    claim_record.value("RetNet max (recall - chance) beyond 4x horizon", mean_ci(far))
    best_any = max(float(np.mean(run["cells"][("RetNet", *c)])) for c in _grid(run, "RetNet", range(0, 10**7)))
    claim_record.value("RetNet best recall at any distance read", best_any)
    claim_record.note(f"{M.RETNET_HEADS} heads gamma_h = 1 - 2^(-5-h), identity projections, mean-cosine decoding")
    _record_curves(claim_record, run, ["RetNet"])
    settle(claim, headline, what="RetNet")


# --------------------------------------------------------------------------------------------
# recall.random-haystack-capacity
# --------------------------------------------------------------------------------------------

DENSE = list(range(1, 129)) + [192, 256, 384, 512, 1024, 2048, 4096]
SPARSE = [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 256, 1024, 4096]


@functools.lru_cache(maxsize=None)
def random_run(scale: str) -> dict:
    cfg = CLAIMS[CAP].scales[scale]
    d_k, length, D, trials, seeds = cfg["d_k"], cfg["length"], cfg["max_distance"], cfg["trials"], list(cfg["seeds"])
    p = length - 1 - D
    dense = [d for d in DENSE if d <= D]
    sparse = [d for d in SPARSE if d <= D]
    rows = [(seed, trial) for seed in seeds for trial in range(trials)]
    row_seeds = [derived_seed(seed, length, trial, 2) for seed, trial in rows]
    streams = [kv_stream_far_pointer(d_k, d_k, length, p / (length - 1), "random", seed=rs) for rs in row_seeds]
    sanity(all(s.meta["needle_index"] == p for s in streams), f"a generated stream does not hold its needle at step {p}")
    specs = M.recall_specs(d_k)
    K = np.stack([s.keys for s in streams])
    V = np.stack([s.values for s in streams])
    Q = np.stack([s.queries for s in streams])
    cands = [M.candidate_first_index(s.values) for s in streams]
    curves, diverged = {}, {}
    for name, spec in specs.items():
        read_at = [p + d for d in dense]
        with np.errstate(all="ignore"):
            res = M.memory_reads(spec, K, V, read_at, Q, seed=0)
        hits, _ = M.score_reads(res.reads, streams, read_at, row_seeds, cands)
        curves[name] = (dense, hits.reshape(len(seeds), trials, -1).mean(axis=1))
        diverged[name] = float(np.mean(~np.isfinite(res.weight_norms[:, -1])))
    # supplementary: the capacity of the matrix memory at every θ of the dev grid (reads to 128)
    stop = p + min(128, D) + 1
    thetas = list(M.THETA_GRID)
    base = specs["memory L_M=1"]
    lr = np.repeat(np.asarray(thetas, np.float32), len(streams))[:, None] * np.ones((1, stop), np.float32)
    read_at = [p + d for d in dense if d <= 128]
    with np.errstate(all="ignore"):
        res = M.memory_reads(base, np.concatenate([K[:, :stop]] * len(thetas)),
                             np.concatenate([V[:, :stop]] * len(thetas)), read_at,
                             np.concatenate([Q] * len(thetas)), lr=lr, seed=0)
    sweep = {}
    for i, th in enumerate(thetas):
        rows_i = slice(i * len(streams), (i + 1) * len(streams))
        hits, _ = M.score_reads(res.reads[rows_i], streams, read_at, row_seeds, cands)
        sweep[th] = hits.reshape(len(seeds), trials, -1).mean(axis=1)
    read_at = [p + d for d in sparse]
    tau = M.qknorm_scale(length)
    window = CLAIMS[SWA].scales[scale]["window"]
    for name, y, rn in (
        ("attention", M.attention_reads(K, V, read_at, Q, scale=tau), False),
        ("SWA", M.attention_reads(K, V, read_at, Q, scale=tau, window=window), False),
        ("RetNet", M.retention_reads(K, V, read_at, Q), True),
    ):
        hits, _ = M.score_reads(y, streams, read_at, row_seeds, cands, retnet=rn)
        curves[name] = (sparse, hits.reshape(len(seeds), trials, -1).mean(axis=1))
    return dict(curves=curves, seeds=seeds, d_k=d_k, diverged=diverged, specs=specs, sweep=sweep,
                sweep_distances=[d for d in dense if d <= 128])


@pytest.mark.claim(CAP)
@pytest.mark.not_reproduced("ci", reason=MECHANISMS["test_random_haystack_capacity"])
def test_random_haystack_capacity(claim, claim_record, scale):
    run = random_run(scale)
    bar = CLAIMS[FP].threshold  # "recall >= 0.9": the registry's recall bar
    d_k = run["d_k"]
    ds, acc = run["curves"]["memory L_M=1"]
    per_seed = [M.largest_passing_any(ds, a, bar) / d_k for a in acc]
    headline = mean_ci(per_seed)
    claim_record.value("largest distance with recall >= 0.9, / d_k (L_M=1)", headline)
    claim_record.seeds(run["seeds"])
    mean_curve = acc.mean(axis=0)
    claim_record.value("same from the seed-mean curve", M.largest_passing_any(ds, mean_curve, bar) / d_k)
    claim_record.value("first distance with mean recall < 0.9 after the peak (L_M=1)",
                       float(M.first_below(ds[int(np.argmax(mean_curve)):], mean_curve[int(np.argmax(mean_curve)):], bar) or -1))
    ds2, acc2 = run["curves"]["memory L_M=2"]
    claim_record.value("largest distance with recall >= 0.9, / d_k (L_M=2)",
                       mean_ci([M.largest_passing_any(ds2, a, bar) / d_k for a in acc2]))
    claim_record.value("fraction of L_M=2 rows whose weights became non-finite", run["diverged"]["memory L_M=2"])
    for name, (xs, a) in run["curves"].items():
        claim_record.curve(f"{name} (random haystack)", xs, a.mean(axis=0).tolist(),
                           xlabel="distance (random writes after the needle)", ylabel="recall accuracy",
                           mixer=name, haystack="random", d_k=d_k)
    caps = []
    for th, acc_th in run["sweep"].items():
        m = acc_th.mean(axis=0)
        caps.append(M.largest_passing_any(run["sweep_distances"], m, bar) / d_k)
        claim_record.curve(f"memory L_M=1, θ={th:g} (random haystack)", run["sweep_distances"], m.tolist(),
                           xlabel="distance (random writes after the needle)", ylabel="recall accuracy",
                           mixer="memory L_M=1", theta=th, haystack="random", d_k=d_k)
    claim_record.curve("capacity vs θ (L_M=1, random haystack)", list(run["sweep"]), caps, panel="capacity vs θ",
                       xscale="log", xlabel="θ (inner learning rate)", ylabel="largest distance with recall >= 0.9, / d_k")
    claim_record.note("memory: " + "; ".join(f"{k}: {v.label()}" for k, v in run["specs"].items())
                      + "; capacity/d_k per θ of the dev grid: "
                      + ", ".join(f"θ={th:g}: {c:.3g}" for th, c in zip(run["sweep"], caps)))
    settle(claim, headline, what="L_M=1")


# --------------------------------------------------------------------------------------------
# abstract.beyond-quadratic, abstract.2m-context
# --------------------------------------------------------------------------------------------

TITANS_DEPTH = 2  # the paper's memory is deep (L_M >= 2); the matrix memory is recorded beside it


@pytest.mark.claim("abstract.beyond-quadratic")
def test_recall_kept_at_the_longest_length(claim, claim_record, scale):
    """Needle recall of the deep memory at the longest stream of the filler run, averaged over the
    distances read there (the cost side is throughput.linear-titans / attention-superlinear)."""
    run = filler_run(scale)
    L = max(run["lengths"])
    per_depth = {}
    for depth in (1, 2):
        name = f"memory L_M={depth}"
        ds = sorted(d for (n, l, d) in run["cells"] if n == name and l == L)
        per_depth[depth] = np.mean(np.stack([run["cells"][(name, L, d)] for d in ds]), axis=0)
    headline = mean_ci(per_depth[TITANS_DEPTH])
    claim_record.value(f"recall at L={L}, memory L_M={TITANS_DEPTH}", headline)
    claim_record.value(f"recall at L={L}, memory L_M=1", mean_ci(per_depth[1]))
    claim_record.seeds(run["seeds"])
    _check_note(claim_record, run)
    settle(claim, headline, what=f"L={L}, L_M={TITANS_DEPTH}")


@pytest.mark.claim("abstract.2m-context")
def test_recall_after_streaming_the_full_length(claim, claim_record, scale):
    """A needle written first, read after the whole stream (filler haystack) has gone through the
    deep memory (token recurrence, the recall default gates); the seeds' streams run together, in
    groups of at most ``ROW_BYTES_BUDGET`` of keys, values and queries."""
    p = claim.scales[scale]
    length, d_k, seeds = p["length"], CLAIMS[FP].scales[scale]["d_k"], list(p["seeds"])
    spec = M.recall_specs(d_k)[f"memory L_M={TITANS_DEPTH}"]
    per_group = max(1, int(ROW_BYTES_BUDGET // (length * d_k * 4 * 3)))
    hits, err, start = [], None, time.perf_counter()
    for g in range(0, len(seeds), per_group):
        row_seeds = [derived_seed(seed, length, 2) for seed in seeds[g : g + per_group]]
        streams = [kv_stream_far_pointer(d_k, d_k, length, 0.0, "filler", seed=rs) for rs in row_seeds]
        K, V, Q = (np.stack([getattr(s, a) for s in streams]) for a in ("keys", "values", "queries"))
        if err is None:  # the NumPy recurrence is the repo's memory_scan (chunk 1), on these streams
            err = M.check_online_against_memory_scan(spec, K, V)
            sanity(err < 1e-4, f"online_scan disagrees with memory_scan(chunk_size=1): max rel diff {err:.2e}")
        read_at = [length - 1]
        with np.errstate(all="ignore"):
            reads = M.memory_reads(spec, K, V, read_at, Q).reads
        hit, _ = M.score_reads(reads, streams, read_at, row_seeds, [M.candidate_first_index(s.values) for s in streams])
        hits += [float(h) for h in hit[:, 0]]
    headline = mean_ci(hits)
    claim_record.value(f"needle recall after {length:,} tokens", headline)
    claim_record.seeds(seeds)
    claim_record.note(f"{spec.label()}; {time.perf_counter() - start:.1f} s for {len(hits)} stream(s); online vs "
                      f"memory_scan {err:.1e}")
    settle(claim, headline, what=f"{length:,} tokens")
