"""The resumable training state: weights, optimizer, scaler, regularizers, RNGs, counters.

Saved atomically (``spectral_probe._io``) as ``train_state.pt``, a ``torch.save`` dict of
tensors and plain values only, so it loads with ``torch.load(weights_only=True)``:

``{"format": "spectral-probe-train-state", "version": 1, "iteration": t, "config_hash": ...,
"model": state_dict, "optimizer": ..., "scaler": ..., "regularizer": state_dict,
"rng": [one dict per rank], "meters": {...}, "best": {...}, "elapsed": seconds}``.
"""

from __future__ import annotations

import io
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_write_bytes
from ..errors import CheckpointError

__all__ = [
    "STATE_FORMAT",
    "capture_rng",
    "restore_rng",
    "save_train_state",
    "load_train_state",
]

STATE_FORMAT = "spectral-probe-train-state"
STATE_VERSION = 1


def capture_rng(device: torch.device) -> dict[str, Any]:
    """The torch (CPU and ``device``'s CUDA), NumPy and Python RNG states, as plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # type: ignore[misc]
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {
            "version": version,
            "state": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
    }


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    npy = state["numpy"]
    np.random.set_state(
        (
            npy["kind"],
            npy["keys"].numpy().astype(np.uint32),
            npy["pos"],
            npy["has_gauss"],
            npy["cached"],
        )
    )
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss_next"]))


def save_train_state(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write the training state atomically (format and version added)."""
    buf = io.BytesIO()
    torch.save({"format": STATE_FORMAT, "version": STATE_VERSION, **payload}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_train_state(path: str | Path) -> dict[str, Any]:
    """Read a training state with ``torch.load(weights_only=True)``; one-line errors."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"expected a training state at {path}, found nothing") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise CheckpointError(f"cannot read the training state {path}: {first}") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(
            f"expected a spectral-probe training state in {path}, found another file"
        )
    if state.get("version", 0) > STATE_VERSION:
        raise CheckpointError(
            f"training state {path} has version {state['version']}; this spectral-probe reads up "
            f"to {STATE_VERSION}: upgrade spectral-probe"
        )
    return state
