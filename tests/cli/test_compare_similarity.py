"""compare-weights' |cos| similarity figure (Figure 1 of Shuttleworth et al.) and its option."""

from __future__ import annotations

from pathlib import Path

from analysis.test_layer_similarity import _pair
from safetensors.torch import save_file
from spectral_probe_cli.main import app


def test_compare_weights_writes_the_figure(runner, tmp_path: Path) -> None:
    a, b = _pair()
    save_file(a.state_dict(), str(tmp_path / "a.safetensors"))
    save_file(b.state_dict(), str(tmp_path / "b.safetensors"))
    files = [str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")]
    res = runner.invoke(app, ["compare-weights", *files, "--out", str(tmp_path / "cw"), "-q"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cw" / "figures" / "similarity_matrix.png").stat().st_size > 0
    bad = runner.invoke(
        app,
        ["compare-weights", *files, "--out", str(tmp_path / "cw2"), "--similarity-layer", "nope"],
    )
    assert bad.exit_code == 2 and "Traceback" not in bad.output  # after a note on the files
    assert bad.output.strip().splitlines()[-1].startswith("error: expected --similarity-layer")
