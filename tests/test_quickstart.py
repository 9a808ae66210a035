"""docs/quickstart.md: every command on the page runs, on a generated ImageFolder.

The page's ``bash`` blocks are parsed and run in order through the CLI (the ``text`` block is
the set-up, which ``make test`` itself performs). ``~/photos`` becomes a tiny generated
one-folder-per-class ImageFolder, ``my-finetuned.pt`` a perturbed Lite0 state dict, and the
feature-spectrum commands get small batches and images, the compare-weights commands the first
layers only, so that the page runs in seconds.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pandas as pd
import pytest
import torch
from _fixtures.datasets import make_imagefolder
from spectral_probe_cli.main import app
from typer.testing import CliRunner

PAGE = Path(__file__).resolve().parents[1] / "docs" / "quickstart.md"
FAST = {
    "feature-spectrum": ["--batch-size", "4", "--image-size", "32", "--device", "cpu", "-q"],
    "compare-weights": ["--include", r"^(conv_stem|blocks\.[01]\.)", "--device", "cpu", "-q"],
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def page_commands() -> list[list[str]]:
    """The command lines of the page's ``bash`` blocks, split as a shell would."""
    blocks = re.findall(r"^```bash\n(.*?)^```", PAGE.read_text(), flags=re.M | re.S)
    lines = [line for block in blocks for line in block.splitlines() if line.strip()]
    return [shlex.split(line, comments=True) for line in lines]


def test_the_page_has_the_promised_commands() -> None:
    commands = page_commands()
    assert all(cmd[0] == "spectral-probe" for cmd in commands)
    names = [cmd[1] for cmd in commands]
    assert names.count("compare-weights") == 2 and names.count("feature-spectrum") == 2
    assert any("imagefolder:~/photos" in cmd for cmd in commands)


def test_every_command_on_the_page_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photos = make_imagefolder(tmp_path / "photos", 3, 4, split_folders=False, size=16)
    monkeypatch.chdir(tmp_path)
    from spectral_probe.models import load_model

    state = load_model("bundled:efficientnet_lite0").model.state_dict()
    gen = torch.Generator().manual_seed(0)
    torch.save(
        {
            k: v + 1e-3 * v.std() * torch.randn(v.shape, generator=gen)
            if v.is_floating_point() and v.numel() > 1
            else v
            for k, v in state.items()
        },
        tmp_path / "my-finetuned.pt",
    )
    runner = CliRunner()
    for cmd in page_commands():
        args = [arg.replace("~/photos", str(photos)) for arg in cmd[1:]]
        args += FAST.get(args[0], [])
        res = runner.invoke(app, args)
        assert res.exit_code == 0, f"{' '.join(cmd)}\n{res.output}"

    assert (tmp_path / "first-compare" / "figures" / "corresponding_angles.png").is_file()
    assert (tmp_path / "first-spectrum" / "figures" / "batch_spectra.png").is_file()
    # what the page says of the figures: pre-trained vs random share no singular directions,
    # a 1e-3 perturbation keeps them; every image of the folder is read
    random_pair = pd.read_csv(tmp_path / "first-compare" / "summary.csv")
    finetuned = pd.read_csv(tmp_path / "my-compare" / "summary.csv")
    assert random_pair["cos_mean"].mean() < 0.2 < 0.8 < finetuned["cos_top"].mean()
    spectrum = pd.read_csv(tmp_path / "first-spectrum" / "summary.csv")
    assert spectrum["n_batches"].tolist() == [3]  # 12 images in batches of 4
    two = pd.read_csv(tmp_path / "two-spectra" / "summary.csv")
    assert two["model"].tolist() == ["pretrained", "random"]
