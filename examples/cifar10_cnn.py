"""Train the classic small CIFAR-10 convnet (LeNet-style) with SGD and momentum.

Network: conv 3->6 (5x5), max pool 2x2, conv 6->16 (5x5), max pool 2x2, then fully connected
layers 400->120->84->10, ReLU in between, nn.CrossEntropyLoss. Images are scaled to [-1, 1]
with ToTensor + Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)). At the end the script prints
the accuracy for each of the ten classes.

Run (from the repository root):

    python examples/cifar10_cnn.py --data-root ../shared/datasets --epochs 2
    python examples/cifar10_cnn.py --synthetic 512 --epochs 1 --max-batches 20   # no data needed

Differences from the PyTorch version: only the imports
(`import tinygrad_course as torch`, `from tinygrad_course import nn, optim`,
`import tinygrad_course.nn.functional as F`, `from tinygrad_course.utils.data import ...`)
and the dataset lines (`tinygrad_course.data.CIFAR10`, `ToTensor`, `Normalize`, `Compose`
instead of torchvision's).
"""
import argparse

import tinygrad_course as torch
from tinygrad_course import nn, optim
import tinygrad_course.nn.functional as F
from tinygrad_course.utils.data import DataLoader, Subset, TensorDataset
from tinygrad_course.data import CIFAR10, Compose, Normalize, ToTensor

classes = ('plane', 'car', 'bird', 'cat', 'deer',
           'dog', 'frog', 'horse', 'ship', 'truck')


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def synthetic_datasets(n, seed):
    """A learnable random stand-in for CIFAR-10: each class is a fixed random image plus noise."""
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.randn((10, 3, 32, 32), generator=g)

    def make(count):
        labels = torch.randint(0, 10, (count,), generator=g)
        images = prototypes[labels] + 0.5 * torch.randn((count, 3, 32, 32), generator=g)
        return TensorDataset(images, labels)

    return make(n), make(max(n // 4, 10))


def train(args, model, device, train_loader, optimizer, criterion, epoch):
    model.train()
    running_loss = 0.0
    for batch_idx, (data, target) in enumerate(train_loader):
        if args.max_batches and batch_idx >= args.max_batches:
            break
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        outputs = model(data)
        loss = criterion(outputs, target)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
        if (batch_idx + 1) % args.log_interval == 0:
            print(f'[epoch {epoch}, batch {batch_idx + 1:5d}] train loss: {running_loss / args.log_interval:.4f}')
            running_loss = 0.0


def test(model, device, test_loader, criterion):
    model.eval()
    test_loss = 0.0
    correct = 0
    total = 0
    correct_pred = {classname: 0 for classname in classes}
    total_pred = {classname: 0 for classname in classes}
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            outputs = model(data)
            test_loss += criterion(outputs, target).item() * target.size(0)
            _, predicted = torch.max(outputs, 1)
            total += target.size(0)
            correct += (predicted == target).sum().item()
            for label, prediction in zip(target, predicted):
                if label == prediction:
                    correct_pred[classes[label]] += 1
                total_pred[classes[label]] += 1
    test_loss /= total
    print(f'Test set: average loss {test_loss:.4f}, accuracy {correct}/{total} ({100 * correct / total:.1f}%)')
    return test_loss, correct / total, correct_pred, total_pred


def main():
    parser = argparse.ArgumentParser(description='CIFAR-10 small convnet')
    parser.add_argument('--batch-size', type=int, default=4, help='training batch size (default: 4)')
    parser.add_argument('--test-batch-size', type=int, default=1000, help='test batch size (default: 1000)')
    parser.add_argument('--epochs', type=int, default=2, help='number of epochs (default: 2)')
    parser.add_argument('--lr', type=float, default=0.001, help='learning rate (default: 0.001)')
    parser.add_argument('--momentum', type=float, default=0.9, help='SGD momentum (default: 0.9)')
    parser.add_argument('--seed', type=int, default=1, help='random seed (default: 1)')
    parser.add_argument('--log-interval', type=int, default=2000, help='batches between loss prints')
    parser.add_argument('--data-root', default='./data', help='folder holding cifar-10/')
    parser.add_argument('--download', action='store_true', help='download CIFAR-10 if missing')
    parser.add_argument('--synthetic', type=int, default=0, metavar='N',
                        help='train on N generated images instead of CIFAR-10')
    parser.add_argument('--train-subset', type=int, default=0, metavar='N', help='use only the first N training images')
    parser.add_argument('--test-subset', type=int, default=0, metavar='N', help='use only the first N test images')
    parser.add_argument('--max-batches', type=int, default=0, metavar='K', help='stop each epoch after K batches')
    parser.add_argument('--save-model', default='cifar_net.pth', help='where to save the weights ("" to skip)')
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')

    if args.synthetic:
        trainset, testset = synthetic_datasets(args.synthetic, args.seed)
    else:
        transform = Compose([ToTensor(), Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
        trainset = CIFAR10(root=args.data_root, train=True, download=args.download, transform=transform)
        testset = CIFAR10(root=args.data_root, train=False, download=args.download, transform=transform)
    if args.train_subset:
        trainset = Subset(trainset, range(min(args.train_subset, len(trainset))))
    if args.test_subset:
        testset = Subset(testset, range(min(args.test_subset, len(testset))))

    train_loader = DataLoader(trainset, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(testset, batch_size=args.test_batch_size, shuffle=False)

    model = Net().to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)

    for epoch in range(1, args.epochs + 1):
        train(args, model, device, train_loader, optimizer, criterion, epoch)
        test(model, device, test_loader, criterion)
    print('Finished Training')

    if args.save_model:
        torch.save(model.state_dict(), args.save_model)
        model = Net().to(device)
        model.load_state_dict(torch.load(args.save_model))

    test_loss, accuracy, correct_pred, total_pred = test(model, device, test_loader, criterion)
    for classname, correct_count in correct_pred.items():
        if total_pred[classname]:
            print(f'Accuracy for class: {classname:5s} is {100 * correct_count / total_pred[classname]:.1f} %')
    print(f'final test loss {test_loss:.4f} accuracy {accuracy:.4f}')


if __name__ == '__main__':
    main()
