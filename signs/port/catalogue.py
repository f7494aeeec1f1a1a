"""The porting-trap catalogue: stable ids, the porting mistake each names, and its one-line fix.

The ids are part of ``signs compare``'s JSON (``"traps": [{"id": ...}]``): never rename one.
:mod:`signs.port.traps` proves them; :mod:`signs.port.altered` computes what each does.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Trap", "CATALOGUE", "TRAP_IDS"]


@dataclass(frozen=True)
class Trap:
    """One catalogue entry: ``mistake`` says what a port did wrong, ``fix`` how to do it right."""

    id: str
    mistake: str
    fix: str


CATALOGUE: dict[str, Trap] = {t.id: t for t in (
    Trap("same-padding-side",
         "SAME's odd extra row/column placed before instead of after, or split symmetrically. TF/Keras "
         "SAME pads total = max(0, (ceil(n/s) - 1) s + f - n) with total // 2 before and the rest after "
         "(tensorflow/core/framework/kernel_shape_util.cc); torch's padding='same' (stride 1 only) pads "
         "the same way, the extra element after (F.conv2d(x, w, padding='same') equals "
         "F.conv2d(F.pad(x, (1, 2, 1, 2)), w) for a 4x4 kernel; tests/port checks it); an explicit "
         "nn.Conv2d(padding=p) pads p on both sides, which for the course's even kernels (4, 2) changes "
         "the output size (padding=2 then MaxPool2d(8)'s floor computes the extra row/column before).",
         "pad SAME as TF: extra row/column after (F.pad(x, (before, after, before, after)) or "
         "nn.Conv2d(..., padding='same'))"),
    Trap("padding-mode",
         "VALID (no padding) where the course's conv uses SAME: nn.Conv2d's default padding=0, or "
         "Keras Conv2D's default padding='valid'.",
         "pad the conv SAME: nn.Conv2d(..., padding='same') / Conv2D(..., padding='same')"),
    Trap("pool-padding",
         "A SAME max-pool done wrong: floor output size without padding (torch's MaxPool2d default, "
         "Keras' padding='valid'; a pool padding-mode slip is this same computation), torch's "
         "ceil_mode=True (every padding cell after), or padding filled with zeros instead of -inf "
         "(invisible after a ReLU). Visible only when the input is not divisible by the stride.",
         "pool SAME as TF: ceil(n / s) outputs, pad (total // 2, rest) with -inf "
         "(F.pad(x, ..., value=float('-inf')) then F.max_pool2d; Keras MaxPooling2D(padding='same'))"),
    Trap("flatten-order",
         "The dense layer reads NCHW-flattened features (torch's x.flatten(1) on NCHW) while W3's "
         "rows are in the course's NHWC (TF) flatten order.",
         "flatten NHWC: x.permute(0, 2, 3, 1).flatten(1) before the Linear (or permute W3's rows once)"),
    Trap("kernel-layout",
         "Conv kernels converted with a wrong permute: H and W swapped (OIHW -> HWIO written "
         "permute(3, 2, 1, 0)) or the kernel flipped (both frameworks compute cross-correlation).",
         "convert OIHW -> HWIO with w.permute(2, 3, 1, 0) (HWIO -> OIHW: permute(3, 2, 0, 1)), no flip"),
    Trap("dense-layout",
         "W3 converted wrong: rows left in NCHW flatten order, or the Linear weight (out, in) reshaped "
         "to (in, out) instead of transposed.",
         "Linear.weight = W3.T (transpose, never reshape); rows in NHWC order: "
         "W3.reshape(C, H, W, 6).transpose(1, 2, 0, 3).reshape(-1, 6) from NCHW rows"),
    Trap("conv-bias",
         "The convs have a bias (nn.Conv2d / Conv2D default) that the course's convs do not: it "
         "shifts activations when non-zero and, being trained, changes every step.",
         "build the convs without bias: nn.Conv2d(..., bias=False) / Conv2D(..., use_bias=False)"),
    Trap("softmax-output",
         "The model ends in a softmax, so the loss (which applies its own softmax) applies it twice.",
         "return logits: drop the final softmax (CrossEntropyLoss / softmax_cross_entropy_with_logits apply it)"),
    Trap("loss-reduction",
         "The loss sums over the batch (reduction='sum', tf.reduce_sum) instead of averaging.",
         "average over the batch: reduction='mean' / tf.reduce_mean"),
    Trap("adam-epsilon",
         "torch.optim.Adam adds epsilon after the bias correction, w -= lr/(1-b1^t) m/(sqrt(v)/sqrt(1-b2^t)+eps); "
         "TF1 (and Keras) add it before, w -= lr sqrt(1-b2^t)/(1-b1^t) m/(sqrt(v)+eps). Or Keras' default "
         "epsilon 1e-7 instead of the course's 1e-8.",
         "use TF1's update (Keras' Adam form) with epsilon=1e-8, or in torch eps=1e-8 * sqrt(1 - beta2**t) per step"),
    Trap("optimizer-hyperparameters",
         "The learning rate or betas differ from the course's (0.009, 0.9, 0.999), e.g. a framework default lr 0.001.",
         "Adam(lr=0.009, betas=(0.9, 0.999), eps=1e-8)"),
    Trap("tf32",
         "On CUDA, TF32 rounds conv/matmul operands to a 10-bit mantissa (torch's cudnn.allow_tf32 is on by "
         "default; TF enables TF32 on Ampere and later): float32 results then differ at about 1e-3.",
         "disable TF32: torch.backends.cuda.matmul.allow_tf32 = False; torch.backends.cudnn.allow_tf32 = False "
         "(TF: tf.config.experimental.enable_tensor_float_32_execution(False))"),
)}
TRAP_IDS: tuple[str, ...] = tuple(CATALOGUE)
