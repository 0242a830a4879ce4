"""A character-level MLP language model (Bengio et al. 2003 style) that learns to make up names.

Each training example is a context of --block-size characters (27 symbols: '.' marks the start
and end of a word, then a-z) and the character that follows. Characters are looked up in an
embedding table C (27 x --emb-dim), concatenated, passed through a tanh hidden layer and a
linear layer to 27 logits, and trained with F.cross_entropy by plain SGD written by hand over
a list of parameters. The words come from a text file (one per line, --words) or, without
one, from a small list the script generates itself. At the end it samples new words with
torch.multinomial.

Run (from the repository root):

    python examples/char_mlp.py --words names.txt --steps 20000
    python examples/char_mlp.py --synthetic 2000 --epochs 1 --max-batches 500   # generated words

Differences from the PyTorch version: only the imports (`import tinygrad_course as torch`,
`import tinygrad_course.nn.functional as F`). There is no dataset to download; --data-root is
accepted for symmetry with the other examples and only used to find --words when that path is
relative and not found in the current folder.
"""
import argparse
import os
import random

import tinygrad_course as torch
import tinygrad_course.nn.functional as F

SYLLABLES = ['an', 'el', 'ma', 'ri', 'to', 'la', 'ne', 'ka', 'li', 'so', 'da', 'mi', 'ra', 'jo', 'be', 'ni']
ENDINGS = ['', 'a', 'n', 'e', 'y', 'o', 'ia', 'us']


def generate_words(n, seed):
    """A made-up, learnable word list: 2-3 syllables from a small set plus an ending."""
    rng = random.Random(seed)
    return [''.join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))) + rng.choice(ENDINGS)
            for _ in range(n)]


def build_dataset(words, stoi, block_size):
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + '.':
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X), torch.tensor(Y)


def main():
    parser = argparse.ArgumentParser(description='character-level MLP language model')
    parser.add_argument('--words', default='', help='text file with one word per line (default: generated words)')
    parser.add_argument('--data-root', default='.', help='folder to look for --words in')
    parser.add_argument('--synthetic', type=int, default=2000, metavar='N', help='number of words to generate')
    parser.add_argument('--block-size', type=int, default=3, help='context length (default: 3)')
    parser.add_argument('--emb-dim', type=int, default=10, help='embedding size (default: 10)')
    parser.add_argument('--hidden', type=int, default=200, help='hidden units (default: 200)')
    parser.add_argument('--batch-size', type=int, default=32, help='minibatch size (default: 32)')
    parser.add_argument('--epochs', type=int, default=1, help='number of epochs (default: 1)')
    parser.add_argument('--max-batches', type=int, default=0, metavar='K', help='stop each epoch after K batches')
    parser.add_argument('--lr', type=float, default=0.1, help='learning rate (default: 0.1)')
    parser.add_argument('--seed', type=int, default=2147483647, help='random seed')
    parser.add_argument('--log-interval', type=int, default=100, help='steps between loss prints')
    parser.add_argument('--num-samples', type=int, default=10, help='words to sample at the end')
    parser.add_argument('--save-model', default='char_mlp.pth', help='where to save the parameters ("" to skip)')
    args = parser.parse_args()

    if args.words:
        path = args.words
        if not os.path.exists(path):
            path = os.path.join(args.data_root, path)
        with open(path) as f:
            words = [w.strip().lower() for w in f if w.strip()]
        words = [w for w in words if w.isalpha() and w.isascii()]
    else:
        words = generate_words(args.synthetic, args.seed)

    chars = sorted(set(''.join(words)) | set('abcdefghijklmnopqrstuvwxyz'))
    stoi = {s: i + 1 for i, s in enumerate(chars)}
    stoi['.'] = 0
    itos = {i: s for s, i in stoi.items()}
    vocab_size = len(itos)

    random.seed(args.seed)
    random.shuffle(words)
    n1 = int(0.8 * len(words))
    n2 = int(0.9 * len(words))
    Xtr, Ytr = build_dataset(words[:n1], stoi, args.block_size)
    Xdev, Ydev = build_dataset(words[n1:n2], stoi, args.block_size)
    Xte, Yte = build_dataset(words[n2:], stoi, args.block_size)
    print(f'{len(words)} words, {vocab_size} characters, {Xtr.shape[0]} training examples')

    g = torch.Generator().manual_seed(args.seed)
    C = torch.randn((vocab_size, args.emb_dim), generator=g)
    W1 = torch.randn((args.block_size * args.emb_dim, args.hidden), generator=g) * 0.2
    b1 = torch.randn(args.hidden, generator=g) * 0.01
    W2 = torch.randn((args.hidden, vocab_size), generator=g) * 0.01
    b2 = torch.randn(vocab_size, generator=g) * 0
    parameters = [C, W1, b1, W2, b2]
    print(f'{sum(p.nelement() for p in parameters)} parameters')
    for p in parameters:
        p.requires_grad = True

    def forward(X):
        emb = C[X]                                   # (B, block_size, emb_dim)
        h = torch.tanh(emb.view(emb.shape[0], -1) @ W1 + b1)
        return h @ W2 + b2

    def evaluate(X, Y):
        with torch.no_grad():
            logits = forward(X)
            loss = F.cross_entropy(logits, Y)
            pred = logits.argmax(dim=1)
            return loss.item(), (pred == Y).sum().item() / Y.shape[0]

    steps_per_epoch = max(1, Xtr.shape[0] // args.batch_size)
    if args.max_batches:
        steps_per_epoch = min(steps_per_epoch, args.max_batches)
    total_steps = steps_per_epoch * args.epochs
    step = 0
    for epoch in range(1, args.epochs + 1):
        running = 0.0
        for i in range(steps_per_epoch):
            ix = torch.randint(0, Xtr.shape[0], (args.batch_size,), generator=g)
            logits = forward(Xtr[ix])
            loss = F.cross_entropy(logits, Ytr[ix])

            for p in parameters:
                p.grad = None
            loss.backward()

            lr = args.lr if step < total_steps // 2 else args.lr / 10   # step decay halfway
            for p in parameters:
                p.data += -lr * p.grad
            step += 1

            running += loss.item()
            if (i + 1) % args.log_interval == 0:
                print(f'epoch {epoch} step {i + 1:6d}/{steps_per_epoch}: train loss {running / args.log_interval:.4f}')
                running = 0.0
        dev_loss, dev_acc = evaluate(Xdev, Ydev)
        print(f'epoch {epoch}: dev loss {dev_loss:.4f} accuracy {dev_acc:.4f}')

    if args.save_model:
        torch.save({'C': C, 'W1': W1, 'b1': b1, 'W2': W2, 'b2': b2}, args.save_model)
        state = torch.load(args.save_model)
        C, W1, b1, W2, b2 = state['C'], state['W1'], state['b1'], state['W2'], state['b2']

    g = torch.Generator().manual_seed(args.seed + 10)
    for _ in range(args.num_samples):
        out = []
        context = [0] * args.block_size
        while True:
            with torch.no_grad():
                logits = forward(torch.tensor([context]))
            probs = F.softmax(logits, dim=1)
            ix = torch.multinomial(probs, num_samples=1, generator=g).item()
            context = context[1:] + [ix]
            if ix == 0 or len(out) > 30:
                break
            out.append(itos[ix])
        print(''.join(out))

    test_loss, test_acc = evaluate(Xte, Yte)
    print(f'final test loss {test_loss:.4f} accuracy {test_acc:.4f}')


if __name__ == '__main__':
    main()
