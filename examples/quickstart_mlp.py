"""Quickstart: a multilayer perceptron on FashionMNIST, PyTorch style.

nn.Flatten followed by an nn.Sequential of Linear/ReLU layers, trained with
nn.CrossEntropyLoss and plain SGD; the state dict is saved, loaded into a fresh
model, and that model is tested again.

Run from the repository root:

    python examples/quickstart_mlp.py --data-root ../shared/datasets --epochs 5
    python examples/quickstart_mlp.py --synthetic 1024 --epochs 1 --max-batches 16   # no data needed

Lines that differ from the PyTorch version (only imports and data set lines):

    import tinygrad_course as torch                          # was: import torch
    from tinygrad_course import nn                           # was: from torch import nn
    from tinygrad_course.utils.data import DataLoader, ...   # was: from torch.utils.data import DataLoader
    from tinygrad_course.data import FashionMNIST, ToTensor  # was: from torchvision import datasets / transforms
    FashionMNIST(root=..., train=..., download=False, transform=ToTensor())  # was: datasets.FashionMNIST(...)
"""
import argparse

import tinygrad_course as torch
from tinygrad_course import nn
from tinygrad_course.utils.data import DataLoader, Subset, TensorDataset
from tinygrad_course.data import FashionMNIST, ToTensor


class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 10),
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


def synthetic_fashion(n, seed):
    """n random 1x28x28 images in [0, 1]; each class adds its own fixed pattern."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(1234))
    y = torch.randint(0, 10, (n,), generator=g)
    X = 0.5 * torch.rand(n, 1, 28, 28, generator=g) + 0.5 * patterns[y]
    return TensorDataset(X, y)


def train(dataloader, model, loss_fn, optimizer, device, max_batches=0):
    size = len(dataloader.dataset)
    model.train()
    for batch, (X, y) in enumerate(dataloader):
        if max_batches and batch >= max_batches:
            break
        X, y = X.to(device), y.to(device)

        pred = model(X)
        loss = loss_fn(pred, y)

        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

        if batch % 10 == 0:
            loss, current = loss.item(), (batch + 1) * len(X)
            print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")


def test(dataloader, model, loss_fn, device):
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    model.eval()
    test_loss, correct = 0, 0
    with torch.no_grad():
        for X, y in dataloader:
            X, y = X.to(device), y.to(device)
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    test_loss /= num_batches
    correct /= size
    print(f"Test Error: \n Accuracy: {(100 * correct):>0.1f}%, Avg loss: {test_loss:>8f} \n")
    return test_loss, correct


def main():
    parser = argparse.ArgumentParser(description="FashionMNIST MLP quickstart")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", default="../shared/datasets")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N",
                        help="train on N generated images (and N // 4 test images) instead of FashionMNIST")
    parser.add_argument("--max-batches", type=int, default=0, metavar="K", help="cap each epoch at K batches")
    parser.add_argument("--train-size", type=int, default=0, help="use only the first N training images")
    parser.add_argument("--test-size", type=int, default=0, help="use only the first N test images")
    parser.add_argument("--model-path", default="model.pth", help="where the state dict is saved")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"Using {device} device")

    if args.synthetic:
        training_data = synthetic_fashion(args.synthetic, args.seed)
        test_data = synthetic_fashion(max(args.synthetic // 4, 1), args.seed + 1)
    else:
        training_data = FashionMNIST(root=args.data_root, train=True, download=False, transform=ToTensor())
        test_data = FashionMNIST(root=args.data_root, train=False, download=False, transform=ToTensor())
        if args.train_size:
            training_data = Subset(training_data, range(args.train_size))
        if args.test_size:
            test_data = Subset(test_data, range(args.test_size))

    train_dataloader = DataLoader(training_data, batch_size=args.batch_size, shuffle=True)
    test_dataloader = DataLoader(test_data, batch_size=args.batch_size)

    model = NeuralNetwork().to(device)
    print(model)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)

    for t in range(args.epochs):
        print(f"Epoch {t + 1}\n-------------------------------")
        train(train_dataloader, model, loss_fn, optimizer, device, args.max_batches)
        test(test_dataloader, model, loss_fn, device)
    print("Done!")

    torch.save(model.state_dict(), args.model_path)
    print(f"Saved PyTorch Model State to {args.model_path}")
    model = NeuralNetwork().to(device)
    model.load_state_dict(torch.load(args.model_path, weights_only=True))
    test_loss, accuracy = test(test_dataloader, model, loss_fn, device)
    print(f"final test loss {test_loss:.4f} accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
