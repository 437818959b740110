"""Evaluate the trained model on HELD-OUT photos only (never used in training).

Reports: AE reconstruction PSNR; strength sweep (1 step); per style at 1/2/4 steps PSNR & SSIM
to the style's own target; the cross-style PSNR matrix (output of style A vs target of style B);
edge-map SSIM of the output vs the input; reference baselines. Writes out/eval.json, out/eval.md,
out/contact_sheet.png (+ one sheet per held-out photo) and out/parity_*.bin for an ONNX check.

Usage: /usr/bin/python3 models/train/eval.py [--onnx-dir DIR --tag NAME]
(--onnx-dir evaluates an exported model, e.g. the previous models/default, on the same held-out set:
its ONNX weights are loaded into the PyTorch modules of model.py)
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np
import torch
from skimage.filters import sobel
from skimage.metrics import peak_signal_noise_ratio as psnr_fn
from skimage.metrics import structural_similarity as ssim_fn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as M  # noqa: E402
from common import DATA, OUT, alphas_cumprod, img2img_timesteps, to_tensor, to_u8  # noqa: E402
from export_onnx import load_models  # noqa: E402
from styles import STYLE_IDS  # noqa: E402

STRENGTHS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0]
STEPS = [1, 2, 4]


def psnr(a, b):
    return float(psnr_fn(a, b, data_range=255))


def ssim(a, b):
    return float(ssim_fn(a, b, channel_axis=2, data_range=255))


def edges(u8):
    g = cv2.cvtColor(u8, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    return sobel(g)


def edge_ssim(a, b):
    return float(ssim_fn(edges(a), edges(b), data_range=1.0))


@torch.no_grad()
def restyle(den, dec, zx, emb, steps, strength, scale, seed=0):
    abar = alphas_cumprod()
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn(zx.shape, generator=g)
    z = zx
    for t in img2img_timesteps(steps, strength):
        ab = abar[t]
        zt = ab.sqrt() * z + (1 - ab).sqrt() * eps
        z = den(zt, torch.full((zx.shape[0],), float(t)), emb.expand(zx.shape[0], 1, -1))
    return to_u8(dec(z / scale))


def load_onnx_models(d):
    """Rebuilds encoder, decoder and denoiser from an exported model directory (initializer names
    are the PyTorch parameter names) plus the manifest's style table and scaling factor."""
    import onnx
    from onnx import numpy_helper

    def weights(f, strip=""):
        m = onnx.load(os.path.join(d, f))
        return {i.name[len(strip):] if i.name.startswith(strip) else i.name: torch.from_numpy(numpy_helper.to_array(i).copy())
                for i in m.graph.initializer}

    man = json.load(open(os.path.join(d, "manifest.json")))
    we, wd, wn = weights("vae_encoder.onnx", "enc."), weights("vae_decoder.onnx"), weights("denoiser.onnx")
    zc = we["out.weight"].shape[0]
    enc = M.Encoder(ch=(we["d0.weight"].shape[0], we["d1.weight"].shape[0], we["d2.weight"].shape[0]), zc=zc)
    dec = M.Decoder(ch=(wd["inp.weight"].shape[0], wd["b4.0.weight"].shape[0]), zc=zc, half=0)
    n_low = len({k.split(".")[1] for k in wn if k.startswith("low.")})
    n_high = len({k.split(".")[1] for k in wn if k.startswith("high.")})
    styles = man["conditioning"]["styles"]
    den = M.Denoiser(ch=(wn["inp.weight"].shape[0], wn["down.weight"].shape[0]), zc=zc, n_styles=len(styles),
                     n_low=n_low, n_high=n_high, skip="skip.weight" in wn)
    wn["style_table.weight"] = torch.tensor([st["embedding"] for st in styles], dtype=torch.float32)
    enc.load_state_dict({k: v for k, v in we.items() if k in enc.state_dict()}, strict=True)
    dec.load_state_dict({k: v for k, v in wd.items() if k in dec.state_dict()}, strict=True)
    den.load_state_dict({k: v for k, v in wn.items() if k in den.state_dict()}, strict=True)
    return enc.eval(), dec.eval(), den.eval(), man["latent"]["scalingFactor"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx-dir", default="")
    ap.add_argument("--tag", default="", help="suffix of the output files (eval_<tag>.json ...)")
    ap.add_argument("--strength", type=float, default=None,
                    help="evaluate the step tables at this strength instead of the sweep's best")
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    enc, dec, den, scale = load_onnx_models(a.onnx_dir) if a.onnx_dir else load_models()
    sfx = f"_{a.tag}" if a.tag else ""
    hf = np.load(f"{DATA}/heldout_frames.npy")
    ht = np.load(f"{DATA}/heldout_targets.npy")  # [S, N, H, W, 3]
    names = json.load(open(f"{DATA}/meta.json"))["names"]
    S, N = ht.shape[:2]
    table = den.style_table.weight.detach()
    res = {"heldout_frames": names, "styles": STYLE_IDS, "scalingFactor": scale}

    with torch.no_grad():
        x = to_tensor(hf)
        zx = enc(x) * scale
        rec = to_u8(dec(zx / scale))
        res["ae_psnr_photos"] = float(np.mean([psnr(rec[i], hf[i]) for i in range(N)]))
        res["ae_ssim_photos"] = float(np.mean([ssim(rec[i], hf[i]) for i in range(N)]))
        res["ae_psnr_targets"] = {}
        for s, sid in enumerate(STYLE_IDS):
            rt = to_u8(dec(enc(to_tensor(ht[s]))))
            res["ae_psnr_targets"][sid] = float(np.mean([psnr(rt[i], ht[s, i]) for i in range(N)]))
    res["baseline_identity"] = {sid: {"psnr": float(np.mean([psnr(hf[i], ht[s, i]) for i in range(N)])),
                                      "ssim": float(np.mean([ssim(hf[i], ht[s, i]) for i in range(N)])),
                                      "edge_ssim_target_vs_input": float(np.mean([edge_ssim(ht[s, i], hf[i]) for i in range(N)]))}
                                for s, sid in enumerate(STYLE_IDS)}
    print(f"AE PSNR photos {res['ae_psnr_photos']:.2f} dB; targets "
          + ", ".join(f"{k} {v:.2f}" for k, v in res["ae_psnr_targets"].items()), flush=True)

    # strength sweep at 1 step
    sweep = {}
    for st in STRENGTHS:
        d = []
        for s in range(S):
            out = restyle(den, dec, zx, table[s][None, None], 1, st, scale)
            d.append(np.mean([psnr(out[i], ht[s, i]) for i in range(N)]))
        sweep[str(st)] = {"mean_psnr": float(np.mean(d)), "per_style": dict(zip(STYLE_IDS, map(float, d)))}
        print(f"strength {st}: mean own-target PSNR {np.mean(d):.2f}", flush=True)
    res["strength_sweep_1step"] = sweep
    # recommended: best mean PSNR to the own target at 1 step; ties -> higher strength
    best = max(STRENGTHS, key=lambda s: (round(sweep[str(s)]["mean_psnr"], 2), s))
    if a.strength is not None:
        best = a.strength
    res["recommended_strength"] = best
    print("recommended strength", best, flush=True)

    outs = {}
    res["steps"] = {}
    for k in STEPS:
        per = {}
        cross = np.zeros((S, S))
        wins = 0
        for a in range(S):
            out = restyle(den, dec, zx, table[a][None, None], k, best, scale)
            outs[(k, a)] = out
            cross[a] = [np.mean([psnr(out[i], ht[b, i]) for i in range(N)]) for b in range(S)]
            for i in range(N):
                p = [psnr(out[i], ht[b, i]) for b in range(S)]
                wins += int(np.argmax(p) == a)
            per[STYLE_IDS[a]] = {
                "psnr": float(cross[a, a]),
                "ssim": float(np.mean([ssim(out[i], ht[a, i]) for i in range(N)])),
                "edge_ssim_vs_input": float(np.mean([edge_ssim(out[i], hf[i]) for i in range(N)])),
                "margin_db_vs_best_other_target": float(cross[a, a] - max(cross[a, b] for b in range(S) if b != a)),
            }
        res["steps"][str(k)] = {"timesteps": img2img_timesteps(k, best), "per_style": per,
                                "cross_psnr": cross.round(3).tolist(),
                                "diag_win_rate": wins / (S * N)}
        print(f"steps {k} t={img2img_timesteps(k, best)}: " + "; ".join(
            f"{sid} {v['psnr']:.2f}dB/{v['ssim']:.3f} edge {v['edge_ssim_vs_input']:.3f} margin {v['margin_db_vs_best_other_target']:+.2f}"
            for sid, v in per.items()) + f"; diag wins {wins}/{S * N}", flush=True)

    # the project's test fixture (testdata/heldout.png = astronaut view #1): per-image cross matrix
    k = names.index("skimage-astronaut#1")
    res["testdata_heldout_png"] = {}
    for st in STEPS:
        m = [[psnr(outs[(st, a)][k], ht[b, k]) for b in range(S)] for a in range(S)]
        res["testdata_heldout_png"][str(st)] = {"cross_psnr": np.round(m, 3).tolist(),
                                                 "own_target_wins": [int(np.argmax(r) == a) for a, r in enumerate(m)]}
    print("testdata/heldout.png own-target wins per style:",
          {st: v["own_target_wins"] for st, v in res["testdata_heldout_png"].items()}, flush=True)

    json.dump(res, open(f"{OUT}/eval{sfx}.json", "w"), indent=1)
    write_md(res, f"{OUT}/eval{sfx}.md")

    # contact sheets: per held-out view, rows = styles: input | target | 1 step | 2 steps | 4 steps
    for i in range(N):
        rows = [np.concatenate([hf[i], ht[s, i]] + [outs[(k, s)][i] for k in STEPS], axis=1) for s in range(S)]
        sheet = np.concatenate(rows, axis=0)
        cv2.imwrite(f"{OUT}/contact{sfx}_{i}_{names[i].replace('#', '_')}.png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    # the committed sheet: per held-out view a block of rows, one per style: input | target | output (1 step)
    pick = [names.index(n) for n in ("skimage-astronaut#1", "skimage-page#0", "lomiri-friends#0")]
    rows = [np.concatenate([hf[i], ht[s, i], outs[(1, s)][i]], axis=1) for i in pick for s in range(S)]
    cv2.imwrite(f"{OUT}/contact_sheet{sfx}.jpg", cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 88])

    # parity fixture for the ONNX check (astronaut face view, cartoon, recommended strength, 1 step)
    k = names.index("skimage-astronaut#1")
    with torch.no_grad():
        z = enc(x[k:k + 1]) * scale
        ab = alphas_cumprod()[img2img_timesteps(1, best)[0]]
        eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(0))
        zt = ab.sqrt() * z + (1 - ab).sqrt() * eps
        o = dec(den(zt, torch.tensor([float(img2img_timesteps(1, best)[0])]), table[0][None, None]) / scale)
    for nm, t in (("input", x[k:k + 1]), ("eps", eps), ("output", o)):
        t.numpy().astype(np.float32).tofile(f"{OUT}/parity{sfx}_{nm}.bin")


