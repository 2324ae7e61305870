"""Resident-set-size readings of the current process, shared by both benchmark workers.

No dependencies: it runs in this repository's venv (MLX) and in the peer's (torch). Linux only;
elsewhere every reading is ``None``.

The peak is the kernel's high-water mark of resident memory, ``VmHWM`` in ``/proc/self/status``.
Writing ``5`` to ``/proc/self/clear_refs`` resets it to the current RSS (Linux >= 4.0), so that
the peak of one forward call can be read in a process that has already imported its framework,
built its model and warmed up. torch's CPU allocations go through ``malloc`` (``tracemalloc``
does not see them) and MLX's through its own allocator; RSS sees both alike.
"""

from __future__ import annotations

import json
import re

KIB = 1024


def status_bytes(field: str, text: str | None = None) -> int | None:
    """``field`` (``VmRSS``, ``VmHWM``, ...) of ``/proc/self/status`` (or of ``text``) in bytes."""
    if text is None:
        try:
            with open("/proc/self/status") as f:
                text = f.read()
        except OSError:
            return None
    match = re.search(rf"^{field}:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) * KIB if match else None


def reset_peak() -> bool:
    """Reset ``VmHWM`` to the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakRSS:
    """``with PeakRSS() as m: ...``; then ``m.before`` (RSS at entry), ``m.peak`` (VmHWM at exit)
    and ``m.working`` (peak − before: the resident memory the block added at its highest point).
    ``m.reset`` says whether the high-water mark could be reset at entry; without it ``peak`` is the
    process's peak so far and ``working`` is an upper bound."""

    def __enter__(self):
        self.reset = reset_peak()
        self.before = status_bytes("VmRSS")
        return self

    def __exit__(self, *exc):
        self.peak = status_bytes("VmHWM")
        self.after = status_bytes("VmRSS")
        ok = self.peak is not None and self.before is not None
        self.working = max(0, self.peak - self.before) if ok else None
        return False

    def record(self) -> dict:
        return dict(rss_before_bytes=self.before, rss_peak_bytes=self.peak, rss_after_bytes=self.after,
                    rss_working_bytes=self.working, rss_peak_reset=self.reset)


def run_worker(measure, argv) -> None:
    """A worker's entry point: ``argv[1]`` is the JSON spec, the result goes to the file ``argv[2]``."""
    result = measure(json.loads(argv[1]))
    with open(argv[2], "w") as f:
        json.dump(result, f)
