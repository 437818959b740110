"""Photos -> 320x256 training frames (random crop / scale / flip / colour jitter) + style targets.

Two stages, so a GPU machine needs only the bundle (no Debian photo packages):

1. bundle: every photo listed below, downscaled to at most 1280 px on the long side, as
   lossless PNG bytes in one file, models/train/out/photos_bundle.npz (~45 MiB; written only
   when missing; needs the Debian packages listed in DATA.md).
2. frames: bundle -> models/train/out/data/{train,heldout}_frames.npy (uint8 [N,256,320,3]) and
   {train,heldout}_targets.npy (uint8 [S,N,256,320,3]) plus the held-out test photo and its
   targets into models/default/testdata/. Deterministic given the bundle and --seed.

Usage: /usr/bin/python3 models/train/prepare_data.py [--frames-per-photo 40] [--bundle PATH]
"""
import argparse
import json
import os
import sys
from multiprocessing import Pool

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from styles import STYLE_IDS, apply_all  # noqa: E402

SK = "/usr/lib/python3/dist-packages/skimage/data"
PW = "/usr/share/wallpapers"
BG = "/usr/share/backgrounds"

# (id, path) -- every source is described with its licence in models/default/DATA.md
TRAIN = [
    ("skimage-coffee", f"{SK}/coffee.png"),
    ("skimage-chelsea", f"{SK}/chelsea.png"),
    ("skimage-rocket", f"{SK}/rocket.jpg"),
    ("skimage-camera", f"{SK}/camera.png"),
    ("plasma-BytheWater", f"{PW}/BytheWater/contents/images/1920x1200.jpg"),
    ("plasma-ColdRipple", f"{PW}/ColdRipple/contents/images/1920x1200.jpg"),
    ("plasma-DarkestHour", f"{PW}/DarkestHour/contents/images/1920x1200.jpg"),
    ("plasma-FallenLeaf", f"{PW}/FallenLeaf/contents/images/2560x1600.jpg"),
    ("plasma-Grey", f"{PW}/Grey/contents/images/2560x1600.jpg"),
    ("plasma-Kite", f"{PW}/Kite/contents/images/2560x1600.jpg"),
    ("plasma-OneStandsOut", f"{PW}/OneStandsOut/contents/images/2560x1600.jpg"),
    ("plasma-Path", f"{PW}/Path/contents/images/2560x1600.jpg"),
    ("plasma-summer_1am", f"{PW}/summer_1am/contents/images/2560x1600.jpg"),
    ("lomiri-Bridge", f"{BG}/Bridge_by_Sander_Klootwijk.jpg"),
    ("lomiri-Dragonfly", f"{BG}/Dragonfly_by_Bolly.jpg"),
    ("lomiri-Picture_0B", f"{BG}/Picture_0B_by_freespace.jpg"),
    ("lomiri-Picture_1A", f"{BG}/Picture_1A_by_freespace.jpg"),
    ("lomiri-Wine", f"{BG}/Wine_by_Jakkub_Mede.jpg"),
    ("lomiri-aitzgorri", f"{BG}/aitzgorri_by_Aitzol_Berasategi.jpg"),
    ("lomiri-free", f"{BG}/free_by_Peter_Nerlich.jpg"),
    ("lomiri-greentock", f"{BG}/greentock_by_Peter_Nerlich.jpg"),
    ("lomiri-life", f"{BG}/life_by_Aitzol_Berasategi.jpg"),
    ("lomiri-picosdeeuropa", f"{BG}/picosdeeuropa_by_Aitzol_Berasategi.jpg"),
    ("lomiri-seeding", f"{BG}/seeding_by_Clements_Engelhardt.jpg"),
    ("lomiri-sunset", f"{BG}/sunset_by_Aitzol_Berasategi.jpg"),
    ("lomiri-Kleiber", f"{BG}/Kleiber_by_Lukas_Baubkus.jpg"),
    # added for issue 18: more texture, text and object photos
    ("plasma-ColorfulCups", f"{PW}/ColorfulCups/contents/images/2560x1600.jpg"),
    ("skimage-grass", f"{SK}/grass.png"),
    ("skimage-gravel", f"{SK}/gravel.png"),
    ("skimage-brick", f"{SK}/brick.png"),
    ("skimage-coins", f"{SK}/coins.png"),
    ("skimage-text", f"{SK}/text.png"),
    ("skimage-hubble", f"{SK}/hubble_deep_field.jpg"),
    ("skimage-retina", f"{SK}/retina.jpg"),
    ("skimage-ihc", f"{SK}/ihc.png"),
    ("skimage-moon", f"{SK}/moon.png"),
]
HELDOUT = [
    ("skimage-astronaut", f"{SK}/astronaut.png"),
    ("plasma-EveningGlow", f"{PW}/EveningGlow/contents/images/1920x1200.jpg"),
    ("lomiri-friends", f"{BG}/friends_by_Aitzol_Berasategi.jpg"),
    ("skimage-page", f"{SK}/page.png"),  # small printed text
]
W, H = 320, 256
ASPECT = W / H


