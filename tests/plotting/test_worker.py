"""FigureWorker: figures drawn by a process forked early, errors raised in the caller."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from spectral_probe.analysis import compare_weights
from spectral_probe.errors import ConfigError
from spectral_probe.plotting import (
    FigureJob,
    FigureWorker,
    new_axes,
    plot_alpha_profile,
    plot_corresponding_angles,
    plot_intruder_sweep,
    plot_intruders_by_depth,
    plot_update_energy,
    plot_weight_spectra,
    result_fields,
    save_figure,
)

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _line(k: int) -> Figure:
    fig, ax = new_axes(None, (2.0, 1.5))
    ax.plot(range(k + 2))
    return fig


def _jobs(directory: Path, count: int) -> list[FigureJob]:
    """Module level: the worker pickles it by name."""
    return [(lambda k=k: _line(k), directory / f"f{k}.png", 1.0) for k in range(count)]


def _fails(directory: Path) -> list[FigureJob]:
    raise ConfigError(f"expected a figure folder, found {directory.name}")


@needs_fork
def test_the_figures_drawn_by_the_worker_are_those_drawn_here(tmp_path: Path) -> None:
    with FigureWorker() as worker:
        assert worker.forked
        worker.submit(_jobs, tmp_path / "worker", 3)
        worker.wait()
        assert not worker.forked  # reaped
    for k in range(3):
        here = save_figure(_line(k), tmp_path / "here" / f"f{k}.png")
        assert (tmp_path / "worker" / f"f{k}.png").read_bytes() == here.read_bytes()


@needs_fork
def test_an_error_in_the_worker_is_raised_by_wait(tmp_path: Path) -> None:
    with FigureWorker() as worker:
        worker.submit(_fails, tmp_path / "figs")
        with pytest.raises(ConfigError, match="found figs"):
            worker.wait()
    assert not (tmp_path / "figs").exists()


@needs_fork
def test_a_worker_never_sent_anything_is_ended_on_leaving() -> None:
    with FigureWorker() as worker:
        pid = worker._pid
        assert pid is not None
    assert not worker.forked
    with pytest.raises(ChildProcessError):  # reaped: no zombie left behind
        os.waitpid(pid, 0)


@needs_fork
def test_one_submit_per_worker(tmp_path: Path) -> None:
    with FigureWorker() as worker:
        worker.submit(_jobs, tmp_path, 1)
        with pytest.raises(RuntimeError, match="one submit"):
            worker.submit(_jobs, tmp_path, 1)
        worker.wait()


def test_a_disabled_worker_draws_in_this_process_at_submit(tmp_path: Path) -> None:
    with FigureWorker(enabled=False) as worker:
        assert not worker.forked
        worker.submit(_jobs, tmp_path, 2)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["f0.png", "f1.png"]
        worker.wait()  # nothing to wait for


def _mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4))


@pytest.mark.parametrize(
    "plot",
    [
        plot_weight_spectra,
        plot_corresponding_angles,
        plot_alpha_profile,
        plot_intruders_by_depth,
        plot_update_energy,
        plot_intruder_sweep,
    ],
)
def test_plots_draw_from_a_results_fields_as_from_the_result(tmp_path: Path, plot) -> None:
    result = compare_weights(_mlp(0), _mlp(1), esd=True, workers=1)
    fields = result_fields(result)
    assert set(vars(fields)) == {
        "layers",
        "angles",
        "principal",
        "skipped",
        "meta",
        "esd",
        "update",
        "intruders",
    }
    a = save_figure(plot(fields), tmp_path / "fields.png")
    b = save_figure(plot(result), tmp_path / "result.png")
    assert a.read_bytes() == b.read_bytes()


_NO_TORCH_IN_THE_FIGURE_PROCESS = """
import sys
from pathlib import Path

from spectral_probe.plotting import FigureWorker, result_fields

def build(fields, directory):
    # runs in the figure process, after the result's fields were unpickled there
    heavy = sorted({"torch", "torchvision"} & {m.split(".")[0] for m in sys.modules})
    if heavy:
        raise RuntimeError(f"expected no torch in the figure process, found {heavy}")
    from spectral_probe.plotting.weight_figures import weight_comparison_figures
    return weight_comparison_figures(fields, directory, None, None)

with FigureWorker() as worker:  # forked before torch is imported, as the CLI does
    import torch
    from spectral_probe.analysis import compare_weights
    net = torch.nn.Sequential(torch.nn.Linear(12, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    other = torch.nn.Sequential(torch.nn.Linear(12, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    result = compare_weights(net, other)
    worker.submit(build, result_fields(result), Path(sys.argv[1]))
    worker.wait()
print("ok")
"""


@needs_fork
def test_the_figure_process_never_imports_torch(tmp_path: Path) -> None:
    """A result's fields unpickle without torch (its meta once held a torch.TorchVersion)."""
    proc = subprocess.run(
        [sys.executable, "-c", _NO_TORCH_IN_THE_FIGURE_PROCESS, str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "angle_heatmap.png",
        "angle_heatmap_window.png",
        "corresponding_angles.png",
        "corresponding_angles_window.png",
        "intruder_sweep.png",
        "intruders_by_depth.png",
        "update_energy.png",
        "weight_spectra.png",
    ]
