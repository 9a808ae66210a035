"""The per-layer update record: each number against NumPy/SciPy, factored equal to dense."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_probe.analysis.update import (
    DEFAULT_EPSILONS,
    UPDATE_COLUMNS,
    similarity_frame,
    sweep_frame,
    update_frame,
    update_structure,
)
from spectral_probe.errors import ConfigError
from spectral_probe.spectral import svd


def _pretrained(m: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = min(m, n)
    u = np.linalg.qr(rng.standard_normal((m, r)))[0]
    v = np.linalg.qr(rng.standard_normal((n, r)))[0]
    return u @ np.diag(np.geomspace(4.0, 0.05, r)) @ v.T


def _lora(m: int, n: int, r: int, seed: int, size: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 7)
    return size * rng.standard_normal((m, r)) / math.sqrt(m), rng.standard_normal(
        (r, n)
    ) / math.sqrt(n)


def _numpy_record(
    w0: np.ndarray, w: np.ndarray, r: int, k: int, ki: int, eps: float
) -> dict[str, float]:
    """A plain NumPy transcription of every number of the record."""
    dw = w - w0
    u0, _, v0t = np.linalg.svd(w0, full_matrices=False)
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    sd = np.linalg.svd(dw, compute_uv=False)
    energy = np.cumsum(sd**2) / np.sum(sd**2)
    p = sd / sd.sum()
    p = p[p > 0]

    def share(left: np.ndarray | None, right: np.ndarray | None) -> float:
        x = dw if left is None else left.T @ dw
        x = x if right is None else x @ right
        return float(np.sum(x**2) / np.sum(dw**2))

    v0 = v0t.T
    cos_l = np.abs(u[:, :ki].T @ u0).max(axis=1)
    cos_r = np.abs(vt[:ki] @ v0).max(axis=1)
    angles = scipy.linalg.subspace_angles(u0[:, :k], u[:, :k])
    return {
        "rel_norm": np.linalg.norm(dw) / np.linalg.norm(w0),
        "norm_fro": np.linalg.norm(dw),
        "norm_2": sd[0],
        "stable_rank": np.sum(sd**2) / sd[0] ** 2,
        "effective_rank": float(np.exp(-np.sum(p * np.log(p)))),
        "rank_90": int(np.argmax(energy >= 0.9 - 1e-12)) + 1,
        "rank_99": int(np.argmax(energy >= 0.99 - 1e-12)) + 1,
        "top_energy": share(u0[:, :r], v0[:, :r]),
        "bottom_energy": share(u0[:, -r:], v0[:, -r:]),
        "top_energy_left": share(u0[:, :r], None),
        "top_energy_right": share(None, v0[:, :r]),
        "bottom_energy_left": share(u0[:, -r:], None),
        "bottom_energy_right": share(None, v0[:, -r:]),
        "principal_left": float(np.mean(np.cos(angles))),
        "intruders": int(np.sum(cos_l < eps)),
        "intruders_right": int(np.sum(cos_r < eps)),
        "intruder_sigma_max": float(max(s[:ki][cos_l < eps], default=0.0)),
    }


@pytest.mark.parametrize(
    ("m", "n", "r", "size"), [(40, 30, 4, 3.0), (30, 50, 2, 0.3), (24, 24, 6, 8.0)]
)
def test_every_number_matches_numpy_and_factored_equals_dense(
    m: int, n: int, r: int, size: float
) -> None:
    w0 = _pretrained(m, n, m + n)
    b, a = _lora(m, n, r, m, size)
    scale = 2.0
    w = w0 + scale * b @ a
    ref = _numpy_record(w0, w, r, 10, 10, 0.5)
    dense = update_structure(torch.from_numpy(w0), torch.from_numpy(w), subspace_rank=r).row()
    fact = update_structure(
        torch.from_numpy(w0), lora=(torch.from_numpy(b), torch.from_numpy(a), scale)
    ).row()
    assert fact["adapter_rank"] == r and dense["adapter_rank"] is None
    assert fact["subspace_rank"] == dense["subspace_rank"] == r
    for key, value in ref.items():
        assert dense[key] == pytest.approx(value, rel=1e-8, abs=1e-10), key
        assert fact[key] == pytest.approx(value, rel=1e-8, abs=1e-10), key
    # the Gavish-Donoho rank of an exact rank-r update with median zero is its rank
    assert fact["gd_rank"] == r
    assert dense["gd_rank"] <= r  # dense: rounding noise sets a small threshold
    assert fact["chance_energy"] == pytest.approx((r / m) * (r / n))


def test_intruders_from_a_strong_random_update_and_none_from_a_small_one() -> None:
    w0 = _pretrained(48, 40, 0)
    b, a = _lora(48, 40, 4, 0, size=30.0)
    strong = update_structure(
        torch.from_numpy(w0), lora=(torch.from_numpy(b), torch.from_numpy(a), 1.0)
    )
    assert strong.intruders > 0
    assert all(c < 0.5 for c in (strong.intruder_max_cos[i] for i in strong.intruder_indices))
    weak = update_structure(
        torch.from_numpy(w0), lora=(torch.from_numpy(b), torch.from_numpy(a), 1e-4)
    )
    assert weak.intruders == 0 and weak.intruders_right == 0
    # the sweep is monotone and agrees with the count at epsilon = 0.5
    assert list(strong.sweep_counts) == sorted(strong.sweep_counts)
    assert strong.sweep_counts[list(DEFAULT_EPSILONS).index(0.5)] == strong.intruders
    assert strong.to_dict()["intruders"] == strong.intruders


def test_randomized_top_agrees_with_exact() -> None:
    w0 = _pretrained(120, 90, 3)
    b, a = _lora(120, 90, 4, 3, size=20.0)
    lora = (torch.from_numpy(b), torch.from_numpy(a), 1.0)
    exact = update_structure(torch.from_numpy(w0), lora=lora)
    fast = update_structure(torch.from_numpy(w0), lora=lora, top="randomized")
    dense_fast = update_structure(
        torch.from_numpy(w0), torch.from_numpy(w0 + b @ a), top="randomized"
    )
    assert fast.top_method == "randomized" and exact.top_method == "exact"
    assert fast.intruder_indices == exact.intruder_indices == dense_fast.intruder_indices
    # the sketch's vectors are accurate to ~1e-5 here; its bound says how far to trust them
    np.testing.assert_allclose(fast.intruder_max_cos, exact.intruder_max_cos, atol=1e-4)
    assert 0 < fast.top_bound < 1e-2 and exact.top_bound < 1e-10


def test_base_svd_is_reused() -> None:
    w0 = torch.from_numpy(_pretrained(20, 16, 1))
    b, a = (torch.from_numpy(x) for x in _lora(20, 16, 2, 1))
    base = svd(w0, vectors="both", method="svd")
    assert update_structure(w0, lora=(b, a, 1.0), base=base) == update_structure(
        w0, lora=(b, a, 1.0)
    )
    with pytest.raises(ConfigError, match="thin SVD of W0"):
        update_structure(w0, lora=(b, a, 1.0), base=svd(w0, vectors="left", method="svd"))


def test_zero_update_rank_one_and_k_above_rank() -> None:
    w0 = torch.from_numpy(_pretrained(6, 5, 2))
    rec = update_structure(w0, w0.clone(), intruder_k=10, angle_k=10)
    row = rec.row()
    assert rec.intruder_k == 5 and rec.angle_k == 5 and rec.subspace_rank == 5
    for key in (
        "norm_fro",
        "norm_2",
        "stable_rank",
        "effective_rank",
        "rank_90",
        "gd_rank",
        "top_energy",
    ):
        assert row[key] == 0, key
    assert all(math.isfinite(v) for v in row.values() if isinstance(v, float))
    assert rec.intruders == 0 and row["principal_left"] == pytest.approx(1.0)
    zero = update_structure(w0, lora=(torch.zeros(6, 2), torch.zeros(2, 5), 1.0))
    assert zero.norm_fro == 0 and zero.rank_99 == 0 and zero.intruders == 0
    # rank 1: one singular value, ranks 1
    x, y = torch.ones(6, 1, dtype=torch.float64), torch.ones(1, 5, dtype=torch.float64)
    one = update_structure(w0, lora=(x, y, 0.1))
    assert (one.rank_90, one.rank_99, one.gd_rank) == (1, 1, 1)
    assert one.stable_rank == pytest.approx(1.0) and one.effective_rank == pytest.approx(1.0)
    assert one.norm_2 == pytest.approx(0.1 * math.sqrt(30))


def test_bad_input_one_line() -> None:
    w0 = torch.zeros(4, 3)
    with pytest.raises(ConfigError, match="exactly one of w"):
        update_structure(w0)
    with pytest.raises(ConfigError, match="exactly one of w"):
        update_structure(w0, w0, lora=(torch.zeros(4, 1), torch.zeros(1, 3), 1.0))
    with pytest.raises(ConfigError, match=r"W of shape \(4, 3\)"):
        update_structure(w0, torch.zeros(3, 4))
    with pytest.raises(ConfigError, match=r"B \(m, r\) and A \(r, n\)"):
        update_structure(w0, lora=(torch.zeros(4, 2), torch.zeros(1, 3), 1.0))
    with pytest.raises(ConfigError, match="W0 of shape"):
        update_structure(w0, lora=(torch.zeros(5, 1), torch.zeros(1, 3), 1.0))
    with pytest.raises(ConfigError, match="intruder_k >= 1"):
        update_structure(w0, w0, intruder_k=0)
    with pytest.raises(ConfigError, match="epsilon in"):
        update_structure(w0, w0, intruder_epsilon=1.5)


def test_frames() -> None:
    w0 = torch.from_numpy(_pretrained(12, 10, 4))
    recs = [
        update_structure(w0, lora=(torch.from_numpy(b), torch.from_numpy(a), 1.0), layer=f"l{i}")
        for i, (b, a) in enumerate(_lora(12, 10, 2, s, size=10.0) for s in range(3))
    ]
    frame = update_frame(recs)
    assert list(frame.columns) == list(UPDATE_COLUMNS) and len(frame) == 3
    assert frame["layer"].tolist() == ["l0", "l1", "l2"]
    assert update_frame([]).columns.tolist() == list(UPDATE_COLUMNS)
    sweep = sweep_frame(recs)
    model = sweep[sweep["layer"] == "(model)"]
    assert len(model) == 2 * len(DEFAULT_EPSILONS)
    at_half = model[(model["side"] == "left") & (model["epsilon"] == 0.5)]["intruders"].item()
    assert at_half == sum(r.intruders for r in recs)
    assert sweep_frame([]).empty


@settings(max_examples=12, deadline=None)
@given(m=st.integers(2, 20), n=st.integers(2, 20), r=st.integers(1, 4), seed=st.integers(0, 1000))
def test_shapes_dense_equals_factored(m: int, n: int, r: int, seed: int) -> None:
    w0 = _pretrained(m, n, seed)
    b, a = _lora(m, n, r, seed, size=2.0)
    dense = update_structure(
        torch.from_numpy(w0), torch.from_numpy(w0 + b @ a), subspace_rank=r
    ).row()
    fact = update_structure(
        torch.from_numpy(w0), lora=(torch.from_numpy(b), torch.from_numpy(a), 1.0)
    ).row()
    for key in (
        "rel_norm",
        "norm_fro",
        "norm_2",
        "stable_rank",
        "top_energy",
        "bottom_energy",
        "principal_left",
    ):
        assert dense[key] == pytest.approx(fact[key], rel=1e-7, abs=1e-9), key
        assert math.isfinite(fact[key])
    assert dense["intruders"] == fact["intruders"]


def test_similarity_frame_is_figure_one() -> None:
    w0 = _pretrained(14, 10, 6)
    b, a = _lora(14, 10, 2, 6, size=5.0)
    w = w0 + b @ a
    frame = similarity_frame(torch.from_numpy(w0), torch.from_numpy(w), k=4, base_k=6)
    u0 = np.linalg.svd(w0, full_matrices=False)[0]
    u = np.linalg.svd(w, full_matrices=False)[0]
    ref = np.abs(u[:, :4].T @ u0[:, :6])
    assert len(frame) == 24 and list(frame.columns) == ["tuned", "base", "abs_cos"]
    got = frame.pivot(index="tuned", columns="base", values="abs_cos").to_numpy()
    np.testing.assert_allclose(got, ref, atol=1e-10)
    lora = (torch.from_numpy(b), torch.from_numpy(a), 1.0)
    same = similarity_frame(torch.from_numpy(w0), lora=lora, k=4, base_k=6)
    np.testing.assert_allclose(same["abs_cos"], frame["abs_cos"], atol=1e-10)
    right = similarity_frame(torch.from_numpy(w0), lora=lora, k=30, side="right")
    assert len(right) == 10 * 10  # k capped at min(m, n)
    with pytest.raises(ConfigError, match="exactly one"):
        similarity_frame(torch.from_numpy(w0))
