"""Train a small convolutional network on MNIST, PyTorch style.

Two 3x3 convolutions, 2x2 max pooling, dropout and two linear layers ending in
log_softmax, trained with F.nll_loss and Adadelta (learning rate decayed by
StepLR each epoch). Inputs are ToTensor + Normalize((0.1307,), (0.3081,)).

Run from the repository root:

    python examples/mnist_cnn.py --data-root ../shared/datasets --epochs 1
    python examples/mnist_cnn.py --synthetic 512 --epochs 1 --max-batches 8   # no data needed

Lines that differ from the PyTorch version (only imports and data set lines):

    import tinygrad_course as torch                      # was: import torch
    from tinygrad_course import nn, optim                # was: import torch.nn as nn / torch.optim as optim
    import tinygrad_course.nn.functional as F            # was: import torch.nn.functional as F
    from tinygrad_course.optim.lr_scheduler import StepLR    # was: from torch.optim.lr_scheduler import StepLR
    from tinygrad_course.utils.data import ...           # was: from torch.utils.data import ...
    from tinygrad_course.data import MNIST, ...          # was: from torchvision import datasets, transforms
    MNIST(...), Compose/ToTensor/Normalize(...)          # was: datasets.MNIST(...), transforms.Compose(...) ...
"""
import argparse

import tinygrad_course as torch
from tinygrad_course import nn, optim
import tinygrad_course.nn.functional as F
from tinygrad_course.optim.lr_scheduler import StepLR
from tinygrad_course.utils.data import DataLoader, Subset, TensorDataset
from tinygrad_course.data import MNIST, Compose, Normalize, ToTensor


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, 1)
        self.conv2 = nn.Conv2d(16, 32, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(32 * 12 * 12, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


def synthetic_mnist(n, seed):
    """n random 1x28x28 images whose label is written into the picture (a bright block per class)."""
    g = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, 10, (n,), generator=g)
    images = torch.rand(n, 1, 28, 28, generator=g) * 0.3
    for i in range(n):
        c = int(targets[i])
        images[i, 0, 2 * c + 2:2 * c + 6, 4:24] = 1.0
    images = (images - 0.1307) / 0.3081
    return TensorDataset(images, targets)


def train(args, model, device, train_loader, optimizer, epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        if args.max_batches and batch_idx >= args.max_batches:
            break
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        if batch_idx % args.log_interval == 0:
            print(f"Train Epoch: {epoch} [{batch_idx * len(data)}/{len(train_loader.dataset)} "
                  f"({100.0 * batch_idx / len(train_loader):.0f}%)]\tLoss: {loss.item():.6f}")


def test(model, device, test_loader):
    model.eval()
    test_loss = 0.0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    n = len(test_loader.dataset)
    test_loss /= n
    accuracy = correct / n
    print(f"\nTest set: Average loss: {test_loss:.4f}, Accuracy: {correct}/{n} ({100.0 * accuracy:.0f}%)\n")
    return test_loss, accuracy


def main():
    parser = argparse.ArgumentParser(description="MNIST CNN example")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--test-batch-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--gamma", type=float, default=0.7, help="StepLR decay per epoch")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-accel", action="store_true", help="train on the CPU even if a GPU is usable")
    parser.add_argument("--log-interval", type=int, default=10)
    parser.add_argument("--data-root", default="../shared/datasets")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N",
                        help="train on N generated images (and N // 4 test images) instead of MNIST")
    parser.add_argument("--max-batches", type=int, default=0, metavar="K", help="cap each epoch at K batches")
    parser.add_argument("--train-size", type=int, default=0, help="use only the first N training images")
    parser.add_argument("--test-size", type=int, default=0, help="use only the first N test images")
    parser.add_argument("--save-model", default="", metavar="PATH", help="save the state dict there and reload it")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    use_accel = not args.no_accel and torch.accelerator.is_available()
    device = torch.accelerator.current_accelerator() if use_accel else torch.device("cpu")
    print(f"Using {device} device")

    if args.synthetic:
        train_set = synthetic_mnist(args.synthetic, args.seed)
        test_set = synthetic_mnist(max(args.synthetic // 4, 1), args.seed + 1)
    else:
        transform = Compose([ToTensor(), Normalize((0.1307,), (0.3081,))])
        train_set = MNIST(args.data_root, train=True, download=False, transform=transform)
        test_set = MNIST(args.data_root, train=False, transform=transform)
        if args.train_size:
            train_set = Subset(train_set, range(args.train_size))
        if args.test_size:
            test_set = Subset(test_set, range(args.test_size))
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=args.test_batch_size)

    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    for epoch in range(1, args.epochs + 1):
        train(args, model, device, train_loader, optimizer, epoch)
        test(model, device, test_loader)
        scheduler.step()

    if args.save_model:
        torch.save(model.state_dict(), args.save_model)
        model = Net().to(device)
        model.load_state_dict(torch.load(args.save_model))
    test_loss, accuracy = test(model, device, test_loader)
    print(f"final test loss {test_loss:.4f} accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
