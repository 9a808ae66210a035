r"""GLUE fine-tuning of a BERT-family encoder (the paper's Table 4): a task and the ``glue`` preset.

:class:`TextClassificationTask` (``task = "text-classification"``) fine-tunes a transformers
encoder (``hf:PATH``, ``bundled:minilm-l6``) with a new classifier on the pooled/[CLS]
feature (:class:`~spectral_probe.models.text_classifier.TextClassifier`) on a GLUE task read
from its TSV files (``glue-sst2:DIR``, ``glue-mrpc:DIR``, ``glue-qnli:DIR``,
``glue-mnli:DIR``):

* training split: ``train.tsv``, validation carved first (``config.val``), then
  ``config.rate`` of each class (:func:`~spectral_probe.data.make_splits`, as for images);
* evaluation: the official dev set (MNLI: ``dev_matched.tsv``, the paper's MNLI-m) as the
  ``test`` entry of ``final.json``, with GLUE's metric per task (:data:`GLUE_METRICS`):
  accuracy, and for MRPC also F1 of the ``equivalent`` class;
* batches: tokenised in the collate by the model's own tokenizer (dynamic padding to the
  longest sequence of the batch, truncation to ``max_length``); throughput counts tokens
  (non-padding);
* optimizer groups: biases and LayerNorm parameters (every 1-d parameter) take no weight
  decay, as in BERT;
* BSS: ``F`` is the classifier's input, ``f`` of the batch.

Task options (``config.task_options``, TOML ``[task_options]``, CLI ``--task-option KEY=VALUE``):

============  ==========  =======================================================================
option        default     meaning
============  ==========  =======================================================================
max_length    128         truncate token sequences to this length
pool          ``auto``    ``cls``, ``mean``, ``pooler`` or ``auto`` (trained pooler, else [CLS])
dropout       encoder's   dropout on ``f`` before the classifier (``hidden_dropout_prob``, 0.1)
============  ==========  =======================================================================

The ``glue`` preset is BERT's fine-tuning recipe: AdamW (beta1 0.9, beta2 0.999), learning
rate 2e-5 for every layer, batch 32, 3 epochs, linear decay after a linear warm-up over the
first 10 % of the steps, weight decay 0.01 except biases and LayerNorm; the new classifier
drawn from N(0, 0.02²) (the encoder's ``initializer_range``) with zero bias.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from ..data import load_dataset, make_splits
from ..errors import ConfigError
from ..models import LoadedModel, load_model, replace_head
from ..models.text_classifier import POOLS, TextClassifier, textcls_spec
from .presets import Preset, register_preset
from .tasks import Task, TaskSetup, register_task

if TYPE_CHECKING:
    from .config import FinetuneConfig

__all__ = ["TextClassificationTask", "TokenizeCollate", "GLUE_METRICS", "GLUE_PRESET", "binary_f1"]

#: metrics GLUE reports per task (the paper's Table 4 reports accuracy on the dev sets)
GLUE_METRICS: dict[str, tuple[str, ...]] = {
    "glue-sst2": ("accuracy",),
    "glue-mrpc": ("accuracy", "f1"),
    "glue-qnli": ("accuracy",),
    "glue-mnli": ("accuracy",),
}
_OPTIONS = ("max_length", "pool", "dropout")


class TokenizeCollate:
    """Samples ``(texts, label)`` to ``({input_ids, attention_mask, ...}, labels)``.

    ``texts`` is a tuple of one or two strings (a sentence or a pair); the batch is padded to
    its longest sequence and truncated to ``max_length`` tokens (pairs: longest first).
    Picklable, so loader worker processes can use it.
    """

    def __init__(self, tokenizer: Any, max_length: int = 128) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(
        self, items: Sequence[tuple[Sequence[str], int]]
    ) -> tuple[dict[str, Tensor], Tensor]:
        texts = [item[0] if isinstance(item[0], (tuple, list)) else (item[0],) for item in items]
        segments = [list(seg) for seg in zip(*texts)][:2]
        encoded = self.tokenizer(
            *segments,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return dict(encoded), torch.as_tensor([int(item[1]) for item in items], dtype=torch.int64)


def binary_f1(confusion: Tensor, positive: int = 1) -> float:
    r"""F1 of class ``positive`` from a confusion matrix (rows: true, columns: predicted).

    .. math:: F_1 = \frac{2\,TP}{2\,TP + FP + FN}

    Example:
        >>> binary_f1(torch.tensor([[5., 1.], [2., 4.]]))
        0.7272727272727273
    """
    tp = float(confusion[positive, positive])
    fp = float(confusion[:, positive].sum()) - tp
    fn = float(confusion[positive].sum()) - tp
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def _options(config: FinetuneConfig, encoder: nn.Module) -> dict[str, Any]:
    opts = TextClassificationTask.check_options(config.task_options)
    max_length = opts.get("max_length", 128)
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 8:
        raise ConfigError(
            f"expected task option max_length to be an integer >= 8, found {max_length!r}"
        )
    pool = opts.get("pool", "auto")
    if pool not in POOLS:
        raise ConfigError(f"expected task option pool in {list(POOLS)}, found {pool!r}")
    default_p = float(getattr(getattr(encoder, "config", None), "hidden_dropout_prob", 0.1) or 0.0)
    dropout = opts.get("dropout", default_p)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ConfigError(f"expected task option dropout in [0, 1), found {dropout!r}")
    return {"max_length": max_length, "pool": pool, "dropout": float(dropout)}


def _check_tokenizer(loaded: LoadedModel, spec: str) -> None:
    """A tokenizer with a vocabulary: transformers 5 builds one of special tokens only (and no
    ``tokenizer_error``) from a directory without tokenizer files."""
    tok = loaded.tokenizer
    if tok is None:
        why = loaded.metadata.get("tokenizer_error", "no tokenizer files")
        raise ConfigError(
            f"expected a tokenizer in the model directory of {spec}, found none ({why})"
        )
    specials = len(set(getattr(tok, "all_special_tokens", []) or []))
    if len(tok) <= specials:
        raise ConfigError(
            f"expected a tokenizer in the model directory of {spec}, found none (no vocabulary files: "
            f"the tokenizer holds only its {specials} special tokens)"
        )


def _init_head(head: nn.Linear, how: str, std: float) -> None:
    if how == "normal":
        with torch.no_grad():
            head.weight.normal_(0.0, std)
            if head.bias is not None:
                head.bias.zero_()


def build_text_classifier(
    loaded: LoadedModel,
    num_labels: int,
    *,
    pool: str = "auto",
    dropout: float = 0.1,
    head_init: str = "normal",
) -> tuple[nn.Module, str, str]:
    """``(model, head name, base spec)``: a classifier on ``loaded`` with a new head.

    A bare encoder is wrapped in a :class:`TextClassifier` (base ``textcls:POOL:SPEC``); a model
    that already has a classifier (a toolkit checkpoint, an ``hf:`` sequence-classification
    directory) keeps its architecture and gets a new head.
    """
    model = loaded.model
    if loaded.head is None:
        model = TextClassifier(model, num_labels, pool=pool, dropout=dropout)
        head, base = "classifier", textcls_spec(model.pool, loaded.arch)
    elif isinstance(model, TextClassifier):
        head, base = model.reset_head(num_labels, dropout=dropout), loaded.arch
    else:
        head, base = replace_head(model, num_labels, loaded.head), loaded.arch
    config = getattr(getattr(model, "encoder_module", model), "config", None)
    _init_head(
        model.get_submodule(head),  # type: ignore[arg-type]
        head_init,
        float(getattr(config, "initializer_range", 0.02) or 0.02),
    )  # type: ignore[arg-type]
    return model, head, base


@register_task
class TextClassificationTask(Task):
    """Fine-tune ``config.model`` (a text encoder) on a GLUE task (see the module docstring)."""

    name = "text-classification"
    unit = "tokens"
    options = _OPTIONS

    def __init__(self) -> None:
        self.metric_names: tuple[str, ...] = ("accuracy",)

    def setup(self, config: FinetuneConfig) -> TaskSetup:
        full = load_dataset(config.data, "train")
        if full.kind != "text":
            raise ConfigError(
                f"expected a text dataset (glue-sst2:DIR, ...) for task {self.name}, found {config.data} ({full.kind})"
            )
        splits = make_splits(
            full.targets,
            rate=config.rate,
            val=config.val,
            seed=config.split_seed,
            min_per_class=2,
            classes=full.classes,
        )
        dev = load_dataset(
            config.data, "test"
        )  # GLUE's labelled evaluation split: dev (MNLI: matched)
        loaded = load_model(config.model)
        if loaded.modality != "text":
            raise ConfigError(
                f"expected a text model (hf:PATH, bundled:minilm-l6) for {config.data}, found {config.model} ({loaded.modality})"
            )
        _check_tokenizer(loaded, config.model)
        opts = _options(config, getattr(loaded.model, "encoder_module", loaded.model))
        model, head, base = build_text_classifier(
            loaded,
            len(full.classes),
            pool=opts["pool"],
            dropout=opts["dropout"],
            head_init=str(config.head_init),
        )
        self.metric_names = GLUE_METRICS.get(config.data.partition(":")[0], ("accuracy",))
        train = full.subset(splits.train)
        val = full.subset(splits.val) if len(splits.val) else None
        pool = getattr(model, "pool", None)
        return TaskSetup(
            model=model,
            head=head,
            base=base,
            train=train,
            val=val,
            evals={"test": dev},
            classes=list(full.classes),
            preprocessing=None,
            modality="text",
            collate=TokenizeCollate(loaded.tokenizer, opts["max_length"]),
            info={
                "train_size": len(train),
                "val_size": len(splits.val),
                "test_size": len(dev),
                "test_split": dev.split,
                "num_classes": len(full.classes),
                "max_length": opts["max_length"],
                "pool": pool,
                "metrics": list(self.metric_names),
            },
        )

    def forward(self, model: nn.Module, inputs: Any) -> Tensor:
        out = model(**inputs) if isinstance(inputs, Mapping) else model(inputs)
        return (
            out if isinstance(out, Tensor) else out.logits
        )  # a transformers ...ForSequenceClassification

    def param_groups(self, model: nn.Module, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each group split in two: matrices (decayed) and 1-d parameters (``no_decay``)."""
        out: list[dict[str, Any]] = []
        for g in groups:
            decay = [p for p in g["params"] if p.ndim >= 2]
            flat = [p for p in g["params"] if p.ndim < 2]
            if decay:
                out.append({**g, "params": decay})
            if flat:
                out.append({**g, "params": flat, "no_decay": True})
        return out

    def metrics(self, confusion: Tensor) -> dict[str, float]:
        """F1 of the positive class for MRPC (binary GLUE tasks that report it)."""
        if "f1" in self.metric_names and confusion.shape == (2, 2):
            return {"f1": binary_f1(confusion, 1)}
        return {}


GLUE_PRESET = register_preset(
    Preset(
        name="glue",
        summary="BERT's GLUE fine-tuning: AdamW, lr 2e-5 for every layer, batch 32, 3 epochs, linear "
        "decay after a 10% warm-up, weight decay 0.01 except biases and LayerNorm",
        optimizer="adamw",
        lr=2e-5,
        head_lr_ratio=1.0,
        momentum=0.9,
        weight_decay=0.01,
        batch_size=32,
        epochs=3,
        schedule="linear",
        warmup=0.1,
        augment="none",
        ten_crop=False,
        head_init="normal",
        eval_batch_size=128,
    )
)
