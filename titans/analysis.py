"""Memory utilization: where and how strongly the neural memory writes, how large it grows, and how
much it contributes next to attention.

Every function returns numpy arrays (float64), so results plot and test without MLX.

:func:`memory_trace` (one ``memory_scan`` configuration, any leading dims such as batch × heads)
    ``write_strength[..., t] = θ_t · ‖∇ℓ_t‖`` with ``∇ℓ_t`` the gradient of eq. 12 for token ``t``
    at the chunk-start weights ``M_{t0}`` (eq. 16: the gradient the scan actually applies). For a
    bias-free layer ``l`` the gradient is the rank-one ``g_t a_tᵀ`` (backprop signal ``g``, layer
    input ``a``), so ``‖∇_l ℓ_t‖_F = ‖g_t‖·‖a_t‖`` exactly and ``‖∇ℓ_t‖² = Σ_l ‖∇_l ℓ_t‖²``.
    ``weight_norm[..., c] = ‖M‖`` (Frobenius over all memory layers) after chunk ``c``: the scan
    keeps one state per chunk, so norms are at **chunk granularity**; ``chunk_end[c]`` is the
    position of the last token of chunk ``c``.

:func:`model_memory_utilization` (a Titans language model on a token sequence)
    Runs the model once while recording what each block's ``NeuralMemory`` receives (and, for
    MAG/MAC, the two inputs ``y`` (attention) and ``M`` (memory) of the gate ``y ⊗ M``), then
    traces each memory layer with :func:`memory_trace`. Positions are token positions: the
    persistent-token writes that LMM/MAG put in front of the sequence are dropped (their count is
    ``n_prefix``; chunk ends are shifted by it, chunks holding only persistent tokens are dropped).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import mlx.core as mx
import numpy as np

from titans import tasks
from titans.ops.memory import _forward_backward, memory_read, memory_scan

from titans.layers.neural_memory import NeuralMemory

__all__ = [
    "DEFAULT_TITLE",
    "default_memory_utilization",
    "memory_trace",
    "model_memory_utilization",
]

DEFAULT_TITLE = (
    "Memory utilization of freshly initialized tiny Titans on one far-pointer sequence "
    "(dashed: needle and query positions; batch row 0)"
)


def _np(x: Any) -> np.ndarray:
    if isinstance(x, mx.array):
        return np.array(x.astype(mx.float32), dtype=np.float64)
    return np.asarray(x, dtype=np.float64)


def _mx(x: Any, dtype=mx.float32) -> mx.array:
    return x.astype(dtype) if isinstance(x, mx.array) else mx.array(np.asarray(x), dtype=dtype)


# --------------------------------------------------------------------------------------------
# One memory: write strength and weight norms
# --------------------------------------------------------------------------------------------


def memory_trace(weights, k, v, lr, momentum, decay, chunk_size: int, *, normalize_output: bool = False,
                 q=None) -> dict[str, np.ndarray]:
    """Write strength per token and memory norm per chunk of ``memory_scan(weights, ·, k, v, ...)``.

    Args as for :func:`titans.ops.memory.memory_scan` (``k`` ``(..., T, d_k)``, ``v`` ``(..., T, d_v)``,
    gates ``(..., T)``; the initial ``weights`` broadcast over the leading dims).

    Returns (``L`` memory layers, ``C = ceil(T / chunk_size)`` chunks):
        ``write_strength (..., T)``  θ_t·‖∇ℓ_t‖;
        ``grad_norm (..., T)``       ‖∇ℓ_t‖ at the chunk-start weights;
        ``layer_grad_norm (..., L, T)``  ‖g_t‖·‖a_t‖ per memory layer;
        ``loss (..., T)``            ℓ_t = ‖M_{t0}(k_t) − v_t‖² (the "surprise" it is a gradient of);
        ``weight_norm (..., C)``     ‖M‖ after each chunk; ``layer_weight_norm (..., L, C)``;
        ``weight_norm_initial (...)``  ‖M_0‖;
        ``momentum_norm (..., C)``   ‖S‖ after each chunk; ``layer_momentum_norm (..., L, C)``;
        ``chunk_grad_norm (..., L, C)``  ‖Σ_{i∈chunk} θ_i ∇ℓ_i‖ per layer: the summed write of a
                                     chunk, all taken at its start weights (what explodes when
                                     keys repeat inside a chunk);
        ``read_norm (..., T)``       ‖M_t(q_t)‖ when ``q`` is given (else absent);
        ``chunk_end (C,)``           the last position of each chunk.
    ``normalize_output`` as in ``memory_scan``.
    """
    k, v, lr, momentum, decay = (_mx(x) for x in (k, v, lr, momentum, decay))
    weights = tuple(_mx(w) for w in weights)
    leading, T = k.shape[:-2], k.shape[-2]
    if T == 0:
        raise ValueError("k is empty: the sequence length T is 0")
    chunk_size = int(chunk_size)
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size}")
    current = tuple(mx.broadcast_to(w, (*leading, *w.shape[-2:])) for w in weights)

    def frob(arrays) -> list[np.ndarray]:
        return [_np(mx.sqrt(mx.sum(mx.square(a), axis=(-2, -1)))) for a in arrays]

    w0 = frob(current)
    layer_grads, losses, layer_w, layer_s, chunk_grads, reads, ends = [], [], [], [], [], [], []
    state = None
    for start in range(0, T, chunk_size):
        stop = min(T, start + chunk_size)
        kc, vc = k[..., start:stop, :], v[..., start:stop, :]
        inputs, out_grads = _forward_backward(current, kc, vc, normalize_output)
        theta = lr[..., start:stop, None]
        chunk_grads.append(np.stack([_np(mx.sqrt(mx.sum(mx.square(mx.swapaxes(theta * g, -1, -2) @ a), axis=(-2, -1))))
                                     for a, g in zip(inputs, out_grads)], axis=-1))  # (..., L)
        per_layer = [
            mx.sqrt(mx.sum(mx.square(g), axis=-1)) * mx.sqrt(mx.sum(mx.square(a), axis=-1))
            for a, g in zip(inputs, out_grads)
        ]
        layer_grads.append(_np(mx.stack(per_layer, axis=-2)))  # (..., L, n)
        losses.append(_np(mx.sum(mx.square(memory_read(current, kc, normalize_output=normalize_output) - vc), axis=-1)))
        qc = kc if q is None else _mx(q)[..., start:stop, :]
        y, state = memory_scan(
            weights, qc, kc, vc, lr[..., start:stop], momentum[..., start:stop], decay[..., start:stop],
            chunk_size, state=state, normalize_output=normalize_output,
        )
        reads.append(_np(mx.sqrt(mx.sum(mx.square(y), axis=-1))))
        current = state.weights
        layer_w.append(np.stack(frob(state.weights), axis=-1))  # (..., L)
        layer_s.append(np.stack(frob(state.momentum), axis=-1))
        ends.append(stop - 1)
    layer_grad_norm = np.concatenate(layer_grads, axis=-1)
    grad_norm = np.sqrt(np.sum(layer_grad_norm**2, axis=-2))
    layer_weight_norm = np.stack(layer_w, axis=-1)  # (..., L, C)
    layer_momentum_norm = np.stack(layer_s, axis=-1)
    extra = {"read_norm": np.concatenate(reads, axis=-1)} if q is not None else {}
    return {
        **extra,
        "write_strength": _np(lr) * grad_norm,
        "grad_norm": grad_norm,
        "layer_grad_norm": layer_grad_norm,
        "loss": np.concatenate(losses, axis=-1),
        "weight_norm": np.sqrt(np.sum(layer_weight_norm**2, axis=-2)),
        "layer_weight_norm": layer_weight_norm,
        "weight_norm_initial": np.sqrt(sum(n**2 for n in w0)),
        "momentum_norm": np.sqrt(np.sum(layer_momentum_norm**2, axis=-2)),
        "layer_momentum_norm": layer_momentum_norm,
        "chunk_grad_norm": np.stack(chunk_grads, axis=-1),
        "chunk_end": np.asarray(ends, dtype=np.int64),
    }


# --------------------------------------------------------------------------------------------
# A whole model: record the memory inputs and the gate inputs, then trace
# --------------------------------------------------------------------------------------------


class _Recorder:
    """Temporarily swaps the class of module instances for a subclass that records call inputs."""

    def __init__(self):
        self.swapped: list[tuple[Any, type]] = []
        self.calls: dict[int, list[tuple]] = {}

    def watch(self, module: Any) -> None:
        cls = type(module)
        calls = self.calls.setdefault(id(module), [])

        def __call__(inner, *args, **kwargs):  # noqa: N807 - the recorded call
            calls.append(tuple(a for a in args if isinstance(a, mx.array)))
            return cls.__call__(inner, *args, **kwargs)

        module.__class__ = type(f"Recording{cls.__name__}", (cls,), {"__call__": __call__})
        self.swapped.append((module, cls))

    def restore(self) -> None:
        for module, cls in reversed(self.swapped):
            module.__class__ = cls
        self.swapped.clear()


def _is_gate(module: Any) -> bool:
    return module is not None and hasattr(module, "y_norm") and hasattr(module, "memory_norm")


def model_memory_utilization(model, tokens, *, marks: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Memory utilization of every ``NeuralMemory`` block of ``model`` on ``tokens`` (B, T).

    Returns a dict: ``model`` (its ``model_type``), ``chunk_size``, ``n_prefix``, ``marks``,
    ``write_strength``/``grad_norm``/``loss`` ``(B, layers, heads, T)``, ``weight_norm``
    ``(B, layers, heads, C)``, ``weight_norm_initial`` ``(B, layers, heads)``, ``momentum_norm``
    ``(B, layers, heads, C)``, ``chunk_grad_norm`` ``(B, layers, heads, L_M, C)``, ``read_norm`` and
    the gates ``theta``/``eta``/``alpha`` ``(B, layers, heads, T)``, ``chunk_end``
    ``(C,)`` in token positions, and for models with a gate (MAG, MAC) ``attention_norm``,
    ``memory_norm`` (‖y_t‖ and ‖M_t‖ of the gate inputs) and ``gate_mean`` (the mean of
    σ(RMSNorm(M_t)), how open the memory gate is) ``(B, layers, T)``; ``None`` otherwise.
    """
    tokens = mx.array(np.asarray(tokens), dtype=mx.int32) if not isinstance(tokens, mx.array) else tokens
    if tokens.ndim != 2:
        raise ValueError(f"tokens must be (batch, T), got shape {tokens.shape}")
    B, T = tokens.shape
    blocks = [(i, b) for i, b in enumerate(model.layers) if isinstance(getattr(b, "memory", None), NeuralMemory)]
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no NeuralMemory block")
    recorder = _Recorder()
    try:
        for _, block in blocks:
            recorder.watch(block.memory)
            if _is_gate(getattr(block, "gate", None)):
                recorder.watch(block.gate)
        mx.eval(model(tokens))
        traces, gates = [], []
        for _, block in blocks:
            mem = block.memory
            xs = [c[0] for c in recorder.calls[id(mem)]]
            gate_calls = recorder.calls.get(id(getattr(block, "gate", None)))
            traces.append((mem, mx.concatenate(xs, axis=1)))
            if gate_calls:
                y = mx.concatenate([c[0] for c in gate_calls], axis=1)
                m = mx.concatenate([c[1] for c in gate_calls], axis=1)
                gates.append((block.gate, y, m))
    finally:
        recorder.restore()

    per_layer: list[dict[str, np.ndarray]] = []
    n_prefix = None
    for mem, x in traces:
        prefix = x.shape[1] - T
        if prefix < 0:
            raise RuntimeError(f"the memory saw {x.shape[1]} positions, fewer than the {T} tokens")
        n_prefix = prefix if n_prefix is None else n_prefix
        q, k, v, lr, momentum, decay = mem.projections(x)
        weights = tuple(w.astype(mx.float32) for w in mem.memory_weights)
        tr = memory_trace(weights, k, v, lr, momentum, decay, mem.config.chunk_size,
                          normalize_output=mem.config.normalize_output, q=q)
        keep = tr["chunk_end"] >= prefix
        per_layer.append({
            "write_strength": tr["write_strength"][..., prefix:],
            "grad_norm": tr["grad_norm"][..., prefix:],
            "loss": tr["loss"][..., prefix:],
            "weight_norm": tr["weight_norm"][..., keep],
            "weight_norm_initial": tr["weight_norm_initial"],
            "chunk_end": tr["chunk_end"][keep] - prefix,
            "momentum_norm": tr["momentum_norm"][..., keep],
            "chunk_grad_norm": tr["chunk_grad_norm"][..., keep],
            "read_norm": tr["read_norm"][..., prefix:],
            "theta": _np(lr)[..., prefix:], "eta": _np(momentum)[..., prefix:], "alpha": _np(decay)[..., prefix:],
        })
    stack = {key: np.stack([p[key] for p in per_layer], axis=1) for key in
             ("write_strength", "grad_norm", "loss", "weight_norm", "weight_norm_initial", "momentum_norm",
              "chunk_grad_norm", "read_norm", "theta", "eta", "alpha")}
    out: dict[str, Any] = {
        "model": getattr(model, "model_type", type(model).__name__),
        "chunk_size": int(traces[0][0].config.chunk_size),
        "n_prefix": int(n_prefix or 0),
        "marks": dict(marks or {}),
        **stack,
        "chunk_end": per_layer[0]["chunk_end"],
        "attention_norm": None,
        "memory_norm": None,
        "gate_mean": None,
    }
    if gates:
        a_n, m_n, g_m = [], [], []
        for gate, y, m in gates:
            p = y.shape[1] - T
            y, m = y[:, p:], m[:, p:]
            a_n.append(_np(mx.linalg.norm(y.astype(mx.float32), axis=-1)))
            m_n.append(_np(mx.linalg.norm(m.astype(mx.float32), axis=-1)))
            g_m.append(_np(mx.mean(mx.sigmoid(gate.memory_norm(m)), axis=-1)))
        out["attention_norm"] = np.stack(a_n, axis=1)
        out["memory_norm"] = np.stack(m_n, axis=1)
        out["gate_mean"] = np.stack(g_m, axis=1)
    return out


