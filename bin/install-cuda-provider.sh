#!/usr/bin/env bash
# Installs onnxruntime-node's CUDA execution provider, which `npm install` skips (package.json's `allowScripts` denies
# onnxruntime-node's install script) because that installer downloads it from NuGet, outside the npm registry. `npm run install:cuda` runs this.
#
#   bash bin/install-cuda-provider.sh cuda13   # default. CUDA 13 + cuDNN 9: ONNX Runtime 1.29.0's CUDA provider from
#                                              # the npm registry (com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9,
#                                              # 179 MB), copied next to onnxruntime-node 1.29.0's libonnxruntime.so.1
#   bash bin/install-cuda-provider.sh cuda12   # CUDA 12 + cuDNN 9: onnxruntime-node's own installer (needs NuGet)
#
# Linux x64 only. The provider must be built from the very ONNX Runtime version onnxruntime-node carries (1.29.0), which
# is why onnxruntime-node is pinned in package.json. At run time the CUDA/cuDNN libraries must be on the loader's path
# (system CUDA, or the nvidia-* Python wheels: see README "GPU install").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
flavour=${1:-cuda13}
ort="$root/node_modules/onnxruntime-node"
bin="$ort/bin/napi-v6/linux/x64"
[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || { echo "install-cuda-provider: Linux x64 only" >&2; exit 1; }
[ -f "$bin/libonnxruntime.so.1" ] || { echo "install-cuda-provider: run npm install first ($bin missing)" >&2; exit 1; }
ort_version=$(node -p "require('$ort/package.json').version")

case $flavour in
  cuda12)
    (cd "$ort" && node script/install.js --onnxruntime-node-install=cuda12)
    ;;
  cuda13)
    [ "$ort_version" = 1.29.0 ] || {
      echo "install-cuda-provider: the CUDA 13 provider on npm is ONNX Runtime 1.29.0's; onnxruntime-node is $ort_version" >&2
      exit 1
    }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo "fetching com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 from the npm registry (179 MB)…"
    (cd "$tmp" && npm pack --silent com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 > /dev/null && tar xzf ./*.tgz)
    for lib in libonnxruntime_providers_cuda.so libonnxruntime_providers_shared.so; do
      cp "$tmp/package/Plugins/Linux/x64/$lib" "$bin/"
    done
    ;;
  *)
    echo "usage: bin/install-cuda-provider.sh [cuda13|cuda12]" >&2
    exit 2
    ;;
esac
ls -la "$bin"/libonnxruntime_providers_*.so
missing=$(ldd "$bin/libonnxruntime_providers_cuda.so" 2> /dev/null | grep 'not found' || true)
if [ -n "$missing" ]; then
  echo "installed, but these libraries are not on the loader's path yet (set LD_LIBRARY_PATH; README \"GPU install\"):"
  echo "$missing"
else
  echo "installed; try: npm start -- --provider cuda --no-cpu-fallback"
fi
