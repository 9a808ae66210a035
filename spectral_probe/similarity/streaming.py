r"""Linear CKA, plain and debiased, accumulated batch by batch for every pair of layers.

:class:`StreamingCKA` takes, per batch, the feature matrices of ``k`` layers of one model
(:math:`X_1 \dots X_k`, widths :math:`p_i`) and of ``m`` layers of the other (:math:`Y_1 \dots
Y_m`, widths :math:`q_j`), on the same samples, and gives the ``k x m`` matrix of linear CKA
over all the samples seen: exactly the value :func:`~spectral_probe.similarity.linear_cka`
gives on the concatenated matrices, not an average over batches.

Two forms, chosen by ``form``:

* **features** (memory flat in :math:`N`): per layer :math:`X^\top X`, :math:`s = X^\top\mathbf
  1`, :math:`X^\top k`, :math:`\sum_i k_i^2`, and per pair :math:`X^\top Y`, :math:`X^\top l`,
  :math:`Y^\top k`, :math:`\sum_i k_i l_i` (:math:`k_i = \|x_i\|^2`), in float64, about the
  first batch's mean (the formulas are in :mod:`spectral_probe.similarity._hsic`). That is
  :math:`8\,(\sum_i p_i^2 + \sum_j q_j^2 + \sum_{ij} p_i q_j)` bytes plus vectors, whatever
  :math:`N`: 60,000 images or 6 million cost the same. Each batch costs
  :math:`O(b\,(\sum p + \sum q)^2)`.
* **gram**: the rows themselves are kept and CKA is computed at the end from the ``N x N``
  Gram matrices; cheaper while :math:`N` is below the widths.

``form="auto"`` (the default) keeps rows while :math:`N \le \max(p_i, q_j)` and moves to the
feature form for good once :math:`N` passes the largest width, so memory never exceeds what
the feature form needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from ..errors import ConfigError
from ._checks import DegenerateFeaturesError, check_spread
from ._hsic import cka_ratio, hsic_gram, hsic_moments

__all__ = ["StreamingCKA"]

Form = Literal["auto", "features", "gram"]


class _Side:
    """Moments of one layer: shift, sums, second moments, kernel-diagonal sums."""

    def __init__(self, first: Tensor) -> None:
        p = first.shape[1]
        z = first.new_zeros
        self.shift = first.mean(0)
        self.scale = 0.0  # sum of squared norms of the unshifted rows
        self.s = z(p)
        self.gram = z(p, p)
        self.t = 0.0  # sum_i k_i
        self.w = z(p)  # X^T k
        self.e = 0.0  # sum_i k_i^2

    def hsic(self, n: int, debiased: bool) -> float:
        return hsic_moments(
            self.gram, self.s, self.s, self.t, self.t, self.w, self.w, self.e, n, debiased=debiased
        )

    def spread(self, n: int) -> float:
        """:math:`\\|X - \\bar X\\|_F^2`."""
        return self.t - float(self.s @ self.s) / n


class StreamingCKA:
    """Linear CKA of every (X layer, Y layer) pair over batches, memory flat in N.

    Args:
        names_x: names of the X layers (for error messages); default ``X[0]``, ...
        names_y: names of the Y layers.
        form: ``"auto"``, ``"features"`` or ``"gram"`` (see the module docstring).

    Examples:
        >>> x = torch.randn(100, 5, generator=torch.Generator().manual_seed(0))
        >>> acc = StreamingCKA()
        >>> for rows in x.split(25):  # Y: X flipped and scaled, a rotation and a scaling
        ...     acc.update([rows, rows[:, :2]], [-3 * rows.flip(1)])
        >>> [round(v, 6) for v in acc.cka()[:, 0].tolist()]
        [1.0, 0.568904]
    """

    def __init__(
        self,
        names_x: Sequence[str] | None = None,
        names_y: Sequence[str] | None = None,
        *,
        form: Form = "auto",
    ) -> None:
        if form not in ("auto", "features", "gram"):
            raise ConfigError(f"expected form 'auto', 'features' or 'gram', found {form!r}")
        self.form = form
        self.names_x = list(names_x) if names_x is not None else None
        self.names_y = list(names_y) if names_y is not None else None
        self.n = 0
        self.widths: tuple[list[int], list[int]] | None = None
        self._buffer: tuple[list[list[Tensor]], list[list[Tensor]]] | None = None
        self._xs: list[_Side] = []
        self._ys: list[_Side] = []
        self._pairs: dict[tuple[int, int], list[Tensor]] = {}  # C, u, v
        self._g: Tensor | None = None  # (k, m): sum_i k_i l_i per pair

    @property
    def buffering(self) -> bool:
        """Whether rows are still kept (the Gram form)."""
        return self._buffer is not None

    def _names(self, side: str, count: int) -> list[str]:
        given = self.names_x if side == "X" else self.names_y
        if given is not None and len(given) == count:
            return given
        return [f"{side}[{i}]" for i in range(count)]

    def update(self, xs: Sequence[Tensor], ys: Sequence[Tensor]) -> None:
        """Add one batch: ``xs[i]`` is ``(b, p_i)``, ``ys[j]`` is ``(b, q_j)``, same ``b`` rows."""
        xs = [self._matrix(x, "X", i) for i, x in enumerate(xs)]
        ys = [self._matrix(y, "Y", j) for j, y in enumerate(ys)]
        if not xs or not ys:
            raise ConfigError("expected at least one X layer and one Y layer, found none")
        rows = {int(t.shape[0]) for t in (*xs, *ys)}
        if len(rows) != 1:
            raise ConfigError(
                f"expected every matrix of a batch to have the same rows, found {sorted(rows)}"
            )
        widths = ([int(x.shape[1]) for x in xs], [int(y.shape[1]) for y in ys])
        if self.widths is None:
            self.widths = widths
            if self.form != "features":
                self._buffer = ([[] for _ in xs], [[] for _ in ys])
        elif widths != self.widths:
            raise ConfigError(f"expected widths {self.widths} in every batch, found {widths}")
        self.n += rows.pop()
        if self._buffer is not None:
            for store, mats in zip(self._buffer, (xs, ys)):
                for chunks, mat in zip(store, mats):
                    chunks.append(mat)
            if self.form == "auto" and self.n > max(*widths[0], *widths[1]):
                self._flush()
            return
        self._accumulate(xs, ys)

    def _matrix(self, t: Tensor, side: str, i: int) -> Tensor:
        if not isinstance(t, Tensor) or t.dim() != 2:
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ConfigError(f"expected a (b, d) feature matrix for {side}[{i}], found {shape}")
        return t.detach()

    def _flush(self) -> None:
        assert self._buffer is not None  # only called while buffering
        xs = [torch.cat(chunks) for chunks in self._buffer[0]]
        ys = [torch.cat(chunks) for chunks in self._buffer[1]]
        self._buffer = None
        self._accumulate(xs, ys)

    def _accumulate(self, xs: list[Tensor], ys: list[Tensor]) -> None:
        xs = [x.to(torch.float64) for x in xs]
        ys = [y.to(torch.float64) for y in ys]
        if not self._xs:
            self._xs = [_Side(x) for x in xs]
            self._ys = [_Side(y) for y in ys]
            self._g = xs[0].new_zeros(len(xs), len(ys))
        xs = [x - side.shift for x, side in zip(xs, self._xs)]
        ys = [y - side.shift for y, side in zip(ys, self._ys)]
        kd = torch.stack([x.square().sum(1) for x in xs], 1)  # (b, k)
        ld = torch.stack([y.square().sum(1) for y in ys], 1)  # (b, m)
        for mats, sides, diag in ((xs, self._xs, kd), (ys, self._ys, ld)):
            for i, (x, side) in enumerate(zip(mats, sides)):
                side.scale += float((x + side.shift).square().sum())
                side.s += x.sum(0)
                side.gram += x.mT @ x
                side.t += float(diag[:, i].sum())
                side.w += x.mT @ diag[:, i]
                side.e += float(diag[:, i].square().sum())
        assert self._g is not None  # set on the first batch
        self._g += kd.mT @ ld
        xl = [x.mT @ ld for x in xs]  # (p_i, m): X_i^T l_j for every j
        yk = [y.mT @ kd for y in ys]  # (q_j, k): Y_j^T k_i for every i
        for i, x in enumerate(xs):
            for j, y in enumerate(ys):
                c = x.mT @ y
                acc = self._pairs.get((i, j))
                if acc is None:
                    self._pairs[(i, j)] = [c, xl[i][:, j].clone(), yk[j][:, i].clone()]
                else:
                    acc[0] += c
                    acc[1] += xl[i][:, j]
                    acc[2] += yk[j][:, i]

    def cka(self, debiased: bool = False) -> Tensor:
        """The ``k x m`` linear CKA (float64, CPU) over every sample seen.

        Raises:
            DegenerateFeaturesError: no samples, fewer than 4 for ``debiased`` (2 otherwise),
                or a layer whose features are all constant.
        """
        need = 4 if debiased else 2
        if self.n < need:
            what = "debiased CKA (its estimator divides by N - 3)" if debiased else "CKA"
            raise DegenerateFeaturesError(
                f"expected at least {need} samples for {what}, found N = {self.n}"
            )
        if self._buffer is not None:
            return self._cka_gram(debiased)
        assert self._g is not None  # at least one batch was accumulated
        names_x, names_y = self._names("X", len(self._xs)), self._names("Y", len(self._ys))
        for side, name in (*zip(self._xs, names_x), *zip(self._ys, names_y)):
            check_spread(side.spread(self.n), side.scale, f"the features of {name}")
        hx = [side.hsic(self.n, debiased) for side in self._xs]
        hy = [side.hsic(self.n, debiased) for side in self._ys]
        out = torch.empty(len(hx), len(hy), dtype=torch.float64)
        for (i, j), (c, u, v) in self._pairs.items():
            sx, sy = self._xs[i], self._ys[j]
            xy = hsic_moments(
                c, sx.s, sy.s, sx.t, sy.t, u, v, float(self._g[i, j]), self.n, debiased=debiased
            )
            out[i, j] = cka_ratio(xy, hx[i], hy[j])
        return out

    def _cka_gram(self, debiased: bool) -> Tensor:
        assert self._buffer is not None  # only called while buffering
        grams = []
        for side, store in zip("XY", self._buffer):
            names = self._names(side, len(store))
            mats = []
            for name, chunks in zip(names, store):
                x = torch.cat(chunks).to(torch.float64)
                xc = x - x.mean(0, keepdim=True)
                check_spread(
                    float(xc.square().sum()), float(x.square().sum()), f"the features of {name}"
                )
                mats.append(xc @ xc.mT)
            grams.append(mats)
        hx = [hsic_gram(k, k, debiased=debiased) for k in grams[0]]
        hy = [hsic_gram(l, l, debiased=debiased) for l in grams[1]]
        out = torch.empty(len(hx), len(hy), dtype=torch.float64)
        for i, k in enumerate(grams[0]):
            for j, l in enumerate(grams[1]):
                out[i, j] = cka_ratio(hsic_gram(k, l, debiased=debiased), hx[i], hy[j])
        return out
