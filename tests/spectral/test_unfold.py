"""spectral.unfold: conv tensors as matrices."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spectral_probe.spectral import split_fused, split_groups, unfold_weight


def test_conv2d_unfolds_row_per_output_channel():
    w = torch.randn(8, 3, 5, 5)
    mat = unfold_weight(w)
    assert mat.shape == (8, 75)
    assert torch.equal(mat[2], w[2].flatten())


@pytest.mark.parametrize("conv", [nn.Conv1d(4, 6, 3), nn.Conv3d(2, 5, (2, 3, 3))])
def test_other_spatial_ranks(conv):
    mat = unfold_weight(conv.weight)
    assert mat.shape == (conv.out_channels, conv.weight[0].numel())


def test_grouped_and_depthwise():
    dw = nn.Conv2d(16, 16, 3, groups=16)
    assert unfold_weight(dw.weight).shape == (16, 9)
    grouped = nn.Conv2d(8, 12, 3, groups=4)
    mat = unfold_weight(grouped.weight)
    blocks = split_groups(mat, 4)
    assert len(blocks) == 4 and blocks[0].shape == (3, 18)
    assert torch.equal(torch.cat(blocks), mat)
    with pytest.raises(ValueError, match="groups"):
        split_groups(mat, 5)


def test_transposed_conv_rows_are_output_channels():
    conv = nn.ConvTranspose2d(6, 4, 3, groups=2)  # weight (6, 2, 3, 3)
    mat = unfold_weight(conv.weight, transposed=True, groups=2)
    assert mat.shape == (4, 3 * 9)
    # output channel 0 belongs to group 0, fed by input channels 0..2
    expected = conv.weight[0:3, 0].flatten()
    assert torch.equal(mat[0], expected)


def test_split_fused_qkv():
    w = torch.arange(12.0).reshape(6, 2)
    q, _, v = split_fused(w)
    assert torch.equal(q, w[:2]) and torch.equal(v, w[4:])
    with pytest.raises(ValueError, match="divisible"):
        split_fused(torch.zeros(5, 2))


def test_rejects_vectors():
    with pytest.raises(ValueError, match="at least 2"):
        unfold_weight(torch.zeros(3))
