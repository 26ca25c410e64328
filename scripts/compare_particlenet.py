"""Our ParticleNet / ParticleNet-Lite (JAX, dense per jet) vs a PyTorch ParticleNet, same device, one run.

    python scripts/compare_particlenet.py                       # batch 128, 80 constituents, 7 features
    python scripts/compare_particlenet.py --models particlenet_lite --repeats 5 --json out.json

The PyTorch model is written here from the paper (Qu & Gouskos 2019) in the layout of
weaver-core's ParticleNet: input BatchNorm, EdgeConv blocks of 1x1 Conv2d + BatchNorm + ReLU on
[x_i, x_j - x_i] over the k nearest neighbours (kNN by topk of the pairwise distance matrix, the
first block in (d eta, d phi), later ones in feature space, padded constituents pushed far away),
mean over neighbours, a Conv1d + BatchNorm shortcut, ReLU; masked global average pooling; FC
with dropout; two-class softmax cross-entropy, Adam. Ours is the engine's own train step
(`make_train_step` with the 'jet' task, through the one-device data-parallel wrapper, as
`gnntrack train` runs it) and a jitted forward pass for inference.

Both see the same jets: the hardest 80 constituents' 7 features of the jets in --jets (files
`gnntrack.jets.formats` reads; default: random jets with all 80 constituents real, the cost
ceiling). Times are medians over --repeats after --warmup calls, per batch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import jax
import numpy as np

from gnntrack.graphs import batching as B
from gnntrack.jets.graphs import jet_graph, jet_inputs, read_all
from gnntrack.nn import build_model, default_model_config
from gnntrack.tasks import default_task_config, make_task
from gnntrack.train import optim, parallel, state as S, step as T

SIZES = {  # name -> (k, EdgeConv channels, FC width): the paper's Table 1
    "particlenet": (16, ((64, 64, 64), (128, 128, 128), (256, 256, 256)), 256),
    "particlenet_lite": (7, ((32, 32, 32), (64, 64, 64)), 128),
}


def jet_arrays(paths, n_jets: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features float32 [J, n, 7], mask bool [J, n], labels [J]) of real jets or random ones."""
    if paths:
        jets, _ = read_all(paths)
        pick = np.random.default_rng(seed).permutation(len(jets))[:n_jets]
        features, mask = jet_inputs(jets, n, "particlenet7")
        return features[pick], mask[pick], jets.label[pick].astype(np.int64)
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n_jets, n, 7)).astype(np.float32), np.ones((n_jets, n), bool),
            rng.integers(0, 2, n_jets))


def timed(fn, warmup: int, repeats: int, label: str = "") -> float:
    """Median seconds of fn() (which must block until its result is ready). With a label, the
    first warm-up call's time (compilation included) is printed at once, so a run stopped by a
    time limit still shows how far it got."""
    for i in range(warmup):
        t0 = time.perf_counter()
        fn()
        if label and i == 0:
            print(f"  {label}: first call {time.perf_counter() - t0:.2f} s (compilation included)", flush=True)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ------------------------------------------------------------------------------------ ours (JAX)


