"""Memory capacity: recall vs number of stored pairs for memory depth and width (ATLAS
Prop. 1 / Thm. 1, ref §7), and the cost of memory size.

Protocol (registry notes of ``capacity.deep-vs-matrix``): ``kv_stream_pairs(d_k, d_k, n)`` (random
unit keys, values ``N(0, 1/d_k)``) written ``passes`` times, the order reshuffled every pass, by the
token recurrence (η 0.9, α 0; ``titans/probes/mixers.py``), then every key queried once; nearest-neighbour
decoding among the ``n`` values + 64 foils. Fair across depths: the same passes and the same θ grid
for every depth; θ* per depth = the grid value with the largest capacity (capacity = the largest
``n`` of the grid whose seed-mean recall is ≥ the registry's recall bar 0.9; ties broken by the
summed recall). Seeds x θ are one batch of rows.

Per-seed capacity below the grid counts as half the smallest ``n`` (so a ratio stays finite).
"""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest

from claims.registry import CLAIMS
from titans.probes import mixers as M
from titans.reporting import mean_ci
from titans.reporting.verdicts import sanity, settle
from titans.tasks import derived_seed, kv_stream_pairs

DEEP, MDK, SMALL, LARGE = ("capacity.deep-vs-matrix", "capacity.matrix-dk", "failure.capacity-too-small",
                           "failure.capacity-too-large")
BAR = CLAIMS["recall.far-pointer-titans"].threshold  # the registry's recall bar (0.9)
EXTRA_DEPTHS_CI = (3,)  # curves only (the brief's L_M = 1, 2, 3); headlines use the registered depths

# Why a row is measured not to reproduce at CI scale (the mechanism only; the run's numbers are in
# its assertion message and the report).
MECHANISMS = {
    "test_deep_vs_matrix": (
        "At equal width (hidden = d_k), with the best theta per depth and the registered passes, the deep "
        "memories store as many pairs as the matrix memory, not more: depth adds parameters but no "
        "capacity under this fitting budget."
    ),
    "test_capacity_too_small": (
        "Beyond d_k pairs the matrix memory loses detail, but nearest-neighbour decoding among the "
        "written values and the foils tolerates the least-squares error, so recall stays above the bar: "
        "the failure is milder than stated."
    ),
}


@functools.lru_cache(maxsize=None)
def fit_recall(d_k: int, n: int, depth: int, hidden: int, passes: int, thetas: tuple, seeds: tuple) -> np.ndarray:
    """Recall (len(thetas), len(seeds)) of ``n`` pairs after ``passes`` passes."""
    streams = [kv_stream_pairs(d_k, d_k, n, seed=derived_seed(s, d_k, n, 3)) for s in seeds]
    orders = [np.concatenate([np.random.default_rng(derived_seed(s, n, p, 4)).permutation(n) for p in range(passes)])
              for s in seeds]
    K = np.stack([st.keys[o] for st, o in zip(streams, orders)])
    V = np.stack([st.values[o] for st, o in zip(streams, orders)])
    Q = np.stack([st.queries for st in streams])
    T = K.shape[1]
    nt = len(thetas)
    lr = np.repeat(np.asarray(thetas, np.float32), len(seeds))[:, None] * np.ones((1, T), np.float32)
    spec = M.TITANS_DEFAULT.but(depth=depth, hidden=hidden if depth > 1 else None)
    with np.errstate(all="ignore"):
        y = M.memory_reads(spec, np.concatenate([K] * nt), np.concatenate([V] * nt), [T - 1],
                           np.concatenate([Q] * nt), lr=lr, seed=0).reads[:, 0]
    out = np.zeros((nt, len(seeds)))
    for i in range(nt):
        for j, st in enumerate(streams):
            cands = np.concatenate([st.values, M.foils(j, M.N_FOILS, d_k)])
            out[i, j] = M.is_target(y[i * len(seeds) + j], cands[None], st.targets).mean()
    return out


def capacity_table(d_k, pairs, depth, hidden, passes, thetas, seeds):
    """{θ: (len(pairs), len(seeds)) recall}, the chosen θ*, per-seed capacities at θ*."""
    table = {th: np.zeros((len(pairs), len(seeds))) for th in thetas}
    for a, n in enumerate(pairs):
        r = fit_recall(d_k, n, depth, hidden, passes, tuple(thetas), tuple(seeds))
        for i, th in enumerate(thetas):
            table[th][a] = r[i]

    def cap(curve):
        c = M.largest_passing_any(pairs, curve, BAR)
        return c if c > 0 else min(pairs) / 2

    best = max(thetas, key=lambda th: (cap(table[th].mean(axis=1)), table[th].sum()))
    per_seed = [cap(table[best][:, j]) for j in range(len(seeds))]
    return table, best, per_seed


