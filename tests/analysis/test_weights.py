"""analysis.compare_weights end to end on small models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from spectral_probe.analysis import CHANGE_COLUMNS, SUMMARY_COLUMNS, compare_weights
from spectral_probe.errors import ConfigError


def _net(seed: int, classes: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 10, 3), nn.Flatten(), nn.Linear(40, classes)
    )


def _perturbed(model: nn.Module, scale: float, seed: int) -> nn.Module:
    import copy

    other = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return other


def test_identical_models_align_everywhere():
    a = _net(0)
    res = compare_weights(a, _perturbed(a, 0.0, 0), device="cpu")
    assert list(res.layers.columns) == list(SUMMARY_COLUMNS) + list(CHANGE_COLUMNS)
    assert (res.layers["status"] == "ok").all()
    assert res.layers["intruders"].eq(0).all() and res.layers["intruders_right"].eq(0).all()
    assert res.layers["top_energy"].eq(0).all()  # a zero update has no energy anywhere
    np.testing.assert_allclose(res.angles["cos"], 1.0, atol=1e-12)
    np.testing.assert_allclose(res.principal["cos"], 1.0, atol=1e-12)
    assert res.layers["w_rel_change"].eq(0).all()


def test_against_numpy_reference():
    a = _net(0)
    b = _perturbed(a, 0.05, 1)
    res = compare_weights(a, b, device="cpu")
    wa = a[2].weight.detach().reshape(10, -1).double().numpy()
    wb = b[2].weight.detach().reshape(10, -1).double().numpy()
    ua, sa, _ = np.linalg.svd(wa, full_matrices=False)
    ub, sb, _ = np.linalg.svd(wb, full_matrices=False)
    layer = res.layer("2")
    np.testing.assert_allclose(layer["sigma_a"], sa, rtol=1e-10)
    np.testing.assert_allclose(layer["sigma_b"], sb, rtol=1e-10)
    np.testing.assert_allclose(layer["cos"], np.abs((ua * ub).sum(0)), atol=1e-8)
    row = res.layers.set_index("layer").loc["2"]
    assert row["sv_rel_change"] == pytest.approx(np.linalg.norm(sb - sa) / np.linalg.norm(sa))
    assert row["e_norm"] == pytest.approx(np.linalg.norm(wb - wa, 2), rel=1e-6)


def test_new_head_is_skipped_and_nonfinite_layers_flagged():
    a = _net(0, classes=4)
    b = _perturbed(_net(0, classes=7), 0.01, 2)
    with torch.no_grad():
        b[0].weight[0, 0, 0, 0] = float("nan")
    res = compare_weights(a, b, device="cpu")
    status = dict(zip(res.layers["layer"], res.layers["status"]))
    assert status == {"0": "nonfinite-b", "2": "ok"}
    assert res.skipped["layer"].tolist() == ["4"]
    assert "0" not in set(res.angles["layer"])  # flagged, not analysed
    assert (
        res.layers.set_index("layer").loc["0", "cos_mean"]
        != res.layers.set_index("layer").loc["0", "cos_mean"]
    )


def test_json_and_csv_round_trip(tmp_path):
    a = _net(0)
    res = compare_weights(a, _perturbed(a, 0.1, 3), device="cpu", top_k=3)
    payload = json.loads(res.to_json(tmp_path / "r.json").read_text())
    assert payload["meta"]["options"]["top_k"] == 3
    first = payload["layers"][0]
    assert len(first["cos"]) == first["rank"] and len(first["principal_cos"]) == 3
    paths = res.to_csv(tmp_path)
    assert sorted(p.name for p in paths) == [
        "angles.csv",
        "intruders.csv",
        "principal.csv",
        "skipped.csv",
        "summary.csv",
        "sweep.csv",
    ]
    assert payload["meta"]["intruder_k"] == 10 and payload["meta"]["intruder_epsilon"] == 0.5
    assert isinstance(first["intruder_indices"], list) and "intruder_sigma_right" in first
    plain = compare_weights(a, _perturbed(a, 0.1, 3), device="cpu", top_k=3, intruder_k=0)
    assert sorted(plain.tables()) == ["angles", "principal", "skipped", "summary"]
    assert "intruders" not in plain.layers and "intruder_k" not in plain.meta
    back = pd.read_csv(tmp_path / "angles.csv")
    np.testing.assert_allclose(back["cos"], res.angles["cos"], rtol=1e-12)


def test_progress_and_options():
    a = _net(0)
    calls = []
    res = compare_weights(
        a,
        _perturbed(a, 0.1, 4),
        device="cpu",
        kinds=["conv"],
        vectors="right",
        progress=lambda d, t, n: calls.append((d, t, n)),
    )
    assert [c[:2] for c in calls] == [(1, 2), (2, 2)] and sorted(c[2] for c in calls) == ["0", "2"]
    assert res.layers["kind"].eq("conv").all()
    with pytest.raises(ConfigError, match="threshold"):
        compare_weights(a, a, threshold=0.0)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            compare_weights(a, a, device="cuda")


def test_threaded_and_serial_runs_agree():
    a = _net(0)
    b = _perturbed(a, 0.1, 6)
    serial = compare_weights(a, b, device="cpu", workers=1)
    threaded = compare_weights(a, b, device="cpu", workers=2)
    pd.testing.assert_frame_equal(serial.angles, threaded.angles)
    pd.testing.assert_frame_equal(serial.layers, threaded.layers)
    assert torch.get_num_threads() >= 1
    with pytest.raises(ConfigError, match="workers"):
        compare_weights(a, b, device="cpu", workers=0)


def test_accepts_spec_strings():
    res = compare_weights(
        "torchvision:resnet18", "torchvision:resnet18", include="^layer1", device="cpu"
    )
    assert res.meta["model_a"] == "torchvision:resnet18"
    assert len(res.layers) == 4


@pytest.mark.gpu
def test_cuda_matches_cpu():
    a = _net(0)
    b = _perturbed(a, 0.1, 5)
    cpu = compare_weights(a, b, device="cpu")
    gpu = compare_weights(a, b, device="cuda")
    np.testing.assert_allclose(gpu.angles["cos"], cpu.angles["cos"], atol=1e-9)
    np.testing.assert_allclose(gpu.angles["sigma_b"], cpu.angles["sigma_b"], rtol=1e-10)


def test_dense_change_equals_update_structure():
    """A full fine-tune's intruders and update structure equal analysis.update_structure's
    (LAPACK SVDs of both matrices) for every layer."""
    from spectral_probe.analysis.update import update_structure

    a = _net(0)
    b = _perturbed(a, 0.3, 5)
    res = compare_weights(a, b, device="cpu", subspace_rank=3, method="svd")
    rows = res.layers.set_index("layer")
    for name in ("0", "2"):
        wa = a[int(name)].weight.detach().reshape(a[int(name)].weight.shape[0], -1).double()
        wb = b[int(name)].weight.detach().reshape(wa.shape[0], -1).double()
        rec = update_structure(wa, wb, subspace_rank=3)
        row = rows.loc[name]
        assert (row["intruders"], row["intruders_right"]) == (rec.intruders, rec.intruders_right)
        for ours, theirs in [
            ("update_rank_90", "rank_90"),
            ("update_gd_rank", "gd_rank"),
            ("update_stable_rank", "stable_rank"),
            ("update_effective_rank", "effective_rank"),
            ("top_energy", "top_energy"),
            ("bottom_energy_right", "bottom_energy_right"),
        ]:
            assert row[ours] == pytest.approx(getattr(rec, theirs), rel=1e-8, abs=1e-12), ours
        got = res.intruders[(res.intruders["layer"] == name) & (res.intruders["side"] == "left")]
        np.testing.assert_allclose(got["max_cos"], rec.intruder_max_cos, atol=1e-9)
