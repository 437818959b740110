#!/usr/bin/env bash
# First of the two GPU calls of the real-size benchmark (README "Real-size models"): everything cannot travel at once
# (64 MiB per transfer: the app bundle is ~37 MB, the sm_90-only CUDA provider ~38 MB), so this call
#   1. unpacks the app bundle (.gpu/bundle.tar.xz: node, onnxruntime-node, dist/) into $SDS_APP_DIR, outside the
#      carried folder, which the next transfer replaces;
#   2. unpacks the Vulkan loader and glvnd (.gpu/gl/*.deb: libvulkan1 libglvnd0 libglx0 libgl1 libegl1 libopengl0
#      libgles2, from `apt-get download`) for onnxruntime's WebGPU provider;
#   3. starts the fp16 (GPU) and fp32 (CPU baseline) model builds in their own process sessions, so that they run on
#      while the second call carries the CUDA provider over; run-realsize.sh waits for them.
# Environment: SDS_APP_DIR (default /tmp/sds-app), SDS_SCRATCH, SDS_PYTHON, SDS_REALSIZE_SCALE as run-realsize.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
app=${SDS_APP_DIR:-/tmp/sds-app}
scratch=${SDS_SCRATCH:-/tmp/sds-realsize-run}
python=${SDS_PYTHON:-python3}
scale=${SDS_REALSIZE_SCALE:-full}
device=cpu
"$python" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2> /dev/null && device=cuda
mkdir -p "$app" "$scratch"
"$python" -m tarfile -e .gpu/bundle.tar.xz "$app"
chmod +x "$app/node"
echo "app: node $("$app/node" --version) in $app"
if ls .gpu/gl/*.deb > /dev/null 2>&1; then
  for f in .gpu/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  echo "vulkan loader: $(ldconfig -p | grep -c libvulkan) libvulkan entries"
fi
for dtype in fp16 fp32; do
  dir="$scratch/$scale-$dtype"
  rm -rf "$dir" "$dir.rc"
  # setsid: the device tool ends a call's leftover processes unless they started their own session.
  setsid bash -c "nice -n 5 '$python' models/realsize/make_realsize_models.py --scale $scale --dtype $dtype \
    --device $device --out '$dir' > '$dir.log' 2>&1; echo \$? > '$dir.rc'" < /dev/null > /dev/null 2>&1 &
  echo $! > "$dir.pid"
  echo "build $dtype started in the background (pid $(cat "$dir.pid"), log $dir.log)"
done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2> /dev/null || true
