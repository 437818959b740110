#!/usr/bin/env python3
"""Build randomly initialised ONNX models with exactly SD-Turbo's UNet and TAESD's architecture.

For a real-size latency benchmark without downloading weights: same layers, shapes, FLOPs and
memory as stabilityai/sd-turbo's UNet (the SD 2.1 UNet2DConditionModel, 865,910,724 parameters)
and madebyollin/taesd (encoder 1,222,532 + decoder 1,222,531 parameters), written in plain torch
(no diffusers/transformers needed), exported in the diffusers/optimum ONNX layout this project
loads. The weights are random (fixed seed): the images are noise; only latency means anything.

Usage (any torch >= 1.13; the `onnx` package is needed only for --dtype fp16 on --device cpu):

    python3 models/realsize/make_realsize_models.py                      # full size, fp16, cuda
    python3 models/realsize/make_realsize_models.py --scale tiny --device cpu --dtype fp32
    python3 models/realsize/make_realsize_models.py --count-only         # build fp32 on CPU, print counts

Options: --out DIR (default: <tmp>/sds-realsize/<name>, outside the repository so that
shared/gpu/pack.sh, which copies models/ whole, never carries the exports), --scale full|tiny,
--dtype fp16|fp32, --device cuda|cpu, --seed N, --opset N (default 14, optimum's for SD).

Writes, like `optimum-cli export onnx --model stabilityai/sd-turbo` (+ TAESD as the VAE):
  model_index.json                 StableDiffusionPipeline, vae AutoencoderTiny, no text encoder
  scheduler/scheduler_config.json  SD-Turbo's: EulerDiscrete, scaled_linear 0.00085-0.012, trailing
  unet/model.onnx, config.json     sample [batch_size,4,height,width], timestep (0-d float),
                                   encoder_hidden_states [batch_size,sequence_length,1024] -> out_sample
  vae_encoder/model.onnx           sample [batch_size,num_channels,height,width] -> latent_sample [.,4,h/8,w/8]
  vae_decoder/model.onnx           latent_sample [batch_size,num_channels_latent,h,w] -> sample [.,3,8h,8w]

Pixel range: TAESD itself works on [0, 1] images; diffusers' AutoencoderTiny wraps it to the
diffusers convention ([-1, 1] in and out: encoder x.add(1).div(2), decoder x.mul(2).sub(1)), and
this project reads every diffusers folder as pixelRange [-1, 1]. The exported graphs include that
wrapping, so the folder is correct as is. Latent: TAESD's latents are already in the UNet's
(scaled) latent space, so the VAE config says scaling_factor 1.0 (AutoencoderTiny's), which the
project reads; latent_shift/latent_magnitude only matter for storing latents as images.

No text encoder: model_index.json lists none, and the project's runtime then logs one warning and
conditions the UNet on zeros [1, 77, 1024] (models/conditioning.ts). For latency that is the same
work as a real prompt embedding; only the (cached, once per prompt) CLIP text encoder is left out.

fp16: with --device cuda the modules are cast to half and traced on the GPU, as optimum's
--dtype fp16 export does (every float input, output and weight float16; the sinusoidal timestep
embedding is computed in float32 and cast, as diffusers does). torch on CPU cannot run half
convolutions (torch 1.13), so --device cpu --dtype fp16 exports fp32 and rewrites the graph to
float16 (weights, constants, casts, I/O), which needs the `onnx` package.

--scale tiny keeps the exact topology (every block, layer, head count, skip connection) but
divides every channel width by 8 (UNet 40/80/160/160, cross-attention 128, TAESD 8) and uses 8
GroupNorm groups instead of 32 (40 channels are not divisible by 32; every tiny width is a multiple
of 8), so the whole pipeline exports and runs on a small CPU in seconds, to validate.
"""
import argparse
import inspect
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

SD21_UNET_PARAMS = 865_910_724  # diffusers UNet2DConditionModel of stabilityai/stable-diffusion-2-1(-base), sd-turbo
TAESD_ENCODER_PARAMS = 1_222_532
TAESD_DECODER_PARAMS = 1_222_531
DIFFUSERS_VERSION = "0.24.0.dev0"  # what stabilityai/sd-turbo's configs carry
OPSET = 14


