"""The CAE's layers: the sub-pixel form of the image layer is the transposed convolution."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cae_codec.nn.layers import GDN, UpConv


@pytest.mark.parametrize("kernel", [1, 3, 5, 7, 9])
@pytest.mark.parametrize("channels_last", [False, True])
def test_subpixel_form_is_the_transposed_convolution(kernel: int, channels_last: bool) -> None:
    torch.manual_seed(kernel)
    layer = UpConv(6, 3, kernel, subpixel=True)
    x = torch.randn(2, 6, 5, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    expected = F.conv_transpose2d(x, layer.weight, layer.bias, stride=2, padding=kernel // 2, output_padding=1)
    with torch.no_grad():
        out = layer(x)
    assert out.shape == (2, 3, 10, 14) == expected.shape
    assert torch.allclose(out, expected, atol=1e-5, rtol=0)


def test_subpixel_form_carries_the_gradient_to_the_input_and_training_uses_the_plain_form() -> None:
    torch.manual_seed(0)
    layer = UpConv(8, 3, 5, subpixel=True)
    x = torch.randn(1, 8, 4, 4, requires_grad=True)
    layer.requires_grad_(False)  # a frozen decoder (refinement, --encoder-only): the sub-pixel form
    (layer(x) ** 2).sum().backward()
    frozen_grad = x.grad.clone()
    x.grad = None
    layer.requires_grad_(True)  # training the layer: the transposed convolution itself
    (layer(x) ** 2).sum().backward()
    assert torch.allclose(frozen_grad, x.grad, atol=1e-5) and layer.weight.grad is not None


def test_weights_files_see_a_plain_transposed_convolution() -> None:
    layer = UpConv(8, 3, 5, subpixel=True)
    plain = torch.nn.ConvTranspose2d(8, 3, 5, stride=2, padding=2, output_padding=1)
    assert layer.state_dict().keys() == plain.state_dict().keys()
    layer.load_state_dict(plain.state_dict())
    x = torch.randn(1, 8, 4, 4)
    with torch.no_grad():
        assert torch.allclose(layer(x), plain(x), atol=1e-5)


def test_gdn_is_the_division_it_documents() -> None:
    torch.manual_seed(1)
    gdn, igdn = GDN(4), GDN(4, inverse=True)
    with torch.no_grad():
        for g in (gdn, igdn):
            g.gamma_sqrt.add_(0.05 * torch.rand(4, 4))
        x = torch.randn(2, 4, 3, 3)
        norm = torch.sqrt(
            gdn.beta_sqrt.square()[None, :, None, None]
            + 1e-6
            + torch.einsum("ij,bjhw->bihw", gdn.gamma_sqrt.square(), x * x)
        )
        assert torch.allclose(gdn(x), x / norm, atol=1e-6)
        inorm = torch.sqrt(
            igdn.beta_sqrt.square()[None, :, None, None]
            + 1e-6
            + torch.einsum("ij,bjhw->bihw", igdn.gamma_sqrt.square(), x * x)
        )
        assert torch.allclose(igdn(x), x * inorm, atol=1e-6)
