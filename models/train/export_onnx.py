"""Export the trained model to ONNX (opset 17, dynamic batch/height/width) and write manifest.json.

Usage: /usr/bin/python3 models/train/export_onnx.py [--out models/default] [--strength 0.6]
(--strength defaults to the value recommended by eval.py in out/eval.json, else 0.6)
"""
import argparse
import json
import os
import re
import sys

import onnx
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as M  # noqa: E402
from common import HERE, OUT  # noqa: E402
from styles import STYLES  # noqa: E402


def load_models():
    ae = torch.load(os.environ.get("AE_CKPT", f"{OUT}/ae.pt"))
    dn = torch.load(os.environ.get("DEN_CKPT", f"{OUT}/denoiser.pt"))
    acfg = ae.get("cfg", {"latent_ch": 4, "dec_half": 0})
    enc, dec = M.Encoder(zc=acfg["latent_ch"]), M.Decoder(zc=acfg["latent_ch"], half=acfg["dec_half"])
    enc.load_state_dict(ae["enc"])
    dec.load_state_dict(ae["dec"])
    cfg = dn.get("cfg", {"ch": list(M.DEN_CH), "n_low": 3, "n_high": 0})
    den = M.Denoiser(ch=tuple(cfg["ch"]), zc=acfg["latent_ch"], n_styles=dn["n_styles"], n_low=cfg["n_low"],
                     n_high=cfg["n_high"])
    den.load_state_dict(dn["den"])
    return enc.eval(), dec.eval(), den.eval(), dn["scale"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "..", "default"))
    ap.add_argument("--strength", type=float, default=None)
    ap.add_argument("--style", default=None, help="default style (defaults to out/eval.json's best_style)")
    a = ap.parse_args()
    enc, dec, den, scale = load_models()
    M.export_all(enc, dec, den, a.out, opset=17)
    for f in ("vae_encoder.onnx", "denoiser.onnx", "vae_decoder.onnx"):
        m = onnx.load(os.path.join(a.out, f))
        onnx.checker.check_model(m)
        print(f, os.path.getsize(os.path.join(a.out, f)), "bytes",
              [i.name for i in m.graph.input], "->", [o.name for o in m.graph.output])

    strength = a.strength
    ev = f"{OUT}/eval.json"
    if strength is None and os.path.exists(ev):
        strength = json.load(open(ev)).get("recommended_strength")
    strength = 0.6 if strength is None else strength
    style = a.style or (json.load(open(ev)).get("best_style") if os.path.exists(ev) else None) or "teal-orange"

    emb = den.style_table.weight.detach()
    manifest = {
        "format": "sds-model/1",
        "name": "sds-tiny-styles",
        "description": (f"Tiny latent-diffusion img2img restyler (deterministic 8x conv autoencoder, "
                        f"{enc.out.out_channels}-channel latent, + "
                        "FiLM-conditioned x0-predicting conv denoiser) with 5 styles, trained on CPU from freely "
                        "licensed photos (see DATA.md) against classical non-photorealistic filter targets. "
                        "1-4 steps; see MODEL_CARD.md."),
        "components": {"vae_encoder": "vae_encoder.onnx", "denoiser": "denoiser.onnx",
                       "vae_decoder": "vae_decoder.onnx"},
        "latent": {"channels": enc.out.out_channels, "downscale": 8, "scalingFactor": round(float(scale), 6)},
        "pixelRange": [-1, 1],
        "resolution": {"width": 320, "height": 256},
        "resolutions": [[320, 256], [256, 192], [512, 512]],
        "sizeMultiple": 16,
        "scheduler": {"betaSchedule": "scaled_linear", "betaStart": 0.00085, "betaEnd": 0.012,
                      "numTrainTimesteps": 1000, "predictionType": "sample", "timestepSpacing": "trailing"},
        "steps": [1, 2, 3, 4],
        "defaults": {"steps": 1, "strength": strength, "style": style},
        "conditioning": {
            "kind": "styles",
            "dim": int(emb.shape[1]),
            "styles": [{"id": sid, "label": label, "embedding": [round(float(v), 6) for v in emb[i]]}
                       for i, (sid, label) in enumerate(STYLES)],
        },
    }
    text = json.dumps(manifest, indent=2)
    # keep numeric arrays (resolutions, embeddings) on one line
    text = re.sub(r"\[\s+([-0-9.,\s]+?)\s+\]", lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        f.write(text + "\n")
    print("scalingFactor", scale, "strength", strength)


if __name__ == "__main__":
    main()
