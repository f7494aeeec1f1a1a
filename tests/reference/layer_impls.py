"""The course's loop layers and their vectorised equivalents, as (forward, backward) pairs.

One list for every test that runs the same check on both implementations: loops first, then the
vectorised layers of :mod:`reference.fast_layers` (same signatures and caches).
"""

from __future__ import annotations

from reference import (
    conv_backward,
    conv_backward_fast,
    conv_forward,
    conv_forward_fast,
    pool_backward,
    pool_backward_fast,
    pool_forward,
    pool_forward_fast,
)

CONV_IMPLS = [(conv_forward, conv_backward), (conv_forward_fast, conv_backward_fast)]
POOL_IMPLS = [(pool_forward, pool_backward), (pool_forward_fast, pool_backward_fast)]
