"""Checkpoints: the toolkit's format round-trips; unsafe or broken files are refused."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from spectral_probe.errors import CheckpointError, UnsafeCheckpointError
from spectral_probe.models import load_model, replace_head, save_checkpoint, sidecar_path


@pytest.fixture(scope="module")
def finetuned():
    lm = load_model("torchvision:resnet18")
    torch.manual_seed(0)
    replace_head(lm.model, 5)
    return lm


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_toolkit_format_round_trip(tmp_path, finetuned):
    path = save_checkpoint(
        tmp_path / "model.safetensors",
        finetuned.model,
        base="torchvision:resnet18",
        head="fc",
        num_classes=5,
        classes=list("abcde"),
        preprocessing=finetuned.preprocessing,
        config={"seed": 3},
    )
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["format"] == "spectral-probe-checkpoint" and meta["base"] == "torchvision:resnet18"
    assert meta["config"] == {"seed": 3}
    back = load_model(str(path))
    assert back.num_classes == 5 and back.classes == list("abcde") and back.head == "fc"
    assert back.preprocessing == finetuned.preprocessing
    assert _same(back.model, finetuned.model)
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave nothing behind


def test_shared_tensors_are_stored_once(tmp_path):
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.b = nn.Linear(4, 4)
            self.b.weight = self.a.weight

    from spectral_probe.models import read_state_dict

    model = Tied()
    path = save_checkpoint(tmp_path / "t.safetensors", model, base="x", head=None)
    assert "b.weight" not in read_state_dict(path)
    assert json.loads(sidecar_path(path).read_text())["aliases"] == {"b.weight": "a.weight"}


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "ddp"])
def test_plain_state_dict_with_arch(tmp_path, finetuned, wrap):
    state = finetuned.model.state_dict()
    if wrap == "state_dict":
        obj = {"state_dict": state, "epoch": 3}
    elif wrap == "ddp":
        obj = {f"module.{k}": v for k, v in state.items()}
    else:
        obj = state
    torch.save(obj, tmp_path / "m.pt")
    back = load_model(str(tmp_path / "m.pt"), arch="torchvision:resnet18")
    assert back.num_classes == 5  # head resized from the file
    assert _same(back.model, finetuned.model)


def test_plain_safetensors_needs_arch(tmp_path, finetuned):
    from safetensors.torch import save_file

    save_file(finetuned.model.state_dict(), tmp_path / "w.safetensors")
    with pytest.raises(CheckpointError, match="--arch"):
        load_model(str(tmp_path / "w.safetensors"))
    assert load_model(str(tmp_path / "w.safetensors"), arch="torchvision:resnet18").num_classes == 5


def test_pickled_module_is_refused(tmp_path, finetuned):
    torch.save(finetuned.model, tmp_path / "full.pt")
    with pytest.raises(UnsafeCheckpointError, match="refusing to load .* pickled Python objects"):
        load_model(str(tmp_path / "full.pt"), arch="torchvision:resnet18")


def test_pickle_payload_never_runs(tmp_path):
    import pickle

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with open(tmp_path / "evil.pth", "wb") as fh:
        pickle.dump(Evil(), fh)
    with pytest.raises(CheckpointError):
        load_model(str(tmp_path / "evil.pth"), arch="torchvision:resnet18")
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_truncated_files(tmp_path, finetuned, suffix):
    full = tmp_path / f"full{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(finetuned.model.state_dict(), full)
    else:
        torch.save(finetuned.model.state_dict(), full)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    with pytest.raises(CheckpointError, match="cannot read") as info:
        load_model(str(cut), arch="torchvision:resnet18")
    assert "\n" not in str(info.value)


def test_missing_empty_and_wrong_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_model(str(tmp_path / "nope.safetensors"))
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_model(str(tmp_path / "empty.pt"), arch="torchvision:resnet18")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(CheckpointError, match="expected a checkpoint ending in"):
        load_model(str(tmp_path / "notes.txt"))


def test_architecture_mismatch_names_keys(tmp_path, finetuned):
    torch.save(finetuned.model.state_dict(), tmp_path / "r18.pt")
    with pytest.raises(
        CheckpointError, match="does not fit architecture torchvision:resnet34: .*missing"
    ):
        load_model(str(tmp_path / "r18.pt"), arch="torchvision:resnet34")


def test_newer_format_version_is_refused(tmp_path, finetuned):
    path = save_checkpoint(
        tmp_path / "m.safetensors", finetuned.model, base="torchvision:resnet18", head="fc"
    )
    meta = json.loads(sidecar_path(path).read_text())
    meta["version"] = 99
    sidecar_path(path).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="upgrade spectral-probe"):
        load_model(str(path))
