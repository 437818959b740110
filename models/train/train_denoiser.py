"""Train the style-conditioned x0-predicting denoiser on latents of the frozen autoencoder.

1. Encodes every training frame and its 5 style targets once (320x256 -> 4x32x40 latents),
   computes scalingFactor = 1 / std(latents) and caches everything in out/latents.pt.
2. Trains D(z_t, t, style) -> z_y with z_t = sqrt(abar_t) z_src + sqrt(1 - abar_t) eps, where
   z_src is the photo latent z_x (most of the time), the target latent z_y, or a blend of the
   two (which is what a 2nd/3rd/4th img2img step re-noises).

Usage: /usr/bin/python3 models/train/train_denoiser.py [--iters 8000]
Writes models/train/out/denoiser.pt (EMA weights + style table + scaling factor).
"""
import argparse
import copy
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as M  # noqa: E402
from common import DATA, OUT, alphas_cumprod, seed_all, to_tensor  # noqa: E402


@torch.no_grad()
def encode_all(enc, arr, bs=32):
    out = []
    for i in range(0, arr.shape[0], bs):
        out.append(enc(to_tensor(arr[i:i + bs])))
    return torch.cat(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=8000)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--crop", type=int, default=16, help="latent crop size (16 -> 128 px)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--ae", default=f"{OUT}/ae.pt", help="autoencoder checkpoint (its encoder makes the latents)")
    ap.add_argument("--out", default=f"{OUT}/denoiser.pt")
    ap.add_argument("--t-low-max", type=int, default=500, help="upper end of the --t-low-frac range")
    ap.add_argument("--pix-weight", type=float, default=0.0,
                    help="weight of an L1 loss on decoded pixels (frozen decoder) for the first --pix-batch samples")
    ap.add_argument("--pix-batch", type=int, default=8)
    ap.add_argument("--ckpt-every", type=int, default=500)
    ap.add_argument("--t-min-photo", type=int, default=200, help="lowest t for photo-latent sources")
    ap.add_argument("--t-low-frac", type=float, default=0.0,
                    help="fraction of photo-source samples drawn from [t-min-photo, 500) instead of [t-min-photo, 1000)")
    ap.add_argument("--rollout-frac", type=float, default=0.0,
                    help="fraction of samples whose source is the model's own x0 estimate from an earlier, "
                         "noisier step with the same noise (trains steps 2..4 of few-step sampling)")
    ap.add_argument("--init", default="", help="fine-tune: start from this denoiser checkpoint")
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--stop-after", type=int, default=0,
                    help="stop after this iteration (schedule still follows --iters)")
    ap.add_argument("--ch", type=int, nargs=2, default=list(M.DEN_CH))
    ap.add_argument("--n-low", type=int, default=M.DEN_LOW)
    ap.add_argument("--n-high", type=int, default=M.DEN_HIGH)
    ap.add_argument("--max-frames", type=int, default=0, help="smoke test only: use the first N frames, no cache")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    seed_all(a.seed)
    rng = np.random.default_rng(a.seed)

    dev = torch.device(a.device)
    cache = a.ae.replace(".pt", "_latents.pt")
    ae = torch.load(a.ae, map_location="cpu")
    zc = ae.get("cfg", {"latent_ch": 4})["latent_ch"]
    if a.max_frames:
        cache = f"{OUT}/latents_smoke.pt"
    if os.path.exists(cache) and os.path.getmtime(cache) > os.path.getmtime(a.ae) and not a.max_frames:
        lat = torch.load(cache)
    else:
        enc = M.Encoder(zc=zc)
        enc.load_state_dict(ae["enc"])
        enc.eval()
        t0 = time.time()
        frames = np.load(f"{DATA}/train_frames.npy", mmap_mode="r")
        targets = np.load(f"{DATA}/train_targets.npy", mmap_mode="r")
        if a.max_frames:
            frames, targets = frames[:a.max_frames], targets[:, :a.max_frames]
        zx = encode_all(enc, frames)
        zy = torch.stack([encode_all(enc, targets[s]) for s in range(targets.shape[0])])
        allz = torch.cat([zx[None], zy])
        scale = 1.0 / allz.std().item()
        lat = {"zx": zx, "zy": zy, "scale": scale, "mean": allz.mean().item()}
        torch.save(lat, cache)
        print(f"encoded latents in {time.time() - t0:.0f}s", flush=True)
    scale = lat["scale"]
    zx, zy = lat["zx"] * scale, lat["zy"] * scale  # scaled latent space (unit variance)
    S, N, C, h, w = zy.shape
    print(f"scalingFactor {scale:.5f} (raw mean {lat['mean']:.3f}); latents {tuple(zy.shape)}", flush=True)

    cfg = {"ch": list(a.ch), "n_low": a.n_low, "n_high": a.n_high, "n_styles": S, "latent_ch": C}
    den = M.Denoiser(ch=tuple(a.ch), zc=C, n_styles=S, n_low=a.n_low, n_high=a.n_high).to(dev)
    zx, zy = zx.to(dev), zy.to(dev)
    dec = None
    if a.pix_weight > 0:
        dec = M.Decoder(zc=C, half=ae["cfg"].get("dec_half", 0)).to(dev)
        dec.load_state_dict(ae["dec"])
        for p in dec.parameters():
            p.requires_grad_(False)
        tpix = np.load(f"{DATA}/train_targets.npy", mmap_mode="r")
    ema = copy.deepcopy(den)
    for p in ema.parameters():
        p.requires_grad_(False)
    if a.init:
        ck = torch.load(a.init)
        den.load_state_dict(ck["raw"])
        ema.load_state_dict(ck["den"])
        print(f"initialised from {a.init} ({ck['iters']} iterations)", flush=True)
    opt = torch.optim.AdamW(den.parameters(), lr=a.lr, weight_decay=1e-4)
    abar = alphas_cumprod().to(dev)
    print(f"denoiser params {M.count_params(den) - den.style_table.weight.numel()} (+ style table {den.style_table.weight.numel()})", flush=True)

    t0 = time.time()
    c = a.crop
    B = a.batch
    for it in range(a.iters + 1):
        lr = a.lr * min(1.0, it / max(1, a.warmup)) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * it / a.iters)))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.from_numpy(rng.integers(N, size=B))
        sty = torch.from_numpy(rng.integers(S, size=B))
        y0 = torch.from_numpy(rng.integers(h - c + 1, size=B))
        x0 = torch.from_numpy(rng.integers(w - c + 1, size=B))
        src = torch.stack([zx[i, :, y:y + c, x:x + c] for i, y, x in zip(idx, y0, x0)])
        tgt = torch.stack([zy[s, i, :, y:y + c, x:x + c] for s, i, y, x in zip(sty, idx, y0, x0)])
        # source mix: 55% photo, 20% target, 25% blend (partially restyled state)
        u = torch.from_numpy(rng.uniform(size=B)).float()
        alpha = torch.where(u < 0.55, torch.zeros(B), torch.where(u < 0.75, torch.ones(B), torch.rand(B))).to(dev)
        zsrc = src + alpha[:, None, None, None] * (tgt - src)
        # timesteps: photo sources mostly in the img2img range [200, 999]; restyled sources anywhere
        if a.t_low_frac > 0:
            t_hi = torch.where(torch.rand(B) < a.t_low_frac, torch.randint(a.t_min_photo, a.t_low_max, (B,)),
                               torch.randint(a.t_min_photo, 1000, (B,)))
        else:
            t_hi = torch.randint(a.t_min_photo, 1000, (B,))
        t_any = torch.randint(0, 1000, (B,))
        use_any = (alpha.cpu() > 0) | (torch.rand(B) < 0.1)
        t = torch.where(use_any, t_any, t_hi).to(dev)
        eps = torch.randn_like(zsrc)
        emb = den.style_table(sty.to(dev))[:, None, :]
        if a.rollout_frac > 0:
            roll = (torch.rand(B) < a.rollout_frac).to(dev)
            if roll.any():
                # previous step: photo source at t1, same noise; current step at t2 < t1 on its x0 estimate
                t1 = torch.randint(max(a.t_min_photo, 1), 1000, (B,)).to(dev)
                ab1 = abar[t1][:, None, None, None]
                with torch.no_grad():
                    p1 = den(ab1.sqrt() * src + (1 - ab1).sqrt() * eps, t1.float(), emb.detach())
                t2 = (torch.rand(B, device=dev) * t1).long()
                zsrc = torch.where(roll[:, None, None, None], p1, zsrc)
                t = torch.where(roll, t2, t)
        ab = abar[t][:, None, None, None]
        zt = ab.sqrt() * zsrc + (1 - ab).sqrt() * eps
        pred = den(zt, t.float(), emb)
        loss = F.mse_loss(pred, tgt)
        if dec is not None:
            # pixels are what is judged: L1 of the decoded prediction against the target image crop
            k = a.pix_batch
            ty = torch.stack([to_tensor(tpix[int(s), int(i), int(y) * 8:(int(y) + c) * 8, int(x) * 8:(int(x) + c) * 8])
                              for s, i, y, x in zip(sty[:k], idx[:k], y0[:k], x0[:k])]).to(dev)
            loss = loss + a.pix_weight * F.l1_loss(dec(pred[:k] / scale), ty)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(den.parameters(), 1.0)
        opt.step()
        d = min(0.999, (1 + it) / (10 + it))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), den.parameters()):
                pe.mul_(d).add_(p.detach(), alpha=1 - d)
        if it % 200 == 0:
            print(f"it {it} loss {loss.item():.4f} lr {lr:.2e} elapsed {time.time() - t0:.0f}s", flush=True)
        if it % a.ckpt_every == 0 or it == a.iters or it == a.stop_after:
            torch.save({"den": ema.state_dict(), "raw": den.state_dict(), "scale": scale, "iters": it,
                        "n_styles": S, "cfg": cfg}, a.out if not a.max_frames else f"{OUT}/denoiser_smoke.pt")
        if a.stop_after and it >= a.stop_after:
            break
    print(f"done in {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
