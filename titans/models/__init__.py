"""Model registry: claims and the training loop name models by string.

``create_model(name, size)`` builds a model at a named size. Sizes fix the shared dimensions; each
model's SwiGLU width is then solved so that its non-embedding parameter count matches the size's
budget (a Transformer++ with SwiGLU width ``4·dims``, i.e. ~16·dims² per layer, which leaves room
for the two mixers of the hybrids). Overrides (e.g. ``n_persistent=0`` for an ablation) are applied
before matching, so every configuration is compared at the same budget.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from functools import lru_cache

from titans.layers.neural_memory import MemoryConfig
from titans.models import lmm, mac, mag, mal, retnet, transformer
from titans.models.base import cache_arrays, cache_nbytes

MODELS = {
    "lmm": (lmm.Model, lmm.ModelArgs, {}),
    "mac": (mac.Model, mac.ModelArgs, {}),
    "mag": (mag.Model, mag.ModelArgs, {}),
    "mal": (mal.Model, mal.ModelArgs, {}),
    "transformer": (transformer.Model, transformer.ModelArgs, {"window": None}),
    "transformer_swa": (transformer.Model, transformer.ModelArgs, {}),
    "retnet": (retnet.Model, retnet.ModelArgs, {}),
}

SIZES = {
    # CI training (the trained tier's models: the tasks' vocabulary of 64).
    "micro": dict(vocab_size=64, dims=32, n_layers=2, n_heads=2, window=64, segment_size=32, chunk_size=16,
                  memory={"chunk_size": 16}),
    # Tests and training examples.
    "tiny": dict(vocab_size=512, dims=64, n_layers=2, n_heads=2, window=64, segment_size=32, chunk_size=16,
                 memory={"chunk_size": 16}),
    # Throughput benchmarks (as titans-pytorch's MAC reference: dim 256, depth 2, segment 128).
    "small": dict(vocab_size=4096, dims=256, n_layers=2, n_heads=4, window=512, segment_size=128, chunk_size=64,
                  memory={"chunk_size": 64}),
    # Full-scale runs.
    "medium": dict(vocab_size=8192, dims=512, n_layers=4, n_heads=8, window=1024, segment_size=256, chunk_size=64,
                   memory={"chunk_size": 64}),
}

TITANS = ("lmm", "mac", "mag", "mal")
BASELINES = ("transformer", "transformer_swa", "retnet")


def _lookup(name: str, size: str):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {sorted(SIZES)}")
    return MODELS[name]


def _non_embedding_parameters(name: str, params: dict) -> int:
    model_cls, args_cls, _ = MODELS[name]
    return model_cls(args_cls.from_dict(params)).num_parameters(embeddings=False)  # lazy: no compute


@lru_cache(maxsize=None)
def _matched_mlp_hidden(name: str, size: str, frozen_params: str) -> int:
    base = json.loads(frozen_params)
    dims, layers = base["dims"], base["n_layers"]
    target = _non_embedding_parameters("transformer", {**SIZES[size], "window": None, "mlp_hidden": 4 * dims})
    probe = 8
    fixed = _non_embedding_parameters(name, {**base, "mlp_hidden": probe}) - 3 * dims * layers * probe
    hidden = round((target - fixed) / (3 * dims * layers) / 8) * 8
    if hidden < 8:
        raise ValueError(f"{name} at size {size!r} with {base} exceeds the parameter budget")
    return hidden


def _merge_memory(size_memory: dict, override) -> dict:
    """The size's memory options updated by ``override`` (a dict of options or a ``MemoryConfig``)."""
    if isinstance(override, MemoryConfig):
        return asdict(override)
    if not isinstance(override, dict):
        raise TypeError(f"memory must be a dict of options or a MemoryConfig, got {type(override).__name__}")
    return {**size_memory, **override}


def model_args(name: str, size: str = "tiny", **overrides):
    """The ``ModelArgs`` of ``name`` at ``size``, with ``overrides`` applied and parameters matched
    (unless ``mlp_hidden`` is given). ``memory`` overrides merge into the size's memory options."""
    _, args_cls, defaults = _lookup(name, size)
    unknown = set(overrides) - set(args_cls.__dataclass_fields__)
    if unknown:
        raise ValueError(f"{name} has no option(s) {sorted(unknown)}")
    params = {**SIZES[size], **defaults, **overrides}
    if "memory" in overrides:
        params["memory"] = _merge_memory(SIZES[size].get("memory", {}), overrides["memory"])
    if "memory" in params and "memory" not in args_cls.__dataclass_fields__:
        del params["memory"]
    if "mlp_hidden" not in overrides:
        frozen = json.dumps(params, sort_keys=True, default=list)
        params["mlp_hidden"] = _matched_mlp_hidden(name, size, frozen)
    return args_cls.from_dict(params)


def create_model(name: str, size: str = "tiny", *, seed: int | None = None, **overrides):
    """Build model ``name`` at ``size`` (see ``SIZES``); ``seed`` makes the initialization reproducible."""
    import mlx.core as mx

    args = model_args(name, size, **overrides)
    if seed is not None:
        mx.random.seed(seed)
    return MODELS[name][0](args)


__all__ = ["BASELINES", "MODELS", "SIZES", "TITANS", "cache_arrays", "cache_nbytes", "create_model", "model_args"]
