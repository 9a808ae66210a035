r"""A sequence classifier on a transformers encoder, and the ``textcls:`` spec that rebuilds it.

.. math::

    \text{logits} = W \, \operatorname{dropout}(f) + b, \qquad
    f = \operatorname{pool}\big(\text{encoder}(\text{tokens})\big) \in \mathbb{R}^{d}

with ``pool`` one of

=========  =================================================================================
``cls``    the [CLS] (first) token of ``last_hidden_state``
``mean``   the mean of ``last_hidden_state`` over the tokens (padding excluded)
``pooler`` the encoder's pooler output (BERT: :math:`\tanh(W_p h_{[CLS]} + b_p)`, trained by
           next-sentence prediction), as ``BertForSequenceClassification`` does
``auto``   ``pooler`` when the encoder has a *trained* pooler, else ``cls``
=========  =================================================================================

A pooler is taken as untrained when its dense bias is exactly zero: a bias that never received
a gradient keeps its zero initialisation. The bundled MiniLM-L6 (sentence-transformers'
all-MiniLM-L6-v2) is such a case: its pooler bias is 0 and its weights have the spread of an
initialisation (std 0.009), because sentence-transformers pools by the mean and never trains
the pooler. ``auto`` therefore gives ``cls`` for it (the same [CLS] site that
``feature-spectrum`` reads from a headless text encoder) and ``pooler`` for BERT-base.

Two details make a fine-tuned classifier interchangeable with its encoder:

* **Flat names.** The encoder's submodules are the classifier's own children (the encoder
  object is kept unregistered), so module names and ``state_dict`` keys are the encoder's
  (``encoder.layer.0.attention.self.query``...) plus ``classifier.*``:
  ``compare-weights bundled:minilm-l6 runs/<id>/model.safetensors`` pairs every q/k/v,
  attention-output and FFN matrix. An unused pooler (``cls``/``mean``) is dropped.
* **Clean features.** The head, :class:`DropoutLinear`, is an ``nn.Linear`` that applies its
  dropout inside its own forward, so a forward pre-hook on it (BSS's ``F``,
  ``feature-spectrum``'s penultimate site) sees ``f`` itself, not a dropout mask.

The spec ``textcls:POOL:ENCODER_SPEC`` (e.g. ``textcls:cls:bundled:minilm-l6``) builds this
architecture around any text encoder spec; checkpoints written by a fine-tuning run name it
as their ``base``, so ``load_model(runs/<id>/model.safetensors)`` rebuilds the classifier.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError, ModelSpecError

# submodules, not the package: this module moves into spectral_probe.models as it is
from ._registry import list_sources, load_model, register_source
from .loaded import LoadedModel

__all__ = [
    "POOLS",
    "TextClassifier",
    "DropoutLinear",
    "pooler_is_trained",
    "resolve_pool",
    "load_textcls",
    "textcls_spec",
]

POOLS = ("auto", "cls", "mean", "pooler")
SOURCE = "textcls"


class DropoutLinear(nn.Linear):
    """``nn.Linear`` applied to ``dropout(x)``: a classifier head whose input is ``x`` itself.

    Example:
        >>> import torch
        >>> head = DropoutLinear(4, 2, p=0.1).eval()
        >>> head(torch.ones(3, 4)).shape
        torch.Size([3, 2])
    """

    def __init__(
        self, in_features: int, out_features: int, *, p: float = 0.1, bias: bool = True
    ) -> None:
        super().__init__(in_features, out_features, bias=bias)
        if not 0 <= p < 1:
            raise ConfigError(f"expected a dropout probability in [0, 1), found {p!r}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(F.dropout(x, self.p, self.training), self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


def pooler_is_trained(encoder: nn.Module) -> bool:
    """Whether ``encoder`` has a pooler whose dense bias is not all zeros (see module docs)."""
    dense = getattr(getattr(encoder, "pooler", None), "dense", None)
    bias = getattr(dense, "bias", None)
    return isinstance(bias, Tensor) and bool(bias.detach().abs().max() > 0)


def resolve_pool(encoder: nn.Module, pool: str) -> str:
    """``pool`` with ``auto`` decided for ``encoder`` (``pooler`` if trained, else ``cls``)."""
    if pool not in POOLS:
        raise ConfigError(f"expected pool in {list(POOLS)}, found {pool!r}")
    if pool == "auto":
        return "pooler" if pooler_is_trained(encoder) else "cls"
    if pool == "pooler" and getattr(encoder, "pooler", None) is None:
        raise ConfigError(
            f"expected an encoder with a pooler for pool 'pooler', found none in {type(encoder).__name__}"
        )
    return pool


class TextClassifier(nn.Module):
    """``classifier(dropout(pool(encoder(**tokens))))`` with the encoder's own module names.

    Args:
        encoder: a transformers encoder (``BertModel``...) returning ``last_hidden_state``
            (and ``pooler_output`` for ``pool="pooler"``).
        num_labels: outputs of the classifier.
        pool: ``cls``, ``mean``, ``pooler`` or ``auto`` (see the module docstring).
        dropout: dropout probability on ``f`` before the classifier (training only).

    Attributes:
        pool: the resolved pooling.
        classifier: the :class:`DropoutLinear` head (its input is the feature vector ``f``).
    """

    _encoder: nn.Module  # set with object.__setattr__: not a registered child

    def __init__(
        self, encoder: nn.Module, num_labels: int, *, pool: str = "auto", dropout: float = 0.1
    ) -> None:
        super().__init__()
        if num_labels < 1:
            raise ConfigError(f"expected num_labels >= 1, found {num_labels}")
        self.pool = resolve_pool(encoder, pool)
        if self.pool != "pooler" and getattr(encoder, "pooler", None) is not None:
            encoder.register_module(
                "pooler", None
            )  # unused: no weights without gradients (DDP), none to compare
        if any(True for _ in encoder.parameters(recurse=False)) or any(
            True for _ in encoder.buffers(recurse=False)
        ):
            raise ConfigError(
                f"expected an encoder whose weights live in submodules, found {type(encoder).__name__}"
            )
        for name, child in encoder.named_children():
            if name in ("classifier", "_encoder"):
                raise ConfigError(f"expected an encoder without a submodule named {name!r}")
            self.add_module(name, child)
        object.__setattr__(self, "_encoder", encoder)  # not registered: its children are ours
        hidden = int(getattr(getattr(encoder, "config", None), "hidden_size", 0) or 0)
        if hidden < 1:
            raise ConfigError(
                f"expected an encoder config with hidden_size, found none in {type(encoder).__name__}"
            )
        self.classifier = DropoutLinear(hidden, num_labels, p=dropout)

    @property
    def encoder_module(self) -> nn.Module:
        """The wrapped transformers encoder (sharing this module's children)."""
        return self._encoder

    def train(self, mode: bool = True) -> TextClassifier:
        super().train(mode)
        self._encoder.training = mode  # the encoder object itself is not a registered child
        return self

    def features(
        self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None, **inputs: Any
    ) -> Tensor:
        """The pooled feature vectors ``f``, shape ``(b, hidden_size)``."""
        kwargs = {
            k: v
            for k, v in {"input_ids": input_ids, "attention_mask": attention_mask, **inputs}.items()
            if v is not None
        }
        out = self._encoder(**kwargs, return_dict=True)
        if self.pool == "pooler":
            return out.pooler_output
        hidden = out.last_hidden_state
        if self.pool == "cls":
            return hidden[:, 0]
        if attention_mask is None:
            return hidden.mean(1)
        w = attention_mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * w).sum(1) / w.sum(1).clamp_min(1.0)

    def forward(
        self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None, **inputs: Any
    ) -> Tensor:
        """Logits ``(b, num_labels)`` of a tokenised batch (the tokenizer's dict as keywords)."""
        return self.classifier(self.features(input_ids, attention_mask, **inputs))

    def reset_head(self, num_labels: int, *, dropout: float | None = None) -> str:
        """Replace the classifier by a new one with ``num_labels`` outputs; return its name."""
        old = self.classifier
        self.classifier = DropoutLinear(
            old.in_features, num_labels, p=old.p if dropout is None else dropout
        )
        self.classifier.to(device=old.weight.device, dtype=old.weight.dtype)
        return "classifier"


