"""The U-Net of tomopipe's segmentation: 2.5-D (a plane and its neighbours as channels) or 3-D."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["UNet"]


class _Block(nn.Sequential):
    def __init__(self, conv, norm, c_in, c_out):
        super().__init__(
            conv(c_in, c_out, 3, padding=1, bias=False), norm(c_out), nn.ReLU(inplace=True),
            conv(c_out, c_out, 3, padding=1, bias=False), norm(c_out), nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015) with batch normalisation, for 2-D or 3-D patches.

    Parameters
    ----------
    in_channels : int
        Input channels: for the 2.5-D network the number of neighbouring planes (odd, the
        centre plane is segmented); 1 for the 3-D network.
    n_classes : int
        Output channels (class logits).
    features : sequence of int
        Channels per level, finest first; ``len(features) - 1`` poolings, so patch sides must be
        multiples of ``2 ** (len(features) - 1)``.
    ndim : {2, 3}
        Convolution dimensionality.

    Notes
    -----
    Batch normalisation runs with its stored statistics at inference (``eval()``), so the output
    of a patch depends on that patch alone: tiles computed in any grouping give the same result,
    which the tiled inference relies on. Padding is zero padding; the tiles' overlap and blending
    window hide the border effects.

    Input ``(batch, in_channels, *spatial)`` float32, output ``(batch, n_classes, *spatial)``
    logits.

    References
    ----------
    .. [1] O. Ronneberger, P. Fischer, T. Brox, "U-Net: convolutional networks for biomedical
       image segmentation", MICCAI 2015, LNCS 9351, 234–241. https://doi.org/10.1007/978-3-319-24574-4_28
    .. [2] Ö. Çiçek et al., "3D U-Net: learning dense volumetric segmentation from sparse
       annotation", MICCAI 2016. https://doi.org/10.1007/978-3-319-46723-8_49
    """

    def __init__(self, in_channels, n_classes, features=(16, 32, 64, 128), ndim=2):
        super().__init__()
        if ndim not in (2, 3):
            raise ValueError(f"ndim must be 2 or 3, got {ndim!r}")
        features = [int(f) for f in features]
        if len(features) < 2 or min(features) < 1:
            raise ValueError(f"features must hold at least two positive channel counts, got {features}")
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        norm = nn.BatchNorm2d if ndim == 2 else nn.BatchNorm3d
        up = nn.ConvTranspose2d if ndim == 2 else nn.ConvTranspose3d
        self.ndim = ndim
        self.in_channels = int(in_channels)
        self.n_classes = int(n_classes)
        self.features = tuple(features)
        self.down = nn.ModuleList()
        c = self.in_channels
        for f in features:
            self.down.append(_Block(conv, norm, c, f))
            c = f
        self.pool = nn.MaxPool2d(2) if ndim == 2 else nn.MaxPool3d(2)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for f in reversed(features[:-1]):
            self.up.append(up(c, f, 2, stride=2))
            self.dec.append(_Block(conv, norm, 2 * f, f))
            c = f
        self.head = conv(c, self.n_classes, 1)

    @property
    def multiple(self):
        """Patch sides must be multiples of this."""
        return 2 ** (len(self.features) - 1)

    def forward(self, x):
        skips = []
        for k, block in enumerate(self.down):
            x = block(x)
            if k < len(self.down) - 1:
                skips.append(x)
                x = self.pool(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x)
