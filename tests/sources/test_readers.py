"""Readers over files written by transformers, torch.compile, DDP/DataParallel and Lightning."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from spectral_probe.errors import CheckpointError, ModelSpecError, UnsafeCheckpointError
from spectral_probe.sources import canonical_name, depth_key, open_source

from .conftest import tiny_bert, tiny_llama


def _expected(model: nn.Module) -> dict[str, torch.Tensor]:
    return {canonical_name(k): v for k, v in model.state_dict().items()}


@pytest.mark.parametrize("layout", ["single", "sharded"])
def test_transformers_directory_reads_every_tensor(
    llama_dirs: dict[str, Path], layout: str
) -> None:
    expected = _expected(tiny_llama())
    with open_source(str(llama_dirs[layout])) as src:
        assert set(src.names()) == set(expected)
        for name in src.names():
            assert src.shape(name) == tuple(expected[name].shape)
            assert src.dtype(name) == torch.float32
            torch.testing.assert_close(src.load(name), expected[name], rtol=0, atol=0)
        names = src.names()
        assert names[0] == "embed_tokens.weight" and names[-1] == "lm_head.weight"
        assert names.index("layers.0.mlp.down_proj.weight") < names.index(
            "layers.1.self_attn.q_proj.weight"
        )
        assert names.index("layers.0.self_attn.q_proj.weight") < names.index(
            "layers.0.self_attn.o_proj.weight"
        )


def test_bf16_directory_keeps_its_dtype(llama_dirs: dict[str, Path]) -> None:
    with open_source(str(llama_dirs["bf16"])) as src:
        assert src.dtype("layers.1.mlp.up_proj.weight") == torch.bfloat16
        assert src.load("layers.1.mlp.up_proj.weight").dtype == torch.bfloat16


def test_depth_key_sorts_numbers_by_value() -> None:
    names = [f"layers.{i}.mlp.down_proj.weight" for i in (10, 2, 1)] + [
        "lm_head.weight",
        "norm.weight",
    ]
    ordered = sorted(names, key=depth_key)
    assert ordered == [
        "layers.1.mlp.down_proj.weight",
        "layers.2.mlp.down_proj.weight",
        "layers.10.mlp.down_proj.weight",
        "norm.weight",
        "lm_head.weight",
    ]


def test_legacy_pytorch_model_bin_single_and_sharded(tmp_path: Path) -> None:
    from huggingface_hub import save_torch_state_dict

    model = tiny_llama()
    (tmp_path / "single").mkdir()
    (tmp_path / "sharded").mkdir()
    torch.save(model.state_dict(), tmp_path / "single" / "pytorch_model.bin")
    save_torch_state_dict(
        model.state_dict(), tmp_path / "sharded", max_shard_size="20KB", safe_serialization=False
    )
    assert (tmp_path / "sharded" / "pytorch_model.bin.index.json").is_file()
    expected = _expected(model)
    for layout in ("single", "sharded"):
        with open_source(str(tmp_path / layout)) as src:
            assert set(src.names()) == set(expected)
            torch.testing.assert_close(
                src.load("layers.1.self_attn.v_proj.weight"),
                expected["layers.1.self_attn.v_proj.weight"],
            )


def test_compiled_and_data_parallel_state_dicts_pair_with_the_plain_one(tmp_path: Path) -> None:
    model = tiny_llama()
    torch.save(torch.compile(model).state_dict(), tmp_path / "compiled.pt")  # lazy: no compilation
    torch.save(nn.DataParallel(model).state_dict(), tmp_path / "dp.pt")
    torch.save(torch.compile(nn.DataParallel(model)).state_dict(), tmp_path / "both.pth")
    keys = torch.load(tmp_path / "compiled.pt", weights_only=True)
    assert all(k.startswith("_orig_mod.") for k in keys)
    expected = _expected(model)
    for file in ("compiled.pt", "dp.pt", "both.pth"):
        with open_source(str(tmp_path / file)) as src:
            assert src.names() == list(expected), file  # torch.save keeps module order


def test_ddp_state_dict(tmp_path: Path) -> None:
    import torch.distributed as dist

    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rdv'}", rank=0, world_size=1)
    try:
        ddp = nn.parallel.DistributedDataParallel(model)
        torch.save(ddp.state_dict(), tmp_path / "ddp.pt")
    finally:
        dist.destroy_process_group()
    with open_source(str(tmp_path / "ddp.pt")) as src:
        assert src.names() == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_lightning_checkpoint(tmp_path: Path) -> None:
    """A ModelCheckpoint file of a module that saved its hyperparameters, trained with Adam."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    class Module(L.LightningModule):
        def __init__(self, lr: float = 0.1, hidden: int = 8) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.model = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 2))

        def training_step(self, batch: list[torch.Tensor], _: int) -> torch.Tensor:
            return self.model(batch[0]).square().mean()

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    data = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.randn(8, 4)), batch_size=4
    )
    trainer = L.Trainer(
        max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path, accelerator="cpu",
        callbacks=[ModelCheckpoint(dirpath=tmp_path / "ck")],
    )  # fmt: skip
    module = Module()
    trainer.fit(module, data)
    (ckpt,) = (tmp_path / "ck").glob("*.ckpt")
    with open_source(str(ckpt)) as src:
        assert src.names() == ["0.weight", "0.bias", "2.weight", "2.bias"]
        torch.testing.assert_close(src.load("2.weight"), module.model[2].weight.detach())