def load_textcls(rest: str, pretrained: bool = True) -> LoadedModel:
    """Build ``textcls:POOL:ENCODER_SPEC``: a :class:`TextClassifier` (2 labels) on the encoder.

    The checkpoint loader replaces the head to fit the saved one; the tokenizer is the
    encoder's.
    """
    pool, sep, spec = rest.partition(":")
    if not sep or not spec or pool not in POOLS[1:]:
        raise ModelSpecError(
            f"expected textcls:POOL:ENCODER with POOL in {list(POOLS[1:])} (e.g. textcls:cls:bundled:minilm-l6), "
            f"found textcls:{rest}"
        )
    loaded = load_model(spec, pretrained=pretrained)
    if loaded.modality != "text" or loaded.head is not None:
        raise ModelSpecError(
            f"expected a text encoder without a classifier for textcls:, found {spec}"
        )
    model = TextClassifier(loaded.model, 2, pool=pool).eval()
    return LoadedModel(
        model=model,
        spec=f"{SOURCE}:{rest}",
        arch=f"{SOURCE}:{rest}",
        head="classifier",
        modality="text",
        tokenizer=loaded.tokenizer,
        num_classes=2,
        metadata={**loaded.metadata, "encoder": spec, "pool": pool},
    )


def textcls_spec(pool: str, encoder_spec: str) -> str:
    """The spec that rebuilds a :class:`TextClassifier` with ``pool`` on ``encoder_spec``."""
    return f"{SOURCE}:{pool}:{encoder_spec}"


def _register() -> None:
    if SOURCE not in {s.name for s in list_sources()}:
        register_source(
            SOURCE,
            help="a sequence classifier on a text encoder: textcls:POOL:ENCODER (POOL: cls, mean, pooler)",
            example="textcls:cls:bundled:minilm-l6",
        )(load_textcls)


_register()
