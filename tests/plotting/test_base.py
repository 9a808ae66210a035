"""save_figures: several figures drawn in parallel processes, errors raised in the caller."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.figure import Figure

from spectral_probe.errors import ConfigError
from spectral_probe.plotting import new_axes, save_figure, save_figures
from spectral_probe.plotting._base import _share


def _line(k: int) -> Figure:
    fig, ax = new_axes(None, (2.0, 1.5))
    ax.plot(range(k + 2))
    return fig


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_every_figure_is_written_as_one_process_writes_it(tmp_path: Path, processes: int) -> None:
    jobs = [(lambda k=k: _line(k), tmp_path / "par" / f"f{k}.png", float(k)) for k in range(4)]
    assert save_figures(jobs, processes=processes) == [path for _, path, _ in jobs]
    for k in range(4):
        one = save_figure(_line(k), tmp_path / "one" / f"f{k}.png")
        assert (tmp_path / "par" / f"f{k}.png").read_bytes() == one.read_bytes()


def _broken() -> Figure:
    raise ConfigError("expected a figure, found none")


@pytest.mark.parametrize("where", ["caller", "child"])
def test_an_error_in_any_process_is_raised_here(tmp_path: Path, where: str) -> None:
    # the costliest job stays in the caller; the other goes to the forked process
    cost = {"caller": (2.0, 1.0), "child": (1.0, 2.0)}[where]
    jobs = [
        (_broken, tmp_path / "bad.png", cost[0]),
        (lambda: _line(1), tmp_path / "ok.png", cost[1]),
    ]
    with pytest.raises(ConfigError, match="expected a figure, found none"):
        save_figures(jobs, processes=2)
    assert (tmp_path / "ok.png").is_file()


def test_share_balances_costs() -> None:
    jobs = [(_broken, Path(str(c)), c) for c in (4.2, 1.0, 1.0, 1.0, 1.0)]
    shares = _share(jobs, 2)
    assert sorted(sum(j[2] for j in share) for share in shares) == [4.0, 4.2]
