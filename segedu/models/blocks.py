"""Small building blocks that the course's networks are composed of.

In the spirit of milesial/Pytorch-UNet's ``unet_parts.py``: each block is a few lines, does one
thing, and has a name that matches the figure in the paper, so a network reads as a list of blocks.

- :func:`conv_bn_relu`: the unit of every encoder, a convolution followed by batch normalisation
  and a ReLU,

  .. math:: y = \\max\\bigl(0,\\ \\gamma\\,\\frac{(w * x) - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}} + \\beta\\bigr);

- :class:`DoubleConv`: two of them, U-Net's basic stage (Ronneberger et al. 2015);
- :class:`VGGStage`: ``n`` of them then a 2×2 max-pool that halves the resolution, one stage of a
  VGG encoder (Simonyan and Zisserman 2015), as used by FCN and SegNet.

The convolutions have no bias, because the batch normalisation that follows subtracts the mean
anyway (its :math:`\\beta` plays the role of the bias).

References
----------
.. [1] Simonyan, K. and Zisserman, A. "Very Deep Convolutional Networks for Large-Scale Image
       Recognition." ICLR 2015. arXiv:1409.1556
.. [2] Ioffe, S. and Szegedy, C. "Batch Normalization: Accelerating Deep Network Training by
       Reducing Internal Covariate Shift." ICML 2015. arXiv:1502.03167
.. [3] Ronneberger, O., Fischer, P. and Brox, T. "U-Net: Convolutional Networks for Biomedical
       Image Segmentation." MICCAI 2015. arXiv:1505.04597

Examples
--------
>>> import torch
>>> from segedu.models.blocks import VGGStage
>>> stage = VGGStage(3, 16, num_convs=2)
>>> tuple(stage(torch.zeros(1, 3, 32, 32)).shape)
(1, 16, 16, 16)
"""

from __future__ import annotations

from torch import nn

from .._validation import check_positive_int

__all__ = ["conv_bn_relu", "DoubleConv", "VGGStage"]


def conv_bn_relu(in_channels, out_channels, kernel_size=3, padding=None, dilation=1, stride=1) -> nn.Sequential:
    """Conv2d (no bias) → BatchNorm2d → ReLU, as an ``nn.Sequential`` of three layers.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and the output.
    kernel_size : int
        Side of the square kernel (default 3).
    padding : int, optional
        Zero padding on each side. The default, ``dilation * (kernel_size - 1) // 2``, keeps the
        spatial size ("same" convolution) for odd kernels and stride 1.
    dilation, stride : int
        As in ``nn.Conv2d``.

    Examples
    --------
    >>> import torch
    >>> block = conv_bn_relu(3, 8)
    >>> [type(m).__name__ for m in block]
    ['Conv2d', 'BatchNorm2d', 'ReLU']
    >>> tuple(block(torch.zeros(2, 3, 10, 12)).shape)
    (2, 8, 10, 12)
    """
    in_channels = check_positive_int(in_channels, "in_channels")
    out_channels = check_positive_int(out_channels, "out_channels")
    kernel_size = check_positive_int(kernel_size, "kernel_size")
    dilation = check_positive_int(dilation, "dilation")
    stride = check_positive_int(stride, "stride")
    if padding is None:
        padding = dilation * (kernel_size - 1) // 2
    padding = check_positive_int(padding, "padding", minimum=0)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DoubleConv(nn.Sequential):
    """(Conv 3×3 → BN → ReLU) × 2: the basic stage of U-Net, keeping the spatial size.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and of the output.
    mid_channels : int, optional
        Channels between the two convolutions (default ``out_channels``).
    padding : int
        1 (default) keeps the size; 0 gives the "valid" convolutions of the original U-Net, which
        shrink each side by 2 pixels per convolution (4 in all).

    Examples
    --------
    >>> import torch
    >>> tuple(DoubleConv(3, 8)(torch.zeros(1, 3, 20, 20)).shape)
    (1, 8, 20, 20)
    >>> tuple(DoubleConv(3, 8, padding=0)(torch.zeros(1, 3, 20, 20)).shape)
    (1, 8, 16, 16)
    """

    def __init__(self, in_channels, out_channels, mid_channels=None, padding=1):
        mid_channels = out_channels if mid_channels is None else mid_channels
        super().__init__(
            *conv_bn_relu(in_channels, mid_channels, 3, padding=padding),
            *conv_bn_relu(mid_channels, out_channels, 3, padding=padding),
        )


class VGGStage(nn.Sequential):
    """``num_convs`` × (Conv 3×3 → BN → ReLU), then a 2×2 max-pool of stride 2.

    One stage of a VGG encoder: the convolutions keep the size, the pool halves it, so five stages
    give the total stride :math:`2^5 = 32` of VGG16 and FCN.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and of the output.
    num_convs : int
        Number of convolutions before the pool (VGG16 uses 2, 2, 3, 3, 3).

    Examples
    --------
    >>> import torch
    >>> tuple(VGGStage(3, 8, num_convs=1)(torch.zeros(1, 3, 20, 20)).shape)
    (1, 8, 10, 10)
    """

    def __init__(self, in_channels, out_channels, num_convs=2):
        num_convs = check_positive_int(num_convs, "num_convs")
        layers = []
        for i in range(num_convs):
            layers.extend(conv_bn_relu(in_channels if i == 0 else out_channels, out_channels, 3))
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        super().__init__(*layers)
