"""Channel ablation for DELTA's attention, batched, and the default choice of feature maps.

The attention of channel ``j`` of a feature map is how much the loss grows when that channel
is zeroed. The naive way runs one full forward (with autograd) per channel. Here, under
``no_grad`` and for each batch:

1. one traced forward records, for every submodule, when its call starts and ends;
2. one clean forward keeps the outputs of the *prefix*: the outermost modules called once
   that finished before the ablated layer started, and the layer's own output ``FM``;
3. for each chunk of ``m`` channels, the prefix modules' ``forward`` is replaced by "return
   my cached output repeated m times" and the layer's by "return ``FM`` repeated m times with
   channel ``j0 + i`` zeroed in copy ``i``"; one forward then pushes ``m * b`` ablated
   copies through the rest of the network.

So the prefix is computed once per batch, every tensor after the layer has batch ``m * b``
(residual branches included: a block's skip input is a cached prefix output, tiled the same
way) and the result equals ``m`` separate ablated forwards for a network whose eval-mode
output does not mix samples of a batch (true with BatchNorm in eval mode).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._pytree import tree_map

from ..errors import ConfigError

__all__ = ["CallRecord", "trace_calls", "ablation_loss_increase", "default_feature_layers"]


@dataclass
class CallRecord:
    """One submodule in a traced forward: call count, first start, last end, output shape."""

    calls: int = 0
    start: int = -1
    end: int = -1
    shape: tuple[int, ...] | None = None


def trace_calls(net: nn.Module, x: Tensor) -> dict[str, CallRecord]:
    """Run ``net(x)`` once under ``no_grad`` and record every submodule's calls, in order."""
    tick = itertools.count()
    records: dict[str, CallRecord] = {}
    handles = []

    def pre(rec: CallRecord, module: nn.Module, args: Any) -> None:
        rec.calls += 1
        if rec.start < 0:
            rec.start = next(tick)

    def post(rec: CallRecord, module: nn.Module, args: Any, out: Any) -> None:
        rec.end = next(tick)
        if rec.shape is None and isinstance(out, Tensor):
            rec.shape = tuple(out.shape)

    for name, module in net.named_modules():
        if name:
            rec = records[name] = CallRecord()
            handles.append(module.register_forward_pre_hook(lambda m, a, rec=rec: pre(rec, m, a)))
            handles.append(
                module.register_forward_hook(lambda m, a, o, rec=rec: post(rec, m, a, o))
            )
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return records


def _is_under(name: str, parent: str) -> bool:
    return parent == "" or name == parent or name.startswith(parent + ".")


def _prefix_modules(trace: dict[str, CallRecord], layer: str) -> list[str]:
    """Outermost modules called once that ended before ``layer`` started."""
    start = trace[layer].start
    done = [n for n, r in trace.items() if r.calls == 1 and 0 <= r.end < start]
    done_set = set(done)
    outer = []
    for name in done:
        parts = name.split(".")
        if not any(".".join(parts[:i]) in done_set for i in range(1, len(parts))):
            outer.append(name)
    return outer


def _tile(value: Any, m: int, b: int) -> Any:
    """Repeat every tensor with batch ``b`` in ``value`` ``m`` times along dim 0."""

    def rep(t: Any) -> Any:
        if isinstance(t, Tensor) and t.dim() > 0 and t.shape[0] == b:
            return t.repeat(m, *([1] * (t.dim() - 1)))
        return t

    return tree_map(rep, value)


@contextlib.contextmanager
def _patched(net: nn.Module, forwards: dict[str, Callable[..., Any]]) -> Iterator[None]:
    saved = {}
    try:
        for name, fn in forwards.items():
            module = net.get_submodule(name)
            saved[name] = module.__dict__.get("forward")
            module.forward = fn  # type: ignore[method-assign]
        yield
    finally:
        for name, old in saved.items():
            module = net.get_submodule(name)
            if old is None:
                del module.forward
            else:
                module.forward = old  # type: ignore[method-assign]


def _capture(net: nn.Module, names: list[str]) -> tuple[dict[str, Any], list[Any]]:
    cache: dict[str, Any] = {}

    def hook(name: str) -> Callable[..., None]:
        def fn(module: nn.Module, args: Any, out: Any) -> None:
            # clone now: later in-place ops (``out += identity``, inplace ReLU) must not leak
            cache[name] = tree_map(lambda t: t.clone() if isinstance(t, Tensor) else t, out)

        return fn

    handles = [net.get_submodule(n).register_forward_hook(hook(n)) for n in names]
    return cache, handles