class Arch:
    """Widths of one scale. `div` divides every channel width; topology never changes."""

    def __init__(self, scale: str):
        self.scale = scale
        div = {"full": 1, "tiny": 8}[scale]
        self.block_out = [320 // div, 640 // div, 1280 // div, 1280 // div]
        self.heads = [5, 10, 20, 20]  # SD 2.x "attention_head_dim", which diffusers uses as the head count
        self.cross_dim = 1024 // div
        self.groups = 32 if div == 1 else 8
        self.temb = 4 * self.block_out[0]  # 1280
        self.taesd = 64 // div
        self.latent = 4
        self.layers = 2


# ----------------------------------------------------------------------------
# SD 2.1 UNet2DConditionModel (module names as in diffusers, so the parameter
# count and the layer list can be compared one to one)
# ----------------------------------------------------------------------------
def timestep_embedding(t, dim):
    """diffusers get_timestep_embedding(flip_sin_to_cos=True, downscale_freq_shift=0), in float32."""
    half = dim // 2
    exponent = -math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    arg = t.float()[:, None] * torch.exp(exponent)[None, :]
    return torch.cat([torch.cos(arg), torch.sin(arg)], dim=-1)


class TimestepEmbedding(nn.Module):
    def __init__(self, dim_in, dim):
        super().__init__()
        self.linear_1 = nn.Linear(dim_in, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class ResnetBlock2D(nn.Module):
    def __init__(self, cin, cout, temb, groups, eps=1e-5):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=eps)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps=eps)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h


class Attention(nn.Module):
    """Multi-head (cross-)attention, diffusers' Attention with bias-free q/k/v, written as plain
    matmul-softmax-matmul (what the TorchScript ONNX exporter emits for every torch version)."""

    def __init__(self, dim, heads, dim_head, context_dim=None):
        super().__init__()
        inner = heads * dim_head
        self.heads, self.dim_head = heads, dim_head
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim or dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim or dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Dropout(0.0)])

    def forward(self, x, context=None):
        ctx = x if context is None else context
        b = x.shape[0]

        def split(t):
            return t.reshape(b, -1, self.heads, self.dim_head).transpose(1, 2)

        q, k, v = split(self.to_q(x)), split(self.to_k(ctx)), split(self.to_v(ctx))
        att = torch.softmax((q @ k.transpose(-1, -2)) * (self.dim_head ** -0.5), dim=-1)
        out = (att @ v).transpose(1, 2).reshape(b, -1, self.heads * self.dim_head)
        return self.to_out[0](out)


