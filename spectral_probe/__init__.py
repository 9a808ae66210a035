"""spectral-probe: what transfers when you fine-tune, seen through spectra.

Built around Batch Spectral Shrinkage (Chen et al., NeurIPS 2019).
"""

from __future__ import annotations

from ._alloc import keep_freed_memory

__version__ = "0.1.0"

__all__ = ["__version__", "keep_freed_memory"]
