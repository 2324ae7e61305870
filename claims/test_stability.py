"""Numerical stability of the Titans memory over long streams and the divergence boundary (the
library's property-based edge cases are in ``tests/test_memory_properties.py``).

* ``stability.streaming-bounded`` -- ≥ 256k tokens (CI; 2M full) of random unit keys and values
  ``N(0, 1/d)``, generated and scanned piece by piece (8k tokens, state carried, ``mx.eval``
  between pieces: constant memory). The weight norm is recorded after every piece; the test asserts
  every state finite and reports ``max ‖M‖_F`` over the second half / over the first half (the first
  half includes the initial weights, t = 0). One row per configuration of the registered
  ``configs``: the initial gates of ``MemoryConfig.paper()`` (the configuration the claim was
  registered with: L_M = 2, hidden ``2 d_k``, chunk 64, ``θ = lr_scale σ(b_θ)``,
  ``η = momentum_max σ(b_η)``, ``α = σ(b_α)``), the initial gates of the library's default
  ``MemoryConfig()`` (a different configuration: larger θ, α ≈ 1e-3, normalized values and
  memory output), and the recall default of ``titans/probes/mixers.py`` (matrix memory, token
  recurrence, α = 0).

  Boundedness is only judged for a memory that is alive: a memory that stores nothing is trivially
  bounded. Per seed, at the end of the stream, the last ``recent`` writes must change the reads of
  their own keys (``‖M_end(K) − M_before(K)‖ / ‖V‖``, ``M_before`` the state right before those
  writes) and the weights must have moved from their initial value
  (``‖W_end − W_0‖ / max(‖W_0‖, ‖W_end‖)``), both by at least ``alive_tol``; otherwise the row is
  *inconclusive*. The reads' distance from the reads at init is recorded beside but decides
  nothing: a memory that collapsed to ``M = 0`` reads differently from its random initial weights
  while storing nothing.
* ``stability.divergence-detected`` -- unnormalized Gaussian keys (``‖k‖² ≈ d_k``) over a θ grid,
  scanned with ``titans.diagnostics.guarded_memory_scan``: every run must end finite and bounded
  or raise ``MemoryDivergedError`` naming the first failing chunk; at least one must diverge. The
  ℓ2-normalized control runs the same θ grid.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import mlx.core as mx

from titans.probes import mixers as M
from titans.diagnostics import MemoryDivergedError, guarded_memory_scan, state_norms
from titans.ops.memory import memory_read, memory_scan
from titans.layers.neural_memory import MemoryConfig
from titans.reporting import mean_ci
from titans.reporting.verdicts import inconclusive, sanity, settle

BOUNDED, DIVERGE = "stability.streaming-bounded", "stability.divergence-detected"
PAPER_GATES, DEFAULT_GATES, RECALL_DEFAULT = ("MemoryConfig.paper() initial gates", "MemoryConfig() initial gates",
                                              "recall default")
LAYER_CONFIGS = {PAPER_GATES: MemoryConfig.paper, DEFAULT_GATES: MemoryConfig}


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def initial_gates(config: MemoryConfig) -> dict:
    """θ, η, α and the chunk a ``NeuralMemory`` built with ``config`` starts with (gate biases
    through the gates' sigmoids: θ = lr_scale σ(b_θ), η = momentum_max σ(b_η), α = σ(b_α))."""
    b_theta, b_eta, b_alpha = config.gate_bias
    return dict(theta=config.lr_scale * _sigmoid(b_theta), eta=config.momentum_max * _sigmoid(b_eta),
                alpha=_sigmoid(b_alpha), chunk=config.chunk_size)


def _piece(seed: int, index: int, rows: int, n: int, d: int, normalize: bool = True):
    rng = np.random.default_rng([seed, index, 17])
    k = rng.standard_normal((rows, n, d)).astype(np.float32)
    if normalize:
        k /= np.linalg.norm(k, axis=-1, keepdims=True)
    v = (rng.standard_normal((rows, n, d)) / math.sqrt(d)).astype(np.float32)
    return k, v


def _frob(ws) -> np.ndarray:
    """Frobenius norm over the layers, per row (``ws[l]`` shaped (B, d_out, d_in))."""
    return np.sqrt(sum(np.sum(np.square(np.asarray(w, np.float64)), axis=(-1, -2)) for w in ws))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den per row; 0 where both are 0 (nothing moved), inf where only den is."""
    with np.errstate(all="ignore"):
        out = np.asarray(num, np.float64) / np.asarray(den, np.float64)
    return np.where(np.asarray(den) > 0, out, np.where(np.asarray(num) > 0, np.inf, 0.0))


def _liveness(w0, w_end, reads0, reads_before, reads_end, v_recent) -> dict:
    """Per row: how far the weights moved from init, how much the last writes changed the reads of
    their own keys, and how far those reads are from the reads at init (both / ‖V_recent‖)."""
    B = len(v_recent)
    w0 = [np.broadcast_to(np.asarray(w, np.float64), (B, *np.shape(w)[-2:])) for w in w0]
    moved = _ratio(_frob([np.asarray(e, np.float64) - w for e, w in zip(w_end, w0)]),
                   np.maximum(_frob(w0), _frob(w_end)))
    scale = _frob([v_recent])
    dist = lambda a, b: _frob([np.asarray(a, np.float64) - np.asarray(b, np.float64)])  # noqa: E731
    return dict(moved=moved, write_effect=_ratio(dist(reads_end, reads_before), scale),
                read_vs_init=_ratio(dist(reads_end, reads0), scale))


def _stream_layer_config(config: MemoryConfig, seeds, tokens: int, piece: int, d_k: int, recent: int):
    """``memory_scan`` with the initial gates of ``config`` (its depth, hidden width
    ``expansion·d_k``, chunk, output normalization; values ℓ2-normalized when the config does)."""
    g = initial_gates(config)
    spec = M.MemorySpec(depth=config.depth, hidden=config.expansion * d_k, theta=g["theta"], eta=g["eta"],
                        alpha=g["alpha"], chunk=g["chunk"])
    w0 = M.init_weights(spec, d_k, d_k, 0)
    ws = tuple(mx.array(w) for w in w0)
    n_pieces = tokens // piece
    norms = np.zeros((len(seeds), n_pieces + 1))  # column 0: the initial weights (t = 0)
    norms[:, 0] = _frob([w[None] for w in w0])[0]
    read = lambda weights, x: np.array(memory_read(weights, mx.array(x), normalize_output=config.normalize_output))  # noqa: E731
    state, live = None, None
    for i in range(n_pieces):
        k, v = (np.concatenate([_piece(s, i, 1, piece, d_k)[j] for s in seeds]) for j in (0, 1))
        if config.normalize_values:
            v = v / np.linalg.norm(v, axis=-1, keepdims=True)
        cut = piece - recent if i == n_pieces - 1 else piece
        for a, b in ((0, cut), (cut, piece)):
            if a == b:
                continue
            if a:  # the last `recent` writes of the stream: reads of their keys before and after
                k_rec, v_rec = k[:, a:b], v[:, a:b]
                reads_before = read(state.weights, k_rec)
            km = mx.array(k[:, a:b])
            ones = mx.ones((len(seeds), b - a))
            _, state = memory_scan(ws, km, km, mx.array(v[:, a:b]), spec.theta * ones, spec.eta * ones,
                                   spec.alpha * ones, spec.chunk, state, validate=False,
                                   normalize_output=config.normalize_output)
            mx.eval(*state.arrays)
        norms[:, i + 1] = _frob([np.array(w) for w in state.weights])
    w_end = [np.array(w) for w in state.weights]
    live = _liveness(w0, w_end, read(ws, k_rec), reads_before, read(state.weights, k_rec), v_rec)
    label = (f"{spec.label()}, normalized output {config.normalize_output}, normalized values "
             f"{config.normalize_values}")
    return norms, live, label


def _stream_recall_default(seeds, tokens: int, piece: int, d_k: int, recent: int):
    """The recall default's token recurrence (NumPy, checked against ``memory_scan``)."""
    spec = M.calibrated(M.TITANS_DEFAULT, d_k)
    k0, v0 = (np.concatenate([_piece(s, 0, 1, piece, d_k)[j] for s in seeds]) for j in (0, 1))
    err = M.check_online_against_memory_scan(spec, k0, v0)
    sanity(err < 1e-4, f"online_scan disagrees with memory_scan(chunk_size=1): max rel diff {err:.2e}")
    w0 = M.init_weights(spec, d_k, d_k, 0)
    ws, moms = w0, None
    n_pieces = tokens // piece
    norms = np.zeros((len(seeds), n_pieces + 1))
    norms[:, 0] = _frob([w[None] for w in w0])[0]
    for i in range(n_pieces):
        k, v = (np.concatenate([_piece(s, i, 1, piece, d_k)[j] for s in seeds]) for j in (0, 1))
        cut = piece - recent if i == n_pieces - 1 else piece
        k_rec, v_rec = k[:, cut:], v[:, cut:]
        with np.errstate(all="ignore"):
            res = M.online_scan(ws, k[:, :cut], v[:, :cut], spec.theta, spec.eta, spec.alpha, [cut - 1],
                                k_rec if cut < piece else k[:, :1], momenta=moms)
            ws, moms = res.weights, res.extra["momenta"]
            if cut < piece:
                reads_before = res.reads[:, 0]
                res = M.online_scan(ws, k_rec, v_rec, spec.theta, spec.eta, spec.alpha, [recent - 1], k_rec,
                                    momenta=moms)
                ws, moms = res.weights, res.extra["momenta"]
        norms[:, i + 1] = res.weight_norms[:, 0]
    live = _liveness(w0, ws, M.mlp_read([np.broadcast_to(w, (len(seeds), *w.shape)) for w in w0], k_rec),
                     reads_before, res.reads[:, 0], v_rec)
    return norms, live, f"{spec.label()}; online vs memory_scan {err:.1e}"


@pytest.mark.claim(BOUNDED)
@pytest.mark.parametrize("config", [PAPER_GATES, DEFAULT_GATES, RECALL_DEFAULT])
def test_streaming_bounded(config, claim, claim_record, scale):
    cfg = claim.scales[scale]
    if config not in cfg["configs"]:
        pytest.skip(f"{config!r} is not a configuration of this scale's protocol")
    seeds, tokens, piece, d_k = list(cfg["seeds"]), cfg["tokens"], cfg["piece"], cfg["d_k"]
    recent, tol = cfg["recent"], cfg["alive_tol"]
    sanity(0 < recent < piece, f"recent={recent} must lie inside one piece of {piece}")
    if config == RECALL_DEFAULT:
        norms, live, label = _stream_recall_default(seeds, tokens, piece, d_k, recent)
    else:
        norms, live, label = _stream_layer_config(LAYER_CONFIGS[config](), seeds, tokens, piece, d_k, recent)
    half = (norms.shape[1] - 1) // 2 + 1  # first half: t = 0 .. tokens/2
    finite = bool(np.all(np.isfinite(norms)))
    ratios = norms[:, half:].max(axis=1) / norms[:, :half].max(axis=1)
    headline = mean_ci(ratios)
    alive = (live["moved"] >= tol) & (live["write_effect"] >= tol)
    claim_record.value("max ||M||_F second half / first half", headline)
    claim_record.seeds(seeds)
    claim_record.value("every state finite", float(finite))
    claim_record.value(f"seeds alive (weights moved and the last {recent} writes changed their keys' reads, "
                       f"each >= {tol:g})", int(np.sum(alive)))
    claim_record.value("weights moved from init, ||W_end - W_0|| / max(||W_0||, ||W_end||)", mean_ci(live["moved"]))
    claim_record.value(f"change of the last {recent} keys' reads by their own writes, / ||v||",
                       mean_ci(live["write_effect"]))
    claim_record.value(f"last {recent} keys' reads at the end vs at init, / ||v|| (recorded, decides nothing)",
                       mean_ci(live["read_vs_init"]))
    claim_record.value("max ||M||_F over the stream", float(np.max(norms)))
    claim_record.value("final ||M||_F (mean over seeds)", float(np.mean(norms[:, -1])))
    if np.all(norms[:, -1] == 0):
        claim_record.note("the memory collapsed to M = 0: every weight underflowed. For a bias-free "
                          "MLP (L_M >= 2) M = 0 is a fixed point (each layer's gradient is "
                          "proportional to the other layers' weights), and the forgetting gate α "
                          "pulls the weights into it faster than the small θ writes: bounded, but "
                          "the memory can no longer store anything.")
    for r, s in enumerate(seeds):
        claim_record.curve(f"||M||_F, seed {s}", [i * piece for i in range(norms.shape[1])],
                           norms[r].tolist(), xlabel="tokens streamed", ylabel="weight norm ||M||_F",
                           config=config, panel=config, series=f"seed {s}")
    claim_record.note(f"{config}: {label}; {tokens:,} tokens in pieces of {piece}; d_k={d_k}")
    assert finite, f"non-finite memory state: {norms}"
    if not alive.all():
        inconclusive(f"{BOUNDED} [{config}]: the memory is not alive in {int(np.sum(~alive))} of {len(seeds)} "
                     f"seeds (weights moved {np.round(live['moved'], 4).tolist()}, write effect "
                     f"{np.round(live['write_effect'], 4).tolist()}, each needs >= {tol:g}): a memory that "
                     "stores nothing cannot show boundedness")
    settle(claim, headline, what=config)


# --------------------------------------------------------------------------------------------
# divergence boundary, detected
# --------------------------------------------------------------------------------------------


def _guarded_run(seed: int, theta: float, normalize: bool, tokens: int, chunk: int, d_k: int, max_norm: float):
    """('ok' | 'detected' | 'silent' | 'crash', detail)."""
    k, v = _piece(seed, 0, 1, tokens, d_k, normalize)
    km, vm = mx.array(k), mx.array(v)
    g = mx.ones((1, tokens))
    try:
        y, state = guarded_memory_scan((mx.zeros((d_k, d_k)),), km, km, vm, theta * g, 0.9 * g, 0 * g, chunk,
                                       max_norm=max_norm)
    except MemoryDivergedError as err:
        ok = isinstance(err.start, int) and err.stop > err.start and str(err.start) in str(err)
        return ("detected" if ok else "crash"), f"tokens [{err.start}, {err.stop}), {err.reason}"
    except Exception as err:  # noqa: BLE001 - any other exception is a crash
        return "crash", f"{type(err).__name__}: {err}"
    finite = bool(mx.all(mx.isfinite(y)).item()) and all(math.isfinite(n) for n in state_norms(state))
    return ("ok" if finite else "silent"), f"final norm {state_norms(state)[0]:.3g}"


@pytest.mark.claim(DIVERGE)
def test_divergence_detected(claim, claim_record, scale):
    cfg = claim.scales[scale]
    thetas, seeds = list(cfg["thetas"]), list(cfg["seeds"])
    args = dict(tokens=cfg["tokens"], chunk=cfg["chunk"], d_k=cfg["d_k"], max_norm=cfg["max_norm"])
    outcomes = {(s, th, norm): _guarded_run(s, th, norm, **args) for s in seeds for th in thetas for norm in (False, True)}
    raw = [outcomes[(s, th, False)][0] for s in seeds for th in thetas]
    per_seed = [np.mean([outcomes[(s, th, False)][0] in ("ok", "detected") for th in thetas]) for s in seeds]
    headline = mean_ci(per_seed)
    claim_record.value("fraction of runs finite or reported as MemoryDivergedError", headline)
    claim_record.seeds(seeds)
    n_div = sum(o == "detected" for o in raw)
    claim_record.value("divergent runs detected (unnormalized keys)", n_div)
    boundary = [min([th for th in thetas if outcomes[(s, th, False)][0] == "detected"], default=math.inf) for s in seeds]
    claim_record.value("smallest divergent θ (unnormalized keys)", mean_ci(boundary) if all(map(math.isfinite, boundary)) else float(min(boundary)))
    claim_record.value("online delta-rule bound (1+η)/E||k||² for reference", (1 + 0.9) / cfg["d_k"])
    normalized_div = sum(outcomes[(s, th, True)][0] == "detected" for s in seeds for th in thetas)
    claim_record.value("divergent runs with l2-normalized keys (same θ grid)", normalized_div)
    for norm in (False, True):
        claim_record.curve(f"diverged (1) vs θ, {'l2-normalized' if norm else 'unnormalized'} keys", thetas,
                           [float(np.mean([outcomes[(s, th, norm)][0] == "detected" for s in seeds])) for th in thetas],
                           xlabel="θ", ylabel="fraction of seeds diverged",
                           series=("l2-normalized" if norm else "unnormalized") + " keys", xscale="log", ylim=[0, 1])
    claim_record.note("; ".join(f"seed {s} θ={th:g} {'l2' if n else 'raw'}: {o} ({d})"
                                for (s, th, n), (o, d) in outcomes.items() if o != "ok"))
    bad = [(k, o) for k, o in outcomes.items() if o[0] in ("silent", "crash")]
    assert not bad, f"silent NaN or crash: {bad}"
    assert n_div >= 1, "no θ of the grid diverged: the detection was not exercised"
    settle(claim, headline, what="unnormalized keys")
