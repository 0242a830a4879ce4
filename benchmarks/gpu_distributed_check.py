"""Check of tinygrad_course.distributed on real GPUs (NCCL), by hand; not a test (the tests run NCCL's
emulation only, having no GPU). One process per GPU:

    mpiexec -n <number of GPUs> python benchmarks/gpu_distributed_check.py

Checks, printed by rank 0 as PASS/FAIL: all_reduce (each op, several dtypes) and broadcast on "cuda"
tensors through cupy.cuda.nccl equal the same collectives on CPU tensors through MPI; three SGD steps
of DistributedDataParallel on "cuda" (float64, small buckets: side-stream reductions during backward)
give the parameters of one process on the concatenated batch (1e-10). Exits 1 on any FAIL.
"""
import sys

import numpy as np

import tinygrad_course as tg
import tinygrad_course.distributed as dist
from tinygrad_course import nn, optim

dist.init_process_group("nccl")  # selects GPU local_rank % GPUs before any cuda tensor
r, n = dist.get_rank(), dist.get_world_size()
results = []

for dtype, ops in (("float32", ["sum", "avg", "product", "min", "max"]), ("float64", ["sum", "avg"]),
                   ("int32", ["sum", "max"]), ("int64", ["min"]), ("uint8", ["max"])):
    for op in ops:
        x = (np.random.default_rng(r).random(1 << 16) * 4).astype(dtype)
        gpu, cpu = tg.tensor(x, device="cuda"), tg.tensor(x)
        dist.all_reduce(gpu, op)
        dist.all_reduce(cpu, op)
        ok = np.allclose(gpu.cpu().numpy(), cpu.numpy(), rtol=1e-5 if dtype == "float32" else 1e-12)
        results.append((f"all_reduce {op} {dtype}", ok))
b = tg.tensor(np.full(1000, float(r)), device="cuda")
dist.broadcast(b, src=n - 1)
results.append(("broadcast", bool(np.all(b.cpu().numpy() == n - 1))))


def model(seed):
    tg.manual_seed(seed)
    return nn.Sequential(nn.Linear(32, 64, dtype="float64"), nn.Tanh(), nn.Linear(64, 10, dtype="float64")).cuda()


def train(net, ranks):
    opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for step in range(3):
        rngs = [np.random.default_rng(1000 * step + k) for k in ranks]
        x = tg.tensor(np.concatenate([g.standard_normal((8, 32)) for g in rngs]), device="cuda")
        y = tg.tensor(np.concatenate([g.integers(0, 10, 8) for g in rngs]), device="cuda")
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()


ddp = dist.DistributedDataParallel(model(seed=r), bucket_cap_mb=0.01)
train(ddp, [r])
whole = model(seed=0)
train(whole, range(n))
diff = max(float(abs(a.detach() - b.detach()).max().item()) for a, b in zip(ddp.parameters(), whole.parameters()))
results.append((f"DDP 3 steps vs one process ({len(ddp.buckets())} buckets, max diff {diff:.1e})", diff < 1e-10))

flags = tg.tensor(np.array([int(all(ok for _, ok in results))], dtype=np.int32))
dist.all_reduce(flags, dist.ReduceOp.MIN)  # every rank's verdict
if r == 0:
    for name, ok in results:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    print(f"{'PASS' if flags.item() else 'FAIL'}  all {n} ranks")
sys.exit(0 if flags.item() else 1)
