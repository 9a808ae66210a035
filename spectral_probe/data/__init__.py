"""Datasets named by one spec string, per-class sampling rates, and transforms.

Example:
    >>> from spectral_probe.data import load_dataset, make_splits
    >>> train = load_dataset("digits", "train")
    >>> splits = make_splits(train.targets, rate="15%", val=0.1, seed=0)
    >>> subset = train.subset(splits.train)
    >>> len(train.classes), subset.kind
    (10, 'image')

Adding a dataset: one module with a loader decorated by :func:`register_dataset`, plus
its import line below.
"""

from __future__ import annotations

# Built-in datasets: each import registers one layout (one line per dataset).
from . import cub200 as _cub200  # noqa: F401
from . import digits as _digits  # noqa: F401
from . import fashion_mnist as _fashion_mnist  # noqa: F401
from . import fgvc_aircraft as _fgvc_aircraft  # noqa: F401
from . import glue as _glue  # noqa: F401
from . import imagefolder as _imagefolder  # noqa: F401
from . import mit_indoor67 as _mit_indoor67  # noqa: F401
from . import mnist as _mnist  # noqa: F401
from . import oxford_pets as _oxford_pets  # noqa: F401
from . import stanford_cars as _stanford_cars  # noqa: F401
from . import stanford_dogs as _stanford_dogs  # noqa: F401
from ._base import (
    ImageFileDataset,
    LabeledDataset,
    LabeledSubset,
    TensorImageDataset,
    TextDataset,
)
from .idx import read_idx
from .loader import make_loader
from .sampling import (
    SamplingRate,
    Splits,
    check_min_per_class,
    make_splits,
    parse_rate,
    per_class_counts,
    sample_per_class,
    split_train_val,
)
from .spec import (
    DatasetInfo,
    DataSpec,
    get_dataset_info,
    list_datasets,
    load_dataset,
    parse_data_spec,
    register_dataset,
)
from .transforms import (
    HALF_MEAN,
    HALF_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    INTERPOLATIONS,
    TensorImageTransform,
    check_interpolation,
    image_transform,
    paper_test_transform,
    paper_train_transform,
    resize_for,
)

__all__ = [
    # spec and registry
    "DataSpec",
    "DatasetInfo",
    "load_dataset",
    "parse_data_spec",
    "register_dataset",
    "list_datasets",
    "get_dataset_info",
    # datasets
    "LabeledDataset",
    "ImageFileDataset",
    "TensorImageDataset",
    "TextDataset",
    "LabeledSubset",
    "read_idx",
    # sampling
    "SamplingRate",
    "Splits",
    "parse_rate",
    "per_class_counts",
    "sample_per_class",
    "split_train_val",
    "make_splits",
    "check_min_per_class",
    # transforms and loading
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "HALF_MEAN",
    "HALF_STD",
    "paper_train_transform",
    "paper_test_transform",
    "TensorImageTransform",
    "INTERPOLATIONS",
    "check_interpolation",
    "image_transform",
    "resize_for",
    "make_loader",
]
