#!/bin/sh
# The whole pipeline for models/default, from the photo bundle to the exported ONNX files:
#   bundle -> frames + style targets -> autoencoder -> (decoder fine-tune with a patch
#   discriminator || denoiser on the frozen encoder's latents) -> held-out evaluation -> export.
#
#   DEVICE=cuda sh models/train/train_all.sh   # one GPU machine (torch with CUDA), see README.md
#   sh models/train/train_all.sh               # CPU fallback: the same files, same recipe, slower
#
# The two stage-3 jobs are independent (the encoder is frozen from then on), so they run side by
# side. Iteration counts and threads can be overridden through the environment (see below).
set -eu
cd "$(dirname "$0")/../.."
PY=${PY:-/usr/bin/python3}
DEVICE=${DEVICE:-cpu}
T=models/train
O=$T/out
mkdir -p $O
if [ "$DEVICE" = cuda ]; then
  : "${AE_ITERS:=24000}" "${DEC_ITERS:=16000}" "${DEN_ITERS:=32000}" "${DEN2_ITERS:=12000}" "${AE_BATCH:=32}" "${DEN_BATCH:=64}" "${THREADS:=4}"
else
  : "${AE_ITERS:=14000}" "${DEC_ITERS:=12000}" "${DEN_ITERS:=4500}" "${DEN2_ITERS:=3000}" "${AE_BATCH:=16}" "${DEN_BATCH:=32}" "${THREADS:=1}"
fi
: "${WORKERS:=$(nproc)}"

# 1. photos -> bundle (only when missing) -> frames and targets
$PY $T/prepare_data.py --frames-per-photo 40 --workers "$WORKERS" > $O/prepare.log 2>&1

# 2. autoencoder: L1 + gradient L1 (the discriminator's warm-up phase)
$PY $T/train_autoencoder.py --device "$DEVICE" --threads "$THREADS" --iters "$AE_ITERS" --batch "$AE_BATCH" \
  > $O/ae_train.log 2>&1

# 3a. decoder fine-tune on the frozen encoder with the patch discriminator (hinge loss)
$PY $T/train_autoencoder.py --device "$DEVICE" --threads "$THREADS" --decoder-only --init $O/ae.pt \
  --iters "$DEC_ITERS" --batch "$AE_BATCH" --lr 5e-4 --gan-start 1000 --gan-weight 0.02 \
  > $O/dec_train.log 2>&1 &
DEC_PID=$!
# 3b. denoiser on the same encoder's latents, pixel L1 through the (stage-2) decoder
$PY $T/train_denoiser.py --device "$DEVICE" --threads "$THREADS" --ae $O/ae.pt --iters "$DEN_ITERS" \
  --batch "$DEN_BATCH" --lr 1e-3 --warmup 200 --t-min-photo 10 --t-low-frac 0.7 --t-low-max 250 \
  --rollout-frac 0 --pix-weight 1.0 --pix-batch 8 --ckpt-every 250 > $O/den_train.log 2>&1
wait $DEC_PID
# 3c. denoiser fine-tune with multi-step rollouts (keeps 1 step, helps 2-4 steps)
cp $O/denoiser.pt $O/denoiser_stage1.pt
$PY $T/train_denoiser.py --device "$DEVICE" --threads "$THREADS" --ae $O/ae.pt --init $O/denoiser_stage1.pt \
  --out $O/denoiser_stage2.pt --iters "$DEN2_ITERS" --batch "$DEN_BATCH" --lr 3e-4 --warmup 100 --t-min-photo 10 \
  --t-low-frac 0.7 --t-low-max 250 --rollout-frac 0.15 --pix-weight 1.0 --pix-batch 8 --ckpt-every 250 --seed 1 \
  > $O/den2_train.log 2>&1

# 4. evaluation on the held-out photos, export. The decoder: step 2's or step 3a's best, whichever has
#    the higher held-out round-trip PSNR (photos + targets; logged in each checkpoint)
AE_CKPT=$($PY -c "
import sys, torch
c = [p for p in sys.argv[1:] if __import__('os').path.exists(p)]
s = lambda p: sum(torch.load(p, map_location='cpu')['heldout_psnr'].values())
print(max(c, key=s))" $O/ae.pt $O/ae_dec_best.pt)
echo "autoencoder checkpoint: $AE_CKPT"
export AE_CKPT DEN_CKPT=$O/denoiser_stage2.pt
$PY $T/eval.py > $O/eval.log 2>&1
$PY $T/export_onnx.py --out "${EXPORT_DIR:-$O/export}" --style teal-orange > $O/export.log 2>&1
tail -n 3 $O/eval.log
