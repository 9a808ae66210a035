"""DELTA: feature-map regularisation with channel attention (Li et al., ICLR 2019)."""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_float, check_int
from ..errors import ConfigError
from ._ablation import ablation_loss_increase, default_feature_layers, trace_calls
from ._base import (
    Loader,
    Regularizer,
    StepContext,
    TensorStore,
    resolve_head,
    split_start_point,
    squared_distance,
    unwrap_model,
)
from ._capture import FeatureCapture
from ._registry import register_regularizer

__all__ = ["DELTA", "SOURCE_NORM_MODES", "channel_attention"]

#: How the frozen source network normalises its features during training (``source_norm``):
#:
#: * ``batch`` (default): the source's batch-norm layers use the statistics of each step's
#:   batch, as the trained network does in train mode, without updating their running
#:   estimates. At ``W = W0`` the two networks compute the same maps, so the penalty is 0.
#: * ``running``: both networks use running statistics: the trained network's batch-norm
#:   layers are also kept in eval mode while DELTA is attached (frozen statistics, the affine
#:   parameters still train). The penalty is 0 at ``W = W0``; the fine-tune itself changes.
#: * ``mismatched``: the source in eval mode (running statistics), the trained network in
#:   train mode (batch statistics), as both reference implementations do
#:   (lixingjian/DELTA ``train.py``: ``model_source.eval()``; thuml/Transfer-Learning-Library
#:   ``examples/task_adaptation/image_classification/delta.py``: ``source_classifier.eval()``).
#:   The penalty is not 0 at ``W = W0``: it includes the gap between batch and running
#:   statistics. Kept for parity with those runs only.
SOURCE_NORM_MODES = ("batch", "running", "mismatched")


def channel_attention(increase: Tensor, temperature: float = 5.0) -> Tensor:
    r"""DELTA's channel weights from per-channel loss increases.

    .. math::
        D = \operatorname{softmax}\big((\Delta - \bar\Delta) / (s_\Delta T)\big)

    the softmax of the standardised increases divided by ``T`` (the reference code's
    ``softmax(zscore / 5)``). Constant increases give uniform weights.

    Example:
        >>> channel_attention(torch.tensor([0.0, 0.0, 0.0]))
        tensor([0.3333, 0.3333, 0.3333])
    """
    inc = increase.double()
    std = inc.std(unbiased=False) if inc.numel() > 1 else inc.new_zeros(())
    z = (inc - inc.mean()) / std if std > 1e-12 * inc.abs().max().clamp_min(1e-30) else inc * 0
    return torch.softmax(z / temperature, dim=0).to(increase.dtype)


def _batches(loader: Loader, device: torch.device) -> Any:
    for batch in loader:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            found = type(batch).__name__
            raise ConfigError(
                f"expected the loader to yield (inputs, targets) batches, found {found}"
            )
        yield batch[0].to(device), batch[1].to(device)


def _parse_layers(layers: Any) -> tuple[str, ...] | None:
    if layers is None or layers == "":
        return None
    if isinstance(layers, str):
        layers = [s for s in (p.strip() for p in layers.split(",")) if s]
    if not isinstance(layers, Sequence) or not all(isinstance(s, str) and s for s in layers):
        raise ConfigError(
            f"expected delta.layers as module names 'a,b' or a list, found {layers!r}"
        )
    return tuple(layers)