class GEGLU(nn.Module):
    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x):
        h, gate = self.proj(x).chunk(2, dim=-1)
        return h * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim, mult=4):
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, dim * mult), nn.Dropout(0.0), nn.Linear(dim * mult, dim)])

    def forward(self, x):
        for m in self.net:
            x = m(x)
        return x


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, heads, dim_head, cross_dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads, dim_head)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, heads, dim_head, cross_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x, context):
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class Transformer2DModel(nn.Module):
    """use_linear_projection=True (SD 2.x): GroupNorm (eps 1e-6, as diffusers) → Linear in → block → Linear out."""

    def __init__(self, channels, heads, cross_dim, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(channels, heads, channels // heads, cross_dim)])
        self.proj_out = nn.Linear(channels, channels)

    def forward(self, x, context):
        b, c, h, w = x.shape
        hs = self.norm(x).permute(0, 2, 3, 1).reshape(b, h * w, c)
        hs = self.proj_in(hs)
        for blk in self.transformer_blocks:
            hs = blk(hs, context)
        hs = self.proj_out(hs).reshape(b, h, w, c).permute(0, 3, 1, 2)
        return hs + x


class Downsample2D(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class Upsample2D(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DownBlock(nn.Module):
    """CrossAttnDownBlock2D (heads given) or DownBlock2D (heads None)."""

    def __init__(self, a: Arch, cin, cout, heads, add_downsample):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin if i == 0 else cout, cout, a.temb, a.groups) for i in range(a.layers)])
        if heads is not None:
            self.attentions = nn.ModuleList([Transformer2DModel(cout, heads, a.cross_dim, a.groups) for _ in range(a.layers)])
        else:
            self.attentions = None
        self.downsamplers = nn.ModuleList([Downsample2D(cout)]) if add_downsample else None

    def forward(self, h, temb, context):
        states = ()
        for i, resnet in enumerate(self.resnets):
            h = resnet(h, temb)
            if self.attentions is not None:
                h = self.attentions[i](h, context)
            states += (h,)
        if self.downsamplers is not None:
            h = self.downsamplers[0](h)
            states += (h,)
        return h, states


class UpBlock(nn.Module):
    """CrossAttnUpBlock2D (heads given) or UpBlock2D (heads None): layers+1 resnets over concatenated skips."""

    def __init__(self, a: Arch, cin, prev, cout, heads, add_upsample):
        super().__init__()
        n = a.layers + 1
        self.resnets = nn.ModuleList(
            [ResnetBlock2D((prev if i == 0 else cout) + (cin if i == n - 1 else cout), cout, a.temb, a.groups) for i in range(n)]
        )
        if heads is not None:
            self.attentions = nn.ModuleList([Transformer2DModel(cout, heads, a.cross_dim, a.groups) for _ in range(n)])
        else:
            self.attentions = None
        self.upsamplers = nn.ModuleList([Upsample2D(cout)]) if add_upsample else None

    def forward(self, h, skips, temb, context):
        for i, resnet in enumerate(self.resnets):
            h = resnet(torch.cat([h, skips[-1 - i]], dim=1), temb)
            if self.attentions is not None:
                h = self.attentions[i](h, context)
        if self.upsamplers is not None:
            h = self.upsamplers[0](h)
        return h


class MidBlock(nn.Module):
    """UNetMidBlock2DCrossAttn: resnet → transformer → resnet."""

    def __init__(self, a: Arch, c, heads):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(c, c, a.temb, a.groups), ResnetBlock2D(c, c, a.temb, a.groups)])
        self.attentions = nn.ModuleList([Transformer2DModel(c, heads, a.cross_dim, a.groups)])

    def forward(self, h, temb, context):
        h = self.resnets[0](h, temb)
        h = self.attentions[0](h, context)
        return self.resnets[1](h, temb)


