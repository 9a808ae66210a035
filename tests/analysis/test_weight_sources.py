"""compare_weights over tensor sources: numbers against NumPy on decoders written by transformers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from spectral_probe.analysis import compare_weights
from spectral_probe.errors import ConfigError
from spectral_probe.extract import SOURCE_KINDS as KINDS
from spectral_probe.sources import StateDictSource

from ..sources.conftest import perturbed, tiny_gpt2, tiny_llama

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _rotation(n: int, seed: int) -> torch.Tensor:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return torch.from_numpy(q).float()


def test_known_rotation_of_a_decoder(tmp_path: Path) -> None:
    """B = Q A for an orthogonal Q: same singular values, |cos| = |<u_i, Q u_i>|, by NumPy."""
    base = tiny_llama()
    base.save_pretrained(tmp_path / "a", max_shard_size="20KB")
    tuned = tiny_llama()
    q = _rotation(64, 3)
    with torch.no_grad():
        tuned.model.layers[1].mlp.up_proj.weight.copy_(q @ tuned.model.layers[1].mlp.up_proj.weight)
    tuned.save_pretrained(tmp_path / "b")
    res = compare_weights(
        str(tmp_path / "a"), str(tmp_path / "b"), device="cpu", workers=1, kinds=KINDS
    )
    assert (
        res.layers["layer"].iloc[0] == "embed_tokens" and res.layers["layer"].iloc[-1] == "lm_head"
    )
    a = base.model.layers[1].mlp.up_proj.weight.detach().double().numpy()
    b = q.double().numpy() @ a
    ua, sa, _ = np.linalg.svd(a, full_matrices=False)
    ub, sb, _ = np.linalg.svd(b, full_matrices=False)
    layer = res.layer("layers.1.mlp.up_proj")
    np.testing.assert_allclose(layer["sigma_a"], sa, rtol=1e-6)
    np.testing.assert_allclose(layer["sigma_b"], sb, rtol=1e-5)
    np.testing.assert_allclose(layer["cos"], np.abs((ua * ub).sum(0)), atol=1e-5)
    untouched = res.layers.set_index("layer").loc["layers.0.mlp.up_proj"]
    assert untouched["w_rel_change"] == 0 and untouched["cos_mean"] == pytest.approx(1.0)
    assert (res.layers["dtype_a"] == "float32").all() and not res.layers["precision_only"].any()


def test_gpt2_conv1d_is_transposed_to_out_by_in(tmp_path: Path) -> None:
    model = tiny_gpt2()
    model.save_pretrained(tmp_path / "a")
    perturbed(tiny_gpt2()).save_pretrained(tmp_path / "b")
    res = compare_weights(str(tmp_path / "a"), str(tmp_path / "b"), device="cpu")
    row = res.layers.set_index("layer").loc["h.0.mlp.c_fc"]
    assert (row["type"], row["rows"], row["cols"]) == ("Conv1D", 128, 32)  # stored 32 x 128
    w = model.transformer.h[0].mlp.c_fc.weight.detach().double().numpy().T
    np.testing.assert_allclose(
        res.layer("h.0.mlp.c_fc")["sigma_a"], np.linalg.svd(w, compute_uv=False), rtol=1e-6
    )
    assert any("tied" in n for n in res.meta["notes"])


def test_bf16_copy_is_named_a_precision_difference(tmp_path: Path) -> None:
    model = tiny_llama()
    model.save_pretrained(tmp_path / "fp32")
    model.to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    res = compare_weights(str(tmp_path / "fp32"), str(tmp_path / "bf16"), device="cpu")
    assert res.layers["precision_only"].all() and (res.layers["dtype_b"] == "bfloat16").all()
    assert any("differ only in precision" in n for n in res.meta["notes"])
    res = compare_weights(str(tmp_path / "bf16"), str(tmp_path / "bf16"), device="cpu")
    assert not res.layers["precision_only"].any()


def test_resized_vocabulary_and_unmatched_tensors(tmp_path: Path) -> None:
    base = tiny_llama()
    base.save_pretrained(tmp_path / "a")
    tuned = tiny_llama(cls="LlamaModel")
    tuned.resize_token_embeddings(100)
    tuned.save_pretrained(tmp_path / "b")
    res = compare_weights(str(tmp_path / "a"), str(tmp_path / "b"), device="cpu", kinds=KINDS)
    row = res.layers.set_index("layer").loc["embed_tokens"]
    assert (row["rows"], row["cols"]) == (96, 32)
    assert any("vocabulary resized from 96 to 100" in n for n in res.meta["notes"])
    assert res.skipped.set_index("layer").loc["lm_head", "reason"] == "only in model A"


def test_nonfinite_raises_unless_skipped() -> None:
    a = {"l.weight": torch.randn(6, 4), "m.weight": torch.randn(6, 4)}
    b = {k: v.clone() for k, v in a.items()}
    b["l.weight"][0, :2] = float("nan")
    with pytest.raises(ConfigError, match=r"found 2 NaN/Inf value\(s\) in l.weight of b"):
        compare_weights(StateDictSource(a, "a"), StateDictSource(b, "b"), device="cpu")
    res = compare_weights(
        StateDictSource(a, "a"), StateDictSource(b, "b"), device="cpu", skip_nonfinite=True
    )
    assert dict(zip(res.layers["layer"], res.layers["status"])) == {"l": "nonfinite-b", "m": "ok"}


def test_moe_expert_stack_is_one_matrix_per_expert() -> None:
    experts = torch.randn(3, 8, 4)
    src = StateDictSource({"layers.0.mlp.experts.down_proj": experts}, "moe")
    res = compare_weights(
        src, StateDictSource({"layers.0.mlp.experts.down_proj": experts * 2}, "x2"), device="cpu"
    )
    assert res.layers["layer"].tolist() == [
        f"layers.0.mlp.experts.down_proj:e{i}" for i in range(3)
    ]
    np.testing.assert_allclose(
        res.layer("layers.0.mlp.experts.down_proj:e2")["sigma_b"],
        np.linalg.svd(2 * experts[2].double().numpy(), compute_uv=False),
        rtol=1e-10,
    )


def test_adapter_update_spectrum_in_the_result(tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    model = tiny_llama()
    model.save_pretrained(tmp_path / "base")
    peft_model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules=["v_proj"], init_lora_weights=False)
    )
    peft_model.save_pretrained(tmp_path / "adapter")
    merged = peft_model.merge_and_unload()
    res = compare_weights(str(tmp_path / "base"), str(tmp_path / "adapter"), device="cpu")
    rows = res.layers.set_index("layer")
    assert rows.loc["layers.0.self_attn.v_proj", "lora_rank"] == 4
    assert rows["lora_rank"].notna().sum() == 2
    assert rows.loc["layers.0.mlp.up_proj", "w_rel_change"] == 0
    base_w = tiny_llama().model.layers[1].self_attn.v_proj.weight.detach().double().numpy()
    delta = merged.model.layers[1].self_attn.v_proj.weight.detach().double().numpy() - base_w
    update = res.update[res.update["layer"] == "layers.1.self_attn.v_proj"]["sigma"].to_numpy()
    np.testing.assert_allclose(update, np.linalg.svd(delta, compute_uv=False)[:4], rtol=1e-4)


def test_top_k_by_randomized_svd_matches_the_full_spectrum() -> None:
    g = torch.Generator().manual_seed(0)
    u = torch.linalg.qr(torch.randn(300, 300, generator=g, dtype=torch.float64)).Q
    v = torch.linalg.qr(torch.randn(200, 200, generator=g, dtype=torch.float64)).Q
    a = (u[:, :200] * torch.logspace(0, -4, 200, dtype=torch.float64)) @ v.T
    b = a + 1e-5 * torch.randn(300, 200, generator=g, dtype=torch.float64)
    src_a, src_b = StateDictSource({"w.weight": a}), StateDictSource({"w.weight": b})
    res = compare_weights(src_a, src_b, device="cpu", top=16)
    layer = res.layer("w")
    s_true = np.linalg.svd(a.numpy(), compute_uv=False)[:16]
    assert len(layer) == 16
    np.testing.assert_allclose(layer["sigma_a"], s_true, rtol=1e-4)
    bound = res.layers["top_residual"].iloc[0] * s_true[0]
    assert np.abs(layer["sigma_a"].to_numpy() - s_true).max() <= bound
    full = compare_weights(src_a, src_b, device="cpu").layer("w")
    np.testing.assert_allclose(layer["cos"], full["cos"].to_numpy()[:16], atol=1e-3)
    with pytest.raises(ConfigError, match="either --top or --esd"):
        compare_weights(src_a, src_b, device="cpu", top=4, esd=True)


def test_a_stopped_run_resumes_and_equals_an_uninterrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spectral_probe.analysis.weights as weights

    tiny_llama().save_pretrained(tmp_path / "a", max_shard_size="20KB")
    perturbed(tiny_llama()).save_pretrained(tmp_path / "b")
    specs = (str(tmp_path / "a"), str(tmp_path / "b"))
    store = tmp_path / "store"

    def stop_after_five(done: int, total: int, layer: str) -> None:
        if done == 5:
            raise KeyboardInterrupt  # as a kill between two layers: five are on disk

    with pytest.raises(KeyboardInterrupt):
        compare_weights(*specs, device="cpu", workers=1, resume=store, progress=stop_after_five)
    assert len(list(store.glob("*.pt"))) == 5 and not list(store.glob(".*tmp"))
    calls = []
    original = weights._compare_pair
    monkeypatch.setattr(weights, "_compare_pair", lambda *a: calls.append(1) or original(*a))
    resumed = compare_weights(*specs, device="cpu", workers=1, resume=store)
    assert len(calls) == len(resumed.layers) - 5 == 15 - 5
    fresh = compare_weights(*specs, device="cpu", workers=1)
    pd.testing.assert_frame_equal(resumed.angles, fresh.angles)
    cols = [c for c in fresh.layers.columns if c != "seconds"]
    pd.testing.assert_frame_equal(resumed.layers[cols], fresh.layers[cols])


class _CountingSource(StateDictSource):
    """A source that records how many tensors it handed out are still alive at each load."""

    def __init__(self, state: dict[str, torch.Tensor], live: list[object], peaks: list[int]):
        super().__init__(state, "counted")
        self.live, self.peaks = live, peaks

    def load(self, name: str) -> torch.Tensor:
        import weakref

        self.peaks.append(sum(ref() is not None for ref in self.live))  # type: ignore[operator]
        t = super().load(name).clone()
        self.live.append(weakref.ref(t))
        return t


def test_one_tensor_pair_in_memory_at_a_time() -> None:
    g = torch.Generator().manual_seed(0)
    state = {f"layers.{i}.mlp.weight": torch.randn(12, 8, generator=g) for i in range(6)}
    live: list[object] = []
    peaks: list[int] = []
    a = _CountingSource(state, live, peaks)
    b = _CountingSource({k: v + 0.01 for k, v in state.items()}, live, peaks)
    compare_weights(a, b, device="cpu", workers=1)
    assert len(peaks) == 12 and max(peaks) <= 1  # when B's tensor is read, only A's is alive


def test_large_matrices_go_through_blocked_grams_with_the_same_numbers(
    llama_pair: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import spectral_probe.analysis.weights as weights

    dense = compare_weights(*llama_pair, device="cpu", kinds=KINDS)
    monkeypatch.setattr(weights, "BLOCKED_ELEMENTS", 0)  # every matrix through compare_blocked
    blocked = compare_weights(*llama_pair, device="cpu", kinds=KINDS)
    cols = ["sigma_a", "sigma_b", "cos", "cos_window"]
    np.testing.assert_allclose(blocked.angles[cols], dense.angles[cols], rtol=1e-6, atol=1e-8)
    assert (blocked.angles["window"] == dense.angles["window"]).all()
    for col in ("w_rel_change", "sv_rel_change", "cos_mean", "principal_top"):
        np.testing.assert_allclose(blocked.layers[col], dense.layers[col], rtol=1e-7, atol=1e-10)


@pytest.fixture
def llama_pair(tmp_path: Path) -> tuple[str, str]:
    tiny_llama().to(torch.bfloat16).save_pretrained(tmp_path / "a", max_shard_size="20KB")
    perturbed(tiny_llama(), 0.02).save_pretrained(tmp_path / "b")
    return str(tmp_path / "a"), str(tmp_path / "b")


def test_esd_of_large_file_matrices_through_blocked_grams(
    llama_pair: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import spectral_probe.analysis._sources as sources
    from spectral_probe.analysis.esd import esd_layers

    dense = esd_layers(llama_pair[1], workers=1)
    monkeypatch.setattr(sources, "BLOCKED_ELEMENTS", 0)
    blocked = esd_layers(llama_pair[1], workers=1)
    np.testing.assert_allclose(
        blocked.eigenvalues["eigenvalue"], dense.eigenvalues["eigenvalue"], rtol=1e-9, atol=1e-12
    )
    assert blocked.layers["layer"].tolist() == dense.layers["layer"].tolist()
