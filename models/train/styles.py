"""Classical non-photorealistic style filters used as training targets.

Every filter maps an RGB uint8 image (H, W, 3) to an RGB uint8 image of the
same size. They are deterministic, so a target is a pure function of the
input frame.
"""
import cv2
import numpy as np

STYLES = [
    ("cartoon", "Cartoon"),
    ("sketch", "Pencil sketch"),
    ("watercolor", "Watercolor"),
    ("noir", "Film noir"),
    ("teal-orange", "Teal & orange"),
]
STYLE_IDS = [s for s, _ in STYLES]


def cartoon(rgb):
    # smooth colours, posterize lightness (LAB), boost chroma, add ink edges
    x = rgb
    for _ in range(2):
        x = cv2.bilateralFilter(x, 9, 60, 7)
    lab = cv2.cvtColor(x, cv2.COLOR_RGB2LAB).astype(np.float32)
    q = 32.0
    lab[..., 0] = np.floor(lab[..., 0] / q) * q + q / 2
    lab[..., 1:] = (lab[..., 1:] - 128) * 1.4 + 128
    x = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    gray = cv2.medianBlur(gray, 5)
    edges = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, 6)
    # drop isolated specks (small dark components), then thicken the remaining lines
    n, lab_img, stats, _ = cv2.connectedComponentsWithStats((edges == 0).astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= 24
    ink = keep[lab_img].astype(np.uint8)
    ink = cv2.dilate(ink, np.ones((2, 2), np.uint8))
    return np.where(ink[..., None] > 0, np.uint8(20), x).astype(np.uint8)


def sketch(rgb):
    # colour-dodge pencil sketch: gray / (1 - blur(inverted gray)), with slightly darkened strokes
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    g = cv2.GaussianBlur(g, (0, 0), 0.8)
    inv_blur = cv2.GaussianBlur(255.0 - g, (0, 0), 6.0)
    d = np.clip(g * 255.0 / np.maximum(255.0 - inv_blur, 1.0), 0, 255) / 255.0
    d = d ** 2.2  # darker, more visible strokes
    return cv2.cvtColor((d * 255).astype(np.uint8), cv2.COLOR_GRAY2RGB)


def watercolor(rgb):
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    s = cv2.stylization(bgr, sigma_s=40, sigma_r=0.5)
    hsv = cv2.cvtColor(s, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 1] *= 0.8            # softer, paper-like colours
    hsv[..., 2] = hsv[..., 2] * 0.85 + 255 * 0.15
    s = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)
    return cv2.cvtColor(s, cv2.COLOR_BGR2RGB)


def _vignette(h, w, strength):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2) / np.sqrt(2)
    return 1.0 - strength * r ** 2


def noir(rgb):
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    # strong S-curve contrast
    g = np.clip((g - 0.5) * 1.6 + 0.5, 0, 1)
    g = g * g * (3 - 2 * g)
    g = g * _vignette(*g.shape, 0.7)
    return cv2.cvtColor((np.clip(g, 0, 1) * 255).astype(np.uint8), cv2.COLOR_GRAY2RGB)


def teal_orange(rgb):
    x = rgb.astype(np.float32) / 255.0
    lum = (0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2])[..., None]
    teal = np.array([0.0, 0.55, 0.65], np.float32)
    orange = np.array([1.0, 0.5, 0.1], np.float32)
    w = np.clip((lum - 0.2) / 0.6, 0, 1)
    w = w * w * (3 - 2 * w)
    tint = teal * (1 - w) + orange * w
    # overlay-style grade: keep luminance, push chroma toward the tint
    y = lum + 0.8 * (tint - 0.5) * (0.5 + lum * (1 - lum) * 2.4)
    y = 0.25 * x + 0.75 * y
    y = np.clip((y - 0.5) * 1.25 + 0.5, 0, 1)
    return (y * 255).astype(np.uint8)


FILTERS = {
    "cartoon": cartoon,
    "sketch": sketch,
    "watercolor": watercolor,
    "noir": noir,
    "teal-orange": teal_orange,
}


def apply_all(rgb):
    return np.stack([FILTERS[s](rgb) for s in STYLE_IDS])