class UNet2DConditionModel(nn.Module):
    """SD 2.1 / SD-Turbo: down CrossAttn×3 + Down, mid CrossAttn, up Up + CrossAttn×3."""

    def __init__(self, a: Arch):
        super().__init__()
        c, heads = a.block_out, a.heads
        self.base = c[0]
        self.conv_in = nn.Conv2d(a.latent, c[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(c[0], a.temb)
        self.down_blocks = nn.ModuleList(
            [DownBlock(a, c[i - 1] if i > 0 else c[0], c[i], heads[i] if i < 3 else None, add_downsample=i < 3) for i in range(4)]
        )
        self.mid_block = MidBlock(a, c[-1], heads[-1])
        rc, rh = c[::-1], heads[::-1]
        ups = []
        for i in range(4):
            prev = rc[i - 1] if i > 0 else rc[0]
            ups.append(UpBlock(a, rc[min(i + 1, 3)], prev, rc[i], rh[i] if i > 0 else None, add_upsample=i < 3))
        self.up_blocks = nn.ModuleList(ups)
        self.conv_norm_out = nn.GroupNorm(a.groups, c[0], eps=1e-5)
        self.conv_out = nn.Conv2d(c[0], a.latent, 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states):
        # optimum feeds a 0-d timestep; diffusers broadcasts it over the batch
        t = timestep.reshape(-1).expand(sample.shape[0])
        temb = self.time_embedding(timestep_embedding(t, self.base).to(sample.dtype))
        h = self.conv_in(sample)
        skips = (h,)
        for blk in self.down_blocks:
            h, states = blk(h, temb, encoder_hidden_states)
            skips += states
        h = self.mid_block(h, temb, encoder_hidden_states)
        for blk in self.up_blocks:
            n = len(blk.resnets)
            h = blk(h, skips[-n:], temb, encoder_hidden_states)
            skips = skips[:-n]
        return self.conv_out(F.silu(self.conv_norm_out(h)))


# ----------------------------------------------------------------------------
# TAESD (madebyollin/taesd, taesd.py), wrapped like diffusers' AutoencoderTiny
# ----------------------------------------------------------------------------
def conv(n_in, n_out, **kw):
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kw)


class Clamp(nn.Module):
    def forward(self, x):
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.conv = nn.Sequential(conv(n_in, n_out), nn.ReLU(), conv(n_out, n_out), nn.ReLU(), conv(n_out, n_out))
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()

    def forward(self, x):
        return self.fuse(self.conv(x) + self.skip(x))


def taesd_encoder(c, latent):
    return nn.Sequential(
        conv(3, c), Block(c, c),
        conv(c, c, stride=2, bias=False), Block(c, c), Block(c, c), Block(c, c),
        conv(c, c, stride=2, bias=False), Block(c, c), Block(c, c), Block(c, c),
        conv(c, c, stride=2, bias=False), Block(c, c), Block(c, c), Block(c, c),
        conv(c, latent),
    )


def taesd_decoder(c, latent):
    return nn.Sequential(
        Clamp(), conv(latent, c), nn.ReLU(),
        Block(c, c), Block(c, c), Block(c, c), nn.Upsample(scale_factor=2), conv(c, c, bias=False),
        Block(c, c), Block(c, c), Block(c, c), nn.Upsample(scale_factor=2), conv(c, c, bias=False),
        Block(c, c), Block(c, c), Block(c, c), nn.Upsample(scale_factor=2), conv(c, c, bias=False),
        Block(c, c), conv(c, 3),
    )


class TaesdEncoder(nn.Module):
    """[-1, 1] image → latent (diffusers EncoderTiny: TAESD itself wants [0, 1])."""

    def __init__(self, a: Arch):
        super().__init__()
        self.layers = taesd_encoder(a.taesd, a.latent)

    def forward(self, sample):
        return self.layers(sample.add(1).div(2))


class TaesdDecoder(nn.Module):
    """latent → [-1, 1] image (diffusers DecoderTiny; the tanh clamp is the first layer)."""

    def __init__(self, a: Arch):
        super().__init__()
        self.layers = taesd_decoder(a.taesd, a.latent)

    def forward(self, latent_sample):
        return self.layers(latent_sample).mul(2).sub(1)


def count(m):
    return sum(p.numel() for p in m.parameters())


# ----------------------------------------------------------------------------
# Configs (the fields manifest.ts reads, plus the rest of sd-turbo's / AutoencoderTiny's)
# ----------------------------------------------------------------------------
SCHEDULER = {
    "_class_name": "EulerDiscreteScheduler",
    "_diffusers_version": DIFFUSERS_VERSION,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "trailing",
    "trained_betas": None,
    "use_karras_sigmas": False,
}


def model_index(name):
    return {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": DIFFUSERS_VERSION,
        "_name_or_path": name,
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "text_encoder": [None, None],
        "tokenizer": [None, None],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderTiny"],
    }


def unet_config(a: Arch):
    return {
        "_class_name": "UNet2DConditionModel",
        "_diffusers_version": DIFFUSERS_VERSION,
        "act_fn": "silu",
        "addition_embed_type": None,
        "attention_head_dim": a.heads,
        "block_out_channels": a.block_out,
        "center_input_sample": False,
        "class_embed_type": None,
        "cross_attention_dim": a.cross_dim,
        "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
        "downsample_padding": 1,
        "dual_cross_attention": False,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "in_channels": a.latent,
        "layers_per_block": a.layers,
        "mid_block_scale_factor": 1,
        "mid_block_type": "UNetMidBlock2DCrossAttn",
        "norm_eps": 1e-05,
        "norm_num_groups": a.groups,
        "num_attention_heads": None,
        "num_class_embeds": None,
        "only_cross_attention": False,
        "out_channels": a.latent,
        "resnet_time_scale_shift": "default",
        "sample_size": 64,  # → 512×512 native in the project (sample_size × 8)
        "time_cond_proj_dim": None,
        "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
        "upcast_attention": False,
        "use_linear_projection": True,
    }


def vae_config(a: Arch):
    # AutoencoderTiny has no block_out_channels; the project then assumes the usual /8 (correct for TAESD).
    return {
        "_class_name": "AutoencoderTiny",
        "_diffusers_version": DIFFUSERS_VERSION,
        "act_fn": "relu",
        "decoder_block_out_channels": [a.taesd] * 4,
        "encoder_block_out_channels": [a.taesd] * 4,
        "force_upcast": False,
        "in_channels": 3,
        "latent_channels": a.latent,
        "latent_magnitude": 3,
        "latent_shift": 0.5,
        "num_decoder_blocks": [3, 3, 3, 1],
        "num_encoder_blocks": [1, 3, 3, 3],
        "out_channels": 3,
        "scaling_factor": 1.0,
        "shift_factor": 0.0,
        "upsample_fn": "nearest",
        "upsampling_scaling_factor": 2,
    }


def dump_json(path: Path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


# ----------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------
UNET_IO = dict(
    input_names=["sample", "timestep", "encoder_hidden_states"],
    output_names=["out_sample"],
    dynamic_axes={
        "sample": {0: "batch_size", 2: "height", 3: "width"},
        "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
        "out_sample": {0: "batch_size", 2: "height", 3: "width"},
    },
)
ENC_IO = dict(
    input_names=["sample"],
    output_names=["latent_sample"],
    dynamic_axes={
        "sample": {0: "batch_size", 1: "num_channels", 2: "height", 3: "width"},
        "latent_sample": {0: "batch_size", 2: "height_latent", 3: "width_latent"},
    },
)
DEC_IO = dict(
    input_names=["latent_sample"],
    output_names=["sample"],
    dynamic_axes={
        "latent_sample": {0: "batch_size", 1: "num_channels_latent", 2: "height_latent", 3: "width_latent"},
        "sample": {0: "batch_size", 2: "height", 3: "width"},
    },
)


def describe(what, module, args):
    """Random weights must still give finite activations in the export dtype, or a GPU run would time NaNs."""
    with torch.no_grad():
        y = module(*args).float()
    finite = torch.isfinite(y).float().mean().item()
    print(f"{what}: {tuple(y.shape)}, finite {finite:.1%}, std {y[torch.isfinite(y)].std().item():.3g}", flush=True)


def torch_export(module, args, path: Path, io, opset):
    path.parent.mkdir(parents=True, exist_ok=True)
    kw = dict(io, opset_version=opset, do_constant_folding=True)
    # torch >= 2.9 defaults to the dynamo exporter (needs onnxscript); use the TorchScript one where it exists,
    # the same graph for every torch version, and the dynamo one only if a future torch has no other.
    dynamo_kw = "dynamo" in inspect.signature(torch.onnx.export).parameters
    with torch.no_grad():
        try:
            torch.onnx.export(module, tuple(args), str(path), **(dict(kw, dynamo=False) if dynamo_kw else kw))
        except Exception as err:
            if not dynamo_kw:
                raise
            print(f"TorchScript ONNX export failed ({err}); retrying with dynamo=True", flush=True)
            torch.onnx.export(module, tuple(args), str(path), **dict(kw, dynamo=True, external_data=True))


def to_fp16_graph(path: Path):
    """Rewrite an fp32 ONNX file in place to float16 everywhere (what a half-precision trace gives),
    keeping Resize's roi/scales float32 as the spec requires."""
    import numpy as np
    import onnx
    from onnx import TensorProto, numpy_helper

    F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16
    m = onnx.load(str(path))
    g = m.graph
    keep32 = set()
    for n in g.node:
        if n.op_type == "Resize":
            keep32.update(x for x in list(n.input)[1:3] if x)
    for i, t in enumerate(g.initializer):
        if t.data_type == F32 and t.name not in keep32:
            g.initializer[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name))
    for n in g.node:
        for attr in n.attribute:
            if attr.name == "to" and n.op_type == "Cast" and attr.i == F32:
                attr.i = F16
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == F32 and not (set(n.output) & keep32):
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float16), attr.t.name))
    for v in list(g.input) + list(g.output):
        if v.type.tensor_type.elem_type == F32:
            v.type.tensor_type.elem_type = F16
    del g.value_info[:]
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def export_all(a: Arch, out: Path, dtype: str, device: str, seed: int, opset: int):
    half = dtype == "fp16"
    trace_half = half and device == "cuda"
    tdt = torch.float16 if trace_half else torch.float32
    dev = torch.device(device)
    side = 64  # trace at 64×64 latents (512×512 pixels); every spatial axis is dynamic anyway

    def prepare(m):
        return m.eval().to(device=dev, dtype=tdt)

    files = []
    # UNet first and alone: the full-size one is the only large thing in memory.
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(a)
    n_unet = count(unet)
    t0 = time.time()
    unet = prepare(unet)
    args = [
        torch.randn(1, a.latent, side, side, device=dev, dtype=tdt),
        torch.tensor(999.0, device=dev, dtype=tdt),
        torch.randn(1, 77, a.cross_dim, device=dev, dtype=tdt),
    ]
    torch_export(unet, args, out / "unet/model.onnx", UNET_IO, opset)
    files.append(out / "unet/model.onnx")
    describe("unet out_sample", unet, args)
    del unet, args
    if device == "cuda":
        torch.cuda.empty_cache()
    print(f"unet exported in {time.time() - t0:.1f} s", flush=True)

    torch.manual_seed(seed + 1)
    enc = prepare(TaesdEncoder(a))
    args = [torch.rand(1, 3, side * 8, side * 8, device=dev, dtype=tdt) * 2 - 1]
    torch_export(enc, args, out / "vae_encoder/model.onnx", ENC_IO, opset)
    describe("vae_encoder latent_sample", enc, args)
    torch.manual_seed(seed + 2)
    dec = prepare(TaesdDecoder(a))
    args = [torch.randn(1, a.latent, side, side, device=dev, dtype=tdt)]
    torch_export(dec, args, out / "vae_decoder/model.onnx", DEC_IO, opset)
    describe("vae_decoder sample", dec, args)
    files += [out / "vae_encoder/model.onnx", out / "vae_decoder/model.onnx"]

    if half and not trace_half:
        for f in files:
            to_fp16_graph(f)
    return n_unet, count(enc), count(dec)