def _curves(claim_record, label, pairs, table, best, **axes):
    """Recall vs stored pairs, one curve per θ of the grid, in one panel per memory (θ* in its title);
    ``axes``: the x axis spec."""
    for th, t in table.items():
        claim_record.curve(f"{label} θ={th:g}" + (" (θ*)" if th == best else ""), pairs, t.mean(axis=1).tolist(),
                           panel=f"{label}, θ*={best:g}", series=f"θ={th:g}", ylabel="recall accuracy",
                           ylim=[0, 1], hline=BAR, hline_label=f"recall bar {BAR:g}", theta=th, **axes)


def _cost_curves(claim_record, d_k: int):
    """tokens/s of memory_scan (chunk 16, the parallel form) and state bytes vs depth and width."""
    import mlx.core as mx

    from titans.ops.memory import memory_scan

    rng = np.random.default_rng(0)
    T = 2048
    k = rng.standard_normal((1, T, d_k)).astype(np.float32)
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    v = (rng.standard_normal((1, T, d_k)) / np.sqrt(d_k)).astype(np.float32)
    km, vm = mx.array(k), mx.array(v)
    g = mx.ones((1, T))
    rows = []
    for depth in (1, 2, 3):
        for width in ((d_k,) if depth == 1 else (d_k, 2 * d_k, 4 * d_k)):
            ws = tuple(mx.array(w) for w in M.init_weights(M.TITANS_DEFAULT.but(depth=depth, hidden=width), d_k, d_k, 0))
            run = lambda: mx.eval(memory_scan(ws, km, km, vm, 0.01 * g, 0.9 * g, 0 * g, 16, validate=False)[0])
            run()
            times = []
            for _ in range(2):
                t = time.perf_counter()
                _, st = memory_scan(ws, km, km, vm, 0.01 * g, 0.9 * g, 0 * g, 16, validate=False)
                mx.eval(*st.arrays)
                times.append(time.perf_counter() - t)
            params = sum(int(np.prod(w.shape)) for w in ws)
            state = sum(w.nbytes for w in st.weights) + sum(s.nbytes for s in st.momentum)
            sanity(state == 2 * 4 * params, f"state {state} B != weights + momentum in float32 ({2 * 4 * params} B)")
            rows.append((depth, width, params, T / min(times), state))
    for depth in (1, 2, 3):
        mine = [r for r in rows if r[0] == depth]
        claim_record.curve(f"tokens/s vs parameters, L_M={depth}", [r[2] for r in mine], [r[3] for r in mine],
                           panel="cost: memory_scan speed", series=f"L_M={depth}", xlabel="memory parameters",
                           ylabel="tokens/s (memory_scan, chunk 16, batch 1)", xscale="log", yscale="log",
                           widths=[r[1] for r in mine])
        claim_record.curve(f"state bytes vs parameters, L_M={depth}", [r[2] for r in mine], [r[4] for r in mine],
                           panel="cost: memory state", series=f"L_M={depth}", xlabel="memory parameters",
                           ylabel="state (weights + momentum)", yunit="bytes", xscale="log", yscale="log")
    claim_record.note("cost: " + "; ".join(f"L_M={d} width {w}: {p} params, {tps:,.0f} tok/s, {b} B state"
                                           for d, w, p, tps, b in rows))


@pytest.mark.claim(DEEP)
@pytest.mark.not_reproduced("ci", reason=MECHANISMS["test_deep_vs_matrix"])
def test_deep_vs_matrix(claim, claim_record, scale):
    cfg = claim.scales[scale]
    d_k, pairs, seeds, passes, thetas = cfg["d_k"], list(cfg["pairs"]), list(cfg["seeds"]), cfg["passes"], list(cfg["thetas"])
    depths = list(cfg["depths"]) + ([d for d in EXTRA_DEPTHS_CI if d not in cfg["depths"]] if scale == "ci" else [])
    spec = M.TITANS_DEFAULT
    K0 = np.stack([kv_stream_pairs(d_k, d_k, 64, seed=s).keys for s in range(2)])
    V0 = np.stack([kv_stream_pairs(d_k, d_k, 64, seed=s).values for s in range(2)])
    err = max(M.check_online_against_memory_scan(spec.but(depth=d, hidden=d_k if d > 1 else None), K0, V0, steps=64)
              for d in depths)
    sanity(err < 1e-4, f"online_scan disagrees with memory_scan(chunk_size=1): max rel diff {err:.2e}")
    caps, results = {}, {}
    for depth in depths:
        table, best, per_seed = capacity_table(d_k, pairs, depth, d_k, passes, thetas, seeds)
        caps[depth] = np.asarray(per_seed, float)
        results[depth] = (table, best)
        _curves(claim_record, f"L_M={depth} (hidden {d_k})", pairs, table, best, xlabel="stored pairs n",
                xscale="log2")
    ratio = caps[2] / caps[1]
    headline = mean_ci(ratio)
    claim_record.value("capacity(L_M=2) / capacity(L_M=1), equal width", headline)
    claim_record.seeds(seeds)
    for depth in depths:
        claim_record.value(f"capacity L_M={depth} (pairs at recall >= {BAR:g})", mean_ci(caps[depth]))
    claim_record.note("θ* per depth: " + ", ".join(f"L_M={d}: {results[d][1]:g}" for d in depths)
                      + f"; {passes} passes; d_k = hidden = {d_k}; online vs memory_scan max rel diff {err:.1e}")
    _cost_curves(claim_record, d_k)
    settle(claim, headline, what="L_M=2 / L_M=1")


