"""The decoding-cache protocol shared by every model (after mlx-lm's ``models/cache.py``).

A cache holds what a model needs to continue a sequence: attention keys and values, the neural
memory's state, a retention matrix, positions. Every cache class derives from :class:`Cache` and
exposes

* ``state``: a dict of arrays (values may be nested dicts or lists of arrays; absent entries
  are left out), everything that must be saved;
* ``meta_state``: a JSON-able dict of the rest (positions, window sizes);
* ``from_state(state, meta_state)``: the inverse, a class method;
* ``nbytes`` and ``arrays``: derived from ``state``, so no caller crawls a cache's attributes.

Caches that contain caches (a Titans block holds an attention cache and a memory cache) store
each child's state under its name and describe it in ``meta_state`` with :func:`describe`, and
rebuild it with :func:`restore`. ``save_cache`` / ``load_cache`` write a model's list of layer
caches to one safetensors file (arrays; the metadata holds the classes and ``meta_state``).
"""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten, tree_unflatten

__all__ = ["Cache", "describe", "load_cache", "restore", "save_cache"]

_CLASSES: dict[str, type] = {}


class Cache:
    """Base class of every decoding cache (see the module docstring for the protocol)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _CLASSES[cls.__name__] = cls

    @property
    def state(self) -> dict:
        raise NotImplementedError

    @property
    def meta_state(self) -> dict:
        return {}

    @classmethod
    def from_state(cls, state: dict, meta_state: dict):
        raise NotImplementedError

    @property
    def arrays(self) -> list:
        """Every array of the cache (e.g. for ``mx.eval``)."""
        return [a for _, a in tree_flatten(self.state)]

    @property
    def nbytes(self) -> int:
        """Bytes held by the cache's arrays."""
        return sum(a.nbytes for a in self.arrays)


def describe(cache: Cache | None) -> dict | None:
    """``{"class", "meta"}`` of a child cache for its parent's ``meta_state`` (None for none)."""
    if cache is None:
        return None
    if not isinstance(cache, Cache):
        raise TypeError(f"cache must be a Cache or None, got {type(cache).__name__}")
    return {"class": type(cache).__name__, "meta": cache.meta_state}


def restore(description: dict | None, state: dict | None) -> Cache | None:
    """Rebuild a child cache from ``describe``'s output and its saved ``state``."""
    if description is None:
        return None
    name = description.get("class") if isinstance(description, dict) else None
    if name not in _CLASSES:
        raise ValueError(f"description names an unknown cache class {name!r}; known: {sorted(_CLASSES)}")
    return _CLASSES[name].from_state(state or {}, description.get("meta", {}))


def _layer_caches(caches) -> list:
    if not isinstance(caches, list) or not all(isinstance(c, Cache) for c in caches):
        raise TypeError("caches must be a list of Cache objects (a model's make_cache())")
    return caches


def save_cache(path, caches: list, metadata: dict | None = None) -> None:
    """Write a model's layer caches (and optional JSON-able ``metadata``) to ``path`` (.safetensors)."""
    caches = _layer_caches(caches)
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    arrays = dict(tree_flatten({f"layer{i}": c.state for i, c in enumerate(caches)}))
    header = {"layers": [describe(c) for c in caches], "user": metadata or {}}
    mx.save_safetensors(str(path), arrays, metadata={"titans_cache": json.dumps(header)})


def load_cache(path) -> tuple[list, dict]:
    """``(caches, metadata)`` written by :func:`save_cache`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path {str(path)!r} is not a file")
    arrays, meta = mx.load(str(path), return_metadata=True)
    if "titans_cache" not in meta:
        raise ValueError(f"path {str(path)!r} holds no titans cache (no 'titans_cache' metadata)")
    header = json.loads(meta["titans_cache"])
    state = tree_unflatten(list(arrays.items())) if arrays else {}
    caches = [restore(d, state.get(f"layer{i}")) for i, d in enumerate(header["layers"])]
    return caches, header["user"]
