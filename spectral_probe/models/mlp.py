"""A fully connected ReLU network and the ``mlp:IN-H1-...-OUT`` spec that builds it.

The EWC paper's permuted-MNIST network is ``mlp:784-400-400-10``: two hidden layers of 400
ReLU units and a linear head ``fc`` (its input, the last hidden layer, is BSS's ``F``).
Checkpoints of a run name the spec as their ``base``, so ``load_model(runs/<id>/model.safetensors)``
rebuilds the network.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..errors import ModelSpecError

# submodules, not the package: this module moves into spectral_probe.models as it is
from ._registry import list_sources, register_source
from .loaded import LoadedModel

__all__ = ["MLP", "load_mlp"]


class MLP(nn.Module):
    """Fully connected ReLU network on flattened inputs: ``body`` (hidden layers), head ``fc``.

    Args:
        sizes: ``[inputs, hidden_1, ..., hidden_n, outputs]`` (at least two entries).

    Example:
        >>> import torch
        >>> MLP([784, 400, 400, 10])(torch.zeros(2, 784)).shape
        torch.Size([2, 10])
    """

    def __init__(self, sizes: Sequence[int]) -> None:
        super().__init__()
        if len(sizes) < 2 or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes
        ):
            raise ModelSpecError(
                f"expected MLP sizes as at least two positive integers, found {list(sizes)}"
            )
        self.sizes = [int(s) for s in sizes]
        layers: list[nn.Module] = []
        for a, b in zip(self.sizes[:-2], self.sizes[1:-1]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(self.sizes[-2], self.sizes[-1])

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.body(x.flatten(1)))


def load_mlp(rest: str, pretrained: bool = True) -> LoadedModel:
    """``mlp:IN-H1-...-OUT``: a fresh :class:`MLP` (torch's default initialisation)."""
    del pretrained  # an MLP spec has no pre-trained weights: its checkpoints carry them
    try:
        sizes = [int(s) for s in rest.split("-")]
    except ValueError:
        raise ModelSpecError(
            f"expected mlp:IN-H1-...-OUT (e.g. mlp:784-400-400-10), found mlp:{rest}"
        ) from None
    model = MLP(sizes).eval()
    return LoadedModel(
        model=model,
        spec=f"mlp:{rest}",
        arch=f"mlp:{rest}",
        head="fc",
        modality="image",
        num_classes=sizes[-1],
        metadata={"sizes": sizes},
    )


if "mlp" not in {s.name for s in list_sources()}:
    register_source(
        "mlp",
        help="a fully connected ReLU network: mlp:IN-H1-...-OUT (the permuted scenario)",
        example="mlp:784-400-400-10",
    )(load_mlp)