def _norm_layers(net: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _use_running_stats(module: nn.Module, args: Any) -> None:
    """Forward pre-hook of ``source_norm="running"``: the layer normalises in eval mode."""
    module.training = False


@contextmanager
def _batch_statistics(norms: Sequence[nn.modules.batchnorm._BatchNorm]) -> Iterator[None]:
    """Batch-norm layers normalise by the batch's statistics and leave their running ones.

    In train mode with ``track_running_stats`` off, ``_BatchNorm.forward`` passes no running
    buffers to ``F.batch_norm``: batch statistics, nothing updated.
    """
    saved = [(m.training, m.track_running_stats) for m in norms]
    for m in norms:
        m.training, m.track_running_stats = True, False
    try:
        yield
    finally:
        for m, (training, track) in zip(norms, saved, strict=True):
            m.training, m.track_running_stats = training, track


class _StopForward(Exception):
    """Raised by the last hooked layer of the source copy to skip the rest of its forward."""


@register_regularizer
class DELTA(Regularizer):
    r"""DELTA: behavioural regularisation of feature maps with channel attention.

    .. math::
        \Omega = \frac{\gamma}{2} \sum_{l} \frac{C_l}{H_l W_l} \sum_{n=1}^{b} \sum_{j=1}^{C_l}
                 D_{lj} \lVert FM_{lj}(W, x_n) - FM_{lj}(W^0, x_n) \rVert^2
                 + \frac{\kappa}{2} \lVert W_G \rVert^2

    :math:`FM_{lj}` is channel ``j`` of feature map ``l``; :math:`W^0` a frozen copy of the
    pre-trained network (``self.source``, kept in eval mode, run under ``no_grad`` on each
    step's inputs); :math:`W_G` the new parameters (the head). The normalisation
    (:math:`\frac12`, :math:`C/HW`, a sum over the batch) is that of the authors' released
    code, so the defaults :math:`\gamma = \kappa = 0.01` reproduce their runs.

    The attention :math:`D_l = \mathrm{softmax}(\mathrm{zscore}(\Delta_l) / T)` comes from
    :math:`\Delta_{lj} = L(z(x, W^0 \setminus j), y) - L(z(x, W^0), y)`, the loss increase
    when channel ``j`` is zeroed, averaged over ``attention_batches`` batches. As in the
    reference, the loss uses a head first trained on the frozen pre-trained features
    (``probe_epochs`` epochs of SGD on features cached in one pass over the loader). The
    ablation is batched (see ``_ablation``): no autograd, the prefix computed once per batch.

    Args:
        gamma: weight of the feature-map term (reference: 0.01).
        kappa: weight of the new-parameter term (reference: 0.01).
        layers: feature maps to regularise, module names (``"layer1,layer2"``); default: the
            last four stage outputs (ResNets: ``layer1 .. layer4``; the reference hooked each
            stage's last ``conv3``, e.g. ``layer4.2.conv3``, which can be named here).
        temperature: softmax temperature on the standardised increases (reference: 5).
        attention_batches: batches of the loader used for the attention (reference: 4).
        probe_epochs: epochs of linear-probe training of the head before the attention
            (reference: 10; 0 uses the head as it is).
        ablation_memory_mb: memory bound of one chunk of ablated feature maps.
        source_norm: how the source normalises its maps while training, one of
            :data:`SOURCE_NORM_MODES`: ``batch`` (default) or ``running`` make the penalty
            exactly 0 at the start point; ``mismatched`` is the reference code's choice
            (source in eval mode, trained network in train mode), whose penalty at
            ``W = W0`` is the gap between batch and running statistics. The attention is
            computed with the source in eval mode in every mode, as in the reference.
            Dropout or stochastic depth before a hooked layer also make the two networks
            differ at ``W = W0`` (the bundled EfficientNets and torchvision ResNets have
            none there).
    """

    name: ClassVar[str] = "delta"
    needs_loader: ClassVar[bool] = True

    def __init__(
        self,
        *,
        gamma: float = 0.01,
        kappa: float = 0.01,
        layers: str | Sequence[str] | None = None,
        temperature: float = 5.0,
        attention_batches: int = 4,
        probe_epochs: int = 10,
        ablation_memory_mb: int = 512,
        source_norm: str = "batch",
    ) -> None:
        super().__init__()
        hp = self.check_hyperparameters(
            {
                "gamma": gamma,
                "kappa": kappa,
                "layers": layers,
                "temperature": temperature,
                "attention_batches": attention_batches,
                "probe_epochs": probe_epochs,
                "ablation_memory_mb": ablation_memory_mb,
                "source_norm": source_norm,
            }
        )
        self.gamma: float = hp["gamma"]
        self.kappa: float = hp["kappa"]
        self.layers: tuple[str, ...] | None = hp["layers"]
        self.temperature: float = hp["temperature"]
        self.attention_batches: int = hp["attention_batches"]
        self.probe_epochs: int = hp["probe_epochs"]
        self.ablation_memory_mb: int = hp["ablation_memory_mb"]
        self.source_norm: str = hp["source_norm"]
        self.attention = TensorStore()
        self.source: nn.Module | None = None
        self.layers_: list[str] = []
        self.new_names_: list[str] = []
        self._target: dict[str, Tensor] = {}
        self._source_maps: dict[str, Tensor] = {}
        self._handles: list[Any] = []
        self._last_layer: str | None = None
        self._stop_early = False
        self._source_norms: list[nn.modules.batchnorm._BatchNorm] = []

    @classmethod
    def check_hyperparameters(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        out = {
            "gamma": check_float("delta.gamma", values["gamma"]),
            "kappa": check_float("delta.kappa", values["kappa"]),
            "layers": _parse_layers(values["layers"]),
            "temperature": check_float("delta.temperature", values["temperature"], strict=True),
            "attention_batches": check_int("delta.attention_batches", values["attention_batches"]),
            "probe_epochs": check_int("delta.probe_epochs", values["probe_epochs"], minimum=0),
            "ablation_memory_mb": check_int(
                "delta.ablation_memory_mb", values["ablation_memory_mb"]
            ),
        }
        if values["source_norm"] not in SOURCE_NORM_MODES:
            raise ConfigError(
                f"expected delta.source_norm in {', '.join(SOURCE_NORM_MODES)}, "
                f"found {values['source_norm']!r}"
            )
        return {**out, "source_norm": values["source_norm"]}

    # -- set-up ---------------------------------------------------------------------------
    def prepare(
        self,
        model: nn.Module,
        *,
        head: str,
        reference: nn.Module | Mapping[str, Tensor] | None = None,
        loader: Loader | None = None,
    ) -> None:
        """Freeze a copy of the start point, pick the layers, hook them, compute attention."""
        model = unwrap_model(model)
        resolve_head(model, head)
        self.remove_hooks()
        self.source = self._frozen_copy(model, reference)
        self._source_norms = _norm_layers(self.source)  # found once, not on every step
        _, self.new_names_ = split_start_point(model, head, reference)
        device = next(model.parameters()).device
        first = next(iter(_batches(loader, device)), None) if loader is not None else None
        if self.layers is None and first is None:
            raise ConfigError("expected delta.layers or a loader to choose delta's feature maps")
        trace = trace_calls(self.source, first[0]) if first is not None else None
        layers: Sequence[str] | None = self.layers
        if not layers:
            if first is None:
                raise ConfigError(
                    "expected delta.layers or a loader to choose delta's feature maps"
                )
            layers = default_feature_layers(self.source, first[0], head=head, trace=trace)
        self.layers_ = list(layers)
        for name in self.layers_:
            for net in (model, self.source):
                try:
                    net.get_submodule(name)
                except AttributeError:
                    raise ConfigError(
                        f"expected delta layer {name!r} in the model, found none"
                    ) from None
        if trace is not None:
            self._last_layer = max(self.layers_, key=lambda n: trace[n].end if n in trace else -1)
        self.attention.clear()
        if loader is None:
            warnings.warn(
                "delta: no loader given, channel attention is uniform (1/C) unless restored "
                "with load_state_dict",
                stacklevel=2,
            )
        else:
            self._compute_attention(model, head, loader, device)
        self._install_hooks(model)

    def _frozen_copy(self, model: nn.Module, reference: Any) -> nn.Module:
        if isinstance(reference, nn.Module):
            src = copy.deepcopy(unwrap_model(reference))
        else:
            src = copy.deepcopy(model)
            if isinstance(reference, Mapping):
                own = src.state_dict()
                src.load_state_dict(
                    {k: v for k, v in reference.items() if k in own and own[k].shape == v.shape},
                    strict=False,
                )
        src.requires_grad_(False)
        return src.eval()

    def _compute_attention(
        self, model: nn.Module, head: str, loader: Loader, device: torch.device
    ) -> None:
        assert self.source is not None
        probe = copy.deepcopy(model.get_submodule(head)).requires_grad_(True)
        feats: list[tuple[Tensor, Tensor]] = []
        kept: list[tuple[Tensor, Tensor]] = []
        with FeatureCapture(self.source, head) as cap, torch.no_grad():
            for x, y in _batches(loader, device):
                if len(kept) < self.attention_batches:
                    kept.append((x, y))
                if self.probe_epochs:
                    self.source(x)
                    assert cap.features is not None
                    feats.append((cap.features.detach(), y))
                elif len(kept) == self.attention_batches:
                    break
        if self.probe_epochs:
            self._train_probe(probe, feats)
        original = self.source.get_submodule(head)
        self.source.set_submodule(head, probe.eval())
        try:
            for name in self.layers_:
                elems = self.ablation_memory_mb * 2**20 // 4
                inc = ablation_loss_increase(self.source, name, kept, max_elements=elems)
                self.attention[name] = channel_attention(inc, self.temperature)
        finally:
            self.source.set_submodule(head, original)

    def _train_probe(self, probe: nn.Module, feats: list[tuple[Tensor, Tensor]]) -> None:
        opt = torch.optim.SGD(probe.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        probe.train()
        with torch.enable_grad():
            for _ in range(self.probe_epochs):
                for f, y in feats:
                    opt.zero_grad(set_to_none=True)
                    F.cross_entropy(probe(f), y).backward()
                    opt.step()

    # -- hooks ----------------------------------------------------------------------------
    def _install_hooks(self, model: nn.Module) -> None:
        assert self.source is not None
        if self.source_norm == "running":
            for module in _norm_layers(model):
                self._handles.append(module.register_forward_pre_hook(_use_running_stats))
        for name in self.layers_:
            target = model.get_submodule(name)
            source = self.source.get_submodule(name)
            self._handles.append(target.register_forward_hook(self._keep_target(name)))
            self._handles.append(source.register_forward_hook(self._keep_source(name)))

    def _keep_target(self, name: str) -> Any:
        def hook(module: nn.Module, args: Any, out: Any) -> None:
            if isinstance(out, Tensor):
                self._target[name] = out

        return hook

    def _keep_source(self, name: str) -> Any:
        def hook(module: nn.Module, args: Any, out: Any) -> None:
            if isinstance(out, Tensor):
                self._source_maps[name] = out
                if self._stop_early and name == self._last_layer:
                    raise _StopForward

        return hook

    def remove_hooks(self) -> None:
        """Detach the hooks installed on the model and the source copy by :meth:`prepare`."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self._target.clear()
        self._source_maps.clear()

    def train(self, mode: bool = True) -> DELTA:
        super().train(mode)
        if self.source is not None:
            self.source.eval()  # the reference network always uses its running statistics
        return self

    # -- step -----------------------------------------------------------------------------
    def penalty(self, ctx: StepContext) -> Tensor:
        """The attention-weighted feature-map distance plus ``kappa/2 ||W_G||^2``."""
        if self.source is None or not self._handles:
            raise ConfigError("expected delta.prepare(model, head=..., loader=...) before training")
        missing = [n for n in self.layers_ if n not in self._target]
        if missing:
            raise ConfigError(
                f"expected the model's forward to run before delta.penalty, found no output "
                f"captured for {missing[0]!r}"
            )
        self._source_maps.clear()
        self._stop_early = True  # skip the source's layers after the last hooked one
        batch_stats = self.source_norm == "batch" and ctx.model.training
        norms = self._source_norms if batch_stats else []
        try:
            with torch.no_grad(), _batch_statistics(norms):
                self.source(ctx.inputs)
        except _StopForward:
            pass
        finally:
            self._stop_early = False
        total: Tensor | None = None
        for name in self.layers_:
            ft, fs = self._target[name], self._source_maps[name]
            if ft.shape != fs.shape:
                raise ConfigError(
                    f"expected delta feature maps of equal shape at {name!r}, "
                    f"found {tuple(ft.shape)} and {tuple(fs.shape)}"
                )
            dtype = torch.promote_types(ft.dtype, torch.float32)  # half (AMP) -> float32
            dist = (ft.to(dtype) - fs.to(dtype)).square()
            if dist.dim() > 2:
                dist = dist.flatten(2).sum(2)
            hw = math.prod(ft.shape[2:]) if ft.dim() > 2 else 1
            c = ft.shape[1]
            if name in self.attention:
                weighted = (dist * self.attention[name].to(dist.dtype)).sum()
            else:  # no loader was given: uniform attention
                weighted = dist.sum() / c
            term = 0.5 * c / hw * weighted
            total = term if total is None else total + term
        self._target.clear()
        self._source_maps.clear()
        assert total is not None  # layers_ is never empty after prepare
        total = self.gamma * total
        params = dict(unwrap_model(ctx.model).named_parameters())
        new = [params[n] for n in self.new_names_ if n in params and params[n].requires_grad]
        if new and self.kappa:
            total = total + 0.5 * self.kappa * squared_distance(new)
        return total
