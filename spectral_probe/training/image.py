"""The paper's scenario: fine-tune an ImageNet classifier with a new head on an image dataset."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..data import image_transform, load_dataset, make_splits
from ..errors import ConfigError
from ..models import Preprocessing, load_model, replace_head
from .batches import TensorTenCrop
from .tasks import Task, TaskSetup, register_task

if TYPE_CHECKING:
    from .config import FinetuneConfig

__all__ = ["ImageClassificationTask", "init_head"]


def init_head(head: torch.nn.Module, how: str) -> None:
    """``"normal"``: weights ~ N(0, 0.01), zero bias (the released code); ``"default"``: as built."""
    if how == "normal":
        with torch.no_grad():
            head.weight.normal_(0.0, 0.01)  # type: ignore[operator]
            if getattr(head, "bias", None) is not None:
                head.bias.zero_()  # type: ignore[union-attr]


@register_task
class ImageClassificationTask(Task):
    """Fine-tune ``config.model`` on ``config.data`` (Section 5.1 of the paper).

    * training split: validation carved first (``config.val``), then ``config.rate`` of each
      class sampled from the rest (:func:`~spectral_probe.data.make_splits`, at least 2
      images per class), training transform (``augment``);
    * the model's head replaced by a new ``nn.Linear(d, num_classes)`` initialised by
      ``head_init``;
    * the test split evaluated with a centre crop, or ten crops (``ten_crop``).
    """

    name = "image-classification"
    unit = "images"

    def setup(self, config: FinetuneConfig) -> TaskSetup:
        self.check_options(config.task_options)  # takes none
        data_seed = config.seed if config.data_seed is None else config.data_seed
        full = load_dataset(config.data, "train")
        if full.kind != "image":
            raise ConfigError(
                f"expected an image dataset for task {self.name}, found {config.data} ({full.kind})"
            )
        splits = make_splits(
            full.targets, rate=config.rate, val=config.val, seed=data_seed, min_per_class=2,
            classes=full.classes,
        )
        test = load_dataset(config.data, "test")
        loaded = load_model(config.model)
        if loaded.head is None:
            raise ConfigError(f"expected a model with a classifier head, found none in {config.model}")
        pre = loaded.preprocessing or Preprocessing()
        size, resize = int(config.image_size), int(config.resize)  # type: ignore[arg-type]
        common: dict[str, Any] = {"size": size, "resize": resize, "mean": pre.mean, "std": pre.std}
        train_t = image_transform(full, train=config.augment == "paper", **common)
        eval_t = image_transform(full, train=False, **common)
        if config.ten_crop and getattr(test, "supports_batch_index", False):
            test_t: Any = TensorTenCrop(size, resize, pre.mean, pre.std)
        else:
            test_t = image_transform(test, train=False, ten_crop=bool(config.ten_crop), **common)
        model = loaded.model
        head = replace_head(model, len(full.classes), loaded.head)
        init_head(model.get_submodule(head), str(config.head_init))
        train = full.with_transform(train_t).subset(splits.train)
        val = full.with_transform(eval_t).subset(splits.val) if len(splits.val) else None
        used = Preprocessing(pre.mean, pre.std, (3, size, size), pre.interpolation, pre.crop_pct)
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
            info={"train_size": len(train), "val_size": len(splits.val), "test_size": len(test),
                  "num_classes": len(full.classes)},
        )
