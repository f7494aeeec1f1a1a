"""TensorFlow's stateful ``random_uniform`` reproduced in NumPy, bit for bit.

The course initialised its weights in TensorFlow 1 (``tf.set_random_seed(1)`` then
``xavier_initializer(seed=0)``), so reproducing the course's starting point needs TensorFlow's
random stream. That stream is fully specified by TF's CPU kernels:

* ``GuardedPhiloxRandom::Init(seed, seed2)`` builds ``PhiloxRandom(seed_lo=seed, seed_hi=seed2)``:
  key = (seed & 0xffffffff, seed >> 32), counter = (0, 0, seed2 & 0xffffffff, seed2 >> 32),
  where ``seed`` is the graph-level seed and ``seed2`` the op-level seed.
* Each call of the generator runs Philox4x32-10 on the counter and then increments the 128-bit
  counter; one call yields four uint32 words.
* ``UniformDistribution<PhiloxRandom, float>`` turns each uint32 ``x`` into a float32 in [0, 1) as
  ``bitcast<float>(0x3f800000 | (x & 0x7fffff)) - 1.0f``: four floats per call, in order.
* ``tf.random.uniform(shape, minval, maxval)`` then computes ``rnd * (maxval - minval) + minval``
  in float32, as two separate float32 ops (no fused multiply-add).

The first run of a freshly created op starts at counter 0, which is the case for every variable
initializer in a new graph. ``tests/weights/test_course_init.py`` checks this module against
TensorFlow itself when TensorFlow is installed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["philox4x32_10", "tf_random_uniform_float32"]

_PHILOX_W32A = np.uint64(0x9E3779B9)  # key increment per round (golden ratio)
_PHILOX_W32B = np.uint64(0xBB67AE85)  # key increment per round (sqrt(3) - 1)
_PHILOX_M4X32A = np.uint64(0xD2511F53)  # round multipliers
_PHILOX_M4X32B = np.uint64(0xCD9E8D57)
_MASK32 = np.uint64(0xFFFFFFFF)
_ROUNDS = 10


def philox4x32_10(counters: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    """Philox4x32-10 block function.

    Parameters
    ----------
    counters : uint64 array (n, 4), each entry a 32-bit word (c0, c1, c2, c3)
    key : (k0, k1), two 32-bit words

    Returns
    -------
    uint64 array (n, 4): the four 32-bit output words of each counter, in TF's order.
    """
    c = [counters[:, i].astype(np.uint64) for i in range(4)]
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    for round_index in range(_ROUNDS):
        prod0 = _PHILOX_M4X32A * c[0]  # exact: both factors < 2**32
        prod1 = _PHILOX_M4X32B * c[2]
        hi0, lo0 = prod0 >> np.uint64(32), prod0 & _MASK32
        hi1, lo1 = prod1 >> np.uint64(32), prod1 & _MASK32
        c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
        if round_index < _ROUNDS - 1:
            k0 = (k0 + _PHILOX_W32A) & _MASK32
            k1 = (k1 + _PHILOX_W32B) & _MASK32
    return np.stack(c, axis=1)


def _uniform_unit_float32(n: int, seed: int, seed2: int) -> np.ndarray:
    """The first ``n`` float32 draws in [0, 1) of TF's RandomUniform op with (seed, seed2)."""
    n_calls = -(-n // 4)  # one Philox call yields four floats
    index = np.arange(n_calls, dtype=np.uint64)
    counters = np.zeros((n_calls, 4), dtype=np.uint64)
    counters[:, 0] = index & _MASK32  # 128-bit counter, low word first
    counters[:, 1] = index >> np.uint64(32)
    counters[:, 2] = np.uint64(seed2) & _MASK32
    counters[:, 3] = np.uint64(seed2) >> np.uint64(32)
    key = (int(seed) & 0xFFFFFFFF, (int(seed) >> 32) & 0xFFFFFFFF)
    words = philox4x32_10(counters, key).reshape(-1)[:n]  # (n_calls * 4,) in generation order
    bits = (words & np.uint64(0x7FFFFF)) | np.uint64(0x3F800000)  # float32 in [1, 2)
    return bits.astype(np.uint32).view(np.float32) - np.float32(1.0)


def tf_random_uniform_float32(shape, minval: float, maxval: float, seed: int, seed2: int) -> np.ndarray:
    """``tf.compat.v1.random_uniform(shape, minval, maxval, tf.float32)`` under seeds (seed, seed2).

    Parameters
    ----------
    shape : tuple of int
    minval, maxval : Python floats, converted to float32 as TensorFlow converts them
    seed : graph-level seed (``tf.set_random_seed``)
    seed2 : op-level seed (the initializer's ``seed=``)

    Returns
    -------
    float32 array of ``shape``, C order (TF fills row-major).
    """
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise ValueError(f"shape: expected non-negative dimensions, got {shape}")
    if seed == 0 and seed2 == 0:
        raise ValueError("seed, seed2: (0, 0) means 'nondeterministic' in TensorFlow; give a seed")
    n = int(np.prod(shape, dtype=np.int64))
    rnd = _uniform_unit_float32(n, seed, seed2).reshape(shape)
    lo, hi = np.float32(minval), np.float32(maxval)
    return rnd * (hi - lo) + lo  # two float32 ops, as TF's graph does them
