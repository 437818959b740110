"""Side-by-side markdown tables of two eval.py results on the same held-out set (for MODEL_CARD.md).

Usage: /usr/bin/python3 models/train/compare.py out/eval_old.json out/eval.json [more.json ...]
Each column is one result file; the first is the reference the "Δ" column is computed against (last vs first).
"""
import json
import sys


def main():
    paths = sys.argv[1:]
    rs = [json.load(open(p)) for p in paths]
    names = [p.split("/")[-1].removesuffix(".json") for p in paths]
    styles = rs[0]["styles"]
    L = ["| | " + " | ".join(names) + " | Δ (last − first) |", "|---|" + "---|" * (len(rs) + 1)]

    def row(label, vals, fmt="{:.2f}"):
        L.append(f"| {label} | " + " | ".join(fmt.format(v) for v in vals) + f" | {fmt.format(vals[-1] - vals[0])} |")

    row("AE PSNR, held-out photos (dB)", [r["ae_psnr_photos"] for r in rs])
    row("AE SSIM, held-out photos", [r["ae_ssim_photos"] for r in rs], "{:.3f}")
    row("AE PSNR, style targets, mean (dB)", [sum(r["ae_psnr_targets"].values()) / len(styles) for r in rs])
    for s in styles:
        row(f"AE PSNR, {s} targets (dB)", [r["ae_psnr_targets"][s] for r in rs])
    row("strength used (1 step)", [r["recommended_strength"] for r in rs])
    for key, label, fmt in (("psnr", "PSNR to target (dB)", "{:.2f}"), ("ssim", "SSIM to target", "{:.3f}"),
                            ("edge_ssim_vs_input", "edge-SSIM vs input", "{:.3f}")):
        vals = [sum(r["steps"]["1"]["per_style"][s][key] for s in styles) / len(styles) for r in rs]
        row(f"1 step, {label}, mean over styles", vals, fmt)
        for s in styles:
            row(f"1 step, {s}: {label}", [r["steps"]["1"]["per_style"][s][key] for r in rs], fmt)
    L.append("")
    L.append("Reference, edge-SSIM of each style target itself vs the input: " + ", ".join(
        f"{s} {rs[0]['baseline_identity'][s]['edge_ssim_target_vs_input']:.3f}" for s in styles))
    print("\n".join(L))


if __name__ == "__main__":
    main()
