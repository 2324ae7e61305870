"""Give MLX an optimized BLAS on Linux before ``mlx`` is first imported.

The Linux ``mlx[cpu]`` wheel links a reference (netlib) BLAS, many times slower than OpenBLAS on
the same cores (``docs/performance.md``; ``tests/test_blas.py`` checks it). ``libmlx.so`` calls the unprefixed
``cblas_sgemm``; an OpenBLAS that exports the standard cblas symbols and is loaded into the global
symbol scope *before* ``libmlx.so`` wins the symbol lookup. Loading it after ``mlx.core`` has been
imported has no effect, so this module must run first (``titans/__init__.py`` imports it first).

Set ``TITANS_BLAS`` to a library path to choose the library, or to ``none`` to keep the wheel's.
"""

from __future__ import annotations

import ctypes
import glob
import os
import platform
import sys
import warnings

_CANDIDATES = (
    "/usr/lib/*-linux-gnu/openblas-pthread/libblas.so.3",
    "/usr/lib/*-linux-gnu/openblas-openmp/libblas.so.3",
    "/usr/lib/*-linux-gnu/openblas-serial/libblas.so.3",
    "/usr/lib64/libopenblas.so.0",
    "/usr/lib/libopenblas.so.0",
)

_loaded_path: str | None = None


def _find_openblas() -> str | None:
    for pattern in _CANDIDATES:
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[0]
    return None


def preload() -> str | None:
    """Load an OpenBLAS globally if possible; return its path (or None)."""
    global _loaded_path
    if _loaded_path is not None or platform.system() != "Linux":
        return _loaded_path
    choice = os.environ.get("TITANS_BLAS", "").strip()
    if choice.lower() == "none":
        return None
    path = choice or _find_openblas()
    if path is None:
        return None
    if "mlx.core" in sys.modules:
        # Too late: libmlx.so already resolved its cblas symbols. blas_info() reports it.
        return None
    try:
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError as err:  # pragma: no cover - depends on the machine
        warnings.warn(f"titans: could not load BLAS {path!r}: {err}", RuntimeWarning, stacklevel=2)
        return None
    _loaded_path = path
    return path


def blas_info() -> dict:
    """Which BLAS MLX's matmuls use in this process: ``{"blas": name, "path": path}``."""
    system = platform.system()
    if system == "Darwin":
        return {"blas": "accelerate", "path": None}
    if system != "Linux":
        return {"blas": "unknown", "path": None}
    try:
        with open("/proc/self/maps") as maps:
            mapped = {line.split()[-1] for line in maps if "/" in line}
    except OSError:  # pragma: no cover
        return {"blas": "unknown", "path": None}
    for path in sorted(mapped):
        name = os.path.basename(path)
        # numpy's own OpenBLAS is ILP64 with suffixed symbols and serves numpy only.
        if "openblas" in path and "numpy" not in path and "scipy" not in path:
            return {"blas": "openblas", "path": path}
        if name.startswith("libmkl_rt"):
            return {"blas": "mkl", "path": path}
    for path in sorted(mapped):
        if "mlx" in path and "libblas" in os.path.basename(path):
            return {"blas": "reference", "path": path}
    return {"blas": "unknown", "path": None}


def warn_if_reference() -> None:
    info = blas_info()
    if info["blas"] == "reference":
        hint = (
            "mlx was imported before titans"
            if _loaded_path is None and _find_openblas() is not None
            else "no OpenBLAS found (Debian/Ubuntu: apt-get install libopenblas0-pthread)"
        )
        warnings.warn(
            "titans: MLX is using the reference BLAS shipped in the mlx[cpu] wheel; matmuls run "
            f"~30x slower than with OpenBLAS ({hint}). Import titans before mlx.",
            RuntimeWarning,
            stacklevel=3,
        )
