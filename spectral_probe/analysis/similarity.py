r"""``compare_features``: how similar two models' representations are, layer by layer.

Both models see the same samples in the same batches (each with its own preprocessing).
Hooks read the output of every chosen module (pooled to one vector per sample, as in
:func:`~spectral_probe.analysis.feature_spectrum`), and every (layer of A, layer of B) pair
gets a value per metric:

* linear CKA, plain and debiased, over **every** sample, streamed with
  :class:`~spectral_probe.similarity.StreamingCKA` (memory flat in :math:`N`);
* RBF CKA, SVCCA, PWCCA and the Procrustes distance on the **first** ``sample`` samples of
  the seeded batch order (default 2048): they need the rows themselves (RBF CKA an
  :math:`N \times N` kernel per layer).

The *matched* pairs (same module name, or the i-th layer of each list) are the diagonal: the
representation-space twin of the per-layer angles of ``compare-weights``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from ..errors import ConfigError, DataError
from ..extract.feature_loader import make_feature_loader
from ..extract.features import PENULTIMATE, FeatureExtractor, Pool, resolve_device
from ..models import LoadedModel, load_model
from ..similarity import METRICS, StreamingCKA, get_metric, pairwise
from ._results import TidyResult, records, write_result_json, write_tables_csv

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FeatureSimilarity",
    "compare_features",
    "select_layers",
    "default_layers",
    "DEFAULT_SAMPLE",
]

#: Rows kept for the metrics that are not streamed (RBF CKA, SVCCA, PWCCA, Procrustes).
DEFAULT_SAMPLE = 2048
Progress = Callable[[int, int, str], None]
ModelLike = str | LoadedModel | nn.Module


@dataclass(frozen=True)
class FeatureSimilarity(TidyResult):
    """Result of :func:`compare_features`.

    Attributes:
        pairs: tidy, one row per (metric, layer of A, layer of B): ``metric``, ``layer_a``,
            ``layer_b``, ``depth_a``, ``depth_b`` (0-based positions), ``value``, ``n``
            (samples it was computed on), ``matched``.
        matched: the diagonal, one row per matched pair: ``depth``, ``layer_a``,
            ``layer_b``, ``d_a``, ``d_b`` and one column per metric.
        layers: one row per (model, layer): ``model`` (``a``/``b``), ``label``, ``layer``,
            ``depth``, ``site``, ``d``.
        meta: data, sampling, timings and the options used.
    """

    pairs: pd.DataFrame
    matched: pd.DataFrame
    layers: pd.DataFrame
    meta: dict[str, Any]

    main_table: ClassVar[str] = "matched"

    def tables(self) -> dict[str, pd.DataFrame]:
        """``matched``, ``pairs`` and ``layers``."""
        return {"matched": self.matched, "pairs": self.pairs, "layers": self.layers}

    @property
    def metrics(self) -> list[str]:
        """The metrics computed, in the order asked."""
        return list(dict.fromkeys(self.pairs["metric"]))

    def matrix(self, metric: str) -> pd.DataFrame:
        """The layer x layer values of ``metric`` (rows: A's layers, columns: B's)."""
        if metric not in self.metrics:
            raise ConfigError(f"expected a metric in {self.metrics}, found {metric!r}")
        df = self.pairs[self.pairs["metric"] == metric]
        table = df.pivot(index="layer_a", columns="layer_b", values="value")
        order_a = list(dict.fromkeys(df.sort_values("depth_a")["layer_a"]))
        order_b = list(dict.fromkeys(df.sort_values("depth_b")["layer_b"]))
        return table.loc[order_a, order_b]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready content."""
        return {
            "meta": self.meta,
            "matched": records(self.matched),
            "pairs": records(self.pairs),
            "layers": records(self.layers),
        }

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as strict JSON, atomically."""
        return write_result_json(path, self.to_dict())

    def to_csv(self, directory: str | Path) -> list[Path]:
        """Write ``matched.csv``, ``pairs.csv`` and ``layers.csv`` into ``directory``."""
        return write_tables_csv(directory, self.tables())


def default_layers(model: nn.Module) -> list[str]:
    """The stage outputs of a network, then ``penultimate``.

    A stage is a module whose name ends in a number under a parent whose name does not:
    ``blocks.0`` ... ``blocks.6`` of EfficientNet-Lite, ``layer1.0`` ... of a ResNet,
    ``encoder.layer.0`` ... of BERT.
    """
    names = [n for n, _ in model.named_modules() if n]
    out = []
    for name in names:
        parts = name.split(".")
        if len(parts) >= 2 and parts[-1].isdigit() and not parts[-2].isdigit():
            out.append(name)
    return [*out, PENULTIMATE]


def select_layers(model: nn.Module, regex: str | None, *, what: str = "the model") -> list[str]:
    """Module names (and ``penultimate``) matching ``regex`` (``re.search``), in module order.

    ``None`` gives :func:`default_layers`.

    Raises:
        ConfigError: an invalid regex, or one that matches nothing.
    """
    if regex is None:
        return default_layers(model)
    try:
        pattern = re.compile(regex)
    except re.error as err:
        raise ConfigError(
            f"expected a regular expression for --layers, found {regex!r} ({err})"
        ) from None
    names = [n for n, _ in model.named_modules() if n] + [PENULTIMATE]
    chosen = [n for n in names if pattern.search(n)]
    if not chosen:
        raise ConfigError(
            f"expected --layers {regex!r} to match modules of {what}, found none "
            "(list them with `spectral-probe layers MODEL --modules`)"
        )
    return chosen


def _module(model: LoadedModel | nn.Module) -> nn.Module:
    return model.model if isinstance(model, LoadedModel) else model


def _matched(layers_a: list[str], layers_b: list[str]) -> list[tuple[int, int]]:
    """Matched pairs: by name when B's layers are A's names; else by position (equal counts),
    else the names both lists share."""
    if layers_a == layers_b or len(layers_a) != len(layers_b):
        index_b = {n: j for j, n in enumerate(layers_b)}
        return [(i, index_b[n]) for i, n in enumerate(layers_a) if n in index_b]
    return [(i, i) for i in range(len(layers_a))]


def _check_metrics(metrics: Sequence[str]) -> list[str]:
    names = list(dict.fromkeys(metrics))
    if not names:
        raise ConfigError(f"expected at least one metric in {list(METRICS)}, found none")
    for name in names:
        get_metric(name)
    return names


def compare_features(
    model_a: ModelLike,
    model_b: ModelLike,
    data: Any,
    *,
    split: str = "test",
    layers: str | None = None,
    layers_b: str | None = None,
    metrics: Sequence[str] = ("cka", "debiased-cka"),
    batch_size: int = 64,
    max_batches: int | None = None,
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
    image_size: int | None = None,
    interpolation: str | None = None,
    pool: Pool = "auto",
    rbf_sigma: float = 0.8,
    svcca_keep: float = 0.99,
    labels: tuple[str, str] | None = None,
    arch_a: str | None = None,
    arch_b: str | None = None,
    device: str | torch.device | None = "auto",
    amp: bool | None = None,
    num_workers: int = 0,
    max_length: int = 128,
    progress: Progress | None = None,
) -> FeatureSimilarity:
    """Similarity of two models' representations for every pair of chosen layers.

    Args:
        model_a: the reference (pre-trained) model: spec, checkpoint path, LoadedModel or module.
        model_b: the compared (fine-tuned) model.
        data: a data spec (``fashion-mnist``, ``digits``...) or a dataset.
        split: the split of a data spec.
        layers: regex over A's module names (``re.search``; ``penultimate`` counts as a name);
            default: the stage outputs and the penultimate features (:func:`default_layers`).
        layers_b: regex for B; default: A's layer names.
        metrics: names from :data:`~spectral_probe.similarity.METRICS`.
        batch_size: samples per forward pass.
        max_batches: stop after this many batches.
        sample: rows kept for the non-streamed metrics (the first ones in the seeded order).
        seed: seed of the batch order.
        image_size: input side for both models (default: each model's own).
        interpolation: resizing filter for both (default: each model's own).
        pool: how maps and token sequences become vectors.
        rbf_sigma: bandwidth of ``rbf-cka`` relative to the median distance.
        svcca_keep: variance share (or count) ``svcca`` keeps.
        labels: names of the two models in the results (default: their specs).
        arch_a: architecture spec of a state-dict file without a sidecar for model A.
        arch_b: the same for model B.
        device: ``auto``, ``cpu`` or ``cuda``.
        amp: autocast the forward (default: on CUDA only).
        num_workers: loader processes for image files.
        max_length: text: token sequences are truncated to this length.
        progress: called as ``progress(done, total, item)`` after each batch.

    Raises:
        ConfigError: unknown metric, bad regex or layer, batch size below 2.
        DataError: bad data spec, or fewer samples than one batch.
        DegenerateFeaturesError: a layer whose features are constant over the samples.
    """
    import pandas as pd

    from ._spectra import NonFiniteFeaturesError
    from .features import _dataset, _input_size

    names = _check_metrics(metrics)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise ConfigError(f"expected a batch size of at least 2, found {batch_size!r}")
    if max_batches is not None and max_batches < 1:
        raise ConfigError(f"expected max_batches >= 1, found {max_batches}")
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 4:
        raise ConfigError(
            f"expected a sample of at least 4 rows for the non-streamed metrics, found {sample!r}"
        )
    dev = resolve_device(device)
    a = load_model(model_a, arch=arch_a) if isinstance(model_a, str) else model_a
    b = load_model(model_b, arch=arch_b) if isinstance(model_b, str) else model_b
    label_a, label_b = labels or (
        model_a if isinstance(model_a, str) else getattr(model_a, "spec", "A"),
        model_b if isinstance(model_b, str) else getattr(model_b, "spec", "B"),
    )
    dataset = _dataset(data, split, None, seed)
    started = time.perf_counter()
    names_a = select_layers(_module(a), layers, what=str(label_a))
    names_b = (
        names_a if layers_b is None else select_layers(_module(b), layers_b, what=str(label_b))
    )
    with (
        FeatureExtractor(a, names_a, pool=pool, device=dev, amp=amp) as fx_a,
        FeatureExtractor(b, names_b, pool=pool, device=dev, amp=amp) as fx_b,
    ):
        loaders = [
            make_feature_loader(
                fx.loaded,
                dataset,
                batch_size,
                device=dev,
                image_size=image_size,
                interpolation=interpolation,
                seed=seed,
                max_batches=max_batches,
                num_workers=num_workers,
                max_length=max_length,
                channels_last=fx.channels_last,
            )
            for fx in (fx_a, fx_b)
        ]
        total = len(loaders[0])
        if total == 0:
            raise DataError(
                f"expected at least one full batch of {batch_size} samples, found {len(dataset)} in "
                f"{getattr(dataset, 'name', 'the data')}/{getattr(dataset, 'split', split)}"
            )
        acc = StreamingCKA(names_a, names_b)
        keep_rows = any(not METRICS[n].streaming for n in names)
        kept: tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]] = (
            [[] for _ in names_a],
            [[] for _ in names_b],
        )
        n_kept = 0
        for done, ((inp_a, _), (inp_b, _)) in enumerate(zip(*loaders), start=1):
            fa, fb = fx_a(inp_a), fx_b(inp_b)
            xs, ys = [fa[n] for n in names_a], [fb[n] for n in names_b]
            for side, mats in (("A", xs), ("B", ys)):
                bad = [
                    n
                    for n, m in zip(names_a if side == "A" else names_b, mats)
                    if not bool(torch.isfinite(m).all())
                ]
                if bad:
                    raise NonFiniteFeaturesError(
                        f"expected finite features, found NaN or Inf in model {side} at {bad[0]!r}, batch {done}"
                    )
            acc.update(xs, ys)
            if keep_rows and n_kept < sample:
                take = min(sample - n_kept, batch_size)
                for store, mats in zip(kept, (xs, ys)):
                    for chunks, m in zip(store, mats):
                        chunks.append(m[:take].cpu())
                n_kept += take
            if progress is not None:
                progress(done, total, f"{done * batch_size} samples")
        sites = {
            "a": {s.name: s.description for s in fx_a.sites},
            "b": {s.name: s.description for s in fx_b.sites},
        }
        sizes = (_input_size(fx_a.loaded, image_size), _input_size(fx_b.loaded, image_size))
        widths = acc.widths or ([], [])
    n = acc.n
    values: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    for name in names:
        if METRICS[name].streaming:
            values[name] = acc.cka(debiased=name == "debiased-cka")
            counts[name] = n
        else:
            opts = {"rbf-cka": {"sigma": rbf_sigma}, "svcca": {"keep": svcca_keep}}.get(name, {})
            xs_s = [torch.cat(c) for c in kept[0]]
            ys_s = [torch.cat(c) for c in kept[1]]
            values[name] = pairwise(name, xs_s, ys_s, names_x=names_a, names_y=names_b, **opts)
            counts[name] = n_kept
    matched = _matched(names_a, names_b)
    matched_set = set(matched)
    pair_rows = [
        {
            "metric": name,
            "layer_a": la,
            "layer_b": lb,
            "depth_a": i,
            "depth_b": j,
            "value": float(values[name][i, j]),
            "n": counts[name],
            "matched": (i, j) in matched_set,
        }
        for name in names
        for i, la in enumerate(names_a)
        for j, lb in enumerate(names_b)
    ]
    diag_rows = []
    for depth, (i, j) in enumerate(matched):
        row: dict[str, Any] = {
            "depth": depth,
            "layer_a": names_a[i],
            "layer_b": names_b[j],
            "d_a": widths[0][i],
            "d_b": widths[1][j],
        }
        row.update({name: float(values[name][i, j]) for name in names})
        diag_rows.append(row)
    layer_rows = [
        {
            "model": key,
            "label": str(lab),
            "layer": layer,
            "depth": k,
            "site": sites[key][layer],
            "d": d,
        }
        for key, lab, lst, ws in (
            ("a", label_a, names_a, widths[0]),
            ("b", label_b, names_b, widths[1]),
        )
        for k, (layer, d) in enumerate(zip(lst, ws))
    ]
    from .. import __version__

    meta = {
        "model_a": str(label_a),
        "model_b": str(label_b),
        "data": str(data) if isinstance(data, str) else getattr(data, "name", type(data).__name__),
        "split": getattr(dataset, "split", split),
        "n_samples": n,
        "sample": n_kept if keep_rows else None,
        "sample_cap": sample,
        "batch_size": batch_size,
        "max_batches": max_batches,
        "seed": seed,
        "metrics": names,
        "layers": layers,
        "layers_b": layers_b,
        "pool": pool,
        "rbf_sigma": rbf_sigma,
        "svcca_keep": svcca_keep,
        "image_size": {"a": sizes[0], "b": sizes[1]},
        "interpolation": interpolation,
        "device": str(dev),
        "seconds": time.perf_counter() - started,
        "versions": {"spectral_probe": __version__, "torch": str(torch.__version__)},
    }
    matched_cols = ["depth", "layer_a", "layer_b", "d_a", "d_b", *names]
    return FeatureSimilarity(
        pairs=pd.DataFrame(
            pair_rows,
            columns=["metric", "layer_a", "layer_b", "depth_a", "depth_b", "value", "n", "matched"],
        ),
        matched=pd.DataFrame(diag_rows, columns=matched_cols),
        layers=pd.DataFrame(layer_rows, columns=["model", "label", "layer", "depth", "site", "d"]),
        meta=meta,
    )
