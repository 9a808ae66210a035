r"""Centred kernel alignment (Kornblith et al. 2019), linear and RBF, plain and debiased.

For feature matrices :math:`X \in \mathbb R^{N \times p}` and :math:`Y \in \mathbb R^{N \times q}`
of the same ``N`` samples (the widths may differ) and Gram matrices :math:`K, L`,

.. math::

    \operatorname{CKA}(K, L) = \frac{\operatorname{HSIC}(K, L)}
        {\sqrt{\operatorname{HSIC}(K, K)\,\operatorname{HSIC}(L, L)}} .

With linear kernels and centred features :math:`X_c, Y_c` this is

.. math::

    \operatorname{CKA}_{\text{lin}}(X, Y) = \frac{\|Y_c^\top X_c\|_F^2}
        {\|X_c^\top X_c\|_F\,\|Y_c^\top Y_c\|_F},

in ``[0, 1]``, invariant to orthogonal transforms and isotropic scaling of either side, but
not to arbitrary invertible linear maps. The plain HSIC is biased upwards when ``N`` is not
much larger than the widths (two independent random matrices get a CKA well above 0);
``debiased=True`` uses the unbiased HSIC of Song et al. (2012), as proposed by Nguyen et al.
(2021), whose CKA is about 0 for independent features. Both estimators are written out in
:mod:`spectral_probe.similarity._hsic`.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from ..errors import ConfigError
from ._checks import centre, check_pair, check_spread
from ._hsic import cka_ratio, hsic_gram
from .streaming import StreamingCKA

__all__ = ["linear_cka", "rbf_cka", "rbf_gram"]


def linear_cka(
    x: Any,
    y: Any,
    debiased: bool = False,
    *,
    form: Literal["auto", "features", "gram"] = "auto",
) -> float:
    r"""Linear CKA of two feature matrices on the same samples.

    Args:
        x: ``(N, p)`` tensor or array.
        y: ``(N, q)`` tensor or array.
        debiased: the unbiased HSIC estimator (needs :math:`N \ge 4`).
        form: ``"features"`` (from :math:`X^\top X`, :math:`Y^\top Y`, :math:`X^\top Y`),
            ``"gram"`` (from the ``N x N`` Grams) or ``"auto"``: the Gram form when
            :math:`N < p + q`. Both give the same value up to rounding.

    Returns:
        The CKA, a float in ``[0, 1]`` (debiased: can fall slightly below 0).

    Raises:
        DegenerateFeaturesError: fewer than 2 samples (4 when debiased), or every feature of
            one side constant.

    Examples:
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
        >>> linear_cka(x, 3 * x.flip(1))
        1.0
    """
    need = 4 if debiased else 2
    why = " for debiased CKA (its estimator divides by N - 3)" if debiased else ""
    xm, ym = check_pair(x, y, min_n=need, why=why)
    if form not in ("auto", "features", "gram"):
        raise ConfigError(f"expected form 'auto', 'features' or 'gram', found {form!r}")
    if form == "auto":
        form = "gram" if xm.shape[0] < xm.shape[1] + ym.shape[1] else "features"
    acc = StreamingCKA(["X"], ["Y"], form=form)
    acc.update([xm], [ym])
    return float(acc.cka(debiased)[0, 0])


def rbf_gram(x: Tensor, sigma: float) -> Tensor:
    r"""The RBF Gram matrix with a bandwidth relative to the median distance.

    .. math::

        K_{ij} = \exp\!\Big(-\frac{\|x_i - x_j\|^2}{2\,\sigma^2\,m}\Big), \qquad
        m = \operatorname{median}_{i,j} \|x_i - x_j\|^2 ,

    the median over all :math:`N^2` entries, diagonal included (Kornblith et al.'s
    ``gram_rbf(x, threshold=sigma)``).
    """
    sq = x.square().sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * (x @ x.mT)).clamp_min(0.0)
    flat = d2.flatten()
    n = flat.numel()  # NumPy's median: the mean of the two middle values when n is even
    med = 0.5 * float(flat.kthvalue((n + 1) // 2).values + flat.kthvalue(n // 2 + 1).values)
    if not med > 0.0:
        return torch.ones_like(d2)
    return torch.exp(-d2 / (2.0 * sigma**2 * med))


def rbf_cka(x: Any, y: Any, sigma: float = 0.8) -> float:
    r"""CKA with RBF kernels (plain HSIC), bandwidth ``sigma`` times the median distance.

    .. math::

        \operatorname{CKA}_{\text{RBF}} = \frac{\langle H K H, H L H \rangle_F}
            {\|H K H\|_F\,\|H L H\|_F}, \qquad H = I - \tfrac1N \mathbf 1 \mathbf 1^\top,

    with :math:`K, L` from :func:`rbf_gram`. Memory :math:`O(N^2)`. As ``sigma`` grows it
    tends to linear CKA; Kornblith et al. use ``sigma`` = 0.2 to 0.8.

    Raises:
        DegenerateFeaturesError: fewer than 2 samples or a side with every feature constant.

    Examples:
        >>> x = torch.tensor([[0.0, 1.0], [2.0, 0.0], [1.0, 3.0]])
        >>> round(rbf_cka(x, -2 * x), 12)
        1.0
    """
    if not (isinstance(sigma, (int, float)) and sigma > 0):
        raise ConfigError(f"expected an RBF bandwidth sigma > 0, found {sigma!r}")
    xm, ym = check_pair(x, y, min_n=2)
    for m, name in ((xm, "X"), (ym, "Y")):
        check_spread(float(centre(m).square().sum()), float(m.square().sum()), name)
    k, l = rbf_gram(xm, float(sigma)), rbf_gram(ym, float(sigma))
    return cka_ratio(
        hsic_gram(k, l, debiased=False),
        hsic_gram(k, k, debiased=False),
        hsic_gram(l, l, debiased=False),
    )
