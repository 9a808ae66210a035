"""The paper's scenario: fine-tune an ImageNet classifier with a new head on an image dataset."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import Tensor

from ..data import (
    check_interpolation,
    get_dataset_info,
    image_transform,
    load_dataset,
    make_splits,
    parse_data_spec,
    split_train_val,
)
from ..data.sampling import Splits
from ..errors import ConfigError, DataError
from ..models import Preprocessing, load_model, replace_head
from .batches import TensorTenCrop
from .tasks import Task, TaskSetup, register_task

if TYPE_CHECKING:
    from .config import FinetuneConfig

__all__ = ["HOLDOUT", "ImageClassificationTask", "init_head"]

#: Share of each class held out as the test split when the data have no test split of their
#: own (a single-folder ``imagefolder``). Drawn with seed 0 whatever the run's seed, so every
#: method, rate and seed of a sweep is scored on the same images.
HOLDOUT = "20%"


def init_head(head: torch.nn.Module, how: str) -> None:
    """``"normal"``: weights ~ N(0, 0.01), zero bias (the released code); ``"default"``: as built."""
    if how == "normal":
        with torch.no_grad():
            cast(Tensor, head.weight).normal_(0.0, 0.01)
            bias = getattr(head, "bias", None)
            if bias is not None:
                bias.zero_()


@register_task
class ImageClassificationTask(Task):
    """Fine-tune ``config.model`` on ``config.data`` (Section 5.1 of the paper).

    * training split: validation carved first (``config.val``), then ``config.rate`` of each
      class sampled from the rest (:func:`~spectral_probe.data.make_splits`, at least 2
      images per class), training transform (``augment``);
    * the model's head replaced by a new ``nn.Linear(d, num_classes)`` initialised by
      ``head_init``;
    * the test split evaluated with a centre crop, or ten crops (``ten_crop``); data without
      a test split of their own (a single-folder ``imagefolder``) hold out :data:`HOLDOUT` of
      each class first (task option ``holdout``: a share, a count per class), recorded in
      the run's info;
    * images resized with the model's own filter (its ``preprocessing.interpolation``:
      bilinear for torchvision's ResNets, bicubic for EfficientNet-Lite; bilinear when the
      model states none), or the task option ``interpolation`` (``bilinear``, ``bicubic``,
      ``nearest``, or ``model``). The filter used is recorded in the checkpoint's
      preprocessing, so feature extraction reads the fine-tuned model as it was trained.
    """

    name = "image-classification"
    unit = "images"
    options = ("interpolation", "holdout")

    def setup(self, config: FinetuneConfig) -> TaskSetup:
        options = self.check_options(config.task_options)
        choice = options.get("interpolation", "model")
        if choice != "model":  # a bad filter is refused before anything is loaded
            choice = _filter_option(choice)
        full = load_dataset(config.data, "train")
        if full.kind != "image":
            raise ConfigError(
                f"expected an image dataset for task {self.name}, found {config.data} ({full.kind})"
            )
        pool, test, holdout = _train_and_test(config.data, full, options.get("holdout"))
        picked = make_splits(
            np.asarray(full.targets)[pool],
            rate=config.rate,
            val=config.val,
            seed=config.split_seed,
            min_per_class=2,
            classes=full.classes,
        )
        splits = Splits(train=pool[picked.train], val=pool[picked.val])
        loaded = load_model(config.model)
        if loaded.head is None:
            raise ConfigError(
                f"expected a model with a classifier head, found none in {config.model}"
            )
        pre = loaded.preprocessing or Preprocessing()
        interpolation = _interpolation(choice, pre, config.model)
        size, resize = int(config.image_size), int(config.resize)  # type: ignore[arg-type]
        common: dict[str, Any] = {
            "size": size,
            "resize": resize,
            "mean": pre.mean,
            "std": pre.std,
            "interpolation": interpolation,
        }
        train_t = image_transform(full, train=config.augment == "paper", **common)
        eval_t = image_transform(full, train=False, **common)
        if config.ten_crop and getattr(test, "supports_batch_index", False):
            test_t: Any = TensorTenCrop(
                size, resize, pre.mean, pre.std, interpolation=interpolation
            )
        else:
            test_t = image_transform(test, train=False, ten_crop=bool(config.ten_crop), **common)
        model = loaded.model
        head = replace_head(model, len(full.classes), loaded.head)
        init_head(model.get_submodule(head), str(config.head_init))
        train = full.with_transform(train_t).subset(splits.train)
        val = full.with_transform(eval_t).subset(splits.val) if len(splits.val) else None
        used = Preprocessing(pre.mean, pre.std, (3, size, size), interpolation, pre.crop_pct)
        return TaskSetup(
            model=model,
            head=head,
            base=loaded.arch,
            train=train,
            val=val,
            evals={"test": test.with_transform(test_t)},
            classes=list(full.classes),
            preprocessing=used,
            modality="image",
            info={
                "train_size": len(train),
                "val_size": len(splits.val),
                "test_size": len(test),
                "num_classes": len(full.classes),
                "interpolation": interpolation,
                "test_holdout": holdout,
            },
        )


def _train_and_test(data: str, full: Any, holdout: Any) -> tuple[np.ndarray, Any, str | None]:
    """The indices of ``full`` to train from, the test set, and the hold-out used (or None).

    Data with a test split of their own use all of ``full`` and that split (``holdout`` is then
    refused: it would silently change nothing). Data without one (a single-folder
    ``imagefolder``) keep ``holdout`` (default :data:`HOLDOUT`) of each class aside as the
    test set, drawn with seed 0 so that every run of a sweep sees the same test images.
    """
    spec = parse_data_spec(data)
    if get_dataset_info(spec.name).evaluation_split(spec.root) != "all":
        if holdout is not None:
            raise ConfigError(
                f"expected no task option holdout for {data}, which has a test split of its "
                f"own, found holdout={holdout}"
            )
        return np.arange(len(full)), load_dataset(data, "test"), None
    share = HOLDOUT if holdout is None else str(holdout)
    try:
        rest, test_idx = split_train_val(full.targets, share, 0, classes=full.classes)
    except DataError as exc:
        raise ConfigError(
            f"{exc} (task option holdout, the test share of a single folder)"
        ) from None
    if len(test_idx) == 0:
        raise ConfigError(f"expected a test hold-out above 0 for {data}, found holdout={share}")
    return rest, full.subset(test_idx), share


def _filter_option(value: Any) -> str:
    """The task option ``interpolation`` as a filter name (``"model"`` is resolved apart)."""
    try:
        return check_interpolation(value)
    except DataError as exc:
        raise ConfigError(f"{exc} (or 'model') for task option interpolation") from None


def _interpolation(value: Any, pre: Preprocessing, model: str) -> str:
    """The resizing filter: ``value``, or with ``"model"`` the model's own (bilinear if none)."""
    if value != "model":
        return _filter_option(value)
    try:
        return check_interpolation(pre.interpolation or "bilinear")
    except DataError as exc:
        raise ConfigError(
            f"{exc} in the preprocessing of {model}: pass --task-option interpolation=..."
        ) from None
