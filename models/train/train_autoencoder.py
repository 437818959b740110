"""Train the deterministic autoencoder (RGB <-> 4-channel latent at 1/8 resolution)
on random crops of training frames AND their style targets (so both photos and
stylised images decode well).

Usage: /usr/bin/python3 models/train/train_autoencoder.py [--iters 12000]
Writes models/train/out/ae.pt and out/ae_train.log.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as M  # noqa: E402
from common import DATA, OUT, seed_all, to_tensor  # noqa: E402


def grad_l1(a, b):
    dxa, dxb = a[..., :, 1:] - a[..., :, :-1], b[..., :, 1:] - b[..., :, :-1]
    dya, dyb = a[..., 1:, :] - a[..., :-1, :], b[..., 1:, :] - b[..., :-1, :]
    return (dxa - dxb).abs().mean() + (dya - dyb).abs().mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=12000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", action="store_true",
                    help="continue from out/ae.pt (weights + iteration; schedule follows the new --iters)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    seed_all(a.seed)
    rng = np.random.default_rng(a.seed)

    frames = np.load(f"{DATA}/train_frames.npy", mmap_mode="r")
    targets = np.load(f"{DATA}/train_targets.npy", mmap_mode="r")
    S, N, H, W, _ = targets.shape
    enc, dec = M.Encoder(), M.Decoder()
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=a.lr)
    print(f"encoder params {M.count_params(enc)}, decoder params {M.count_params(dec)}, data {N} frames x {S + 1} domains", flush=True)

    start = 0
    if a.resume:
        ck = torch.load(f"{OUT}/ae.pt")
        enc.load_state_dict(ck["enc"])
        dec.load_state_dict(ck["dec"])
        if "opt" in ck:
            opt.load_state_dict(ck["opt"])
        start = ck["iters"] + 1
        rng = np.random.default_rng(a.seed + start)
        torch.manual_seed(a.seed + start)
        print(f"resumed at iteration {start}", flush=True)

    t0 = time.time()
    c = a.crop
    for it in range(start, a.iters + 1):
        lr = a.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * it / a.iters)))
        for g in opt.param_groups:
            g["lr"] = lr
        batch = []
        for _ in range(a.batch):
            i = rng.integers(N)
            d = rng.integers(S + 2)  # photo twice as likely as each single style
            y0, x0 = rng.integers(H - c + 1), rng.integers(W - c + 1)
            src = frames[i] if d >= S else targets[d, i]
            img = src[y0:y0 + c, x0:x0 + c]
            if rng.integers(2):
                img = img[:, ::-1]
            batch.append(img)
        x = to_tensor(np.stack(batch))
        z = enc(x)
        # latent noise makes the decoder robust to imperfect denoiser outputs
        sigma = torch.rand(z.shape[0], 1, 1, 1) * 0.1 * z.detach().std()
        rec = dec(z + sigma * torch.randn_like(z))
        loss = F.l1_loss(rec, x) + 0.5 * grad_l1(rec, x) + 1e-4 * (z ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it % 200 == 0:
            with torch.no_grad():
                mse = F.mse_loss(rec.clamp(-1, 1), x).item()
            psnr = 10 * math.log10(4.0 / max(mse, 1e-10))
            print(f"it {it} loss {loss.item():.4f} psnr {psnr:.2f} zstd {z.std().item():.3f} lr {lr:.2e} "
                  f"elapsed {time.time() - t0:.0f}s", flush=True)
        if it % 2000 == 0 or it == a.iters:
            torch.save({"enc": enc.state_dict(), "dec": dec.state_dict(), "opt": opt.state_dict(), "iters": it},
                       f"{OUT}/ae.pt")
    print(f"done in {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
