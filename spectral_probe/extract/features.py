r"""Feature matrices :math:`F \in \mathbb{R}^{b \times d}` of a model, batch by batch.

Where the features are read (a *site*):

* ``"penultimate"`` (the default): the pooled feature vector :math:`f_i = F(x_i)` of the paper,
  i.e. the **input of the classifier head** (``LoadedModel.head``), captured by a forward
  pre-hook on the head (the trick BSS uses during fine-tuning): ResNet-50's 2048-d pooled
  vector, EfficientNet-Lite0's 1280-d one, BERT's pooler output for a
  ``...ForSequenceClassification`` model. A transformers encoder without a head (``hf:``,
  ``bundled:minilm-l6``) gives the **[CLS] token of** ``last_hidden_state``: it is present and
  trained in every BERT-family encoder, whereas the pooler may be missing, randomly
  initialised, or never trained (sentence-transformers checkpoints such as MiniLM-L6 pool by
  mean). Name the module ``pooler`` to read BERT's pooler output instead, or use
  ``pool="avg"`` for the mean over tokens (padding excluded).
* any named module (``spectral-probe layers MODEL --modules`` lists them): its **output**,
  reduced to one vector per sample by ``pool``.

``pool`` turns a captured tensor with more than two dimensions into ``(b, d)``:

=========  =======================================  =====================================
pool       ``(b, C, H, W...)`` maps                 ``(b, T, d)`` token sequences
=========  =======================================  =====================================
auto       mean over the spatial dimensions         text models: the first token ([CLS]);
                                                    image models (ViT): mean over tokens
avg        mean over the spatial dimensions         mean over tokens (padding excluded)
flatten    ``reshape(b, -1)`` (``d = C·H·W``)       ``reshape(b, -1)``
cls        an error                                 the first token
=========  =======================================  =====================================

Maps are taken as channels-first (torchvision, timm CNNs); for channels-last outputs
(Swin) use ``flatten`` or a module whose output is already ``(b, d)``.

Extraction runs under ``torch.inference_mode`` in eval mode; on CUDA, images go in
``channels_last`` and the forward runs under autocast (float16 by default), and features
come out as float32. The forward stops as soon as every requested site has fired (the
layers above are never computed); a module called several times in one forward is read at
its first call. Images are preprocessed as the model was trained (its
:class:`~spectral_probe.models.Preprocessing`: mean/std, input size, interpolation), in-memory datasets on
the device in one batched tensor transform; text is tokenised with the model's tokenizer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..models import LoadedModel
from .modules import resolve_module

__all__ = [
    "PENULTIMATE",
    "POOLS",
    "FeatureSite",
    "feature_sites",
    "pool_features",
    "resolve_device",
    "FeatureExtractor",
]

PENULTIMATE = "penultimate"
POOLS = ("auto", "avg", "flatten", "cls")
Pool = Literal["auto", "avg", "flatten", "cls"]


class _StopForward(BaseException):
    """Raised by a hook once every site has fired (BaseException: models' ``except Exception``
    blocks must not swallow it)."""


@dataclass(frozen=True)
class FeatureSite:
    """Where one feature matrix is read.

    Attributes:
        name: the name results use: ``"penultimate"`` or the module name.
        module: dotted name of the hooked module (``""``: the model itself).
        capture: ``"input"`` (the head's input, a pre-hook) or ``"output"``.
        description: one line for reports, e.g. ``input of the classifier 'fc'``.
    """

    name: str
    module: str
    capture: Literal["input", "output"]
    description: str


def feature_sites(
    model: LoadedModel, layers: str | Sequence[str] | None = None
) -> list[FeatureSite]:
    """The sites for ``layers`` (``None``: the pooled penultimate features), in the given order.

    Raises:
        ConfigError: an unknown module name (the message lists the close matches).

    Examples:
        >>> from spectral_probe.models import load_model
        >>> model = load_model("torchvision:resnet18", pretrained=False)
        >>> [s.description for s in feature_sites(model, [None, "layer4"])]
        ["input of the classifier 'fc'", "output of 'layer4' (Sequential)"]
    """
    names: list[str | None] = (
        [layers] if layers is None or isinstance(layers, str) else list(layers)
    )
    if not names:
        names = [None]
    sites: list[FeatureSite] = []
    for name in dict.fromkeys(names):
        if name is None or name == PENULTIMATE:
            site = _penultimate(model)
        elif not isinstance(name, str) or not name.strip():
            raise ConfigError(f"expected a module name or {PENULTIMATE!r}, found {name!r}")
        else:
            module = resolve_module(model.model, name)
            site = FeatureSite(
                name, name, "output", f"output of {name!r} ({type(module).__name__})"
            )
        if site.name not in {s.name for s in sites}:
            sites.append(site)
    return sites


def _penultimate(model: LoadedModel) -> FeatureSite:
    if model.head:
        return FeatureSite(
            PENULTIMATE, model.head, "input", f"input of the classifier {model.head!r}"
        )
    if model.modality == "text":
        return FeatureSite(
            PENULTIMATE, "", "output", "[CLS] token of last_hidden_state (no classifier head)"
        )
    return FeatureSite(PENULTIMATE, "", "output", "output of the model (no classifier head)")


def pool_features(
    x: Tensor,
    pool: Pool = "auto",
    *,
    modality: str = "image",
    attention_mask: Tensor | None = None,
) -> Tensor:
    """One vector per sample: ``(b, ...)`` to ``(b, d)`` as the module docstring's table says.

    Args:
        x: a captured activation, batch first.
        pool: ``auto``, ``avg``, ``flatten`` or ``cls``.
        modality: ``"image"`` or ``"text"`` (decides ``auto`` for token sequences).
        attention_mask: ``(b, T)`` padding mask of a text batch; excluded tokens do not
            enter ``avg``.

    Examples:
        >>> pool_features(torch.ones(2, 8, 3, 3)).shape
        torch.Size([2, 8])
    """
    if pool not in POOLS:
        raise ConfigError(f"expected pool in {list(POOLS)}, found {pool!r}")
    if x.dim() < 2:
        raise ConfigError(
            f"expected batch-first features of shape (b, ...), found shape {tuple(x.shape)}"
        )
    if x.dim() == 2:
        return x
    if pool == "flatten":
        return x.reshape(x.shape[0], -1)
    if x.dim() == 3:  # token sequences (b, T, d)
        if pool == "cls" or (pool == "auto" and modality == "text"):
            return x[:, 0]
        if attention_mask is not None and tuple(attention_mask.shape) == tuple(x.shape[:2]):
            w = attention_mask.to(x.dtype).unsqueeze(-1)
            return (x * w).sum(1) / w.sum(1).clamp_min(1)
        return x.mean(1)
    if pool == "cls":
        raise ConfigError(
            f"expected a token sequence (b, T, d) for pool 'cls', found shape {tuple(x.shape)}"
        )
    return x.mean(dim=tuple(range(2, x.dim())))


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto``/``None``: CUDA when available, else CPU; ``cuda`` without CUDA is an error."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"expected a device auto, cpu or cuda, found {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("expected a CUDA device for --device cuda, found none on this machine")
    return dev


def _first_tensor(value: Any) -> Tensor | None:
    """The tensor in a module's output: itself, the first of a tuple, or ``ModelOutput[0]``."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, Mapping):
        value = next(iter(value.values()), None)
        return value if isinstance(value, Tensor) else None
    if isinstance(value, (tuple, list)) and value:
        return _first_tensor(value[0])
    return None


def _as_loaded(model: LoadedModel | nn.Module) -> LoadedModel:
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, nn.Module):
        from ..models import find_head

        return LoadedModel(
            model=model, spec=type(model).__name__, arch=type(model).__name__, head=find_head(model)
        )
    raise TypeError(f"expected a LoadedModel or nn.Module, found {type(model).__name__}")


