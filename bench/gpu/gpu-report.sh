#!/usr/bin/env bash
# Issue 14's GPU measurements in one prepared run, on a machine with only the NVIDIA driver, CUDA and PyTorch, from
# the project folder plus the bundle bench/gpu/pack-gpu-report.sh makes (carried in parts of ≤ 56 MiB). It builds the
# real-size model (SD-Turbo's UNet + TAESD, random weights: models/realsize/make_realsize_models.py), fuses it with
# ONNX Runtime's Stable Diffusion optimizer where the machine's Python has onnxruntime + onnx, and runs, each bounded:
#   1. the end-to-end bench at 512², 1 step, consistency 0 and 0.5 (WebRTC on loopback, per-frame records),
#      with nvidia-smi sampling utilisation every 200 ms;
#   2. the model bench (pixels in graphs, then converted on the host: `--host-pixels`), for host ms per frame;
#   3. the codecs at 512² (libvpx, libx264 on the host; NVENC, NVDEC) and the sessions sweep (2 and 4 streams);
#   4. the fused UNet: model bench and the e2e bench at consistency 0.5 on it;
# and writes versions, `ldconfig -p | grep nvinfer` (TensorRT present?), status.txt and summary.md into
# $OUT/<date>-gpu-e2e/ (copy it into bench/reports/).
#
#   bash bench/gpu/gpu-report.sh stage .gpu-parts/00    # every call but the last: append the part, start the build
#   bash bench/gpu/gpu-report.sh run   .gpu-parts/02    # the last: append, unpack, wait for the build, measure
#   bash bench/gpu/gpu-report.sh fuse                   # next, if run had no time left to fuse: fuse and bench it
#   bash bench/gpu/gpu-report.sh dry                    # here, on the CPU: the same steps with the SD fixture model,
#                                                       # the CPU provider and short runs (README "Real-size models")
# Environment: OUT (results root; default bench/out), SDS_GPU_HOME (default /tmp/sds-gpu), SDS_PYTHON (python3),
# SDS_TIME_BUDGET_S (default 540: a call may run 600 s), SDS_E2E_SECONDS (default 20), SDS_GPU_MODEL (a built model
# folder to use instead of building one), SDS_PROVIDER (default cuda; cpu checks the stage/run path on a CPU machine).
set -uo pipefail
mode=${1:-}
part=${2:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
home=${SDS_GPU_HOME:-/tmp/sds-gpu}
python=${SDS_PYTHON:-python3}
start=$SECONDS
budget=${SDS_TIME_BUDGET_S:-540}
mkdir -p "$home"

append_part() {
  [ -n "$part" ] || return 0
  [ -f "$part/bundle.part" ] || { echo "gpu-report: $part/bundle.part is not here (carry it)"; exit 1; }
  # A part already appended (a repeated call) is not appended twice.
  local id; id=$(basename "$part")
  grep -qxF "$id" "$home/parts.done" 2> /dev/null || { cat "$part/bundle.part" >> "$home/bundle.tar.xz" && echo "$id" >> "$home/parts.done"; }
  echo "gpu-report: bundle parts here: $(tr '\n' ' ' < "$home/parts.done")($(du -h "$home/bundle.tar.xz" | cut -f1))"
}

start_build() { # the fp32 export is what the optimizer fuses; fp16 is what runs unfused (prepare-realsize.sh's way)
  local device=cpu dtype
  "$python" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2> /dev/null && device=cuda
  for dtype in fp16 fp32; do
    local dir="$home/full-$dtype"
    [ -f "$dir.pid" ] && continue
    # setsid: the device tool ends a call's leftover processes unless they started their own session.
    setsid bash -c "nice -n 5 '$python' models/realsize/make_realsize_models.py --scale full --dtype $dtype --device $device \
      --out '$dir' > '$dir.log' 2>&1; echo \$? > '$dir.rc'" < /dev/null > /dev/null 2>&1 &
    echo $! > "$dir.pid"
    echo "gpu-report: build $dtype started in the background (log $dir.log)"
  done
}

case $mode in
  stage) append_part; start_build; exit 0 ;;
  run) append_part; start_build ;;
  fuse | dry) ;;
  *) echo "usage: bench/gpu/gpu-report.sh stage|run PART-FOLDER | fuse | dry"; exit 2 ;;