def default_memory_utilization(
    models: Sequence[str] = ("lmm", "mac", "mag"),
    *,
    size: str = "tiny",
    seq_len: int = 256,
    depth: float = 0.25,
    haystack: str = "random",
    seed: int = 0,
    train_steps: int = 0,
) -> list[dict[str, Any]]:
    """:func:`model_memory_utilization` of freshly initialized (or ``train_steps`` briefly trained
    on far pointer) models on one far-pointer sequence; marks the needle and the query."""
    from titans.models import create_model

    results = []
    for name in models:
        model = create_model(name, size, seed=seed)
        if train_steps:
            from titans.train import TrainConfig, train

            cfg = TrainConfig(model=name, size=size, task="far_pointer", seq_len=seq_len, batch_size=8,
                              steps=int(train_steps), warmup=max(1, int(train_steps) // 10), seed=seed,
                              task_options={"depth": None, "haystack": haystack})
            model, _ = train(cfg, model=model, log=None)
        batch = tasks.far_pointer(1, seq_len, depth, haystack=haystack, vocab_size=model.args.vocab_size, seed=seed)
        marks = {"needle": int(batch.meta["needle_pos"][0]), "query": int(batch.meta["query_pos"][0])}
        r = model_memory_utilization(model, batch.inputs, marks=marks)
        r["model"] = name.upper() if name in ("lmm", "mac", "mag", "mal") else name
        r["train_steps"] = int(train_steps)
        results.append(r)
    return results