def default_name(scale, dtype):
    return f"sd-turbo-arch-random-{scale}-{dtype}"


def report_counts(n_unet, n_enc, n_dec, scale):
    print(f"UNet parameters:          {n_unet:,}")
    print(f"TAESD encoder parameters: {n_enc:,}")
    print(f"TAESD decoder parameters: {n_dec:,}")
    if scale == "full":
        ok = (n_unet, n_enc, n_dec) == (SD21_UNET_PARAMS, TAESD_ENCODER_PARAMS, TAESD_DECODER_PARAMS)
        print(
            f"reference: SD 2.1 UNet {SD21_UNET_PARAMS:,} (diff {n_unet - SD21_UNET_PARAMS:+,}), "
            f"TAESD {TAESD_ENCODER_PARAMS:,} + {TAESD_DECODER_PARAMS:,}: {'MATCH' if ok else 'MISMATCH'}"
        )
        return ok
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--scale", choices=["full", "tiny"], default="full")
    ap.add_argument("--dtype", choices=["fp16", "fp32"], default="fp16")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--opset", type=int, default=OPSET)
    ap.add_argument("--count-only", action="store_true", help="build in fp32 on the CPU, print parameter counts, export nothing")
    a = ap.parse_args()
    arch = Arch(a.scale)
    print(f"torch {torch.__version__}, scale {a.scale}, dtype {a.dtype}, device {a.device}", flush=True)

    if a.count_only:
        torch.manual_seed(a.seed)
        ok = report_counts(count(UNet2DConditionModel(arch)), count(TaesdEncoder(arch)), count(TaesdDecoder(arch)), a.scale)
        return 0 if ok else 1

    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA device (use --device cpu)")
    name = default_name(a.scale, a.dtype)
    out = (a.out or Path(tempfile.gettempdir()) / "sds-realsize" / name).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for comp in ("unet", "vae_encoder", "vae_decoder"):
        for f in (out / comp).glob("*") if (out / comp).exists() else []:
            f.unlink()  # torch may write external-data files; never mix two exports
    t0 = time.time()
    counts = export_all(arch, out, a.dtype, a.device, a.seed, a.opset)
    dump_json(out / "model_index.json", model_index(name))
    dump_json(out / "scheduler/scheduler_config.json", SCHEDULER)
    dump_json(out / "unet/config.json", unet_config(arch))
    dump_json(out / "vae_encoder/config.json", vae_config(arch))
    dump_json(out / "vae_decoder/config.json", vae_config(arch))
    ok = report_counts(*counts, a.scale)
    for p in sorted(out.rglob("*")):
        if p.is_file():
            print(f"{p.stat().st_size:>14,}  {p.relative_to(out)}")
    print(f"wrote {out} in {time.time() - t0:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