def ours(name: str, features, mask, labels, warmup: int, repeats: int) -> dict:
    model_cfg = default_model_config(name)
    model_cfg.max_constituents = features.shape[1]
    model = build_model(model_cfg)
    task = make_task(default_task_config("jet"))
    graphs = [jet_graph(features[i], mask[i], np.array([labels[i], 1.0]), i) for i in range(len(labels))]
    bcfg = B.default_batching_config()
    bcfg.graphs_per_step, bcfg.max_buckets, bcfg.shuffle = len(graphs), 1, False
    batch = next(B.batch_iterator(graphs, bcfg, 1))
    ocfg = optim.default_optimizer_config()
    ocfg.name = "adam"
    tx, lr_fn = optim.make_optimizer(ocfg, len(graphs))
    pcfg = parallel.default_parallel_config()
    pcfg.n_devices = 1
    dp = parallel.DataParallel(pcfg)
    step = dp.train_step(T.make_train_step(model, tx, None, dp.axis_name, lr_fn=lr_fn, task=task))
    state = dp.put_state(S.init_train_state(model, tx, S.device_slice(batch.graph), seed=0))
    device_batch = dp.put_batch(batch)
    holder = {"state": state}

    def train():
        holder["state"], metrics = step(holder["state"], device_batch)
        jax.block_until_ready(metrics["loss"])

    train_s = timed(train, warmup, repeats, f"{name} ours train")
    params = jax.device_get(holder["state"].params)  # shard_map mode: replicated, not stacked
    graph = jax.tree_util.tree_map(jax.numpy.asarray, S.device_slice(batch.graph))
    apply = jax.jit(lambda p, g: model.apply({"params": p}, g, train=False))
    infer_s = timed(lambda: jax.block_until_ready(apply(params, graph)), warmup, repeats, f"{name} ours infer")
    return {"train_s": train_s, "infer_s": infer_s, "params": S.param_count(params)}


# ----------------------------------------------------------------------------- PyTorch reference


