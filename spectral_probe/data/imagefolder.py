"""Any folder of class subfolders (``imagefolder:ROOT``), torchvision ``ImageFolder`` style.

Two layouts:

* ``ROOT/train/<class>/*.jpg`` and ``ROOT/test/<class>/*.jpg`` (``ROOT/val/`` is read as
  the test split when there is no ``test/``): two splits. The classes are the subfolders
  of ``train/``, sorted; ``test/`` may lack a class but may not add one.
* ``ROOT/<class>/*.jpg``: a single split of every image, ``all`` (``train`` reads the same
  images, so training carves its validation split from them, and fine-tuning holds out a test
  share of each class first). Asking for ``test`` is an error; hold data out with
  :func:`~spectral_probe.data.split_train_val` instead.

``split="auto"`` (the analysis commands' default) reads ``test`` (or ``val``) in the first
layout and ``all`` in the second.

Images are found recursively below each class folder (extensions: jpg, jpeg, png, bmp,
gif, ppm, pgm, tif, tiff, webp, case-insensitive); hidden entries are skipped.
A class folder without images is an error.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError
from ._base import ImageFileDataset, Transform, require_dir
from .spec import register_dataset

__all__ = ["IMAGE_EXTENSIONS", "list_image_folder", "load_imagefolder"]

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}
)


def _class_dirs(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))


def _images_below(folder: Path) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(
            os.path.join(dirpath, f)
            for f in sorted(filenames)
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS
        )
    return found


def list_image_folder(folder: Path, classes: list[str]) -> tuple[list[str], list[int]]:
    """``(paths, targets)`` of the images under ``folder/<class>/`` for each of ``classes``.

    Raises:
        DataError: a subfolder that is not one of ``classes``, or a class folder without
            images (an empty class).
    """
    index = {c: i for i, c in enumerate(classes)}
    present = _class_dirs(folder)
    extra = [c for c in present if c not in index]
    if extra:
        raise DataError(
            f"expected class folders among the {len(classes)} training classes in {folder}, "
            f"found unknown class {extra[0]!r}"
        )
    paths: list[str] = []
    targets: list[int] = []
    for name in present:
        files = _images_below(folder / name)
        if not files:
            raise DataError(
                f"expected images in class folder {folder / name}, found none (an empty class)"
            )
        paths.extend(files)
        targets.extend([index[name]] * len(files))
    return paths, targets


def _auto_split(root: Path | None) -> str:
    """``test`` for the two-split layout, ``all`` for a single folder of class folders."""
    return "test" if root is not None and (root / "train").is_dir() else "all"


@register_dataset(
    "imagefolder",
    kind="image",
    splits=("train", "test", "all"),
    usage="imagefolder:/path/to/images",
    summary="ROOT/<class>/*.jpg (one split: all) or ROOT/{train,test}/<class>/*.jpg (two splits)",
    auto_split=_auto_split,
)
def load_imagefolder(
    root: Path | None, split: str, transform: Transform | None = None
) -> ImageFileDataset:
    """Load ``split`` of an image folder; see the module docstring for the layouts."""
    if root is None:  # the spec parser requires a root; this guards direct calls
        raise DataError("expected a root directory for imagefolder, found none")
    train_dir = root / "train"
    if train_dir.is_dir():
        classes = _class_dirs(train_dir)
        if split == "all":
            raise DataError(
                f"expected split train or test for the two-split layout of {root} "
                f"(train/ and test/), found 'all'; use --split test or --split train"
            )
        if split == "train":
            folder = train_dir
        else:
            folder = next((root / n for n in ("test", "val") if (root / n).is_dir()), root / "test")
            require_dir(folder, "the test split's test/ (or val/)")
    else:
        classes = _class_dirs(root)
        if split == "test":
            raise DataError(
                f"expected {root / 'test'}/ for split 'test', found a single-folder layout "
                f"(ROOT/<class>/): analyses read every image with --split all (or auto, their "
                f"default); fine-tuning holds out 20% of each class itself (--task-option holdout=...)"
            )
        folder = root
    if not classes:
        raise DataError(f"expected class subfolders in {folder}, found none")
    paths, targets = list_image_folder(folder, classes)
    return ImageFileDataset(
        paths, targets, classes, name="imagefolder", split=split, transform=transform
    )
