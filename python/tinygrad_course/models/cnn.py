"""Convolutional classifiers of the course besides CifarNet: the MNIST CNN and the homework CNN."""
from __future__ import annotations

from .. import nn
from .mlp import activation


class MnistCNN(nn.Module):
    """COURSE.md section 2's CNN: conv -> pool -> ReLU (twice), then fully connected layers.

        conv 1->32 5x5 pad 2, max-pool 2, ReLU      28x28 -> 14x14x32
        conv 32->64 5x5 pad 2, max-pool 2, ReLU     14x14 -> 7x7x64
        flatten, fc 3136->128, ReLU, fc 128->10 (logits)

    454,922 parameters. Input (N, 1, 28, 28).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, hidden: int = 128):
        super().__init__()
        side = image_size // 4
        if side < 1:
            raise ValueError(f"MnistCNN: image_size={image_size} is too small for two 2x2 poolings")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(32, 64, 5, padding=2), nn.MaxPool2d(2), nn.ReLU())
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64 * side * side, hidden), nn.ReLU(),
                                        nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


HOMEWORK_FILTERS = (64, 128, 128, 256, 256)
POOL_AFTER = (0, 2, 4)  # 2x2 max-pool after the 1st, 3rd and 5th convolution


class HomeworkCNN(nn.Module):
    """COURSE.md section 5, part 2: five 3x3 "same" convolutions ([64, 128, 128, 256, 256] filters by default),
    each [-> BatchNorm2d] -> activation, with 2x2 max-pooling after the 1st, 3rd and 5th, then three dense
    layers (dense[0] -> dense[1] -> classes) with Dropout(dropout) before each of the first two.
    L2 regularisation is the optimiser's weight_decay. `filters` gives the "fewer filters" variant.

    Input (N, in_channels, image_size, image_size); 28x28 (Fashion-MNIST) ends at 3x3, 32x32 (CIFAR-10) at 4x4.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28,
                 filters=HOMEWORK_FILTERS, dense=(256, 128), act: str = "relu", batch_norm: bool = False,
                 dropout: float = 0.5):
        super().__init__()
        filters = tuple(int(f) for f in filters)
        if len(filters) != 5 or min(filters) < 1:
            raise ValueError(f"HomeworkCNN: filters must be 5 positive channel counts, got {filters}")
        side = image_size
        for _ in POOL_AFTER:
            side //= 2
        if side < 1:
            raise ValueError(f"HomeworkCNN: image_size={image_size} is too small for three 2x2 poolings")
        layers, c_in = [], in_channels
        for i, c_out in enumerate(filters):
            layers.append(nn.Conv2d(c_in, c_out, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(activation(act))
            if i in POOL_AFTER:
                layers.append(nn.MaxPool2d(2))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        head, n_in = [nn.Flatten()], c_in * side * side
        for width in dense:
            if dropout > 0:
                head.append(nn.Dropout(dropout))
            head += [nn.Linear(n_in, width), activation(act)]
            n_in = width
        head.append(nn.Linear(n_in, num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x):
        return self.classifier(self.features(x))


def parameter_count_formula(filters, in_channels: int, dense_sizes, kernel: int = 3) -> int:
    """The course's count: conv (kh*kw*c_in + 1) * c_out, dense (n_in + 1) * n_out, summed (no batch norm)."""
    total, c_in = 0, in_channels
    for c_out in filters:
        total += (kernel * kernel * c_in + 1) * c_out
        c_in = c_out
    for n_in, n_out in zip(dense_sizes[:-1], dense_sizes[1:]):
        total += (n_in + 1) * n_out
    return total
