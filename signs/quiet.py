"""Keep TensorFlow's native start-up noise out of the command line's output.

``TF_CPP_MIN_LOG_LEVEL=3`` silences TensorFlow's C++ logging once absl is initialised, but a few
lines are written to file descriptor 2 before that (``All log messages before absl::InitializeLog()
...``, ``cudart_stub.cc: Could not find cuda drivers``). They come from native code, so Python's
``sys.stderr`` cannot catch them. ``filtered_native_stderr`` routes descriptor 2 through a pipe and
drops only lines that match known start-up noise; Python's own ``sys.stderr`` (errors, tracebacks,
progress bars) keeps writing straight to the terminal.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import threading
from typing import Iterator

__all__ = ["NOISE", "quiet_frameworks", "filtered_native_stderr"]

NOISE = re.compile(
    rb"All log messages before absl::InitializeLog\(\)"
    rb"|cudart_stub\.cc|cuda_dnn\.cc|cuda_fft\.cc|cuda_blas\.cc|cuda_executor\.cc"
    rb"|Unable to register cu(DNN|FFT|BLAS) factory"
    rb"|computation_placer\.cc|oneDNN custom operations are on"
    rb"|This TensorFlow binary is optimized to use available CPU instructions"
    rb"|To enable the following instructions|rebuild TensorFlow with the appropriate compiler flags"
    rb"|Could not find cuda drivers|failed call to cuInit|TF-TRT Warning"
)


def _forward(read_fd: int, write_fd: int) -> None:
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if not NOISE.search(line):
                    os.write(write_fd, line + b"\n")
        if pending and not NOISE.search(pending):
            os.write(write_fd, pending)


@contextlib.contextmanager
def filtered_native_stderr() -> Iterator[None]:
    """Filter known native start-up noise from descriptor 2 for the duration of the block."""
    try:
        sys.stderr.flush()
        original_fd = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable stderr (e.g. a closed descriptor)
        yield
        return
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    forwarder = threading.Thread(target=_forward, args=(read_fd, original_fd), daemon=True)
    forwarder.start()
    python_stderr = sys.stderr
    sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(original_fd), "wb", buffering=0), write_through=True)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = python_stderr
        os.dup2(original_fd, 2)  # closes the pipe's last write end, so the forwarder drains and ends
        forwarder.join(timeout=5)
        os.close(original_fd)


def quiet_frameworks() -> None:
    """Silence TensorFlow's start-up log noise before anything imports it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ INFO/WARNING/ERROR lines
    # TF enables its oneDNN kernels only on CPUs it recognises (not on this project's AMD EPYC
    # machines, for example); they make the TF step 3-4x faster and pass the same parity checks
    # (BENCHMARKS.md). A user's own setting wins.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
