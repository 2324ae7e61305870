"""Staleness and drift of the Titans memory: rebinding, refresh policies, long horizons.

Read-outs and decoding as in ``titans/probes/mixers.py`` (nearest neighbour in cosine among every value
written to the stream + 64 foils; memory with the recall-default gates: token recurrence, η 0.9,
α 0, θ from the dev task).

* ``failure.drift-staleness`` -- ``keys`` keys bound once, then each re-bound 1-3 times (uniform) to
  fresh values, the re-bindings of all keys interleaved in random order (a key's own re-bindings in
  order); ``gap`` filler writes (the 4-pair filler cycle of ``titans.tasks``) after every binding and
  ``tail`` at the end; then every key queried, target = its latest value. Staleness = the fraction
  answered with an older value of the same key. One row per memory depth. The chunked form
  (chunk 16, same gates) is recorded alongside.
* ``drift.surprise-refresh`` -- one tracked key shown every ``period`` tokens (filler in between),
  ``before`` times with its old value, then ``after`` times with a new one; the memory is queried
  with the key after every token from the switch on. Write policies: surprise-gated
  ``θ_t = θ min(1, (s_t / s_ref)²)`` with ``s_t = ‖M_{t-1}(k_t) − v_t‖`` computed from the state,
  ``s_ref = 1`` (headline); constant θ; periodic refresh (θ only at ``t ≡ 0 mod P``). Per policy:
  latency (tokens from the switch until the new value is first recalled), stale returns (the old
  value recalled after the new one was), success = latency ≤ 2 periods and no stale return.
* ``reviewer.long-horizon-drift`` -- ``kv_stream_far_pointer`` on the filler haystack with the pair
  written at step 256 and read 64 .. H steps later, for each forgetting rate α of the sweep (rows of
  one batch per α); the headline is recall(H) / recall(64) at the registered α.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from claims.registry import CLAIMS
from titans.probes import mixers as M
from titans.reporting import mean_ci
from titans.reporting.verdicts import sanity, settle
from titans.tasks import derived_seed, kv_stream_far_pointer, kv_stream_rewrites, kv_stream_switch

STALE, SURPRISE, HORIZON = "failure.drift-staleness", "drift.surprise-refresh", "reviewer.long-horizon-drift"

# Why a row is measured not to reproduce at CI scale (the mechanism only; the run's numbers are in
# its assertion message and the report).
MECHANISMS = {
    "test_long_horizon_drift": (
        "A constant forgetting rate shrinks the written fact by (1 - alpha) per token while the "
        "refreshed filler keeps being rewritten, so at the registered alpha the pair fades within the "
        "horizon; smaller alphas keep it and larger ones lose it sooner (the alpha sweep is recorded)."
    ),
}


# --------------------------------------------------------------------------------------------
# failure.drift-staleness
# --------------------------------------------------------------------------------------------


@pytest.mark.claim(STALE)
@pytest.mark.parametrize("depth", [
    pytest.param(1, id="L_M=1", marks=pytest.mark.not_reproduced("ci", reason=(
        "Latest-value recall stays below the bar while stale answers are rare (both recorded): the "
        "failure is interference (the keys' rewrites with filler between them exceed what one-shot "
        "writes at the dev theta keep), not staleness. The chunked form (chunk 16, same gates) is "
        "recorded beside."))),
    pytest.param(2, id="L_M=2", marks=pytest.mark.not_reproduced("ci", reason=(
        "The deep memory at the dev theta keeps almost no binding, so latest-value recall stays far "
        "below the bar (stale answers recorded beside)."))),
])
def test_drift_staleness(depth, claim, claim_record, scale):
    cfg = claim.scales[scale]
    if depth not in cfg["depths"]:
        pytest.skip("depth not in this scale's protocol")
    d, seeds, trials = cfg["d_k"], list(cfg["seeds"]), cfg["trials"]
    rows = [kv_stream_rewrites(d, cfg["keys"], tuple(cfg["rewrites"]), cfg["gap"], cfg["tail"], derived_seed(s, t, 5))
            for s in seeds for t in range(trials)]
    T = max(len(r.keys) for r in rows)
    # rows differ in length (1-3 rewrites per key): pad at the front with zero writes (k = v = 0
    # leaves the memory exactly unchanged, see test_stability), so every row ends at step T-1
    K = np.stack([np.pad(r.keys, ((T - len(r.keys), 0), (0, 0))) for r in rows])
    V = np.stack([np.pad(r.values, ((T - len(r.values), 0), (0, 0))) for r in rows])
    Q = np.stack([r.queries for r in rows])
    base = M.TITANS_DEFAULT.but(depth=depth, hidden=2 * d if depth > 1 else None)
    spec = M.calibrated(base, d)
    err = M.check_online_against_memory_scan(spec, K[:, -128:], V[:, -128:])
    sanity(err < 1e-4, f"online_scan disagrees with memory_scan(chunk_size=1): max rel diff {err:.2e}")
    results = {}
    for label, sp in (("token recurrence", spec), ("chunk 16", spec.but(chunk=16))):
        with np.errstate(all="ignore"):
            y = M.memory_reads(sp, K, V, [T - 1], Q, seed=0).reads[:, 0]  # (B, keys, d)
        acc, stale = np.zeros(len(rows)), np.zeros(len(rows))
        for b, row in enumerate(rows):
            v_, latest, older = row.values, row.targets, row.meta["older"]
            cands = np.concatenate([M.candidate_first_index(v_)[0], M.foils(b, M.N_FOILS, d)])
            idx = M.decode(y[b], cands[None])
            picked = cands[np.maximum(idx, 0)]
            acc[b] = np.mean((idx >= 0) & np.all(picked == latest, axis=-1))
            stale[b] = np.mean([(idx[i] >= 0) and any(np.array_equal(picked[i], o) for o in older[i])
                                for i in range(len(older))])
        results[label] = (acc.reshape(len(seeds), trials).mean(1), stale.reshape(len(seeds), trials).mean(1))
    acc, stale = results["token recurrence"]
    headline = mean_ci(acc)
    claim_record.value(f"recall of the latest value (L_M={depth})", headline)
    claim_record.seeds(seeds)
    claim_record.value("stale answers (older value of the same key)", mean_ci(stale))
    claim_record.value("latest-value recall, chunked form (chunk 16, same gates)", mean_ci(results["chunk 16"][0]))
    claim_record.value("stale answers, chunked form", mean_ci(results["chunk 16"][1]))
    claim_record.note(f"{spec.label()}; {cfg['keys']} keys x 1-3 rewrites, gap {cfg['gap']}, tail {cfg['tail']}; "
                      f"stream length up to {T}; online vs memory_scan {err:.1e}")
    settle(claim, headline, what=f"L_M={depth}")


# --------------------------------------------------------------------------------------------
# drift.surprise-refresh
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def surprise_run(scale: str) -> dict:
    cfg = CLAIMS[SURPRISE].scales[scale]
    d, period, before, after = cfg["d_k"], cfg["period"], cfg["before"], cfg["after"]
    seeds, trials = list(cfg["seeds"]), cfg["trials"]
    rows = [kv_stream_switch(d, period, before, after, derived_seed(s, t, 6)) for s in seeds for t in range(trials)]
    K = np.stack([r.keys for r in rows])
    V = np.stack([r.values for r in rows])
    Q = np.stack([r.queries[0] for r in rows])[:, None, :]
    B, T = K.shape[:2]
    t_switch = before * period
    read_at = list(range(t_switch, T))
    spec = M.calibrated(M.TITANS_DEFAULT, d)
    theta = spec.theta
    cands = [np.concatenate([r.meta["candidates"], M.foils(b, M.N_FOILS, d)]) for b, r in enumerate(rows)]
    positions = np.arange(T)
    policies = {"surprise-gated": None, "constant": np.full(T, theta, np.float32)}
    for P in cfg["refresh"]:
        policies[f"periodic P={P}"] = np.where(positions % P == 0, theta, 0.0).astype(np.float32)
    s_ref = 1.0
    out, checks = {}, {}
    for name, lr in policies.items():
        if lr is None:
            res = M.memory_reads(spec, K, V, read_at, Q, seed=0,
                                 theta_fn=lambda s, t: theta * np.minimum(1.0, (s / s_ref) ** 2))
            used = res.lr_used
            checks[name] = M.check_online_against_memory_scan(spec, K, V, lr=used)
        else:
            res = M.memory_reads(spec, K, V, read_at, Q, seed=0, lr=lr)
            used = np.broadcast_to(lr, (B, T))
        latency = np.full(B, np.inf)
        stale = np.zeros(B, bool)
        for b in range(B):
            idx = M.decode(res.reads[b, :, 0], cands[b][None])  # (reads,)
            is_new = idx == 1
            if is_new.any():
                first = int(np.argmax(is_new))
                latency[b] = first
                stale[b] = bool(np.any(idx[first:] == 0))
        success = (latency <= 2 * period) & ~stale
        out[name] = dict(
            success=success.reshape(len(seeds), trials).mean(1),
            latency=latency.reshape(len(seeds), trials),
            stale=stale.reshape(len(seeds), trials).mean(1),
            write_rate=float(np.mean(used) / theta),
        )
    return dict(policies=out, seeds=seeds, spec=spec, checks=checks, period=period)


@pytest.mark.claim(SURPRISE)
def test_surprise_refresh(claim, claim_record, scale):
    run = surprise_run(scale)
    pol = run["policies"]
    headline = mean_ci(pol["surprise-gated"]["success"])
    claim_record.value("success: new value within 2 periods, no stale return (surprise-gated)", headline)
    claim_record.seeds(run["seeds"])
    names = list(pol)
    for name in names:
        lat = pol[name]["latency"]
        finite = lat[np.isfinite(lat)]
        claim_record.value(f"{name}: success", mean_ci(pol[name]["success"]))
        claim_record.value(f"{name}: median latency (tokens)", float(np.median(finite)) if finite.size else -1.0)
        claim_record.value(f"{name}: never recovered", float(np.mean(~np.isfinite(lat))))
        claim_record.value(f"{name}: stale returns", mean_ci(pol[name]["stale"]))
        claim_record.value(f"{name}: mean write rate θ_t/θ", pol[name]["write_rate"])
    latency = [float(np.median(pol[n]["latency"][np.isfinite(pol[n]["latency"])]))
               if np.isfinite(pol[n]["latency"]).any() else float("nan") for n in names]  # nan: never recalled
    claim_record.curve("median latency by policy", names, latency, panel="latency (n/a: never recalled)",
                       series="median latency", xlabel="write policy",
                       ylabel="tokens from the switch to recall of the new value",
                       hline=2 * run["period"], hline_label="success limit: 2 periods")
    claim_record.curve("stale-return rate by policy", names, [float(np.mean(pol[n]["stale"])) for n in names],
                       panel="stale returns", series="stale-return rate", xlabel="write policy",
                       ylabel="fraction of trials with a stale return", ylim=[0, 1])
    claim_record.note(f"{run['spec'].label()}, binding shown every {run['period']} tokens; surprise-gated rates "
                      f"replayed through memory_scan(chunk_size=1): max rel diff {run['checks']['surprise-gated']:.1e}")
    sanity(run["checks"]["surprise-gated"] < 1e-4, "surprise-gated rates replayed through memory_scan(chunk_size=1) "
           f"disagree with online_scan: max rel diff {run['checks']['surprise-gated']:.2e}")
    settle(claim, headline, what="surprise-gated")


# --------------------------------------------------------------------------------------------
# reviewer.long-horizon-drift
# --------------------------------------------------------------------------------------------

WRITE_AT = 256
NEAR = 64


@pytest.mark.claim(HORIZON)
@pytest.mark.not_reproduced("ci", reason=MECHANISMS["test_long_horizon_drift"])
def test_long_horizon_drift(claim, claim_record, scale):
    cfg = claim.scales[scale]
    d, H, seeds, trials = cfg["d_k"], cfg["horizon"], list(cfg["seeds"]), cfg["trials"]
    L = WRITE_AT + H + 1
    distances = [NEAR] + [x for x in (256, 1024, 4096, 16384, 65536, 262144, 1048576) if x < H] + [H]
    read_at = [WRITE_AT + x for x in distances]
    row_seeds = [derived_seed(s, t, L, 7) for s in seeds for t in range(trials)]
    spec = M.calibrated(M.TITANS_DEFAULT, d)
    alphas = list(cfg["alphas"])
    per_group = max(1, int(1.5e9 // (L * d * 4 * 2)))  # streams held at once (full scale: 1M tokens)
    hits = np.zeros((len(alphas), len(row_seeds), len(read_at)), bool)
    for g in range(0, len(row_seeds), per_group):
        group = row_seeds[g : g + per_group]
        streams = [kv_stream_far_pointer(d, d, L, WRITE_AT / (L - 1), "filler", seed=r) for r in group]
        sanity(all(s.meta["needle_index"] == WRITE_AT for s in streams),
               f"a generated stream does not hold its pair at step {WRITE_AT}")
        K = np.stack([s.keys for s in streams])
        V = np.stack([s.values for s in streams])
        Q = np.stack([s.queries for s in streams])
        cands = [np.concatenate([M.candidate_first_index(s.values)[0], M.foils(g + b, M.N_FOILS, d)])
                 for b, s in enumerate(streams)]
        n = len(streams)
        rows = np.tile(np.arange(n), len(alphas))  # one batch: every stream under every α
        decay = np.repeat(np.asarray(alphas, np.float32), n)[:, None]
        with np.errstate(all="ignore"):
            y = M.memory_reads(spec, K, V, read_at, Q[rows], seed=0, decay=decay, row_index=rows).reads
        for i in range(len(alphas)):
            for b in range(n):
                for r in range(len(read_at)):
                    hits[i, g + b, r] = M.is_target(y[i * n + b, r, 0], cands[b], streams[b].targets[0])
        del K, V, streams
    acc = {}
    for i, alpha in enumerate(alphas):
        acc[alpha] = hits[i].reshape(len(seeds), trials, -1).mean(axis=1)  # (seeds, distances)
        claim_record.curve(f"recall vs horizon, α={alpha:g}", distances, acc[alpha].mean(axis=0).tolist(),
                           series=f"α={alpha:g}" + (" (registered)" if alpha == cfg["alpha"] else ""),
                           xlabel="tokens since the pair was written", ylabel="recall accuracy", xscale="log2",
                           ylim=[0, 1], alpha=alpha)
    a0 = cfg["alpha"]
    near, far = acc[a0][:, 0], acc[a0][:, -1]
    ratio = np.where(near > 0, far / np.where(near > 0, near, 1), np.nan)
    headline = mean_ci(ratio)
    claim_record.value(f"recall(H={H}) / recall(64), α={a0:g}", headline)
    claim_record.seeds(seeds)
    claim_record.value(f"recall at H, α={a0:g}", mean_ci(far))
    claim_record.value(f"recall 64 tokens after writing, α={a0:g}", mean_ci(near))
    for alpha in cfg["alphas"]:
        if alpha != a0:
            n, f = acc[alpha][:, 0], acc[alpha][:, -1]
            claim_record.value(f"recall(H)/recall(64), α={alpha:g}",
                               mean_ci(np.where(n > 0, f / np.where(n > 0, n, 1), np.nan)))
    claim_record.note(f"{spec.label()} with α swept (one batch); pair written at step {WRITE_AT} of a filler stream")
    settle(claim, headline, what=f"α={a0:g}")
