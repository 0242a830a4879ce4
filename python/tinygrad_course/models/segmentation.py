"""Encoder-decoder for binary segmentation (COURSE.md section 6, the horizon / sky task).

A small U-Net: each encoder stage is two 3x3 convolutions with batch norm and ReLU followed by 2x2
max-pooling; the decoder upsamples (nearest, x2), concatenates the encoder's features of the same
resolution (skip connection) and applies two more conv-BN-ReLU blocks; a 1x1 convolution gives one
logit per pixel. Input (N, in_channels, H, W) with H and W divisible by 2**len(widths[:-1]);
output (N, 1, H, W) logits (use BCEWithLogits / Dice / focal losses on them).
"""
from __future__ import annotations

from .. import nn
from ..tensor import concat


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class SegNet(nn.Module):
    """U-Net style encoder-decoder; `widths` are the channel counts per resolution, deepest last."""

    def __init__(self, in_channels: int = 3, widths=(16, 32, 64), upsample: str = "nearest"):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) < 2:
            raise ValueError(f"SegNet: need at least two widths (one pooling), got {widths}")
        self.levels = len(widths) - 1
        self.encoders = nn.ModuleList([_block(c_in, c_out)
                                       for c_in, c_out in zip((in_channels,) + widths[:-2], widths[:-1])])
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _block(widths[-2], widths[-1])
        self.up = nn.Upsample(scale_factor=2, mode=upsample)
        self.decoders = nn.ModuleList([_block(deep + skip, skip)
                                       for deep, skip in zip(widths[:0:-1], widths[-2::-1])])
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x):
        factor = 2 ** self.levels
        if x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(f"SegNet: input height and width must be divisible by {factor}, got {x.shape}")
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for decoder, skip in zip(self.decoders, reversed(skips)):
            x = decoder(concat([self.up(x), skip], axis=1))
        return self.head(x)
