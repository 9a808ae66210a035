"""An architecture inferred from a state dict alone, for the analyses that only read weights.

A state-dict file without a sidecar and without ``--arch`` still holds every weight matrix:
each floating ``NAME.weight`` of 3, 4 or 5 dimensions becomes a ``Conv1d/2d/3d`` with
``groups=1`` (weight ``(c_out, c_in, *kernel)``), each 2-D one an ``nn.Linear`` (except
embedding tables: a last name part containing ``embed``, ``wte``, ``wpe``), and a fused
``NAME.in_proj_weight`` an ``nn.MultiheadAttention``; ``NAME.bias`` attaches to its layer. The
layers sit under :class:`InferredModule` containers, so module names are the state-dict
prefixes (``layer1.0.conv1``); every other tensor (norm layers, running statistics,
embeddings) is a buffer of its module. Nothing is initialised: the model is built on the meta
device and the file's tensors are assigned.

What shapes cannot tell: a grouped convolution reads as ungrouped (the unfolded matrix is the
same, ``split_groups`` has nothing to split), a transposed convolution as a direct one, and
the model has no forward pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from ..errors import CheckpointError
from ._empty import assign_state

__all__ = ["INFERRED_ARCH", "INFERRED_NOTE", "InferredModule", "infer_module"]

INFERRED_ARCH = "inferred"
INFERRED_NOTE = (
    "architecture inferred from tensor shapes (a Conv/Linear per weight; grouped convolutions "
    "are unfolded as stored, groups unknown)"
)
_CONVS: dict[int, type[nn.Module]] = {3: nn.Conv1d, 4: nn.Conv2d, 5: nn.Conv3d}
_EMBEDDING = re.compile(r"embed|^wte$|^wpe$", re.IGNORECASE)


class InferredModule(nn.Module):
    """A container of an inferred architecture: named children and buffers, no forward pass."""

    def forward(self, *args: object, **kwargs: object) -> Tensor:
        """Always raises: an architecture inferred from shapes cannot run."""
        raise CheckpointError(
            f"{INFERRED_ARCH} architecture has no forward pass; pass --arch SPEC "
            "(arch=SPEC) for the real architecture"
        )


def _layer(
    prefix: str, attr: str, w: Tensor, state: Mapping[str, Tensor]
) -> Callable[[], nn.Module] | None:
    """A factory for the layer that owns ``prefix.attr``, or ``None`` if it owns none."""
    if not prefix or not w.is_floating_point():
        return None
    if attr == "in_proj_weight" and w.ndim == 2 and w.shape[0] == 3 * w.shape[1]:
        e, bias = w.shape[1], f"{prefix}.in_proj_bias" in state
        kv = f"{prefix}.bias_k" in state
        return lambda: nn.MultiheadAttention(e, 1, bias=bias, add_bias_kv=kv)
    if attr != "weight" or not 2 <= w.ndim <= 5:
        return None
    if w.ndim == 2 and _EMBEDDING.search(prefix.rpartition(".")[2]):
        return None
    bias = f"{prefix}.bias" in state
    if w.ndim == 2:
        return lambda: nn.Linear(w.shape[1], w.shape[0], bias=bias)
    conv = _CONVS[w.ndim]
    return lambda: conv(w.shape[1], w.shape[0], tuple(w.shape[2:]), bias=bias)


def _layers(state: Mapping[str, Tensor]) -> tuple[dict[str, nn.Module], dict[str, str]]:
    """Meta-device layers by prefix, and the state-dict keys each owns (key -> prefix)."""
    layers: dict[str, nn.Module] = {}
    owner: dict[str, str] = {}
    # fused attention first: its out_proj.weight must not become a Linear of its own
    keys = sorted(state, key=lambda k: not k.endswith(".in_proj_weight"))
    for key in keys:
        if key in owner:
            continue
        prefix, _, attr = key.rpartition(".")
        make = _layer(prefix, attr, state[key], state)
        if make is None or prefix in layers:
            continue
        module = make()
        own = {f"{prefix}.{k}": v for k, v in module.state_dict().items()}
        if any(k in owner or k not in state or state[k].shape != v.shape for k, v in own.items()):
            continue  # a bias of another shape, a partial attention: keep the tensors as buffers
        layers[prefix] = module
        owner.update(dict.fromkeys(own, prefix))
    return layers, owner


def _node(root: nn.Module, path: str, layers: Mapping[str, nn.Module]) -> nn.Module:
    """The module at ``path``, creating the layer or container found missing on the way."""
    node, walked = root, ""
    for part in path.split(".") if path else ():
        walked = f"{walked}.{part}" if walked else part
        child = node._modules.get(part)
        if child is None:
            child = layers.get(walked) or InferredModule()
            node.add_module(part, child)
        node = child
    return node


def _natural(name: str) -> list[tuple[int, str]]:
    """Sort key: dotted parts, numbers by value (``blocks.2`` before ``blocks.10``)."""
    return [(int(p), "") if p.isdigit() else (-1, p) for p in name.split(".")]


def infer_module(
    state: Mapping[str, Tensor], source: str = "the state dict", *, sort_names: bool = False
) -> nn.Module:
    """Build a module whose ``state_dict`` is ``state``, its layers inferred from shapes.

    Module order follows the order of ``state`` (a ``torch.save``'d state dict keeps the
    architecture's order), or with ``sort_names`` the names sorted with numbers by value (for
    a safetensors file, which does not keep the order). Raises :class:`CheckpointError` when
    the names cannot form a module tree.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 2))
        >>> inferred = infer_module(net.state_dict())
        >>> [(n, type(m).__name__) for n, m in inferred.named_children()]
        [('0', 'Conv2d'), ('1', 'InferredModule'), ('3', 'Linear')]
    """
    with torch.device("meta"):
        layers, owner = _layers(state)
        root = InferredModule()
        for key in sorted(state, key=_natural) if sort_names else state:
            t = state[key]
            try:
                if key in owner:
                    _node(root, owner[key], layers)
                    continue
                prefix, _, attr = key.rpartition(".")
                buffer = torch.empty(t.shape, dtype=t.dtype)
                _node(root, prefix, layers).register_buffer(attr, buffer)
            except (KeyError, TypeError) as exc:
                raise CheckpointError(
                    f"cannot infer an architecture from {source}: tensor name {key!r} does not "
                    f"fit a module tree ({exc}); pass --arch SPEC"
                ) from None
    assign_state(root, state)
    return root
