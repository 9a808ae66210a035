"""Lightning callbacks: BSS changes the gradients exactly as the penalty in the loss would."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

pl = pytest.importorskip("lightning.pytorch")

from spectral_probe.integrations.lightning import BSSCallback, SpectraCallback  # noqa: E402
from spectral_probe.regularizers import bss_penalty  # noqa: E402


class Module(pl.LightningModule):
    def __init__(self, eta_in_loss: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.model = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))
        self.eta_in_loss = eta_in_loss

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        if self.eta_in_loss:  # the hand-written reference
            loss = loss + self.eta_in_loss * bss_penalty(self.model[1](self.model[0](x)), 1)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 12, generator=g), torch.randint(0, 3, (64,), generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)


def _fit(module, callbacks, steps=4, **kw):
    trainer = pl.Trainer(
        max_steps=steps,
        callbacks=callbacks,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kw,
    )
    trainer.fit(module, _loader())
    return trainer


def test_bss_callback_equals_the_penalty_written_in_the_loss():
    with_callback = Module()
    _fit(with_callback, [BSSCallback(head="model.2", eta=0.5)])
    by_hand = Module(eta_in_loss=0.5)
    _fit(by_hand, [])
    plain = Module()
    _fit(plain, [])
    for a, b in zip(with_callback.parameters(), by_hand.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(with_callback.model[0].weight, plain.model[0].weight)


def test_bss_callback_with_gradient_accumulation_matches_the_loss_scaling():
    a, b = Module(), Module(eta_in_loss=0.5)
    _fit(a, [BSSCallback(head="model.2", eta=0.5)], steps=2, accumulate_grad_batches=2)
    _fit(b, [], steps=2, accumulate_grad_batches=2)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_spectra_callback_logs_numpys_singular_values():
    module = Module()
    spectra = SpectraCallback(head="model.2", every_n_steps=2)
    _fit(module, [spectra], steps=4)
    frame = spectra.to_frame()
    assert sorted(frame["step"].unique()) == [1, 3]
    batches = list(_loader())
    for step in (1, 3):  # measured on batch step - 1, with the weights after step - 1 updates
        ref = Module()
        if step > 1:
            _fit(ref, [], steps=step - 1)
        with torch.no_grad():
            f = ref.model[1](ref.model[0](batches[step - 1][0])).double().numpy()
        expected = np.linalg.svd(f, compute_uv=False)
        np.testing.assert_allclose(
            frame[frame["step"] == step]["sigma"], expected, rtol=1e-5, atol=1e-7
        )


def test_a_head_that_does_not_run_is_one_line():
    from spectral_probe.errors import ConfigError

    with pytest.raises(ConfigError, match="found 'nope'"):
        _fit(Module(), [BSSCallback(head="nope")], steps=1)


def test_without_lightning_the_import_names_the_extra(monkeypatch):
    for name in (
        "lightning",
        "lightning.pytorch",
        "pytorch_lightning",
        "spectral_probe.integrations.lightning",
    ):
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "spectral_probe.integrations.lightning")
    from spectral_probe.errors import MissingExtraError

    with pytest.raises(MissingExtraError, match=r"spectral-probe\[lightning\]"):
        import spectral_probe.integrations.lightning  # noqa: F401