def torch_particlenet(k: int, blocks, fc: int, n_features: int = 7):
    """The PyTorch ParticleNet of the module docstring: model(points [B, 2, P], features
    [B, F, P], mask [B, 1, P]) -> logits [B, 2]."""
    import torch
    from torch import nn

    def knn(x, k):  # x [B, C, P] -> indices [B, P, k] of the nearest other points
        inner = -2 * torch.matmul(x.transpose(2, 1), x)
        xx = torch.sum(x ** 2, dim=1, keepdim=True)
        pairwise = -xx - inner - xx.transpose(2, 1)
        return pairwise.topk(k=k + 1, dim=-1)[1][:, :, 1:]  # the nearest is the point itself

    def edge_features(x, idx):  # [B, C, P] -> [B, 2C, P, k]: [x_i, x_j - x_i]
        b, c, p = x.shape
        kk = idx.shape[-1]
        flat = (idx + torch.arange(b, device=x.device).view(-1, 1, 1) * p).reshape(-1)
        x_t = x.transpose(2, 1).reshape(b * p, c)
        neighbours = x_t[flat].view(b, p, kk, c).permute(0, 3, 1, 2)
        centre = x.unsqueeze(-1).expand(-1, -1, -1, kk)
        return torch.cat([centre, neighbours - centre], dim=1)

    class EdgeConvBlock(nn.Module):
        def __init__(self, k, in_channels, widths):
            super().__init__()
            self.k = k
            layers, c = [], 2 * in_channels
            for w in widths:
                layers += [nn.Conv2d(c, w, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
                c = w
            self.edge_mlp = nn.Sequential(*layers)
            self.shortcut = nn.Sequential(nn.Conv1d(in_channels, widths[-1], 1, bias=False),
                                          nn.BatchNorm1d(widths[-1]))
            self.act = nn.ReLU()

        def forward(self, points, features):
            idx = knn(points, self.k)
            h = self.edge_mlp(edge_features(features, idx)).mean(dim=-1)
            return self.act(h + self.shortcut(features))

    class ParticleNetTorch(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_bn = nn.BatchNorm1d(n_features)
            self.blocks = nn.ModuleList()
            c = n_features
            for widths in blocks:
                self.blocks.append(EdgeConvBlock(k, c, widths))
                c = widths[-1]
            self.fc = nn.Sequential(nn.Linear(c, fc), nn.ReLU(), nn.Dropout(0.1), nn.Linear(fc, 2))

        def forward(self, points, features, mask):
            shift = (~mask.bool()).float() * 1e9  # padded points: far from everyone
            x = self.input_bn(features) * mask
            for i, block in enumerate(self.blocks):
                coords = (points if i == 0 else x) + shift
                x = block(coords, x) * mask
            pooled = x.sum(dim=-1) / mask.sum(dim=-1).clamp(min=1)
            return self.fc(pooled)

    return ParticleNetTorch()


def reference(name: str, features, mask, labels, warmup: int, repeats: int, device: str = "cpu") -> dict:
    import torch

    torch.manual_seed(0)
    device = torch.device(device)
    if device.type == "cuda":  # strict float32 matmuls, as JAX is set to in main()
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    model = torch_particlenet(*SIZES[name]).to(device)
    x = torch.from_numpy(np.ascontiguousarray(features.transpose(0, 2, 1))).to(device)
    points = x[:, :2].contiguous()
    m = torch.from_numpy(mask[:, None, :].astype(np.float32)).to(device)
    y = torch.from_numpy(labels).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    # CUDA runs asynchronously: a timed call ends only when the device has finished its work.
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def train():
        model.train()
        opt.zero_grad()
        loss_fn(model(points, x, m), y).backward()
        opt.step()
        sync()

    def infer():
        model.eval()
        with torch.no_grad():
            model(points, x, m)
        sync()

    return {"train_s": timed(train, warmup, repeats, f"{name} torch train"),
            "infer_s": timed(infer, warmup, repeats, f"{name} torch infer"),
            "params": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="particlenet_lite,particlenet")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--constituents", type=int, default=80)
    parser.add_argument("--jets", nargs="*", default=(), help="jet files (default: random full jets)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--torch-device", default="auto",
                        help="cpu | cuda | auto (cuda when JAX's default backend is a GPU)")
    parser.add_argument("--json", default="", help="write the results here too")
    args = parser.parse_args(argv)
    on_gpu = jax.default_backend() == "gpu"
    torch_device = ("cuda" if on_gpu else "cpu") if args.torch_device == "auto" else args.torch_device
    if on_gpu:  # like-for-like: strict float32 matmuls in both frameworks (no TensorFloat-32)
        jax.config.update("jax_default_matmul_precision", "float32")
    features, mask, labels = jet_arrays(args.jets, args.batch, args.constituents, seed=0)
    out = {"batch": args.batch, "constituents": args.constituents, "mean_real": float(mask.sum(1).mean()),
           "cpu_count": os.cpu_count(), "jax": jax.__version__, "jax_device": str(jax.devices()[0]),
           "torch_device": torch_device, "models": {}}
    print(f"batch {args.batch}, {args.constituents} constituents ({out['mean_real']:.1f} real on average), "
          f"7 features; medians of {args.repeats} after {args.warmup} warm-up; JAX on {out['jax_device']}, "
          f"PyTorch on {torch_device}")
    for name in [m for m in args.models.split(",") if m]:
        row = {"ours": ours(name, features, mask, labels, args.warmup, args.repeats)}
        if not args.skip_torch:
            row["torch"] = reference(name, features, mask, labels, args.warmup, args.repeats, torch_device)
            for what in ("train", "infer"):
                row[f"{what}_speedup"] = row["torch"][f"{what}_s"] / row["ours"][f"{what}_s"]
        out["models"][name] = row
        line = (f"{name:17s} ours train {1e3 * row['ours']['train_s']:8.1f} ms  infer "
                f"{1e3 * row['ours']['infer_s']:8.1f} ms  ({row['ours']['params']} params)")
        if "torch" in row:
            line += (f" | torch train {1e3 * row['torch']['train_s']:8.1f} ms  infer "
                     f"{1e3 * row['torch']['infer_s']:8.1f} ms ({row['torch']['params']} params)"
                     f" | speed-up train {row['train_speedup']:.2f}x  infer {row['infer_speedup']:.2f}x")
        print(line, flush=True)
    if args.json:
        from gnntrack.io.atomic import atomic_path

        with atomic_path(args.json) as tmp:
            with open(tmp, "w") as f:
                json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
