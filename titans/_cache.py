"""Let MLX's CPU allocator keep freed buffers for reuse.

MLX 0.32 on the CPU keeps at most 32 MiB of freed buffers (its default cache limit there); every
larger buffer goes back to the operating system when freed and is page-faulted in again, zeroed,
on the next allocation. For the long sequences of this project (8k tokens of 4096-way logits is
134 MiB) that costs a quarter to a third of a forward's wall time in kernel page-fault handling,
and it grows with the working set, which bends throughput-versus-length curves upward.

``import titans`` therefore raises the cache limit on the CPU to a quarter of physical memory,
capped at 8 GiB. The cache only holds buffers already freed; peak *active* memory (what
``mx.get_peak_memory`` and the memory claims measure) is unchanged. Set ``TITANS_MLX_CACHE_LIMIT``
to a number of bytes to choose the limit, or to ``default`` to leave MLX's.
"""

from __future__ import annotations

import os

import mlx.core as mx

_CAP = 8 * 2**30
_configured: int | None = None


def _default_limit() -> int:
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return _CAP // 4
    return min(_CAP, physical // 4)


def raise_cpu_cache_limit() -> int | None:
    """Apply the limit described above (CPU default device only); returns it, or None if untouched."""
    global _configured
    choice = os.environ.get("TITANS_MLX_CACHE_LIMIT", "").strip().lower()
    if choice == "default" or mx.default_device() != mx.cpu:
        return None
    if choice:
        try:
            limit = int(float(choice))
        except ValueError:
            raise ValueError(
                f"TITANS_MLX_CACHE_LIMIT must be a number of bytes or 'default', got {choice!r}"
            ) from None
        if limit < 0:
            raise ValueError(f"TITANS_MLX_CACHE_LIMIT must be non-negative, got {limit}")
    else:
        limit = _default_limit()
    mx.set_cache_limit(limit)
    _configured = limit
    return limit


def cache_limit() -> int | None:
    """The cache limit titans set in this process (None: MLX's default was kept)."""
    return _configured
