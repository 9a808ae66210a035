"""BSS on the global batch: a two-process gloo run on CPU against one process."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from spectral_probe.regularizers import BSS, StepContext, bss_penalty

WORLD = 2


def _global_features() -> torch.Tensor:
    return torch.randn(10, 7, generator=torch.Generator().manual_seed(3), dtype=torch.float64)


def _worker(rank: int, tmp: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp}/rendezvous", rank=rank, world_size=WORLD
    )
    try:
        f = _global_features().chunk(WORLD)[rank].clone().requires_grad_(True)
        model = torch.nn.Linear(7, 2).double()
        ctx = StepContext(model, "", f, torch.zeros(len(f)), model(f), f)
        value = BSS(eta=1.0, k=2, gather=True).penalty(ctx)
        value.backward()
        torch.save({"value": value.detach(), "grad": f.grad}, f"{tmp}/rank{rank}.pt")
        # both ranks finish the backward's collectives before either tears gloo down (a rank
        # that destroyed its group while the other still waited once aborted the process)
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_gathered_spectrum_and_gradients_match_one_process(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(str(tmp_path),), nprocs=WORLD, join=True)
    f = _global_features().requires_grad_(True)
    want = bss_penalty(f, 2)
    want.backward()
    grads = []
    for rank in range(WORLD):
        out = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        torch.testing.assert_close(out["value"], want.detach())
        grads.append(out["grad"])
    # all_gather's backward sums every rank's gradient, so each rank holds WORLD x its slice of
    # the one-process gradient; DDP's mean over ranks brings parameter gradients back to 1 x.
    torch.testing.assert_close(torch.cat(grads) / WORLD, f.grad)


def test_gather_is_identity_without_process_group() -> None:
    f = torch.randn(5, 3)
    model = torch.nn.Linear(3, 2)
    ctx = StepContext(model, "", f, torch.zeros(5), model(f), f)
    assert BSS(gather=True).penalty(ctx).item() == pytest.approx(BSS().penalty(ctx).item())
