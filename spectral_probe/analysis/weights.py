"""``compare_weights``: layer-by-layer weight spectra and corresponding angles of two models."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch

from ..errors import ConfigError
from ..extract.weights import (
    KINDS,
    SourceMatrix,
    WeightMatrix,
    pair_sources,
    pair_weight_matrices,
)
from ..spectral import (
    MatrixComparison,
    compare_grams,
    compare_grams_with_change,
    pair_grams,
)
from ._layers import ModelLike, Progress, resolve_model, run_per_layer
from ._sources import BLOCKED_ELEMENTS, check_split_groups, close_all, open_pair, uses_sources
from ._weight_tables import (
    ADAPTER_COLUMNS,
    CHANGE_COLUMNS,
    ESD_SUMMARY_COLUMNS,
    INTRUDER_COLUMNS,
    SUMMARY_COLUMNS,
    TOP_COLUMNS,
    WeightComparison,
    _assemble,
    _change_info,
    _compare_pair,
    _device,
    _dtype_name,
    _gram_rtol,
    _precision_only,
)
from .esd import esd_row
from .update import DEFAULT_SUBSPACE_RANK

__all__ = [
    "WeightComparison",
    "compare_weights",
    "SUMMARY_COLUMNS",
    "ADAPTER_COLUMNS",
    "TOP_COLUMNS",
    "ESD_SUMMARY_COLUMNS",
    "CHANGE_COLUMNS",
    "INTRUDER_COLUMNS",
    "DEFAULT_SUBSPACE_RANK",
]


#: r of the top/bottom subspaces of a dense update (an adapter's layer uses its own rank)
def compare_weights(
    model_a: ModelLike,
    model_b: ModelLike,
    *,
    arch_a: str | None = None,
    arch_b: str | None = None,
    include: str | None = None,
    exclude: str | None = None,
    kinds: Sequence[str] = KINDS,
    split_groups: bool = False,
    vectors: Literal["left", "right"] = "left",
    top_k: int = 10,
    threshold: float = 0.5,
    window: float = 0.05,
    method: Literal["gram", "svd"] = "gram",
    device: str | torch.device | None = "auto",
    workers: int | None = None,
    progress: Progress | None = None,
    esd: bool = False,
    skip_nonfinite: bool = False,
    top: int | None = None,
    resume: str | Path | None = None,
    intruder_k: int = 10,
    intruder_epsilon: float = 0.5,
    subspace_rank: int | None = None,
    split_fused: bool = False,
) -> WeightComparison:
    """Compare two models layer by layer: spectra, corresponding angles, summaries.

    Layers are paired by name (see :func:`spectral_probe.extract.pair_weight_matrices`);
    every pair goes through :func:`spectral_probe.spectral.compare_matrices` in float64.
    A layer whose weights hold NaN/Inf is flagged (``status``) and the rest are analysed.

    Weights in files (a transformers directory, ``hf:``, a state-dict file without a sidecar,
    a Lightning ``.ckpt``, a peft adapter as ``model_b``, or any
    :class:`~spectral_probe.sources.TensorSource`) are read as tensors, one pair at a time,
    without building a model (:func:`spectral_probe.extract.pair_sources`); their layers gain
    the columns :data:`ADAPTER_COLUMNS` for an adapter, unmatched tensors are listed in ``skipped`` and the
    sources' notes (tied embeddings, a resized vocabulary) in ``meta["notes"]``. There a
    NaN/Inf raises a :class:`ConfigError` naming the tensor and the count, unless
    ``skip_nonfinite`` (then the layer is flagged, as for modules). With an adapter as
    ``model_b``, B is ``model_a`` + adapter and the spectrum of each update ``s B A`` comes
    from its factors (``update``).

    Args:
        model_a: the reference (pre-trained) model: a spec string, LoadedModel or module.
        model_b: the compared (fine-tuned) model.
        arch_a: architecture spec for ``model_a`` if it is a bare state-dict file (without
            one, the file is read as tensors, layer kinds from their shapes).
        arch_b: likewise for ``model_b``.
        include: regular expression; keep only matching layer names.
        exclude: regular expression; drop matching layer names.
        kinds: layer kinds to compare (``conv``, ``linear``, ``attention``; ``embedding`` for
            the embedding tables of weight files).
        split_groups: compare grouped convolutions group by group.
        vectors: corresponding angles of ``left`` (default) or ``right`` singular vectors.
        top_k: size of the leading subspaces for principal angles.
        threshold: ``first_below`` reports the first index with ``|cos| < threshold``.
        window: relative spectral window: singular values within ``window * sigma_i`` count
            as near-equal for ``cos_window``.
        method: ``gram`` (default, fast) or ``svd`` (LAPACK SVD).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        workers: CPU threads, each analysing one layer with one BLAS thread
            (default: ``torch.get_num_threads()``).
        progress: called as ``progress(done, total, layer)`` after each layer.
        esd: also the heavy-tailed ESD metrics of both models (:mod:`spectral_probe.analysis.esd`)
            from the singular values already computed (no second decomposition): columns
            :data:`ESD_SUMMARY_COLUMNS` in ``layers`` and the full table in ``esd``.
        skip_nonfinite: for tensor sources, flag and skip a NaN/Inf layer instead of raising.
        top: only the leading ``top`` singular triplets of each matrix, by randomized SVD with
            power iterations (:func:`spectral_probe.spectral.randomized_svd`); ``cos``,
            ``sigma_a``/``sigma_b`` and the windows then cover ``top`` indices, and
            ``top_residual`` reports the a-posteriori residual bound. Not with ``esd``.
        resume: for tensor sources, a folder where each finished layer is written atomically;
            a rerun with the same sources and options reads them back (a killed run resumes,
            and its result equals an uninterrupted one).
        intruder_k: B's leading singular vectors examined for intruder dimensions (peft's
            ``top_k``, default 10; capped at min(m, n)); 0 turns intruders and the update's
            structure (:data:`CHANGE_COLUMNS`, ``intruders``) off. Computed from the singular
            vectors or Grams the angles already use (:func:`~spectral_probe.spectral.compare_with_change`),
            not with ``top`` (whose vectors of A are only the leading ones).
        intruder_epsilon: a vector is an intruder when its largest |cos| with every singular
            vector of A is below this (peft's ``threshold_epsilon``, default 0.5).
        subspace_rank: r of A's top-r/bottom-r subspaces for the energy shares (default: the
            adapter's rank for an adapter's layer, else :data:`DEFAULT_SUBSPACE_RANK`).
        split_fused: for tensor sources, split fused q/k/v projections (``c_attn``,
            ``query_key_value``...) into ``NAME:q``, ``:k``, ``:v`` where their layout is known
            (:mod:`spectral_probe.extract.fused`); by default they are analysed whole.

    Example:
        >>> import torchvision
        >>> res = compare_weights(torchvision.models.resnet18(), torchvision.models.resnet18())
        >>> len(res.layers)
        21
    """
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"expected a threshold in (0, 1], found {threshold}")
    if top_k < 1:
        raise ConfigError(f"expected top_k >= 1, found {top_k}")
    if not 0.0 <= window < 1.0:
        raise ConfigError(f"expected a spectral window in [0, 1), found {window}")
    if intruder_k < 0:
        raise ConfigError(f"expected --intruder-k >= 0 (0: off), found {intruder_k}")
    if not 0.0 < intruder_epsilon <= 1.0:
        raise ConfigError(f"expected --intruder-epsilon in (0, 1], found {intruder_epsilon}")
    if subspace_rank is not None and subspace_rank < 1:
        raise ConfigError(f"expected --subspace-rank >= 1, found {subspace_rank}")
    if top is not None and top < 1:
        raise ConfigError(f"expected --top >= 1, found {top}")
    if top is not None and esd:
        raise ConfigError(
            "expected either --top or --esd (the ESD fit needs whole spectra), found both"
        )
    dev = _device(device)
    if uses_sources(model_a, model_b, arch_a, arch_b):
        check_split_groups(split_groups, (model_a, arch_a), (model_b, arch_b))
        src_a, src_b, inferred, opened = open_pair(model_a, model_b, arch_a, arch_b)
        try:
            return _compare_sources(
                src_a,
                src_b,
                inferred,
                include=include,
                exclude=exclude,
                kinds=kinds,
                vectors=vectors,
                top_k=top_k,
                threshold=threshold,
                window=window,
                method=method,
                dev=dev,
                workers=workers,
                progress=progress,
                esd=esd,
                skip_nonfinite=skip_nonfinite,
                top=top,
                resume=resume,
                intruder_k=intruder_k,
                intruder_epsilon=intruder_epsilon,
                subspace_rank=subspace_rank,
                split_fused=split_fused,
            )
        finally:
            close_all(opened)
    ma, spec_a = resolve_model(model_a, arch_a)
    mb, spec_b = resolve_model(model_b, arch_b)
    paired = pair_weight_matrices(
        ma, mb, include=include, exclude=exclude, kinds=kinds, split_groups=split_groups
    )
    started = time.perf_counter()

    def one(
        pair: tuple[WeightMatrix, WeightMatrix],
    ) -> tuple[str, MatrixComparison | None, list[dict[str, Any]]]:
        extras[pair[0].name] = {
            "dtype_a": _dtype_name(pair[0].matrix.dtype),
            "dtype_b": _dtype_name(pair[1].matrix.dtype),
            "precision_only": _precision_only(pair[0].matrix, pair[1].matrix),
        }
        a = pair[0].matrix.to(dev, torch.float64)
        b = pair[1].matrix.to(dev, torch.float64)
        if not bool(torch.isfinite(a.sum())):  # float64 sums of float32 weights cannot overflow
            return "nonfinite-a", None, []
        if not bool(torch.isfinite(b.sum())):
            return "nonfinite-b", None, []
        want = (intruder_k, subspace_rank or DEFAULT_SUBSPACE_RANK) if intruder_k else None
        cmp, residual, change = _compare_pair(a, b, vectors, top_k, window, method, top, want)
        if top:
            extras[pair[0].name]["top_residual"] = residual
        if change is not None:
            extras[pair[0].name].update(
                _change_info(
                    change, (int(a.shape[0]), int(a.shape[1])), intruder_epsilon, _gram_rtol(method)
                )
            )
        fits = []
        if esd:
            m, n = a.shape
            fits = [esd_row(cmp.s_a.square(), m, n), esd_row(cmp.s_b.square(), m, n)]
        return "ok", cmp, fits

    extras: dict[str, dict[str, Any]] = {}
    outcomes = run_per_layer(paired.pairs, one, dev, workers, progress)
    options = {
        "include": include,
        "exclude": exclude,
        "kinds": list(kinds),
        "split_groups": split_groups,
        "vectors": vectors,
        "top_k": top_k,
        "threshold": threshold,
        "window": window,
        "method": method,
        "workers": workers,
        "esd": esd,
    }
    options["top"] = top
    options.update(
        intruder_k=intruder_k, intruder_epsilon=intruder_epsilon, subspace_rank=subspace_rank
    )
    return _assemble(
        [wa for wa, _ in paired.pairs],
        outcomes,
        paired.skipped,
        specs=(spec_a, spec_b),
        inferred=[],
        options=options,
        dev=dev,
        started=started,
        threshold=threshold,
        esd=esd,
        extra=[extras.get(wa.name, {}) for wa, _ in paired.pairs],
    )


def _compare_sources(
    src_a: Any,
    src_b: Any,
    inferred: list[str],
    *,
    include: str | None,
    exclude: str | None,
    kinds: Sequence[str],
    vectors: Literal["left", "right"],
    top_k: int,
    threshold: float,
    window: float,
    method: Literal["gram", "svd"],
    dev: torch.device,
    workers: int | None,
    progress: Progress | None,
    esd: bool,
    skip_nonfinite: bool,
    top: int | None = None,
    resume: str | Path | None = None,
    intruder_k: int = 10,
    intruder_epsilon: float = 0.5,
    subspace_rank: int | None = None,
    split_fused: bool = False,
) -> WeightComparison:
    """:func:`compare_weights` over two tensor sources: one pair of tensors in memory per worker."""
    from ..spectral import factored_svd

    paired = pair_sources(
        src_a, src_b, include=include, exclude=exclude, kinds=kinds, split_fused=split_fused
    )
    factors_of = getattr(src_b, "factors", None)
    started = time.perf_counter()
    options = {
        "include": include,
        "exclude": exclude,
        "kinds": list(kinds),
        "split_groups": False,
        "vectors": vectors,
        "top_k": top_k,
        "threshold": threshold,
        "window": window,
        "method": method,
        "workers": workers,
        "esd": esd,
        "skip_nonfinite": skip_nonfinite,
        "top": top,
        "intruder_k": intruder_k,
        "intruder_epsilon": intruder_epsilon,
        "subspace_rank": subspace_rank,
    }
    if split_fused:  # only when set: the stores of earlier runs stay valid
        options["split_fused"] = True
    cache = None
    if resume is not None:
        from ._resume import LayerCache

        numbers = {k: v for k, v in options.items() if k not in ("workers", "include", "exclude")}
        cache = LayerCache(resume, (src_a.label, src_b.label), numbers | {"device": dev.type})

    def one(pair: tuple[SourceMatrix, SourceMatrix]) -> tuple[Any, ...]:
        if cache is None:
            return compute(pair)
        done = cache.get(pair[0].name)
        if done is None:
            done = compute(pair)
            cache.put(pair[0].name, done)
        return done

    def compute(pair: tuple[SourceMatrix, SourceMatrix]) -> tuple[Any, ...]:
        sa, sb = pair
        a, b = sa.load(src_a), sb.load(src_b)
        info: dict[str, Any] = {
            "dtype_a": _dtype_name(sa.dtype),
            "dtype_b": _dtype_name(sb.dtype),
            "precision_only": _precision_only(a, b),
        }
        for tag, t, sm, src in (("a", a, sa, src_a), ("b", b, sb, src_b)):
            bad = _nonfinite(t)
            if bad and not skip_nonfinite:
                raise ConfigError(
                    f"expected finite weights, found {bad} NaN/Inf value(s) in {sm.tensor} of "
                    f"{src.label}; pass --skip-nonfinite to list and skip such layers"
                )
            if bad:
                return f"nonfinite-{tag}", None, [], info, None
        lora = factors_of(sb.tensor) if factors_of is not None else None
        factors = None
        if lora is not None:
            left, right = lora.left, lora.right  # stored orientation: scale * left @ right
            if sb.transposed:
                left, right = right.T, left.T
            left = sb.select_rows(left)  # a fused projection's part, the shared vocabulary
            factors = (left.to(dev), right.to(dev), lora.scale)
        rank_r = subspace_rank or (lora.rank if lora is not None else DEFAULT_SUBSPACE_RANK)
        want = (intruder_k, rank_r) if intruder_k and top is None else None
        change = None
        blocked = method == "gram" and top is None and a.numel() >= BLOCKED_ELEMENTS
        m, n = a.shape
        residual = None
        if blocked:
            # large matrices: Grams from float64 row blocks, no float64 copy of either matrix;
            # the tensors (and their memory maps) go before the eigendecompositions
            grams = pair_grams(a, b, device=dev)
            del a, b, t
            if want is not None:
                cmp, change = compare_grams_with_change(
                    grams,
                    vectors=vectors,
                    top_k=top_k,
                    window=window,
                    intruder_k=want[0],
                    subspace_rank=want[1],
                    factors=factors,
                )
            else:
                cmp = compare_grams(grams, vectors=vectors, top_k=top_k, window=window)
            del grams
        elif top is not None and top < min(m, n):
            # products from row blocks of the stored tensors: no float64 copy
            cmp, residual, change = _compare_pair(
                a.to(dev), b.to(dev), vectors, top_k, window, method, top, want, factors
            )
            del a, b, t
        else:
            a64, b64 = a.to(dev, torch.float64), b.to(dev, torch.float64)
            del a, b, t
            cmp, residual, change = _compare_pair(
                a64, b64, vectors, top_k, window, method, top, want, factors
            )
            del a64, b64
        update = None
        if lora is not None and factors is not None:
            update = (
                change.update_s
                if change is not None
                else factored_svd(factors[0], factors[1], scale=lora.scale).S
            )
            info.update(
                lora_rank=lora.rank,
                update_sigma1=float(update[0]) if update.numel() else 0.0,
                update_rel_norm=float(update.norm()) / cmp.a_fro if cmp.a_fro else math.nan,
            )
        if change is not None:
            info.update(
                _change_info(
                    change,
                    (m, n),
                    intruder_epsilon,
                    _gram_rtol("gram" if blocked else method) if lora is None else None,
                )
            )
        if residual is not None:
            info["top_residual"] = residual
        fits = []
        if esd:
            fits = [esd_row(cmp.s_a.square(), m, n), esd_row(cmp.s_b.square(), m, n)]
        return "ok", cmp, fits, info, update

    outcomes = run_per_layer(paired.pairs, one, dev, workers, progress)
    notes = list(paired.notes)
    precision = [sa.name for (sa, _), o in zip(paired.pairs, outcomes) if o[3]["precision_only"]]
    if precision:
        notes.append(
            f"{len(precision)} of {len(paired.pairs)} layers differ only in precision (one side "
            "is the other rounded to its lower-precision dtype): not a fine-tuning change"
        )
    flagged = [sa.name for (sa, _), o in zip(paired.pairs, outcomes) if o[0] != "ok"]
    if flagged:
        notes.append(f"{len(flagged)} layer(s) with NaN/Inf weights skipped: {', '.join(flagged)}")
    updates = [
        pd.DataFrame(
            {"layer": sa.name, "index": range(1, o[4].numel() + 1), "sigma": o[4].cpu().numpy()}
        )
        for (sa, _), o in zip(paired.pairs, outcomes)
        if o[4] is not None
    ]
    return _assemble(
        [sa for sa, _ in paired.pairs],
        [o[:3] for o in outcomes],
        paired.skipped,
        specs=(src_a.label, src_b.label),
        inferred=inferred,
        options=options,
        dev=dev,
        started=started,
        threshold=threshold,
        esd=esd,
        extra=[o[3] for o in outcomes],
        notes=notes,
        update=pd.concat(updates, ignore_index=True) if updates else None,
    )


def _nonfinite(t: torch.Tensor, block: int = 1 << 20) -> int:
    """Number of NaN/Inf entries of ``t``, counted over blocks of about ``block`` elements (no
    mask of the whole tensor: for a 32000 x 2048 matrix that would be two 65 MB temporaries)."""
    if not t.is_floating_point():
        return 0
    rows = t.reshape(t.shape[0], -1) if t.ndim > 1 else t.reshape(-1, 1)
    step = max(1, block // max(1, rows.shape[1]))
    return sum(
        int(rows[i : i + step].isfinite().logical_not_().sum())
        for i in range(0, rows.shape[0], step)
    )
