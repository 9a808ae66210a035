"""Named optimisation presets: the paper's protocol, the authors' released code, a CPU demo.

A preset fills every optimisation field of a :class:`~spectral_probe.training.FinetuneConfig`
left at ``None``. The values (Section 5.1 of the paper and ``BSS.py`` of the authors'
repository):

=================  ===========================  ===========================  ==================
field              ``paper``                    ``released``                 ``demo``
=================  ===========================  ===========================  ==================
optimizer          SGD                          SGD                          SGD
momentum           0.95 (paper text)            0.9                          0.9
lr (new head)      0.01                         0.01                         0.01
head_lr_ratio      10 (backbone 0.001)          10 (backbone 0.001)          10
batch_size         48                           48                           32
iterations         9000                         9000                         150
schedule           step: x0.1 every 6000        step: x0.1 every 6000        step: x0.1 at 100
image_size/resize  224 / 256                    224 / 256                    64 / 73
augment            random-resized crop + flip   random-resized crop + flip   random crop + flip
test               10 crops, logits summed      10 crops, logits summed      single centre crop
head_init          N(0, 0.01), bias 0           N(0, 0.01), bias 0           N(0, 0.01), bias 0
hyperparameters    regularizer defaults         ``l2.alpha = 5e-4``          regularizer defaults
=================  ===========================  ===========================  ==================

The released code's ``weight_decay=5e-4`` on every parameter *is* its L2 term, hence
``l2.alpha = 5e-4`` there. The paper's text does not state the head initialisation; the
released code's is used in both.

Adding a preset (e.g. BERT's AdamW with warm-up for GLUE): one :func:`register_preset` call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError

__all__ = ["Preset", "register_preset", "get_preset", "list_presets", "PRESET_FIELDS"]


@dataclass(frozen=True)
class Preset:
    """Optimisation and protocol defaults, named.

    Attributes:
        name: the preset's name (``--preset``).
        summary: one line for ``--help`` and the docs.
        optimizer: ``"sgd"`` or ``"adamw"``.
        lr: learning rate of the new head.
        head_lr_ratio: head learning rate / backbone learning rate (the paper's 10x).
        momentum: SGD momentum (AdamW: beta1).
        nesterov: SGD Nesterov momentum.
        weight_decay: optimizer weight decay on top of the method's own terms.
        batch_size: global batch size (split over DDP ranks).
        iterations: optimisation steps.
        epochs: passes over the (sampled) training set instead of ``iterations`` (``None``:
            count iterations). A config that sets either one keeps it.
        schedule: ``"step"``, ``"constant"``, ``"cosine"`` or ``"linear"`` (all after warm-up).
        lr_step: step schedule: multiply by ``lr_gamma`` every ``lr_step`` iterations.
        lr_gamma: the step schedule's factor.
        warmup: linear warm-up: a number of iterations, or a fraction in (0, 1) of the run's
            iterations (BERT's 10 %: ``0.1``).
        image_size: training and test crop side.
        resize: test-time resize side before the crop (training: the paper's square resize).
        augment: ``"paper"`` (random-resized crop and flip) or ``"none"``.
        ten_crop: final test on ten crops (corners, centre and flips) with summed logits.
        head_init: ``"normal"`` (N(0, 0.01), zero bias, as the released code) or ``"default"``.
        eval_batch_size: batch size of evaluation.
        hp: regularizer hyperparameter defaults (qualified keys such as ``"l2.alpha"``).
    """

    name: str
    summary: str
    optimizer: str = "sgd"
    lr: float = 0.01
    head_lr_ratio: float = 10.0
    momentum: float = 0.95
    nesterov: bool = False
    weight_decay: float = 0.0
    batch_size: int = 48
    iterations: int = 9000
    epochs: float | None = None
    schedule: str = "step"
    lr_step: int = 6000
    lr_gamma: float = 0.1
    warmup: int | float = 0
    image_size: int = 224
    resize: int = 256
    augment: str = "paper"
    ten_crop: bool = True
    head_init: str = "normal"
    eval_batch_size: int = 100
    hp: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hp", MappingProxyType(dict(self.hp)))

    def values(self) -> dict[str, Any]:
        """The fields a config takes from this preset (everything but name and summary)."""
        out = {k: getattr(self, k) for k in PRESET_FIELDS}
        out["hp"] = dict(self.hp)
        return out


#: The config fields a preset fills (in declaration order).
PRESET_FIELDS: tuple[str, ...] = tuple(
    f for f in Preset.__dataclass_fields__ if f not in ("name", "summary")
)

_PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset) -> Preset:
    """Make ``preset`` available by name (``--preset NAME``)."""
    if not preset.name or preset.name != preset.name.strip().lower():
        raise ValueError(f"preset names are lower-case, found {preset.name!r}")
    if preset.name in _PRESETS and _PRESETS[preset.name] != preset:
        raise ValueError(f"preset {preset.name!r} is already registered")
    _PRESETS[preset.name] = preset
    return preset


def get_preset(name: str) -> Preset:
    """The preset registered as ``name``."""
    try:
        return _PRESETS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"expected a preset in {sorted(_PRESETS)}, found {name!r}") from None


def list_presets() -> list[Preset]:
    """Every registered preset, by name."""
    return [_PRESETS[k] for k in sorted(_PRESETS)]


register_preset(
    Preset(
        name="paper",
        summary="Section 5.1 of the paper: SGD momentum 0.95, head lr 0.01 (10x the backbone), "
        "batch 48, 9000 iterations, lr x0.1 every 6000, 224 px, 10-crop test",
    )
)
register_preset(
    Preset(
        name="released",
        summary="the authors' released BSS.py: as 'paper' but momentum 0.9 and weight decay "
        "5e-4 (l2.alpha = 5e-4)",
        momentum=0.9,
        hp={"l2.alpha": 5e-4},
    )
)
register_preset(
    Preset(
        name="demo",
        summary="a CPU-sized run: batch 32, 150 iterations (lr x0.1 at 100), 64 px, single-crop "
        "test, momentum 0.9",
        momentum=0.9,
        batch_size=32,
        iterations=150,
        lr_step=100,
        image_size=64,
        resize=73,
        ten_crop=False,
        eval_batch_size=256,
    )
)
