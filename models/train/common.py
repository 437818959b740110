import os
import random

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out")
DATA = os.path.join(OUT, "data")

# Stable-Diffusion scaled-linear schedule
BETA_START, BETA_END, T_TRAIN = 0.00085, 0.012, 1000


def alphas_cumprod():
    betas = torch.linspace(BETA_START ** 0.5, BETA_END ** 0.5, T_TRAIN, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0).float()


def img2img_timesteps(steps, strength):
    """Trailing spacing restricted to `strength`: strength 0.5 / 1 step -> [499];
    strength 1.0 / 4 steps -> [999, 749, 499, 249]."""
    return [int(round(strength * T_TRAIN * (1 - k / steps))) - 1 for k in range(steps)]


def seed_all(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_tensor(u8):
    """uint8 [..., H, W, 3] -> float [..., 3, H, W] in [-1, 1]"""
    t = torch.from_numpy(np.ascontiguousarray(u8)).float() / 127.5 - 1.0
    return t.movedim(-1, -3)


def to_u8(t):
    """float [..., 3, H, W] in [-1, 1] -> uint8 [..., H, W, 3]"""
    return ((t.clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).movedim(-3, -1).cpu().numpy()
