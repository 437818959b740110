#!/usr/bin/env bash
# Here, before a GPU session: pack what bench/gpu/gpu-report.sh needs on a GPU machine that has only the NVIDIA driver,
# CUDA and PyTorch (no Node.js, no network, at most 64 MiB per transfer). One bundle: the node binary, the server's
# production node_modules (linux x64 only), dist/, models/default (the e2e bench's test photo), and onnxruntime's
# CUDA provider for sm_90 (H100/H200) slimmed by slim_cuda_provider.py. It is xz-compressed and split into parts of
# at most 56 MiB (plus the ~6 MB working tree: under 64), each in its own folder .gpu-parts/NN/, because node-av's FFmpeg (37.5 MB compressed) and the CUDA
# provider (38 MB) together do not fit one transfer. Each GPU call carries one part (`carry: [".gpu-parts/NN"]`);
# gpu-report.sh appends it to the bundle it keeps in /tmp while the machine stays warm (bench/gpu/RUNBOOK.md).
#
#   npm run build && bash bench/gpu/pack-gpu-report.sh          # prints the parts and the calls to make
#
# Environment: SDS_CUDA_PROVIDER_TGZ (a downloaded com.github.asus4.onnxruntime.linux-x64-gpu-0.4.9.tgz, else
# `npm pack` fetches it from the npm registry, 179 MB), SDS_PACK_TMP (default /tmp/sds-gpu-pack).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
tmp=${SDS_PACK_TMP:-/tmp/sds-gpu-pack}
stage="$tmp/stage"
[ -f dist/bin/sds.js ] || { echo "pack: run npm run build first" >&2; exit 1; }
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")" && { grep -qxF '/.gpu-parts/' "$exclude" 2> /dev/null || echo '/.gpu-parts/' >> "$exclude"; }
rm -rf "$stage" .gpu-parts && mkdir -p "$stage/node_modules" "$stage/cuda-provider" .gpu-parts

cp "$(readlink -f "$(command -v node)")" "$stage/node"
cp package.json "$stage/"
cp -r dist "$stage/dist"
mkdir -p "$stage/models" && cp -r models/default "$stage/models/default"
# The production dependency closure, as npm resolves it; native packages for other platforms are left out, and so
# are the native parts of the dev tools (esbuild, TypeScript) and type packages, which `npm ls --parseable` lists as
# extraneous. (npm ls exits 1 over an unmet optional dependency, ffmpeg-static: the list is still whole.)
modules=$({ npm ls --omit=dev --all --parseable 2> /dev/null || true; } | sed "s#^$(readlink -f node_modules)/##; s#^$root/node_modules/##" |
  { grep -v "^$root" || true; } | awk -F/ '{print ($1 ~ /^@/) ? $1"/"$2 : $1}' | sort -u | { grep -vE '^@(esbuild|typescript|types)/' || true; })
for m in $modules; do
  [ -d "node_modules/$m" ] || continue
  mkdir -p "$stage/node_modules/$m"
  (cd "node_modules/$m" && tar cf - --exclude='bin/napi-v6/darwin' --exclude='bin/napi-v6/win32' --exclude='bin/napi-v6/linux/arm64' .) |
    tar xf - -C "$stage/node_modules/$m"
done

# The CUDA provider of the very ONNX Runtime onnxruntime-node carries (1.29.0), for sm_90 only.
tgz=${SDS_CUDA_PROVIDER_TGZ:-}
if [ -z "$tgz" ]; then
  mkdir -p "$tmp/npm" && (cd "$tmp/npm" && [ -f com.github.asus4.onnxruntime.linux-x64-gpu-0.4.9.tgz ] || npm pack --silent com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 > /dev/null)
  tgz="$tmp/npm/com.github.asus4.onnxruntime.linux-x64-gpu-0.4.9.tgz"
fi
mkdir -p "$tmp/cuda" && tar xzf "$tgz" -C "$tmp/cuda" package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so package/Plugins/Linux/x64/libonnxruntime_providers_shared.so
python3 bench/gpu/slim_cuda_provider.py "$tmp/cuda/package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so" "$stage/cuda-provider/libonnxruntime_providers_cuda.so"
cp "$tmp/cuda/package/Plugins/Linux/x64/libonnxruntime_providers_shared.so" "$stage/cuda-provider/"

echo "pack: compressing $(du -sh "$stage" | cut -f1) (xz -6: several minutes on 2 cores)…"
tar cf - -C "$stage" . | xz -T2 -6 > "$tmp/bundle.tar.xz"
(cd .gpu-parts && split -b 56M -d -a 2 "$tmp/bundle.tar.xz" part-)
for p in .gpu-parts/part-*; do n=${p##*-}; mkdir -p ".gpu-parts/$n" && mv "$p" ".gpu-parts/$n/bundle.part"; done
sha256sum "$tmp/bundle.tar.xz" | cut -d' ' -f1 > .gpu-parts/bundle.sha256
parts=$(ls -d .gpu-parts/[0-9][0-9] | wc -l)
ls -la .gpu-parts/*/bundle.part
echo "pack: $parts part(s). On the GPU machine, back to back (the machine keeps /tmp only while warm):"
for p in .gpu-parts/[0-9][0-9]; do
  if [ "$p" = "$(ls -d .gpu-parts/[0-9][0-9] | tail -1)" ]; then mode=run; else mode=stage; fi
  echo "  carry [\"$p\", \".gpu-parts/bundle.sha256\"]  →  bash bench/gpu/gpu-report.sh $mode $p"
done