@torch.no_grad()
def ablation_loss_increase(
    net: nn.Module,
    layer: str,
    batches: Iterable[tuple[Tensor, Tensor]],
    *,
    loss_fn: Callable[..., Tensor] = F.cross_entropy,
    max_elements: int = 2**27,
) -> Tensor:
    """Mean over ``batches`` of ``L(net with channel j of layer zeroed) - L(net)``, per channel.

    ``net`` should be in eval mode. ``loss_fn(logits, targets, reduction=...)`` is a mean
    classification loss (cross-entropy). ``max_elements`` bounds the size of one chunk of
    ablated copies of the feature map (``m * b * C * H * W``), hence the memory.

    Returns:
        Tensor of shape ``(C,)`` (float32, on the feature map's device).
    """
    total: Tensor | None = None
    count = 0
    trace: dict[str, CallRecord] | None = None
    for x, y in batches:
        if trace is None:
            trace = trace_calls(net, x)
            if layer not in trace or trace[layer].calls != 1:
                n = trace[layer].calls if layer in trace else 0
                raise ConfigError(
                    f"expected delta layer {layer!r} to be a module called once per forward, "
                    f"found {n} calls"
                )
            prefix = _prefix_modules(trace, layer)
        cache, handles = _capture(net, [*prefix, layer])
        try:
            base = loss_fn(net(x), y).float()
        finally:
            for h in handles:
                h.remove()
        fm = cache.pop(layer)
        if not isinstance(fm, Tensor) or fm.dim() < 2:
            raise ConfigError(f"expected delta layer {layer!r} to output (b, C, ...), found {fm!r}")
        b, c = fm.shape[0], fm.shape[1]
        m = max(1, min(c, max_elements // max(1, fm.numel())))
        increase = torch.empty(c, device=fm.device)
        tiled_input = False
        for j0 in range(0, c, m):
            mm = min(m, c - j0)
            ablated = fm.repeat(mm, *([1] * (fm.dim() - 1)))
            idx = torch.arange(mm, device=fm.device)
            ablated.view(mm, b, c, -1)[idx, :, j0 + idx] = 0
            forwards: dict[str, Callable[..., Any]] = {
                p: (lambda *a, _v=cache[p], _m=mm, _b=b, **k: _tile(_v, _m, _b)) for p in prefix
            }
            forwards[layer] = lambda *a, _v=ablated, **k: _v
            with _patched(net, forwards):
                out = None
                if not tiled_input:
                    try:
                        out = net(x)
                    except RuntimeError:
                        out = None
                    if out is None or out.shape[0] != mm * b:
                        tiled_input = True  # something after the layer reads the raw input
                if tiled_input:
                    out = net(_tile(x, mm, b))
            losses = loss_fn(out, y.repeat(mm), reduction="none").float().view(mm, b).mean(1)
            increase[j0 : j0 + mm] = losses - base
        total = increase if total is None else total + increase
        count += 1
    if total is None:
        raise ConfigError("expected at least one batch to compute delta's channel attention")
    return total / count


def default_feature_layers(
    net: nn.Module, x: Tensor, *, head: str, n: int = 4, trace: dict[str, CallRecord] | None = None
) -> list[str]:
    """The last ``n`` stage outputs of a CNN: a generic rule for DELTA's feature maps.

    The *stage container* is the module whose direct children (called once, outside the head,
    with a 4-D output larger than 1x1) produce the most distinct spatial sizes (ties: the
    shallowest). Within it, the last child at each size is a stage output. For torchvision
    and timm ResNets this gives ``layer1 .. layer4``; for EfficientNets the last block of
    each resolution in ``features``/``blocks``.
    """
    trace = trace if trace is not None else trace_calls(net, x)
    best: tuple[int, int, list[str]] = (0, 0, [])
    for parent, module in net.named_modules():
        if parent and _is_under(parent, head):
            continue
        kids = []
        for child, _ in module.named_children():
            full = f"{parent}.{child}" if parent else child
            rec = trace.get(full)
            if _is_under(full, head) or rec is None or rec.calls != 1 or rec.shape is None:
                continue
            if len(rec.shape) == 4 and rec.shape[2] * rec.shape[3] > 1:
                kids.append((rec.end, full, rec.shape[2:]))
        last_at: dict[tuple[int, ...], tuple[int, str]] = {}
        for end, full, size in sorted(kids):
            last_at[tuple(size)] = (end, full)
        stages = [full for _, full in sorted(last_at.values())]
        depth = parent.count(".") + 1 if parent else 0
        if len(stages) > best[0] or (len(stages) == best[0] and stages and depth < best[1]):
            best = (len(stages), depth, stages)
    if not best[2]:
        raise ConfigError(
            "expected convolutional feature maps (b, C, H, W) for delta's default layers, "
            "found none: pass delta layers='name1,name2'"
        )
    return best[2][-n:]
