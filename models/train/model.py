"""Tiny latent-diffusion model for real-time img2img restyling.

Components (all plain convolutions + ReLU/SiLU, no normalisation layers, so
ONNX Runtime on CPU can fuse Conv+activation):

* Encoder: RGB [-1,1] -> 4-channel latent at 1/8 resolution (deterministic).
* Decoder: 4-channel latent -> RGB at 8x resolution; works at 1/8 and 1/4
  resolution and ends with PixelShuffle(4) (ONNX DepthToSpace).
* Denoiser: small two-level U-Net on the latent, conditioned on the timestep
  (sinusoidal -> MLP) and a style embedding [B,1,D] (FiLM: per-channel
  scale/shift in every residual block). Predicts x0 ("sample" prediction).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# Architecture hyper-parameters (chosen from the latency sweep, see README.md).
ENC_CH = (16, 32, 48)
DEC_CH = (64, 32)
DEN_CH = (32, 80)
DEN_LOW = 3   # FiLM residual blocks at 1/16 resolution
DEN_HIGH = 0  # extra FiLM residual blocks at 1/8 (latent) resolution
STYLE_DIM = 32
TEMB_DIM = 64
LATENT_CH = 16  # 4 before issue 18; 16 at 1/8 costs the same convs and keeps far more detail (README)
DEC_HALF = 0   # channels of an optional decoder stage at 1/2 resolution (0: none); 16 cost +2.3 ms (README)


def act(x):
    return F.silu(x)


class ResBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.c1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.c2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return x + self.c2(F.relu(self.c1(F.relu(x))))


class Encoder(nn.Module):
    def __init__(self, ch=ENC_CH, zc=LATENT_CH):
        super().__init__()
        c0, c1, c2 = ch
        self.d0 = nn.Conv2d(3, c0, 3, stride=2, padding=1)      # 1/2
        self.d1 = nn.Conv2d(c0, c1, 3, stride=2, padding=1)     # 1/4
        self.d2 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)     # 1/8
        self.c3 = nn.Conv2d(c2, c2, 3, padding=1)
        self.out = nn.Conv2d(c2, zc, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.d0(x))
        x = F.relu(self.d1(x))
        x = F.relu(self.d2(x))
        x = x + F.relu(self.c3(x))
        return self.out(x)


class Decoder(nn.Module):
    """half > 0 adds a stage at 1/2 resolution (half channels, one residual conv) before the last
    PixelShuffle(2): edges are then placed by a 3x3 conv at 1/2 res instead of being unpacked
    from 48 channels at 1/4 res, at about the same cost (README, architecture sizing)."""

    def __init__(self, ch=DEC_CH, zc=LATENT_CH, n8=2, n4=1, half=DEC_HALF):
        super().__init__()
        c0, c1 = ch
        self.half = half
        self.inp = nn.Conv2d(zc, c0, 3, padding=1)
        self.b8 = nn.ModuleList([nn.Conv2d(c0, c0, 3, padding=1) for _ in range(n8)])
        self.up = nn.Conv2d(c0, c1 * 4, 1)        # -> PixelShuffle(2) -> 1/4 res
        self.b4 = nn.ModuleList([nn.Conv2d(c1, c1, 3, padding=1) for _ in range(n4)])
        self.ps2 = nn.PixelShuffle(2)
        if half:
            self.up2 = nn.Conv2d(c1, half * 4, 1)  # -> PixelShuffle(2) -> 1/2 res
            self.b2 = nn.Conv2d(half, half, 3, padding=1)
            self.out = nn.Conv2d(half, 3 * 4, 3, padding=1)  # -> PixelShuffle(2) -> full res
        else:
            self.out = nn.Conv2d(c1, 3 * 16, 3, padding=1)  # -> PixelShuffle(4) -> full res
            self.ps4 = nn.PixelShuffle(4)

    def forward(self, z):
        x = F.relu(self.inp(z))
        for c in self.b8:
            x = x + F.relu(c(x))
        x = F.relu(self.ps2(self.up(x)))
        for c in self.b4:
            x = x + F.relu(c(x))
        if not self.half:
            return self.ps4(self.out(x))
        x = F.relu(self.ps2(self.up2(x)))
        x = x + F.relu(self.b2(x))
        return self.ps2(self.out(x))


def timestep_embedding(t, dim=TEMB_DIM):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    a = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(a), torch.sin(a)], dim=1)


class FiLMRes(nn.Module):
    def __init__(self, ch, cdim):
        super().__init__()
        self.c1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.c2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.film = nn.Linear(cdim, 2 * ch)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x, c):
        s, b = self.film(c)[:, :, None, None].chunk(2, dim=1)
        h = F.relu(self.c1(F.relu(x)))
        h = h * (1 + s) + b
        return x + self.c2(h)


class Denoiser(nn.Module):
    def __init__(self, ch=DEN_CH, zc=LATENT_CH, style_dim=STYLE_DIM, n_styles=5, n_low=DEN_LOW, n_high=DEN_HIGH,
                 skip=True):
        super().__init__()
        self.use_skip = skip  # False only to rebuild the pre-issue-18 model from its ONNX files
        c0, c1 = ch
        cdim = 128
        self.style_table = nn.Embedding(n_styles, style_dim)  # exported to manifest, not to ONNX
        nn.init.normal_(self.style_table.weight, std=1.0)
        self.cond = nn.Sequential(nn.Linear(TEMB_DIM + style_dim, cdim), nn.SiLU(), nn.Linear(cdim, cdim), nn.SiLU())
        self.inp = nn.Conv2d(zc, c0, 3, padding=1)
        self.b0 = FiLMRes(c0, cdim)
        self.high = nn.ModuleList([FiLMRes(c0, cdim) for _ in range(n_high)])  # extra full-latent-res blocks
        self.down = nn.Conv2d(c0, c1, 2, stride=2)
        self.low = nn.ModuleList([FiLMRes(c1, cdim) for _ in range(n_low)])
        self.up = nn.Conv2d(c1, c0 * 4, 1)  # PixelShuffle(2)
        self.ps = nn.PixelShuffle(2)
        self.b3 = FiLMRes(c0, cdim)
        self.out = nn.Conv2d(c0, zc, 3, padding=1)
        # per-channel gain on the input latent added to the output, from the conditioning: starts as
        # the identity (at the low t of img2img the noised input is almost the answer's structure)
        # and learns to fade out where the input is mostly noise
        if skip:
            self.skip = nn.Linear(cdim, zc)
            nn.init.zeros_(self.skip.weight)
            nn.init.ones_(self.skip.bias)

    def forward(self, sample, timestep, encoder_hidden_states):
        style = encoder_hidden_states[:, 0, :]
        c = self.cond(torch.cat([timestep_embedding(timestep), style], dim=1))
        h0 = self.b0(self.inp(sample), c)
        h = self.down(F.relu(h0))
        for b in self.low:
            h = b(h, c)
        h = self.ps(self.up(F.relu(h))) + h0
        h = self.b3(h, c)
        for b in self.high:
            h = b(h, c)
        out = self.out(F.relu(h))
        return out + self.skip(c)[:, :, None, None] * sample if self.use_skip else out


class EncoderExport(nn.Module):
    """Outputs concat(mean, logvar) with a constant logvar (deterministic AE)."""

    def __init__(self, enc):
        super().__init__()
        self.enc = enc

    def forward(self, sample):
        m = self.enc(sample)
        return torch.cat([m, torch.full_like(m, -30.0)], dim=1)


def count_params(m):
    return sum(p.numel() for p in m.parameters())


def export_all(enc, dec, den, outdir, opset=17):
    import os
    os.makedirs(outdir, exist_ok=True)
    enc, dec, den = enc.eval(), dec.eval(), den.eval()
    x = torch.randn(1, 3, 256, 320)
    z = torch.randn(1, enc.out.out_channels, 32, 40)
    with torch.no_grad():
        torch.onnx.export(EncoderExport(enc), (x,), f"{outdir}/vae_encoder.onnx", opset_version=opset,
                          input_names=["sample"], output_names=["latent_parameters"],
                          dynamic_axes={"sample": {0: "batch", 2: "height", 3: "width"},
                                        "latent_parameters": {0: "batch", 2: "latent_height", 3: "latent_width"}})
        torch.onnx.export(dec, (z,), f"{outdir}/vae_decoder.onnx", opset_version=opset,
                          input_names=["latent_sample"], output_names=["sample"],
                          dynamic_axes={"latent_sample": {0: "batch", 2: "latent_height", 3: "latent_width"},
                                        "sample": {0: "batch", 2: "height", 3: "width"}})
        t = torch.tensor([499.0])
        e = torch.randn(1, 1, den.style_table.weight.shape[1])
        torch.onnx.export(den, (z, t, e), f"{outdir}/denoiser.onnx", opset_version=opset,
                          input_names=["sample", "timestep", "encoder_hidden_states"], output_names=["out_sample"],
                          dynamic_axes={"sample": {0: "batch", 2: "latent_height", 3: "latent_width"},
                                        "timestep": {0: "batch"},
                                        "encoder_hidden_states": {0: "batch"},
                                        "out_sample": {0: "batch", 2: "latent_height", 3: "latent_width"}})
