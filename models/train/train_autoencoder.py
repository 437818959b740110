"""Train the deterministic autoencoder (RGB <-> LATENT_CH-channel latent at 1/8 resolution)
on random crops of training frames AND their style targets (so both photos and
stylised images decode well).

Loss: L1 + L1 of image gradients (rewards edges where they belong) + a tiny latent penalty;
after --gan-start iterations also a hinge adversarial loss from a small patch discriminator
trained from scratch (no pretrained weights exist here), which sharpens what L1 averages out.

Two uses:
* full (default): encoder + decoder, writes out/ae.pt.
* --decoder-only --init out/ae.pt: the encoder is frozen (so the denoiser can train on its
  latents at the same time) and only the decoder is fine-tuned; writes out/ae_dec.pt.

Every --ckpt-every iterations it measures PSNR on the held-out frames and targets and keeps
the best checkpoint as <out>_best.pt as well.

Usage: /usr/bin/python3 models/train/train_autoencoder.py [--iters 12000] [--device cuda]
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as M  # noqa: E402
from common import DATA, OUT, seed_all, to_tensor  # noqa: E402


def grad_l1(a, b):
    dxa, dxb = a[..., :, 1:] - a[..., :, :-1], b[..., :, 1:] - b[..., :, :-1]
    dya, dyb = a[..., 1:, :] - a[..., :-1, :], b[..., 1:, :] - b[..., :-1, :]
    return (dxa - dxb).abs().mean() + (dya - dyb).abs().mean()


class PatchDisc(nn.Module):
    """70x70-style patch discriminator, no normalisation (trained from scratch, hinge loss)."""

    def __init__(self, ch=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, ch, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(ch, ch * 2, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(ch * 2, ch * 4, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(ch * 4, ch * 4, 3, 1, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(ch * 4, 1, 3, 1, 1))

    def forward(self, x):
        return self.net(x)


@torch.no_grad()
def heldout_psnr(enc, dec, dev):
    """Mean PSNR (dB, 8-bit) of the round trip on held-out photos and on their style targets."""
    hf = np.load(f"{DATA}/heldout_frames.npy")
    ht = np.load(f"{DATA}/heldout_targets.npy")
    enc.eval(), dec.eval()

    def p(arr):
        x = to_tensor(arr).to(dev)
        r = dec(enc(x)).clamp(-1, 1)
        r8 = ((r + 1) * 127.5).round()
        x8 = ((x + 1) * 127.5).round()
        mse = ((r8 - x8) ** 2).flatten(1).mean(1).clamp_min(1e-6)
        return float((10 * torch.log10(255.0 ** 2 / mse)).mean())

    photos = p(hf)
    targets = float(np.mean([p(ht[s]) for s in range(ht.shape[0])]))
    enc.train(), dec.train()
    return photos, targets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=12000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--latent-ch", type=int, default=M.LATENT_CH)
    ap.add_argument("--dec-half", type=int, default=M.DEC_HALF)
    ap.add_argument("--grad-weight", type=float, default=0.5)
    ap.add_argument("--gan-start", type=int, default=-1, help="iteration the adversarial loss starts (-1: never)")
    ap.add_argument("--gan-weight", type=float, default=0.05)
    ap.add_argument("--decoder-only", action="store_true", help="freeze the encoder (needs --init)")
    ap.add_argument("--init", default="", help="start from this AE checkpoint (weights only)")
    ap.add_argument("--out", default="", help="checkpoint path (default out/ae.pt, out/ae_dec.pt with --decoder-only)")
    ap.add_argument("--ckpt-every", type=int, default=1000)
    ap.add_argument("--photo-frac", type=float, default=2 / 7, help="fraction of crops from photos (rest: targets)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    seed_all(a.seed)
    rng = np.random.default_rng(a.seed)
    dev = torch.device(a.device)
    out = a.out or (f"{OUT}/ae_dec.pt" if a.decoder_only else f"{OUT}/ae.pt")

    frames = np.load(f"{DATA}/train_frames.npy", mmap_mode="r")
    targets = np.load(f"{DATA}/train_targets.npy", mmap_mode="r")
    if dev.type == "cuda":  # plenty of host memory there; avoids page-cache stalls
        frames, targets = np.ascontiguousarray(frames), np.ascontiguousarray(targets)
    S, N, H, W, _ = targets.shape
    cfg = {"latent_ch": a.latent_ch, "dec_half": a.dec_half}
    if a.init:
        ck = torch.load(a.init, map_location="cpu")
        cfg = ck.get("cfg", {"latent_ch": 4, "dec_half": 0})
    enc = M.Encoder(zc=cfg["latent_ch"]).to(dev)
    dec = M.Decoder(zc=cfg["latent_ch"], half=cfg["dec_half"]).to(dev)
    if a.init:
        enc.load_state_dict(ck["enc"])
        dec.load_state_dict(ck["dec"])
        print(f"initialised from {a.init} ({ck['iters']} iterations)", flush=True)
    if a.decoder_only:
        assert a.init, "--decoder-only needs --init"
        for p in enc.parameters():
            p.requires_grad_(False)
        enc.eval()
    params = list(dec.parameters()) + ([] if a.decoder_only else list(enc.parameters()))
    opt = torch.optim.Adam(params, lr=a.lr)
    disc = PatchDisc().to(dev)
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.9))
    print(f"cfg {cfg}; encoder params {M.count_params(enc)}, decoder params {M.count_params(dec)}, "
          f"disc params {M.count_params(disc)}, data {N} frames x {S + 1} domains, out {out}", flush=True)

    t0 = time.time()
    c = a.crop
    best = -1.0
    for it in range(a.iters + 1):
        lr = a.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * it / a.iters)))
        for g in opt.param_groups:
            g["lr"] = lr
        batch = []
        for _ in range(a.batch):
            i = rng.integers(N)
            photo = rng.uniform() < a.photo_frac
            y0, x0 = rng.integers(H - c + 1), rng.integers(W - c + 1)
            src = frames[i] if photo else targets[rng.integers(S), i]
            img = src[y0:y0 + c, x0:x0 + c]
            if rng.integers(2):
                img = img[:, ::-1]
            batch.append(img)
        x = to_tensor(np.stack(batch)).to(dev)
        if a.decoder_only:
            with torch.no_grad():
                z = enc(x)
        else:
            z = enc(x)
        # latent noise makes the decoder robust to imperfect denoiser outputs
        sigma = torch.rand(z.shape[0], 1, 1, 1, device=dev) * 0.1 * z.detach().std()
        rec = dec(z + sigma * torch.randn_like(z))
        loss = F.l1_loss(rec, x) + a.grad_weight * grad_l1(rec, x) + 1e-4 * (z ** 2).mean()
        gan = 0 <= a.gan_start <= it
        g_adv = torch.zeros(())
        if gan:
            g_adv = -disc(rec).mean()
            loss = loss + a.gan_weight * g_adv
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        d_loss = torch.zeros(())
        if gan or (0 <= a.gan_start and it >= a.gan_start - 500):  # discriminator warms up 500 its early
            d_loss = F.relu(1 - disc(x)).mean() + F.relu(1 + disc(rec.detach())).mean()
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        if it % 200 == 0:
            with torch.no_grad():
                mse = F.mse_loss(rec.clamp(-1, 1), x).item()
            psnr = 10 * math.log10(4.0 / max(mse, 1e-10))
            print(f"it {it} loss {loss.item():.4f} psnr {psnr:.2f} g_adv {g_adv.item():.3f} d {d_loss.item():.3f} "
                  f"zstd {z.std().item():.3f} lr {lr:.2e} elapsed {time.time() - t0:.0f}s", flush=True)
        if (it % a.ckpt_every == 0 and it > 0) or it == a.iters:
            ph, tg = heldout_psnr(enc, dec, dev)
            ck = {"enc": enc.state_dict(), "dec": dec.state_dict(), "disc": disc.state_dict(), "iters": it,
                  "cfg": cfg, "heldout_psnr": {"photos": ph, "targets": tg}}
            torch.save(ck, out)
            score = ph + tg
            if score > best:
                best = score
                torch.save(ck, out.replace(".pt", "_best.pt"))
            print(f"ckpt it {it}: held-out AE PSNR photos {ph:.2f} targets {tg:.2f}"
                  f"{' (best)' if score == best else ''}", flush=True)
    print(f"done in {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
