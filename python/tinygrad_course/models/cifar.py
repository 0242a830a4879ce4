"""The CIFAR-10 network of COURSE.md section 3, the one every step of the improvement ladder modifies.

    conv 3->32 5x5 pad 2, [BN], ReLU, max-pool 2      32x32x32 -> 16x16x32
    conv 32->64 5x5 pad 2, [BN], ReLU, max-pool 2     16x16x64 -> 8x8x64
    conv 64->64 5x5 pad 2, [BN], ReLU, max-pool 2     8x8x64   -> 4x4x64
    flatten, fc 1024->1000, ReLU, [Dropout(p)], fc 1000->10 (logits; softmax inside the loss)

With the defaults it has 1,191,170 parameters (1,191,010 without the conv
biases, the figure the course reports); batch_norm=True adds 2 x 160 affine
parameters (and running statistics as buffers). `in_channels=1,
image_size=28` gives the MNIST variant the course trains first (fc1 then
sees 3x3x64 = 576 features, since each pooling floors odd sizes).
"""
from __future__ import annotations

from .. import nn

CONV_CHANNELS = (32, 64, 64)
KERNEL_SIZE = 5
FC_HIDDEN = 1000


def _feature_size(image_size: int, n_pools: int = len(CONV_CHANNELS)) -> int:
    """Spatial size after the "same" convolutions and `n_pools` 2x2 poolings (each floors)."""
    for _ in range(n_pools):
        image_size //= 2
    return image_size


class CifarNet(nn.Module):
    """Three 5x5 "same" convolutions with ReLU and 2x2 max-pooling, then two fully connected layers.

    Args:
        batch_norm: BatchNorm2d after each convolution, before its ReLU (the last ladder step).
        dropout: if > 0, Dropout(p=dropout) before the last fully connected layer (off in eval()).
        num_classes, in_channels, image_size: 10, 3 and 32 for CIFAR-10.

    Submodules: `features` (the convolution blocks) and `classifier` (flatten and the fc layers),
    both `nn.Sequential`. Input (N, in_channels, image_size, image_size), output (N, num_classes) logits.
    """

    def __init__(self, batch_norm: bool = False, dropout: float = 0.0, num_classes: int = 10,
                 in_channels: int = 3, image_size: int = 32):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"CifarNet: dropout must be in [0, 1), got {dropout}")
        side = _feature_size(image_size)
        if side < 1:
            raise ValueError(f"CifarNet: image_size={image_size} is too small for three 2x2 poolings")
        self.batch_norm, self.dropout = bool(batch_norm), float(dropout)
        self.num_classes, self.in_channels, self.image_size = num_classes, in_channels, image_size

        layers = []
        c_in = in_channels
        for c_out in CONV_CHANNELS:
            layers.append(nn.Conv2d(c_in, c_out, KERNEL_SIZE, padding=KERNEL_SIZE // 2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers += [nn.ReLU(), nn.MaxPool2d(2, 2)]
            c_in = c_out
        self.features = nn.Sequential(*layers)

        head = [nn.Flatten(), nn.Linear(c_in * side * side, FC_HIDDEN), nn.ReLU()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(FC_HIDDEN, num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x):
        return self.classifier(self.features(x))

    def extra_repr(self) -> str:
        return (f"batch_norm={self.batch_norm}, dropout={self.dropout}, num_classes={self.num_classes}, "
                f"in_channels={self.in_channels}, image_size={self.image_size}")
