"""``esd_layers``: heavy-tailed ESD metrics (WeightWatcher's alpha and friends) of one model, layer by layer.

Layer selection follows the rest of the toolkit, not WeightWatcher: the matrices of
:func:`spectral_probe.extract.iter_weight_matrices` (conv, linear and attention kinds, fused
q/k/v projections split, ``--include``/``--exclude``), no embeddings, no size cap (WeightWatcher
0.7.x analyses every Linear, Conv1d, Conv2d and Embedding whose smaller side is 8 to 15,000 and
larger side at most 50,000, and skips the rest). Layers too small to fit keep their row with
``alpha`` missing and a reason. The maths and the remaining differences are in
:mod:`spectral_probe.spectral.esd`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from .._results import TidyResult, records, write_result_json, write_tables_csv
from ..errors import ConfigError
from ..extract.weights import INFERRED_NOTE, KINDS, WeightMatrix, iter_weight_matrices
from ..spectral import blocked_singular_values
from ..spectral.esd import MIN_EIGENVALUES, conv_slice_eigenvalues, eigenvalues, esd_metrics
from ._layers import resolve_model, run_per_layer

if TYPE_CHECKING:
    import pandas as pd

    from ..models import LoadedModel

__all__ = ["ESD_COLUMNS", "LayerESD", "esd_layers", "esd_row", "esd_summary", "layer_eigenvalues"]

ConvMode = Literal["unfolded", "slices"]
Progress = Callable[[int, int, str], None]

ESD_COLUMNS = {
    "n_evals": "number of eigenvalues lambda = sigma^2",
    "lambda_max": "largest eigenvalue",
    "alpha": "power-law exponent of the ESD tail (NaN: see alpha_reason)",
    "alpha_reason": "why alpha is missing (empty when fitted)",
    "xmin": "start of the fitted tail (chosen by the KS distance)",
    "D": "Kolmogorov-Smirnov distance of the tail to the fitted power law",
    "n_tail": "eigenvalues >= xmin",
    "alpha_sigma": "standard error (alpha - 1) / sqrt(n_tail)",
    "log_spectral_norm": "log10 lambda_max (= 2 log10 ||W||_2)",
    "log_norm": "log10 sum lambda (= 2 log10 ||W||_F)",
    "stable_rank": "sum lambda / lambda_max",
    "alpha_hat": "alpha * log10 lambda_max (WeightWatcher's alpha_weighted)",
    "mp_softrank": "Marchenko-Pastur bulk edge / lambda_max",
    "bulk_max": "fitted Marchenko-Pastur bulk edge lambda_+",
    "mp_sigma": "fitted Marchenko-Pastur scale (unit-mean eigenvalues)",
    "num_spikes": "eigenvalues beyond the bulk edge (Tracy-Widom allowance)",
    "warning": "over-trained (alpha < 2), under-trained (alpha > 6) or empty",
}
_LAYER_COLUMNS = ["layer", "kind", "type", "rows", "cols", "conv"]


def esd_row(evals: Any, rows: int, cols: int, *, mp: bool = True) -> dict[str, Any]:
    """:func:`spectral_probe.spectral.esd_metrics` with every :data:`ESD_COLUMNS` key present."""
    row = esd_metrics(evals, rows, cols, mp=mp)
    return {k: row.get(k, math.nan) for k in ESD_COLUMNS}


def esd_summary(frame: pd.DataFrame) -> dict[str, Any]:
    """Model-level summary: mean alpha and alpha_hat over the fitted layers, counts of warnings."""
    fitted = frame[frame["alpha"].notna()] if len(frame) else frame
    return {
        "layers": len(frame),
        "fitted": len(fitted),
        "mean_alpha": float(fitted["alpha"].mean()) if len(fitted) else math.nan,
        "mean_alpha_hat": float(fitted["alpha_hat"].mean()) if len(fitted) else math.nan,
        "over_trained": int((frame["warning"] == "over-trained").sum()) if len(frame) else 0,
        "under_trained": int((frame["warning"] == "under-trained").sum()) if len(frame) else 0,
    }


@dataclass(frozen=True)
class LayerESD(TidyResult):
    """Result of :func:`esd_layers`.

    Attributes:
        layers: one row per weight matrix: ``layer, kind, type, rows, cols, conv`` and
            :data:`ESD_COLUMNS`.
        eigenvalues: tidy ``(layer, index, eigenvalue)``, ascending within a layer.
        meta: model spec, options, summary (:func:`esd_summary`), timing and versions (for a
            state dict that names no architecture: ``inferred_arch``).
    """

    layers: pd.DataFrame
    eigenvalues: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    main_table: ClassVar[str] = "esd"

    def tables(self) -> dict[str, pd.DataFrame]:
        """``esd`` (one row per layer) and ``eigenvalues`` (tidy)."""
        return {"esd": self.layers, "eigenvalues": self.eigenvalues}

    def summary(self) -> dict[str, Any]:
        """:func:`esd_summary` of :attr:`layers`."""
        return esd_summary(self.layers)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: meta and one record per layer (eigenvalues left to the CSV)."""
        return {"meta": self.meta, "summary": self.summary(), "layers": records(self.layers)}

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (atomically)."""
        return write_result_json(path, self.to_dict())

    def to_csv(self, directory: str | Path) -> list[Path]:
        """Write ``esd.csv`` and ``eigenvalues.csv``."""
        return write_tables_csv(directory, self.tables())


def layer_eigenvalues(
    wm: WeightMatrix, module: nn.Module | None, conv: ConvMode
) -> tuple[np.ndarray, str]:
    """The ESD of one weight matrix and how it was taken: ``unfolded`` or ``slices`` (``""`` if not a conv)."""
    if conv == "slices" and wm.kind == "conv" and module is not None and ":g" not in wm.name:
        weight = torch.as_tensor(module.weight).detach()
        transposed = isinstance(
            module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
        )
        if weight.ndim >= 3 and not transposed and getattr(module, "groups", 1) == 1:
            return conv_slice_eigenvalues(weight).numpy(), "slices"
    return eigenvalues(wm.matrix.to(torch.float64)).numpy(), "unfolded" if wm.kind == "conv" else ""


def esd_layers(
    model: nn.Module | LoadedModel | str | Any,
    *,
    arch: str | None = None,
    include: str | None = None,
    exclude: str | None = None,
    kinds: Sequence[str] = KINDS,
    split_groups: bool = False,
    conv: ConvMode = "unfolded",
    mp: bool = True,
    workers: int | None = None,
    progress: Progress | None = None,
) -> LayerESD:
    """Heavy-tailed ESD metrics of every weight matrix of a model.

    Each matrix (unfolded conv, linear, attention projection; see
    :func:`spectral_probe.extract.iter_weight_matrices`) gives its eigenvalues
    :math:`\\lambda = \\sigma^2` and :func:`spectral_probe.spectral.esd_metrics`. Layers with fewer
    than :data:`~spectral_probe.spectral.esd.MIN_EIGENVALUES` eigenvalues keep a row with
    ``alpha`` NaN and the reason in ``alpha_reason``.

    Weight files (a transformers directory, ``hf:``, a state-dict file without a sidecar, a
    :class:`~spectral_probe.sources.TensorSource`) are read one tensor at a time, without
    building the model (:func:`spectral_probe.extract.iter_source_matrices`; embeddings
    included with ``kinds``' ``embedding``).

    Args:
        model: a spec string, LoadedModel, module or tensor source.
        arch: architecture spec for a bare state-dict file (without one, the file is read as
            tensors, layer kinds from their shapes).
        include: regular expression; keep only matching layer names.
        exclude: regular expression; drop matching layer names.
        kinds: layer kinds (``conv``, ``linear``, ``attention``).
        split_groups: one matrix per group of grouped convolutions.
        conv: ``unfolded`` (default: the ``(c_out, c_in k_h k_w)`` matrix) or ``slices``
            (WeightWatcher: pooled per-kernel-position slices scaled by 1/2; ungrouped,
            non-transposed convolutions only, the rest stay unfolded).
        mp: also fit the Marchenko-Pastur bulk (``mp_softrank``...).
        workers: CPU threads, one layer each (default ``torch.get_num_threads()``).
        progress: called as ``progress(done, total, layer)``.
    """
    import pandas as pd

    if conv not in ("unfolded", "slices"):
        raise ConfigError(f"expected --esd-conv unfolded or slices, found {conv!r}")
    from ._sources import BLOCKED_ELEMENTS, check_split_groups, is_plain_file, uses_sources

    opened = None
    if uses_sources(model, model, arch, arch):  # weight files: read tensor by tensor
        check_split_groups(split_groups, (model, arch))
        from ..extract.weights import iter_source_matrices
        from ..sources import TensorSource, open_source

        source = model if isinstance(model, TensorSource) else open_source(str(model))
        opened = None if source is model else source
        spec, inferred = source.label, is_plain_file(model, arch)
        mats: list[Any] = list(
            iter_source_matrices(source, include=include, exclude=exclude, kinds=kinds)
        )
        modules: dict[str, nn.Module] = {}
    else:
        module, spec = resolve_model(model, arch)
        inferred = False
        mats = list(
            iter_weight_matrices(
                module, include=include, exclude=exclude, kinds=kinds, split_groups=split_groups
            )
        )
        modules = dict(module.named_modules())
    started = time.perf_counter()

    def matrix(item: Any) -> WeightMatrix:
        if isinstance(item, WeightMatrix):
            return item
        m = item.load(source)
        return WeightMatrix(item.name, item.name, item.kind, item.module_type, item.shape, m)

    def one(pair: tuple[Any, Any]) -> tuple[np.ndarray, str, dict[str, Any]]:
        wm = matrix(pair[0])
        large = wm is not pair[0] and wm.matrix.numel() >= BLOCKED_ELEMENTS
        finite = (
            bool(torch.isfinite(wm.matrix).all())
            if large
            else bool(torch.isfinite(wm.matrix.double().sum()))
        )
        if not finite:
            nonfinite = dict.fromkeys(ESD_COLUMNS, math.nan) | {
                "alpha_reason": "NaN/Inf weights",
                "warning": "",
            }
            return np.empty(0), "", nonfinite
        if large:  # a big matrix of a weight file: its Gram from float64 blocks, no whole copy
            lam = blocked_singular_values(wm.matrix).square().flip(0).numpy()
            how = "unfolded" if wm.kind == "conv" else ""
        else:
            lam, how = layer_eigenvalues(wm, modules.get(wm.module), conv)
        m, n = wm.matrix.shape
        return lam, how, esd_row(lam, m, n, mp=mp)

    try:
        outcomes = run_per_layer(
            [(wm, wm) for wm in mats], one, torch.device("cpu"), workers, progress
        )
    finally:
        if opened is not None:
            opened.close()
    rows, frames = [], []
    for wm, (lam, how, metrics) in zip(mats, outcomes):
        m, n = wm.matrix_shape if not isinstance(wm, WeightMatrix) else wm.matrix.shape
        base = {
            "layer": wm.name,
            "kind": wm.kind,
            "type": wm.module_type,
            "rows": m,
            "cols": n,
            "conv": how,
        }
        rows.append(base | metrics)
        frames.append(
            pd.DataFrame({"layer": wm.name, "index": np.arange(1, lam.size + 1), "eigenvalue": lam})
        )
    layers = pd.DataFrame(rows, columns=_LAYER_COLUMNS + list(ESD_COLUMNS))
    evals = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["layer", "index", "eigenvalue"])
    )
    from .. import __version__

    meta = {
        "model": spec,
        "options": {
            "include": include,
            "exclude": exclude,
            "kinds": list(kinds),
            "split_groups": split_groups,
            "conv": conv,
            "mp": mp,
            "min_eigenvalues": MIN_EIGENVALUES,
        },
        "seconds": time.perf_counter() - started,
        "versions": {"spectral_probe": __version__, "torch": str(torch.__version__)},
    }
    if inferred:
        meta["inferred_arch"] = {"models": ["model"], "note": INFERRED_NOTE}
    result = LayerESD(layers, evals, meta)
    meta["summary"] = result.summary()
    return result
