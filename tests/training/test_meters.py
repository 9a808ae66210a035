"""The loop's meters (spectral_probe/training/meters.py): sums against a hand count, resume."""

from __future__ import annotations

import math

import torch

from spectral_probe.training.meters import Meters, finite_weights


def _step(meters: Meters, loss: float, task: float, bss: float, logits, targets) -> None:
    meters.add(torch.tensor(loss), torch.tensor(task), {"bss": torch.tensor(bss)}, logits, targets)


def test_sums_counts_and_a_resumed_interval():
    meters = Meters(["bss"], torch.device("cpu"), None)
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])  # predicts 0, 1, 0
    _step(meters, 1.5, 1.0, 0.5, logits, torch.tensor([0, 0, 0]))  # 2 correct
    _step(meters, 0.5, 0.25, 0.25, logits, torch.tensor([1, 1, 0]))  # 2 correct
    assert meters.sums.tolist() == [2.0, 1.25, 0.75, 4.0]
    assert (meters.steps, meters.count) == (2, 6)
    meters.units, meters.seconds = 48, 1.5
    again = Meters(["bss"], torch.device("cpu"), meters.state())  # from a training state
    assert again.state() == meters.state()
    other = Meters(["bss", "l2-sp"], torch.device("cpu"), meters.state())  # another method's
    assert other.sums.tolist() == [0.0] * 5 and other.steps == 0
    meters.reset()
    assert meters.sums.tolist() == [0.0] * 4 and meters.state()["seconds"] == 0.0


def test_finite_weights():
    net = torch.nn.Linear(3, 2)
    assert finite_weights(net)
    with torch.no_grad():
        net.weight[0, 1] = math.inf
    assert not finite_weights(net)
    net.weight.data = torch.ones(2, 3)
    net.bias.data[0] = math.nan
    assert not finite_weights(net)