def test_encoder_and_its_classification_fine_tune_share_names(tmp_path: Path) -> None:
    tiny_bert().save_pretrained(tmp_path / "enc")
    tiny_bert(cls="BertForSequenceClassification").save_pretrained(tmp_path / "cls")
    with open_source(str(tmp_path / "enc")) as a, open_source(str(tmp_path / "cls")) as b:
        assert set(b.names()) - set(a.names()) == {"classifier.weight", "classifier.bias"}
        assert "encoder.layer.0.attention.self.query.weight" in a.names()


def test_errors_are_one_line(llama_dirs: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "missing"
    shutil.copytree(llama_dirs["sharded"], broken)
    index = json.loads((broken / "model.safetensors.index.json").read_text())
    victim = sorted(set(index["weight_map"].values()))[1]
    (broken / victim).unlink()
    cases: list[tuple[str, type[Exception], str]] = [
        (str(broken), CheckpointError, f"names shard {victim}, which is missing")
    ]
    truncated = tmp_path / "truncated"
    shutil.copytree(llama_dirs["sharded"], truncated)
    data = (truncated / victim).read_bytes()
    (truncated / victim).write_bytes(data[: len(data) // 2])
    cases.append((str(truncated), CheckpointError, "not a complete safetensors file"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    cases.append((str(tmp_path / "empty"), CheckpointError, "expected model weights in"))
    torch.save({"state_dict": {"w": torch.ones(2, 2)}, "args": Path("x")}, tmp_path / "code.ckpt")
    cases.append((str(tmp_path / "code.ckpt"), UnsafeCheckpointError, "refusing to load"))
    cases.append((str(llama_dirs["sharded"] / victim), CheckpointError, "pass the directory"))
    cases.append(("hf:./no/such/model", ModelSpecError, "no such path"))
    cases.append(("hf:someone/not-cached-model-xyz", ModelSpecError, "offline"))
    for spec, error, message in cases:
        with pytest.raises(error) as info:
            open_source(spec)
        text = str(info.value)
        assert message in text and "\n" not in text, (spec, text)


def test_pickled_files_are_mapped_again_per_tensor(tmp_path: Path) -> None:
    """No mapping of the whole file is kept between loads (its read pages would stay resident)."""
    from spectral_probe.sources import TorchFile

    torch.save({"a.weight": torch.ones(3, 2), "b.weight": torch.zeros(2, 2)}, tmp_path / "m.pt")
    src = TorchFile(tmp_path / "m.pt")
    assert src._state == {}  # nothing held between loads
    assert src.shape("a.weight") == (3, 2) and src.dtype("b.weight") == torch.float32
    torch.testing.assert_close(src.load("a.weight"), torch.ones(3, 2))


def _mapped(path: Path) -> bool:
    return str(path.resolve()) in Path("/proc/self/maps").read_text()


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="needs Linux /proc")
def test_safetensors_shards_are_unmapped_once_their_tensor_is_freed(
    llama_dirs: dict[str, Path],
) -> None:
    """A map held for the whole run would keep every page read resident (RSS growing with depth)."""
    import gc

    with open_source(str(llama_dirs["sharded"])) as src:
        name = "layers.1.mlp.up_proj.weight"
        shards = sorted(llama_dirs["sharded"].glob("*.safetensors"))
        assert src.shape(name) == (64, 32) and not any(_mapped(f) for f in shards)
        t = src.load(name)
        assert sum(_mapped(f) for f in shards) == 1  # only the shard holding it, while it lives
        total = float(t.double().sum())
        del t
        gc.collect()
        assert not any(_mapped(f) for f in shards)
        assert float(src.load(name).double().sum()) == total  # read again, same values


def _odd_state() -> dict[str, torch.Tensor]:
    """Dtypes, views into one storage at offsets, a transposed view, a scalar and an empty tensor."""
    g = torch.Generator().manual_seed(0)
    big = torch.randn(6, 5, generator=g)
    return {
        "a.weight": torch.randn(4, 3, generator=g).to(torch.bfloat16),
        "b.weight": torch.randn(3, 2, generator=g).half(),
        "c.weight": big[2:5],  # shares big's storage at an offset
        "d.weight": big.T,  # non-contiguous
        "e.weight": torch.randn(2, 2, generator=g, dtype=torch.float64),
        "f.steps": torch.tensor(7),
        "g.weight": torch.empty(0, 3),
        "h.index": torch.arange(5),
    }


@pytest.mark.parametrize("fallback", [False, True])
def test_pickled_files_read_each_tensor_from_its_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fallback: bool
) -> None:
    """Each tensor read from its storage's bytes equals torch.load's; the file is never left
    mapped. With an unexpected layout, the per-tensor reload gives the same tensors."""
    from spectral_probe.sources import TorchFile, files

    state = _odd_state()
    torch.save(state, tmp_path / "m.pt")
    if fallback:
        monkeypatch.setattr(files, "_storage_table", lambda path, state: {})
    src = TorchFile(tmp_path / "m.pt")
    assert bool(src._where) != fallback
    for name, want in state.items():
        got = src.load(name)
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert torch.equal(got, want), name
        if Path("/proc/self/maps").is_file() and not fallback:
            assert not _mapped(tmp_path / "m.pt")


def test_storage_table_refuses_a_layout_it_does_not_know(tmp_path: Path) -> None:
    """A compressed data entry (not how torch.save writes) makes the table empty, not wrong."""
    import zipfile

    from spectral_probe.sources import files

    torch.save(_odd_state(), tmp_path / "m.pt")
    with zipfile.ZipFile(tmp_path / "m.pt") as zin, zipfile.ZipFile(tmp_path / "z.pt", "w") as zout:
        for info in zin.infolist():
            kind = zipfile.ZIP_DEFLATED if "/data/" in info.filename else zipfile.ZIP_STORED
            zout.writestr(info.filename, zin.read(info), compress_type=kind)
    state = files.unwrap_state(torch.load(tmp_path / "z.pt", weights_only=True), tmp_path)
    assert files._storage_table(tmp_path / "z.pt", state) == {}
    assert set(files._storage_table(tmp_path / "m.pt", files.torch_load(tmp_path / "m.pt")))


def test_tied_weights_in_a_torch_save_are_read_once(tmp_path: Path) -> None:
    from .conftest import tiny_gpt2

    model = tiny_gpt2()
    torch.save(model.state_dict(), tmp_path / "gpt2.pt")  # lm_head.weight is wte.weight
    with open_source(str(tmp_path / "gpt2.pt")) as src:
        assert "wte.weight" in src.names() and "lm_head.weight" not in src.names()
        assert any("lm_head.weight shares its storage with" in n for n in src.notes)