def pytest_generate_tests(metafunc):
    """One row of capacity.matrix-dk per registered d_k of the session's scale."""
    if "d_k" in metafunc.fixturenames:
        values = CLAIMS[MDK].scales[metafunc.config.getoption("scale")]["d_k"]
        metafunc.parametrize("d_k", values, ids=[f"d_k={d}" for d in values])


@pytest.mark.claim(MDK)
def test_matrix_capacity_scales_with_dk(d_k, claim, claim_record, scale):
    cfg = claim.scales[scale]
    seeds, passes, thetas = list(cfg["seeds"]), cfg["passes"], list(cfg["thetas"])
    pairs = sorted(set(max(1, round(f * d_k)) for f in cfg["pair_fractions"]))
    table, best, per_seed = capacity_table(d_k, pairs, 1, d_k, passes, thetas, seeds)
    headline = mean_ci(np.asarray(per_seed) / d_k)
    claim_record.value(f"capacity / d_k (matrix memory, d_k={d_k})", headline)
    claim_record.seeds(seeds)
    claim_record.value("capacity (pairs)", mean_ci(per_seed))
    claim_record.note(f"θ*={best:g}; pairs grid {pairs}; {passes} passes")
    _curves(claim_record, f"matrix memory d_k={d_k}", [n / d_k for n in pairs], table, best,
            xlabel="stored pairs / d_k", vline=1, vline_label="n = d_k")
    settle(claim, headline, what=f"d_k={d_k}")


@pytest.mark.claim(SMALL)
@pytest.mark.not_reproduced("ci", reason=MECHANISMS["test_capacity_too_small"])
def test_capacity_too_small(claim, claim_record, scale):
    cfg = claim.scales[scale]
    d_k, n, seeds, passes, thetas = cfg["d_k"], cfg["pairs"], list(cfg["seeds"]), cfg["passes"], list(cfg["thetas"])
    r = fit_recall(d_k, n, 1, d_k, passes, tuple(thetas), tuple(seeds))  # (θ, seeds)
    best = int(np.argmax(r.mean(axis=1)))  # the θ most favourable to the memory
    headline = mean_ci(r[best])
    claim_record.value(f"recall of {n} pairs in a d_k={d_k} matrix memory (best θ)", headline)
    claim_record.seeds(seeds)
    claim_record.curve("recall vs θ", thetas, r.mean(axis=1).tolist(), series=f"{n} pairs, d_k={d_k}", xlabel="θ",
                       ylabel="recall accuracy", xscale="log", ylim=[0, 1], hline=BAR,
                       hline_label=f"recall bar {BAR:g}", pairs=n, d_k=d_k)
    claim_record.note(f"best θ={thetas[best]:g}; {passes} passes; {n}/{d_k} = {n / d_k:g} pairs per key dimension")
    settle(claim, headline, what=f"{n} pairs, d_k={d_k}")


@pytest.mark.claim(LARGE)
def test_capacity_too_large(claim, claim_record, scale):
    cfg = claim.scales[scale]
    d_k, n, seeds, passes, thetas = cfg["d_k"], cfg["pairs"], list(cfg["seeds"]), cfg["passes"], list(cfg["thetas"])
    depth, wide = cfg["depth"], cfg["widen"] * cfg["d_k"]
    base = fit_recall(d_k, n, depth, d_k, passes, tuple(thetas), tuple(seeds))
    best = int(np.argmax(base.mean(axis=1)))  # tuned for the needed width only
    wider = fit_recall(d_k, n, depth, wide, passes, (thetas[best],), tuple(seeds))[0]
    headline = mean_ci(wider - base[best])
    claim_record.value(f"recall(hidden {wide}) - recall(hidden {d_k}), same θ", headline)
    claim_record.seeds(seeds)
    claim_record.value(f"recall at hidden {d_k}", mean_ci(base[best]))
    claim_record.value(f"recall at hidden {wide}", mean_ci(wider))
    wide_all = fit_recall(d_k, n, depth, wide, passes, tuple(thetas), tuple(seeds))
    claim_record.value(f"recall at hidden {wide} with its own best θ (not the protocol)", float(wide_all.mean(axis=1).max()))
    for hidden, acc in ((d_k, base), (wide, wide_all)):
        claim_record.curve(f"recall vs θ, hidden {hidden}", thetas, acc.mean(axis=1).tolist(),
                           series=f"hidden {hidden}", xlabel=f"θ ({n} pairs, L_M={depth})", ylabel="recall accuracy",
                           xscale="log", ylim=[0, 1], vline=thetas[best], vline_label=f"θ chosen at hidden {d_k}",
                           hidden=hidden, pairs=n)
    claim_record.note(f"L_M={depth}, {n} pairs, θ={thetas[best]:g} (best for hidden {d_k}), {passes} passes")
    settle(claim, headline, what=f"hidden {wide} vs {d_k}")
