"""From the candidate's own names and layouts to the reference's: parameters and activations.

Parameters (:func:`map_parameters`): the candidate's trainable tensors are assigned to the course's
W1, W2 (conv kernels), W3 (dense kernel) and b3 (dense bias) by rank, shape in the framework's
layout and order of first use in the forward pass; a 1-D tensor used with a conv kernel is that
conv's bias (``b1``/``b2``, which the course net lacks). Layouts are moved once, by the adapter's
:class:`Layouts` (torch: OIHW <-> HWIO and ``Linear.weight = W3.T``, the functions of
``torch_model.ops``; Keras and TF1: canonical already). Nothing is reshaped to fit: a tensor whose
shape is not one the course's layer has in that layout is an extra parameter or, where the course's
tensor is missing or two tensors could be it, a ValueError listing what was found (``--map``
settles it).

Activations (:func:`match_activations`): the candidate's captured intermediates are matched to
Z1 A1 P1 Z2 A2 P2 F Z3 in computation order, by shape in either layout (NHWC, or NCHW moved by the
adapter's ``to_nhwc``) and by the kind of operation that produced them; among several, one that
agrees with the reference is preferred. A reference activation with no counterpart is "not found";
nothing is guessed from values alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from reference.spec import ACTIVATION_NAMES, COURSE_MODEL, PARAM_NAMES, ModelSpec, param_shapes
from signs.port.capture import CandidateParam, Captured
from signs.tolerances import parity_tolerance, relative_error

__all__ = ["NotTheCourseModel", "ActivationMatch", "Layouts", "CANONICAL_LAYOUTS", "ParamMap", "parse_map", "map_parameters",
           "match_activations", "KIND_OF", "kind_from_words", "kind_of"]

Move = Callable[[np.ndarray], np.ndarray]


class NotTheCourseModel(ValueError):
    """The candidate runs but has no tensor the course's layer needs (e.g. a dense layer without
    bias, a conv with other sizes): a divergence of the model itself (exit 1), not a usage error."""


def _same(a: np.ndarray) -> np.ndarray:
    return a


@dataclass(frozen=True)
class Layouts:
    """How a framework stores the course's tensors, and the one move to/from canonical for each.

    ``conv``: the kernel layout's name ("OIHW", "HWIO"); ``conv_to_canonical`` -> HWIO.
    ``dense``: "(out, in)" or "(in, out)"; ``dense_to_canonical`` -> canonical W3 (in, out).
    """

    conv: str
    conv_to_canonical: Move
    conv_from_canonical: Move
    dense: str
    dense_to_canonical: Move
    dense_from_canonical: Move

    def move(self, canonical: str, array: np.ndarray, *, to_canonical: bool) -> np.ndarray:
        """Move ``array`` (the tensor of canonical name W1 W2 W3 b3 b1 b2) between layouts."""
        if canonical in ("W1", "W2"):
            moved = (self.conv_to_canonical if to_canonical else self.conv_from_canonical)(array)
        elif canonical == "W3":
            moved = (self.dense_to_canonical if to_canonical else self.dense_from_canonical)(array)
        else:  # biases and unknown extras: one layout everywhere
            moved = array
        return np.ascontiguousarray(moved)


CANONICAL_LAYOUTS = Layouts("HWIO", _same, _same, "(in, out)", _same, _same)

# Canonical names of the conv biases the course net does not have, by the kernel they go with.
CONV_BIAS = {"W1": "b1", "W2": "b2"}


@dataclass
class ParamMap:
    """The candidate's parameter names for the course's tensors.

    canonical : W1 W2 W3 b3 -> candidate name. extra : name for the report ("b1", "b2" conv biases,
    else the candidate's own name) -> candidate name; zeroed unless own weights are kept.
    """

    canonical: dict[str, str]
    extra: dict[str, str]
    layouts: Layouts
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # candidate name -> shape

    def describe(self) -> str:
        pairs = [f"{c}={self.canonical[c]} {self.shapes.get(self.canonical[c], ())}"
                 for c in PARAM_NAMES]
        return ", ".join(pairs) + f" (conv kernels {self.layouts.conv}, dense {self.layouts.dense})"

    def to_candidate(self, params: Mapping[str, np.ndarray], dtype) -> dict[str, np.ndarray]:
        """Canonical params -> candidate names/layouts in ``dtype``; extra parameters zero."""
        own = {self.canonical[c]: self.layouts.move(c, np.asarray(params[c]), to_canonical=False)
               for c in PARAM_NAMES}
        own.update({name: np.zeros(self.shapes[name]) for name in self.extra.values()})
        return {name: value.astype(dtype) for name, value in own.items()}

    def to_canonical(self, own: Mapping[str, np.ndarray], prefix: str = "") -> dict[str, np.ndarray]:
        """Candidate-named arrays (values or gradients) -> canonical names ("W1", or "dW1" with
        ``prefix="d"``), the course's four first, then the extras present."""
        out = {prefix + c: self.layouts.move(c, own[self.canonical[c]], to_canonical=True)
               for c in PARAM_NAMES if self.canonical[c] in own}
        out.update({prefix + e: np.ascontiguousarray(own[n]) for e, n in self.extra.items()
                    if n in own})
        return out


def parse_map(text: str | None) -> dict[str, str]:
    """``--map "conv_a.weight=W1,fc.weight=W3"`` -> {candidate name: canonical name}."""
    if not text:
        return {}
    mapping: dict[str, str] = {}
    for item in text.split(","):
        own, sep, canonical = item.strip().partition("=")
        if not sep or not own or canonical not in PARAM_NAMES:
            raise ValueError(f"--map: expected CANDIDATE_NAME=W1|W2|W3|b3 separated by commas, "
                             f"got {item.strip()!r}")
        if canonical in mapping.values():
            raise ValueError(f"--map: expected each of {', '.join(PARAM_NAMES)} at most once, "
                             f"got {canonical} twice")
        mapping[own] = canonical
    return mapping


def _found(params: Sequence[CandidateParam]) -> str:
    return "; ".join(f"{p.name} {tuple(p.array.shape)}" for p in params) or "no parameters"


def _owner_prefix(name: str) -> str:
    """"conv1.weight" -> "conv1", "conv1/kernel" -> "conv1" (the layer that owns a parameter)."""
    for sep in (".", "/"):
        if sep in name:
            return name.rsplit(sep, 1)[0]
    return ""


def _bias_of(kernel: CandidateParam, width: int, pool: list[CandidateParam]) -> CandidateParam | None:
    """The 1-D parameter of ``width`` that belongs to ``kernel``'s layer: same owner prefix, or
    used right after it in the same call (``F.conv2d(x, w, b)``)."""
    vectors = [p for p in pool if p.array.shape == (width,)]
    prefix = _owner_prefix(kernel.name)
    for p in vectors:
        if prefix and _owner_prefix(p.name) == prefix:
            return p
    for p in vectors:
        if kernel.use_order >= 0 and p.use_order == kernel.use_order + 1:
            return p
    return None


def map_parameters(params: Sequence[CandidateParam], layouts: Layouts, *,
                   overrides: Mapping[str, str] | None = None,
                   spec: ModelSpec = COURSE_MODEL) -> ParamMap:
    """Assign the candidate's ``params`` to W1 W2 W3 b3 (see the module docstring).

    ``overrides`` (``--map``): candidate name -> canonical name, taken as given (shapes checked).
    Raises ValueError naming the missing or ambiguous tensor and listing every parameter found.
    """
    shapes = param_shapes(spec)
    own_shape = {c: layouts.move(c, np.zeros(shapes[c]), to_canonical=False).shape for c in PARAM_NAMES}
    by_name = {p.name: p for p in params}
    overrides = dict(overrides or {})
    unknown = [n for n in overrides if n not in by_name]
    if unknown:
        raise ValueError(f"--map: no candidate parameter named {', '.join(unknown)}; "
                         f"found: {_found(params)}")
    chosen: dict[str, CandidateParam] = {}
    for own, canonical in overrides.items():
        chosen[canonical] = by_name[own]
    ordered = sorted(params, key=lambda p: (p.use_order < 0, p.use_order))
    for canonical in PARAM_NAMES:
        if canonical in chosen:
            continue
        taken = {id(p) for p in chosen.values()}
        fits = [p for p in ordered if id(p) not in taken and p.array.shape == own_shape[canonical]]
        if canonical == "b3" and len(fits) > 1 and "W3" in chosen:
            owned = _bias_of(chosen["W3"], shapes["b3"][0], fits)
            fits = [owned] if owned is not None else fits
        if not fits:
            raise NotTheCourseModel(
                f"candidate: found no parameter for the course's {canonical} (expected shape "
                f"{own_shape[canonical]} in {_layout_word(canonical, layouts)}); found: "
                f"{_found(params)}. Name it with --map CANDIDATE_NAME={canonical}")
        if len(fits) > 1:
            raise ValueError(
                f"candidate: {len(fits)} parameters could be the course's {canonical} "
                f"({', '.join(p.name for p in fits)}, shape {own_shape[canonical]}); found: "
                f"{_found(params)}. Choose with --map CANDIDATE_NAME={canonical}")
        chosen[canonical] = fits[0]
    for canonical, p in chosen.items():
        if p.array.shape != own_shape[canonical]:
            raise ValueError(f"--map: {p.name} has shape {tuple(p.array.shape)}, expected "
                             f"{own_shape[canonical]} for {canonical} ({_layout_word(canonical, layouts)})")
    taken = {id(p) for p in chosen.values()}
    rest = [p for p in ordered if id(p) not in taken]
    extra: dict[str, str] = {}
    for kernel_name, bias_name in CONV_BIAS.items():
        bias = _bias_of(chosen[kernel_name], own_shape[kernel_name][_out_axis(layouts)], rest)
        if bias is not None:
            extra[bias_name] = bias.name
            rest.remove(bias)
    extra.update({p.name: p.name for p in rest})
    return ParamMap({c: chosen[c].name for c in PARAM_NAMES}, extra, layouts,
                    {p.name: tuple(p.array.shape) for p in params})


def _out_axis(layouts: Layouts) -> int:
    """The output-channel axis of a conv kernel in ``layouts`` (OIHW: 0, HWIO: 3)."""
    return layouts.conv.index("O")


def _layout_word(canonical: str, layouts: Layouts) -> str:
    if canonical in ("W1", "W2"):
        return f"{layouts.conv} layout"
    return f"{layouts.dense} layout" if canonical == "W3" else "any layout"


# ----------------------------------------------------------------------------------------------
# Activations

# The kinds of operation that may compute each activation. A captured tensor whose kind is
# "unknown" is taken only when it agrees with the reference.
KIND_OF: dict[str, tuple[str, ...]] = {
    "Z1": ("conv",), "A1": ("relu",), "P1": ("pool", "relu"),
    "Z2": ("conv",), "A2": ("relu",), "P2": ("pool", "relu"),
    "F": ("flatten",), "Z3": ("dense",),
}
# Words in an operation's name (torch function, Keras layer class, TF op type) -> its kind.
_KIND_WORDS: tuple[tuple[str, str], ...] = (
    ("conv", "conv"), ("relu", "relu"), ("pool", "pool"), ("flatten", "flatten"),
    ("reshape", "flatten"), ("view", "flatten"), ("linear", "dense"), ("dense", "dense"),
    ("matmul", "dense"), ("addmm", "dense"), ("fully_connected", "dense"), ("biasadd", "dense"),
)


def kind_from_words(text: str) -> str:
    """The kind of operation an op or layer-class name says ("max_pool2d" -> "pool")."""
    text = text.lower()
    for word, kind in _KIND_WORDS:
        if word in text:
            return kind
    return "unknown"


def kind_of(captured: Captured) -> str:
    """The adapter's ``kind``, else one read from the label's operation words, else "unknown"."""
    if captured.kind != "unknown":
        return captured.kind
    return kind_from_words(captured.label)


@dataclass
class ActivationMatch:
    """Which captured tensor each reference activation was matched to (NHWC / flat arrays)."""

    arrays: dict[str, np.ndarray]
    labels: dict[str, str]
    not_found: list[str]


def _views(captured: Captured, shape: tuple[int, ...],
           to_nhwc: Move | None) -> list[np.ndarray]:
    """``captured`` as an array of the reference's ``shape``: moved from NCHW (first, when the
    adapter has ``to_nhwc``) or as it is."""
    a = captured.array
    views = []
    if a.shape == shape and captured.layout != "NCHW":
        views.append(a)
    if len(shape) == 4 and to_nhwc is not None and captured.layout != "NHWC":
        m, h, w, c = shape
        if a.shape == (m, c, h, w):
            # A framework that moves NCHW knows it as its default: that reading comes first when
            # the shape fits both (a P1 of (m, 8, 8, 8)).
            views.insert(0, np.ascontiguousarray(to_nhwc(a)))
    return views


def match_activations(captured: Sequence[Captured], reference: Mapping[str, np.ndarray], dtype, *,
                      to_nhwc: Move | None = None) -> ActivationMatch:
    """Match the candidate's intermediates to the reference's Z1 A1 P1 Z2 A2 P2 F Z3.

    Walks the reference's activations in order; each may use only tensors computed after the one
    matched before it. Among the tensors of the right shape (either layout) and kind, the first
    that agrees with the reference within the parity tolerance wins; failing that, the first whose
    kind is known to compute that activation (it will be reported as diverging); a tensor of
    unknown kind that does not agree is never taken.

    Parameters
    ----------
    captured : the adapter's tensors in computation order, in the candidate's layouts
    reference : name -> reference activation (NHWC, or (m, n) for F and Z3), the run's dtype
    to_nhwc : the adapter's NCHW -> NHWC move (None: only NHWC shapes match)
    """
    arrays, labels, not_found = {}, {}, []
    start = 0
    for name in ACTIVATION_NAMES:
        want = reference[name]
        tolerance = parity_tolerance(name, dtype)
        agreeing, structural = None, None
        for index in range(start, len(captured)):
            item = captured[index]
            kind = kind_of(item)
            if kind != "unknown" and kind not in KIND_OF[name]:
                continue
            for view in _views(item, want.shape, to_nhwc):
                if agreeing is None and relative_error(view, want) <= tolerance:
                    agreeing = (index, view, item.label)
                if structural is None and kind != "unknown":
                    structural = (index, view, item.label)
            if agreeing is not None:
                break
        chosen = agreeing or structural
        if chosen is None:
            not_found.append(name)
            continue
        index, view, label = chosen
        arrays[name] = np.asarray(view, dtype=dtype)
        labels[name] = label
        start = index + 1
    return ActivationMatch(arrays, labels, not_found)
