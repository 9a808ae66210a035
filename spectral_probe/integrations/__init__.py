"""BSS and the spectral probes inside other people's training loops.

Each submodule needs its optional extra and fails on import, in one line naming it, without:

- :mod:`spectral_probe.integrations.lightning` (``pip install 'spectral-probe[lightning]'``):
  :class:`~spectral_probe.integrations.lightning.BSSCallback` adds BSS to a
  ``LightningModule``'s loss; :class:`~spectral_probe.integrations.lightning.SpectraCallback`
  logs the spectrum of the features entering the head.
- :mod:`spectral_probe.integrations.hf` (``pip install 'spectral-probe[hf]'``):
  :class:`~spectral_probe.integrations.hf.BSSTrainer`, a ``transformers.Trainer`` adding BSS
  on the [CLS] or pooled features.

For a hand-written loop, the plain modules of :mod:`spectral_probe.regularizers`
(``BatchSpectralShrinkage`` and the others) need nothing more. See ``docs/integrations.md``.
"""

from __future__ import annotations

__all__: list[str] = []