esac

out="${OUT:-$root/bench/out}/$(date -u +%Y-%m-%d)-gpu-e2e"
[ "$mode" = dry ] && out="${OUT:-$root/bench/out}/$(date -u +%Y-%m-%d)-gpu-e2e-dry"
mkdir -p "$out"
status="$out/status.txt"
# A fuse call adds to the run call's folder.
[ "$mode" = fuse ] || : > "$status"
left() { echo $((budget - (SECONDS - start))); }
say() { echo "[$((SECONDS - start))s] $*"; }
note() { echo "$*" >> "$status"; say "$*"; }
bound() { local lim=$1 reserve=$2 l; l=$(( $(left) - reserve )); [ "$l" -lt "$lim" ] && lim=$l; echo "$lim"; }

# --- the app: node, node_modules, dist, CUDA provider ----------------------------------------------------------
if [ "$mode" = dry ]; then
  app=$root; node=node; provider=cpu; seconds=${SDS_E2E_SECONDS:-5}; iterations=5
  model=${SDS_GPU_MODEL:-$root/tests/fixtures/sd-tiny}
else
  app="$home/app"; node="$app/node"; provider=${SDS_PROVIDER:-cuda}; seconds=${SDS_E2E_SECONDS:-20}; iterations=40
  if [ ! -x "$node" ]; then
    [ -f .gpu-parts/bundle.sha256 ] && { echo "$(cat .gpu-parts/bundle.sha256)  $home/bundle.tar.xz" | sha256sum -c - > /dev/null ||
      { note "setup failed the bundle's checksum does not match: a part is missing or was appended twice ($home/parts.done)"; exit 1; }; }
    mkdir -p "$app" && "$python" -m tarfile -e "$home/bundle.tar.xz" "$app" && chmod +x "$node" || { note "setup failed cannot unpack $home/bundle.tar.xz"; exit 1; }
  fi
  ortbin="$app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64"
  cp -n "$app"/cuda-provider/*.so "$ortbin/" 2> /dev/null
  # CUDA 13's and cuDNN's libraries from the machine's PyTorch wheels (README "GPU install").
  nvlibs=$("$python" -c "import nvidia,glob,os; r=list(nvidia.__path__)[0]; print(':'.join(sorted({os.path.dirname(f) for f in glob.glob(os.path.join(r,'**','lib','*.so*'),recursive=True)})))" 2> /dev/null)
  [ -n "$nvlibs" ] && export LD_LIBRARY_PATH="$nvlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  model=${SDS_GPU_MODEL:-$home/full-fp16}
fi
sds() { "$node" "$app/dist/bin/sds.js" "$@"; }

# --- what the machine is -----------------------------------------------------------------------------------------
{
  echo "node: $("$node" --version 2>&1)"
  "$python" -c 'import torch,sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)' 2>&1
  "$python" -c 'import onnxruntime, onnx; print("python onnxruntime", onnxruntime.__version__, "onnx", onnx.__version__)' 2>&1 | tail -1
  nproc | sed 's/^/host cores: /'
  [ -n "${ortbin:-}" ] && { echo "ldd libonnxruntime_providers_cuda.so, unresolved:"; ldd "$ortbin/libonnxruntime_providers_cuda.so" 2>&1 | grep 'not found' || echo "  none"; }
} > "$out/versions.txt" 2>&1
cat "$out/versions.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/nvidia-smi.csv" 2>&1 || echo "nvidia-smi not found" > "$out/nvidia-smi.csv"
{ echo "ldconfig -p | grep nvinfer:"; ldconfig -p 2> /dev/null | grep nvinfer || echo "  (none: no TensorRT libraries on this machine)"; } > "$out/tensorrt.txt"
cat "$out/tensorrt.txt"

# --- the model ---------------------------------------------------------------------------------------------------
wait_build() { # dtype → 0 when $home/full-$dtype is built
  local dir="$home/full-$1" t waited=0
  [ -f "$dir.pid" ] || return 1
  t=$(bound 300 240)
  while [ ! -f "$dir.rc" ] && [ "$waited" -lt "$t" ]; do sleep 2; waited=$((waited + 2)); done
  cp "$dir.log" "$out/build-$1.log" 2> /dev/null
  [ -f "$dir.rc" ] && [ "$(cat "$dir.rc")" = 0 ] && { note "build-$1 ok (waited ${waited}s)"; return 0; }
  note "build-$1 failed or timed out after ${waited}s: $(tail -1 "$dir.log" 2> /dev/null)"; return 1
}
if [ "$mode" = run ] && [ -z "${SDS_GPU_MODEL:-}" ]; then wait_build fp16 || { note "setup failed no model"; exit 1; }; fi

# nvidia-smi sampling for the whole measuring part of the run: GPU utilisation is the GPU's, not the host threads'.
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,utilization.memory,memory.used --format=csv,nounits -lms 200 > "$out/gpu-utilisation.csv" 2>&1 &
  smi=$!
fi
mark() { echo "$(date -u +%Y/%m/%d\ %H:%M:%S.%3N), mark, $*" >> "$out/gpu-utilisation.marks"; }

# --- measurements, most important first ------------------------------------------------------------------------
e2e() { # label seconds extra-args…
  local label=$1 s=$2 t; shift 2
  t=$(bound $((s + 90)) 30)
  if [ "$t" -lt $((s + 20)) ]; then note "$label skipped out of time"; return; fi
  mark "start $label"
  timeout --kill-after=10 "$t" nice -n 0 "$node" "$app/dist/bin/sds.js" bench e2e --seconds "$s" --size 512x512 --resolution 512x512 \
    --model "$model" --provider "$provider" --no-cpu-fallback --out "$out/$label" "$@" > "$out/$label.log" 2>&1
  local rc=$?
  mark "end $label"
  [ $rc = 0 ] && note "$label ok" || note "$label failed rc=$rc: $(grep -m1 -E '^sds:|Error' "$out/$label.log" | cut -c1-300)"
}
mbench() { # label model extra-args…
  local label=$1 dir=$2 t; shift 2
  t=$(bound 120 30)
  if [ "$t" -lt 30 ]; then note "$label skipped out of time"; return; fi
  mark "start $label"
  timeout --kill-after=10 "$t" "$node" "$app/dist/bin/sds.js" bench model --model "$dir" --provider "$provider" --resolution 512x512 --steps 1 \
    --iterations "$iterations" --warmup 5 --no-cpu-fallback --out "$out/$label.json" "$@" > "$out/$label.log" 2>&1
  local rc=$?
  mark "end $label"
  [ $rc = 0 ] && { note "$label ok"; cat "$out/$label.log"; } || note "$label failed rc=$rc: $(grep -m1 -E '^sds:|Error' "$out/$label.log" | cut -c1-300)"
}

if [ "$mode" != fuse ]; then
e2e e2e-c0 "$seconds" --consistency 0
e2e e2e-c0.5 "$seconds" --consistency 0.5
mbench model "$model"
mbench model-host-pixels "$model" --host-pixels
e2e e2e-c0.5-host-blend "$seconds" --consistency 0.5 --image-blend host
# Codecs at 512²: libvpx/libx264 on the host cores against NVENC/NVDEC (unavailable ones say why).
t=$(bound 60 30)
[ "$t" -ge 20 ] && { timeout --kill-after=5 "$t" "$node" "$app/dist/bin/sds.js" bench codec --size 512x512 --frames 150 --out "$out/codecs.json" > "$out/codecs.md" 2>&1 \
  && note "codecs ok" || note "codecs failed: $(tail -1 "$out/codecs.md")"; cat "$out/codecs.md"; }
e2e sessions-2 $((seconds / 2)) --consistency 0.5 --sessions 2 --max-sessions 4 --admission-ceiling 1
e2e sessions-4 $((seconds / 2)) --consistency 0.5 --sessions 4 --max-sessions 4 --admission-ceiling 1
fi

# --- the fused UNet --------------------------------------------------------------------------------------------
fused="$home/fused-fp16"
[ "$mode" = dry ] && fused="$home/fused-dry"
if "$python" -c 'import onnxruntime.transformers, onnx' 2> /dev/null; then
  src=$model
  opts=(--float16)
  if [ "$mode" = dry ]; then
    # The CUDA-only fusions (NhwcConv, GroupNorm, BiasSplitGelu) have no CPU kernels: the dry run checks the flow only.
    opts=(--disable_nhwc_conv --disable_group_norm --disable_skip_group_norm --disable_bias_splitgelu --disable_bias_add)
  elif wait_build fp32; then src="$home/full-fp32"; else opts=(); fi # an fp16 export is fused as it is
  # Fusing the 3.4 GB fp32 UNet takes minutes: after a full run there is rarely time left, hence the fuse call.
  t=$(bound 300 120)
  rm -rf "$fused"
  if [ "$t" -ge 120 ] || { [ "$mode" = dry ] && [ "$t" -ge 30 ]; }; then
    timeout --kill-after=10 "$t" "$python" -m onnxruntime.transformers.models.stable_diffusion.optimize_pipeline -i "$src" -o "$fused" \
      "${opts[@]}" --provider "$provider" > "$out/fuse.log" 2>&1 && note "fuse ok from $src ${opts[*]}" || note "fuse failed: $(grep -v Deprecat "$out/fuse.log" | tail -1 | cut -c1-300)"
  else note "fuse skipped out of time (run: bash bench/gpu/gpu-report.sh fuse, next call, while the machine is warm)"; fi
  if [ -f "$fused/unet/model.onnx" ]; then
    # The optimizer rewrites the VAE files too (NhwcConv etc.): the fused folder is benched whole.
    mbench model-fused "$fused"
    model=$fused e2e e2e-c0.5-fused "$seconds" --consistency 0.5
  fi
else
  note "fuse skipped the machine's python has no onnxruntime + onnx (carry their wheels: the device README)"
fi
[ -n "${smi:-}" ] && kill "$smi" 2> /dev/null

# --- summary -----------------------------------------------------------------------------------------------------
"$python" - "$out" << 'EOF' | tee "$out/summary.md"
import glob, json, os, sys
out = sys.argv[1]
gpu = open(os.path.join(out, "nvidia-smi.csv")).read().strip().splitlines()[-1]
print(f"# GPU report: {gpu}\n")
print("## End to end (512×512, 1 step), ms\n")
stages = ["dispatch", "flow", "vae_encode", "denoise", "vae_decode", "warp", "postprocess", "encode"]
print("| run | server latency p50 / p95 / p99 | in / out fps | dropped | deadline misses | " + " | ".join(stages) + " |")
print("|---|---|---|---|---|" + "---|" * len(stages))
for f in sorted(glob.glob(os.path.join(out, "*", "report.json"))):
    r = json.load(open(f))
    st, lat = r.get("stagesMs", {}), r.get("latencyMs", {})
    cells = " | ".join(f"{st[k]['p50']:.1f} / {st[k]['p95']:.1f}" if k in st else "–" for k in stages)
    fmt = lambda v: f"{v:.1f}" if isinstance(v, (int, float)) else "?"
    print(f"| {os.path.basename(os.path.dirname(f))} | {fmt(lat.get('p50'))} / {fmt(lat.get('p95'))} / {fmt(lat.get('p99'))} | "
          f"{fmt(r.get('inputFps'))} / {fmt(r.get('outputFps'))} | {100 * r.get('dropRate', 0):.1f}% | {100 * r.get('deadlineMissRate', 0):.1f}% | {cells} |")
print("\n(stages: p50 / p95; each folder's report.md has the rest, the per-frame records are in its report.json)\n")
print("## Model bench (512×512, 1 step), ms median / p95\n")
cols = ["preprocess", "vae_encode", "denoise", "vae_decode", "postprocess", "host", "total"]
print("| run | " + " | ".join(cols) + " |")
print("|---|" + "---|" * len(cols))
for f in sorted(glob.glob(os.path.join(out, "model*.json"))):
    r = json.load(open(f))
    for row in r["rows"]:
        print(f"| {os.path.basename(f)[:-5]} | " + " | ".join(f"{row['stages'][c]['median']:.2f} / {row['stages'][c]['p95']:.2f}" for c in cols if c in row["stages"]) + " |")
print()
codecs = os.path.join(out, "codecs.md")
if os.path.exists(codecs):
    print("## Codecs\n\n" + open(codecs).read())
for line in open(os.path.join(out, "status.txt")):
    print("- " + line.rstrip())
EOF
say "done in $((SECONDS - start))s; results in $out"