def load_file(path):
    im = cv2.imread(path, cv2.IMREAD_COLOR)
    if im is None:
        raise FileNotFoundError(path)
    # cap the working size so crops are cheap (keeps photos at least ~2x the frame size)
    s = 1280 / max(im.shape[:2])
    if s < 1:
        im = cv2.resize(im, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    return im  # BGR


def write_bundle(path):
    """All photos (train + held-out), downscaled, as lossless PNG bytes in one .npz."""
    blobs = {}
    for pid, src in TRAIN + HELDOUT:
        ok, buf = cv2.imencode(".png", load_file(src), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        assert ok, src
        blobs[pid] = np.frombuffer(buf.tobytes(), dtype=np.uint8)
    np.savez(path, **blobs)
    print(f"bundle {path}: {len(blobs)} photos, {os.path.getsize(path) / 2**20:.1f} MiB", flush=True)


BUNDLE = {}


def load(pid):
    im = cv2.imdecode(BUNDLE[pid], cv2.IMREAD_COLOR)
    return cv2.cvtColor(im, cv2.COLOR_BGR2RGB)


def crop_frame(im, cx, cy, frac, flip=False):
    """5:4 crop centred at (cx, cy) (relative), covering `frac` of the largest 5:4 crop, resized to WxH."""
    h, w = im.shape[:2]
    cw_max = min(w, h * ASPECT)
    cw = cw_max * frac
    ch = cw / ASPECT
    x0 = int(round(np.clip(cx * w - cw / 2, 0, w - cw)))
    y0 = int(round(np.clip(cy * h - ch / 2, 0, h - ch)))
    c = im[y0:y0 + int(round(ch)), x0:x0 + int(round(cw))]
    f = cv2.resize(c, (W, H), interpolation=cv2.INTER_AREA if c.shape[1] > W else cv2.INTER_CUBIC)
    return f[:, ::-1].copy() if flip else f


def colour_jitter(f, rng):
    x = f.astype(np.float32) / 255.0
    x = x ** rng.uniform(0.8, 1.25)                                  # gamma
    x = (x - 0.5) * rng.uniform(0.8, 1.2) + 0.5 + rng.uniform(-0.08, 0.08)  # contrast, brightness
    g = x.mean(axis=2, keepdims=True)
    x = g + (x - g) * rng.uniform(0.7, 1.3)                          # saturation
    x = x * rng.uniform(0.93, 1.07, size=3)                          # white balance
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def make_train_frames(args):
    idx, (pid, path), n, seed, bundle = args
    if not BUNDLE:
        BUNDLE.update(np.load(bundle))
    rng = np.random.default_rng(seed * 1000 + idx)
    im = load(pid)
    frames = []
    for _ in range(n):
        frac = float(np.sqrt(rng.uniform(0.08, 1.0)))  # area fraction 8%..100%
        f = crop_frame(im, rng.uniform(0, 1), rng.uniform(0, 1), frac, flip=bool(rng.integers(2)))
        if rng.uniform() < 0.8:
            f = colour_jitter(f, rng)
        frames.append(f)
    frames = np.stack(frames)
    targets = np.stack([apply_all(f) for f in frames], axis=0)  # [n, S, H, W, 3]
    return frames, targets


def heldout_frames():
    frames, names = [], []
    for pid, path in HELDOUT:
        im = load(pid)
        # deterministic crops: whole 5:4 frame + two zoomed views
        views = [(0.5, 0.5, 1.0), (0.5, 0.35, 0.6), (0.3, 0.6, 0.45)]
        if pid == "skimage-astronaut":
            views = [(0.5, 0.5, 1.0), (0.45, 0.3, 0.55), (0.45, 0.25, 0.35)]  # face close-ups
        if pid == "skimage-page":
            views = [(0.25, 0.5, 1.0), (0.75, 0.5, 1.0), (0.3, 0.3, 0.6)]  # small printed text
        for i, (cx, cy, fr) in enumerate(views):
            frames.append(crop_frame(im, cx, cy, fr))
            names.append(f"{pid}#{i}")
    frames = np.stack(frames)
    targets = np.stack([apply_all(f) for f in frames], axis=0)  # [N, S, H, W, 3]
    return frames, targets, names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames-per-photo", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out", default=os.path.join(HERE, "out", "data"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--bundle", default=os.path.join(HERE, "out", "photos_bundle.npz"),
                    help="photo bundle; written from the Debian photo files when missing")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    cv2.setNumThreads(1)
    if not os.path.exists(a.bundle):
        write_bundle(a.bundle)
    BUNDLE.update(np.load(a.bundle))
    assert not set(p for p, _ in TRAIN) & set(p for p, _ in HELDOUT), "a held-out photo is in TRAIN"

    jobs = [(i, p, a.frames_per_photo, a.seed, a.bundle) for i, p in enumerate(TRAIN)]
    with Pool(a.workers) as pool:
        res = pool.map(make_train_frames, jobs)
    frames = np.concatenate([r[0] for r in res])
    targets = np.concatenate([r[1] for r in res]).transpose(1, 0, 2, 3, 4)  # [S, N, H, W, 3]
    np.save(f"{a.out}/train_frames.npy", frames)
    np.save(f"{a.out}/train_targets.npy", np.ascontiguousarray(targets))
    print("train", frames.shape, targets.shape)

    hf, ht, names = heldout_frames()
    np.save(f"{a.out}/heldout_frames.npy", hf)
    np.save(f"{a.out}/heldout_targets.npy", np.ascontiguousarray(ht.transpose(1, 0, 2, 3, 4)))
    json.dump({"names": names, "styles": STYLE_IDS, "train": [p for p, _ in TRAIN],
               "heldout": [p for p, _ in HELDOUT]}, open(f"{a.out}/meta.json", "w"), indent=1)
    print("heldout", hf.shape)

    # test fixture for the project's tests: astronaut face view (never trained on)
    td = os.path.join(HERE, "..", "default", "testdata")
    os.makedirs(os.path.join(td, "targets"), exist_ok=True)
    k = names.index("skimage-astronaut#1")
    cv2.imwrite(os.path.join(td, "heldout.png"), cv2.cvtColor(hf[k], cv2.COLOR_RGB2BGR))
    for s, sid in enumerate(STYLE_IDS):
        cv2.imwrite(os.path.join(td, "targets", f"{sid}.png"), cv2.cvtColor(ht[k, s], cv2.COLOR_RGB2BGR))
    # preview sheet of held-out styles
    rows = [np.concatenate([hf[i]] + list(ht[i]), axis=1) for i in range(len(hf))]
    cv2.imwrite(os.path.join(HERE, "out", "heldout_targets_preview.png"),
                cv2.cvtColor(np.concatenate(rows[:6], axis=0), cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
