"""Peak memory of one call, measured (never computed from a formula).

CUDA: the rise of ``torch.cuda.max_memory_allocated`` (and ``max_memory_reserved``) over the
allocation before the call, after ``reset_peak_memory_stats``.

CPU (Linux): the rise of the process's peak resident set size during the call. The kernel's
high-water mark is reset first (``/proc/self/clear_refs`` <- 5), and glibc is told to serve
every allocation of 128 KiB or more with its own mapping (``mallopt(M_MMAP_THRESHOLD)``) so
that freed tensors go back to the kernel instead of being recycled unseen; the high-water mark
then rises by what the call really touched. The grid's summary (``bench.micro.run``) and the report
validate it on the reference variant: its peak must cover the B*H*L^2 score matrix
(``reports.micro_analysis.score_matrix_check``). Elsewhere CPU memory is "unavailable", with that
reason in the record.

``address_space_limit`` makes an allocation beyond a budget fail with a catchable error rather
than waking the kernel's out-of-memory killer, so a too-large case becomes an ``oom`` row.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

M_MMAP_THRESHOLD = -3  # glibc mallopt parameter number
MMAP_THRESHOLD = 128 * 1024
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_MEMINFO = Path("/proc/meminfo")


def _proc_bytes(path: Path, key: str) -> int:
    """A ``key: <n> kB`` line of a /proc file, in bytes."""
    for line in path.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} missing from {path}")


def _status_bytes(key: str) -> int:
    return _proc_bytes(_STATUS, key)


def cpu_method() -> tuple[str | None, str]:
    """('cpu_peak_rss', '') when CPU peaks can be measured here, else (None, why not)."""
    if not sys.platform.startswith("linux"):
        return None, f"CPU peak memory needs Linux /proc (platform {sys.platform})"
    try:
        _CLEAR_REFS.write_text("5")
        _status_bytes("VmHWM")
    except OSError as err:
        return None, f"cannot reset the peak RSS ({err})"
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    if libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
        return None, "glibc refused mallopt(M_MMAP_THRESHOLD)"
    return "cpu_peak_rss", ""


def measure_peak(fn: Callable[[], object], device: str) -> tuple[int, int | None, str]:
    """(peak bytes above the starting allocation, reserved bytes or None, method) of one ``fn()``."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base, base_reserved = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
        fn()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        return peak, torch.cuda.max_memory_reserved() - base_reserved, "cuda_max_memory_allocated"
    method, why = cpu_method()
    if method is None:
        raise RuntimeError(why)
    _CLEAR_REFS.write_text("5")
    base = _status_bytes("VmRSS")
    fn()
    return max(_status_bytes("VmHWM") - base, 0), None, method


@contextmanager
def address_space_limit(budget_bytes: int) -> Iterator[int]:
    """Within the block, this process may map at most ``budget_bytes`` more than it has now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _status_bytes("VmSize") + int(budget_bytes)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield cap
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is an allocation that failed (a CUDA or CPU allocator, or Python's own)."""
    if isinstance(err, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)


def available_bytes() -> int:
    return _proc_bytes(_MEMINFO, "MemAvailable")