class FeatureExtractor:
    """Hooks on a model that return its feature matrices for a batch of inputs.

    ``extractor(inputs)`` runs the model once (stopping early once every site has fired)
    and returns ``{site name: (b, d) float32 tensor on the device}``. The model is put in
    eval mode and moved to ``device`` (and to channels_last on CUDA). The hooks act only
    during such a call, so the model can still be used as usual; use the extractor as a
    context manager, or call :meth:`close`, to remove them.

    Args:
        model: a :class:`~spectral_probe.models.LoadedModel` (or a bare module: the head is
            then found by :func:`~spectral_probe.models.find_head`).
        layers: module names, ``"penultimate"``/``None`` for the pooled features.
        pool: how maps and token sequences become vectors (see the module docstring).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        amp: autocast the forward; default on for CUDA, off on CPU.
        amp_dtype: the autocast dtype (float16 by default: more mantissa than bfloat16 for
            the small singular values; pass ``torch.bfloat16`` if a model overflows).
        channels_last: image inputs and weights in channels_last; default on for CUDA.
        stop_early: stop the forward once every site has fired.

    Examples:
        >>> import torchvision
        >>> with FeatureExtractor(torchvision.models.resnet18(), device="cpu") as fx:
        ...     fx(torch.randn(4, 3, 32, 32))["penultimate"].shape
        torch.Size([4, 512])
    """

    def __init__(
        self,
        model: LoadedModel | nn.Module,
        layers: str | Sequence[str] | None = None,
        *,
        pool: Pool = "auto",
        device: str | torch.device | None = "auto",
        amp: bool | None = None,
        amp_dtype: torch.dtype = torch.float16,
        channels_last: bool | None = None,
        stop_early: bool = True,
    ) -> None:
        if pool not in POOLS:
            raise ConfigError(f"expected pool in {list(POOLS)}, found {pool!r}")
        self.loaded = _as_loaded(model)
        self.device = resolve_device(device)
        cuda = self.device.type == "cuda"
        self.amp = cuda if amp is None else bool(amp)
        self.amp_dtype = amp_dtype
        self.channels_last = (
            (cuda and self.loaded.modality == "image")
            if channels_last is None
            else bool(channels_last)
        )
        self.pool = pool
        self.stop_early = stop_early
        self.sites = feature_sites(self.loaded, layers)
        self.model = self.loaded.model.eval().to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._captured: dict[str, Tensor] = {}
        self._mask: Tensor | None = None
        self._active = False  # hooks act only inside __call__: the model stays usable as is
        self._handles = []
        for site in self.sites:
            module = self.model if not site.module else self.model.get_submodule(site.module)
            if site.capture == "input":
                handle = module.register_forward_pre_hook(
                    self._make_hook(site.name, use_input=True)
                )
            else:
                handle = module.register_forward_hook(self._make_hook(site.name, use_input=False))
            self._handles.append(handle)

    @property
    def names(self) -> list[str]:
        """The site names, in order (the keys of what a call returns)."""
        return [s.name for s in self.sites]

    def _make_hook(self, name: str, *, use_input: bool) -> Callable[..., None]:
        modality = self.loaded.modality

        def hook(module: nn.Module, args: tuple[Any, ...], output: Any = None) -> None:
            if not self._active or name in self._captured:
                return
            value = _first_tensor(args if use_input else output)
            if value is None:
                raise ConfigError(
                    f"expected a tensor at feature site {name!r}, found {type(output).__name__}"
                )
            pooled = pool_features(value, self.pool, modality=modality, attention_mask=self._mask)
            self._captured[name] = pooled.float()
            if self.stop_early and len(self._captured) == len(self.sites):
                raise _StopForward

        return hook  # a forward pre-hook calls it with (module, args), a forward hook adds output

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The autocast context the forward runs in (a no-op when ``amp`` is off)."""
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def __call__(self, inputs: Tensor | Mapping[str, Tensor]) -> dict[str, Tensor]:
        self._captured = {}
        self._mask = inputs.get("attention_mask") if isinstance(inputs, Mapping) else None
        self._active = True
        try:
            with torch.inference_mode(), self.autocast():
                if isinstance(inputs, Mapping):
                    self.model(**inputs)
                else:
                    self.model(inputs)
        except _StopForward:
            pass
        finally:
            self._mask = None
            self._active = False
        missing = [s.name for s in self.sites if s.name not in self._captured]
        if missing:
            raise ConfigError(
                f"expected every feature site to run in the forward pass, found none at {', '.join(map(repr, missing))}"
            )
        out, self._captured = self._captured, {}
        return {name: out[name] for name in self.names}

    def close(self) -> None:
        """Remove the hooks (idempotent)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> FeatureExtractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