def write_md(res, path):
    L = []
    L.append(f"AE reconstruction on held-out photos: PSNR {res['ae_psnr_photos']:.2f} dB, SSIM {res['ae_ssim_photos']:.3f}")
    L.append("")
    L.append("| | " + " | ".join(res["styles"]) + " |")
    L.append("|---|" + "---|" * len(res["styles"]))
    L.append("| AE round-trip of the target, PSNR dB (ceiling) | " + " | ".join(f"{res['ae_psnr_targets'][s]:.2f}" for s in res["styles"]) + " |")
    L.append("| input photo vs target, PSNR dB (do-nothing baseline) | " + " | ".join(f"{res['baseline_identity'][s]['psnr']:.2f}" for s in res["styles"]) + " |")
    L.append("| input photo vs target, SSIM | " + " | ".join(f"{res['baseline_identity'][s]['ssim']:.3f}" for s in res["styles"]) + " |")
    L.append("| target edge-SSIM vs input (reference) | " + " | ".join(f"{res['baseline_identity'][s]['edge_ssim_target_vs_input']:.3f}" for s in res["styles"]) + " |")
    L.append("")
    L.append("Strength sweep (1 step), mean PSNR to own target: " + ", ".join(
        f"{k}: {v['mean_psnr']:.2f}" for k, v in res["strength_sweep_1step"].items()))
    L.append(f"Recommended strength: {res['recommended_strength']}")
    L.append("")
    for k, v in res["steps"].items():
        L.append(f"**{k} step(s)**, timesteps {v['timesteps']}, own-target wins {v['diag_win_rate'] * 100:.0f}% of (view, style) pairs")
        L.append("")
        L.append("| style | PSNR dB | SSIM | edge-SSIM vs input | margin over best other target (dB) |")
        L.append("|---|---|---|---|---|")
        for s, m in v["per_style"].items():
            L.append(f"| {s} | {m['psnr']:.2f} | {m['ssim']:.3f} | {m['edge_ssim_vs_input']:.3f} | {m['margin_db_vs_best_other_target']:+.2f} |")
        L.append("")
        L.append("Cross-style PSNR (rows: requested style of the output, columns: target style)")
        L.append("")
        L.append("| output \\ target | " + " | ".join(res["styles"]) + " |")
        L.append("|---|" + "---|" * len(res["styles"]))
        for a, row in zip(res["styles"], v["cross_psnr"]):
            L.append(f"| {a} | " + " | ".join(f"{x:.2f}" for x in row) + " |")
        L.append("")
    L.append("testdata/heldout.png (the project's test fixture) — cross-style PSNR at the recommended strength")
    L.append("")
    for st, v in res["testdata_heldout_png"].items():
        L.append(f"{st} step(s): own target is the closest for " + ", ".join(
            f"{sid} {'yes' if w else 'NO'}" for sid, w in zip(res["styles"], v["own_target_wins"])))
        L.append("")
    open(path, "w").write("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
