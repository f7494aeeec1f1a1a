"""How the fast layers use the CPU: single-threaded GEMM stacks and a pool of block workers.

Two decisions, made once here for every fast layer:

- **GEMMs run on the calling thread.** OpenBLAS runs a GEMM on one thread when
  ``m * n * k <= 65536 * GEMM_MULTITHREAD_THRESHOLD (4)``. The conv products are thin (``n = n_C``
  = 8 or 16), so a threaded call gains little, and each one waits at a thread barrier: on a busy
  machine (more runnable processes than cores) that wait made a conv1 forward 30x slower. So
  products are issued as stacks of GEMMs under :data:`SINGLE_THREAD_GEMM`, which ``np.matmul``
  runs in one call, each on the calling thread. (Other BLAS libraries see ordinary stacked
  products.)
- **Block temporaries are reused** (:func:`scratch`, per thread): a fresh megabyte-sized array
  per block comes from ``mmap`` or a trimmed heap and is paid again in page faults (the fused
  conv1 forward took 17-21 ms with fresh arrays, 11 ms with reused ones, measured).
- **Cores are used by splitting the batch into blocks of images** and running the blocks on
  :func:`map_blocks`'s thread pool (NumPy releases the GIL inside BLAS, copies, reductions and
  gathers). Each block's arithmetic does not depend on how many workers run it, and results are
  combined in block order, so the bits are the same for 1 worker or 8
  (``tests/reference/test_reference_fused.py``).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

import numpy as np

__all__ = [
    "SINGLE_THREAD_GEMM",
    "gemm_rows",
    "matmul_rows",
    "matmul_cols",
    "matmul_long_inner",
    "available_cores",
    "block_workers",
    "set_block_workers",
    "map_blocks",
    "scratch",
]

SINGLE_THREAD_GEMM = 65536 * 4

T = TypeVar("T")
R = TypeVar("R")


def gemm_rows(k: int, n: int) -> int:
    """Rows of an ``(rows, k) @ (k, n)`` product that keep it single-threaded in OpenBLAS."""
    return max(16, SINGLE_THREAD_GEMM // max(1, k * n))


def matmul_rows(A: np.ndarray, B: np.ndarray, out: np.ndarray) -> None:
    """``out = A @ B`` as a stack of row blocks: A (M, K) any strides, B (K, N), out (M, N)
    C-contiguous."""
    M, K = A.shape
    N = B.shape[1]
    step = gemm_rows(K, N)
    whole = (M // step) * step
    if whole:
        # Splitting the row axis is a view for any strides; np.matmul loops over the stack in C.
        np.matmul(A[:whole].reshape(-1, step, K), B, out=out[:whole].reshape(-1, step, N))
    if whole < M:
        np.matmul(A[whole:], B, out=out[whole:])


def matmul_cols(A: np.ndarray, B: np.ndarray, out: np.ndarray) -> None:
    """``out = A @ B`` as a stack of column blocks: A (M, K), B (K, L) any strides, out (M, L)
    C-contiguous. Each block of ``out`` is a column slice, which BLAS writes in place."""
    M, K = A.shape
    L = B.shape[1]
    step = gemm_rows(M, K)  # columns per single-threaded block
    whole = (L // step) * step
    if whole:
        stack_B = B[:, :whole].reshape(K, -1, step).transpose(1, 0, 2)  # (blocks, K, step), a view
        stack_out = out[:, :whole].reshape(M, -1, step).transpose(1, 0, 2)  # (blocks, M, step), a view
        np.matmul(A, stack_B, out=stack_out)
    if whole < L:
        np.matmul(A, B[:, whole:], out=out[:, whole:])


def matmul_long_inner(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A @ B`` for A (K, L), B (L, N) with a long inner axis L (the ``dW = patches^T dZ``
    products), as a stack of products over slices of L, then summed."""
    K, L = A.shape
    N = B.shape[1]
    step = gemm_rows(K, N)
    whole = (L // step) * step
    total = np.zeros((K, N), dtype=np.result_type(A, B))
    if whole:
        stack_A = A[:, :whole].reshape(K, -1, step).transpose(1, 0, 2)  # (blocks, K, step), a view
        total += np.matmul(stack_A, B[:whole].reshape(-1, step, N)).sum(axis=0)
    if whole < L:
        total += A[:, whole:] @ B[whole:]
    return total


# --------------------------------------------------------------------------------------------
# Block workers
# --------------------------------------------------------------------------------------------


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask; ``os.cpu_count()`` elsewhere)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


_workers = available_cores()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_pid = 0  # the process that made _pool: a forked child inherits the pool but not its threads
_pool_lock = threading.Lock()


def block_workers() -> int:
    """Threads :func:`map_blocks` uses (default: the cores this process may run on)."""
    return _workers


def set_block_workers(workers: int) -> int:
    """Use ``workers`` (>= 1) threads in :func:`map_blocks` from now on; returns the previous
    count. ``signs train --threads N`` sets it with the BLAS and framework pools."""
    global _workers
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers: expected a positive integer, got {workers!r}")
    previous, _workers = _workers, int(workers)
    return previous


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size, _pool_pid
    with _pool_lock:
        forked = _pool is not None and _pool_pid != os.getpid()
        if forked:
            _pool = None  # its threads did not survive the fork: submitting would wait forever
        if _pool is None or _pool_size != workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reference-block")
            _pool_size, _pool_pid = workers, os.getpid()
        return _pool


def map_blocks(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(item) for item in items]``, the items spread over :func:`block_workers` threads.

    ``fn`` must only write to its own block's outputs. Results come back in item order; an
    exception in a block is raised here (the other workers may still be finishing their items).
    """
    items = list(items)
    workers = min(_workers, len(items))
    if workers <= 1 or threading.current_thread().name.startswith("reference-block"):
        return [fn(item) for item in items]  # nested calls run inline: no pool deadlock

    def run_share(share: int) -> list:
        # Worker ``share`` takes items share, share + workers, ...: one task per worker (a
        # future per item cost ~1 ms per conv1 forward in queueing and wake-ups).
        return [fn(item) for item in items[share::workers]]

    shares = list(_executor(workers).map(run_share, range(workers)))
    results = [None] * len(items)
    for share, values in enumerate(shares):
        results[share::workers] = values
    return results


_scratch = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A reusable uninitialised array of ``shape`` and ``dtype`` for the calling thread.

    The same ``name`` returns the same memory on the next call from this thread (with the same
    shape and dtype), so a block's temporaries must be finished with before its next block.
    """
    arrays = _scratch.__dict__.setdefault("arrays", {})
    array = arrays.get(name)
    if array is None or array.shape != tuple(shape) or array.dtype != np.dtype(dtype):
        array = arrays[name] = np.empty(shape, dtype=dtype)
    return array
