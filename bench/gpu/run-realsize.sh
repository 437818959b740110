#!/usr/bin/env bash
# The real-size GPU benchmark (README "Real-size models"): build SD-Turbo's UNet (865.9M parameters) and TAESD with
# random weights using the GPU machine's own PyTorch (weights cannot travel: 64 MiB per transfer), then run
# `sds bench model` (img2img at 512×512: encode → denoise → decode; 1 step, and 4 on CUDA) once per execution
# provider, each in its own bounded try, with the CPU measured in the same call. Latency only: the weights are random.
#
# With the CUDA provider it takes two calls (README "Real-size models" has the exact commands): prepare-realsize.sh
# unpacks the app and starts the builds, which this script then waits for. Without it, one call, .gpu/ carried
# (the worker imports the CLIP tokenizer package even for a model without a text encoder, and pack.sh carries only
# onnxruntime by itself):
#   npm run build && ../shared/gpu/pack.sh dist node_modules/@huggingface/tokenizers     # here
#   bash .gpu/unpack.sh && bash bench/gpu/run-realsize.sh                                # there
# Here, to check the control flow end to end on the CPU in a minute:
#   SDS_REALSIZE_SCALE=tiny SDS_PYTHON=/usr/bin/python3 bash bench/gpu/run-realsize.sh
#
# Environment (all optional):
#   OUT                    results folder (the GPU machine sets it); default bench/out/realsize-<time>
#   SDS_REALSIZE_SCALE     full (default) | tiny (same topology, widths / 8: a CPU check of this script)
#   SDS_TIME_BUDGET_S      total wall-clock bound, default 540 (the machine allows 600 s per command)
#   SDS_REUSE_MODELS=1     keep models already built in SDS_SCRATCH (a second call on a still-warm machine)
#   SDS_SCRATCH            where the models are built, default /tmp/sds-realsize-run (never inside the carried tree)
#   SDS_PYTHON             python with torch, default python3
#   SDS_APP                folder with node_modules/ and dist/, default .gpu/run if unpacked there, else the repo
#   SDS_CUDA_PROVIDER      a folder or .tgz/.tar holding libonnxruntime_providers_{cuda,shared}.so (README §2 of
#                          shared/gpu); copied next to onnxruntime-node's libonnxruntime.so.1
#   SDS_GPU_ITERATIONS / SDS_GPU_WARMUP   default 20 / 5;  SDS_CPU_ITERATIONS / SDS_CPU_WARMUP   default 3 / 1
#   SDS_PROVIDERS          which to run, default "cuda webgpu cpu"
#   SDS_CPU_DTYPE          fp32 (default: ORT's CPU kernels are fp32; an fp16 graph runs there through inserted
#                          casts, several times slower) | fp16 (the very file the GPU providers ran)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
start=$SECONDS
budget=${SDS_TIME_BUDGET_S:-540}
scale=${SDS_REALSIZE_SCALE:-full}
python=${SDS_PYTHON:-python3}
scratch=${SDS_SCRATCH:-/tmp/sds-realsize-run}
out=${OUT:-$root/bench/out/realsize-$(date +%Y%m%dT%H%M%S)}
cpu_dtype=${SDS_CPU_DTYPE:-fp32}
if [ -n "${SDS_APP:-}" ]; then app=$SDS_APP; elif [ -x .gpu/run/node ]; then app=$root/.gpu/run; else app=$root; fi
node=node
[ -x "$app/node" ] && node=$app/node
sds="$app/dist/bin/sds.js"
ortbin="$app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64"
mkdir -p "$out" "$scratch"
status="$out/status.txt"
: > "$status"

left() { echo $((budget - (SECONDS - start))); }
say() { echo "[$((SECONDS - start))s] $*"; }
# status.txt: one line per step, "<step> <ok|unavailable|failed|timeout|skipped> <detail>"
note() { echo "$*" >> "$status"; say "$*"; }
# Bound a step by min(its own limit, the time left minus a reserve for the steps after it).
bound() { local lim=$1 reserve=$2 l; l=$(( $(left) - reserve )); [ "$l" -lt "$lim" ] && lim=$l; echo "$lim"; }

say "root $root · app $app · out $out · scratch $scratch · scale $scale · budget ${budget}s"
{ echo "node: $("$node" --version 2>&1)"; "$python" -c 'import torch,sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)' 2>&1; } | tee "$out/versions.txt"
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,memory.total --format=csv > "$out/nvidia-smi.csv" 2>&1
  cat "$out/nvidia-smi.csv"
else
  echo "nvidia-smi not found" | tee "$out/nvidia-smi.csv"
fi
[ -f "$sds" ] || { note "setup failed $sds missing (npm run build, then pack dist)"; exit 1; }
for pkg in onnxruntime-node onnxruntime-common; do
  [ -d "$app/node_modules/$pkg" ] || { note "setup failed $app/node_modules/$pkg missing (name it to pack.sh)"; exit 1; }
done

device=cpu
"$python" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2> /dev/null && device=cuda

# --- build (the fp16 pair is what the GPU providers run) ---------------------------------------------------
build() { # dtype folder limit
  local t
  if [ -f "$2.pid" ]; then # started in the background by prepare-realsize.sh: wait for it, bounded
    t=$(bound "$3" 60)
    say "waiting for the background build-$1 (pid $(cat "$2.pid"), limit ${t}s)"
    local waited=0
    while [ ! -f "$2.rc" ] && [ "$waited" -lt "$t" ]; do sleep 2; waited=$((waited + 2)); done
    cp "$2.log" "$out/build-$1.log" 2> /dev/null
    grep -E 'parameters|reference|finite|exported|wrote' "$out/build-$1.log"
    if [ ! -f "$2.rc" ]; then note "build-$1 timeout after waiting ${t}s"; return 1; fi
    local brc; brc=$(cat "$2.rc")
    if [ "$brc" = 0 ]; then note "build-$1 ok $2 (background, done after ${waited}s of waiting)"; return 0; fi
    note "build-$1 failed rc=$brc: $(grep -v '^\s*$' "$out/build-$1.log" | tail -1)"; return 1
  fi
  if [ "${SDS_REUSE_MODELS:-0}" = 1 ] && [ -f "$2/model_index.json" ]; then note "build-$1 reused $2"; return 0; fi
  t=$(bound "$3" 60)
  if [ "$t" -lt 20 ]; then note "build-$1 skipped out of time"; return 1; fi
  say "building $scale $1 models on $device (limit ${t}s)"
  timeout --kill-after=10 "$t" nice -n 5 "$python" models/realsize/make_realsize_models.py --scale "$scale" --dtype "$1" \
    --device "$device" --out "$2" > "$out/build-$1.log" 2>&1
  local rc=$?
  grep -E 'parameters|reference|finite|exported|wrote' "$out/build-$1.log"
  case $rc in
    0) note "build-$1 ok $2"; return 0 ;;
    124|137) note "build-$1 timeout after ${t}s"; return 1 ;;
    *) note "build-$1 failed rc=$rc: $(grep -v '^\s*$' "$out/build-$1.log" | tail -1)"; return 1 ;;
  esac
}
fp16="$scratch/$scale-fp16"
build fp16 "$fp16" 240 || fp16=
# Both builds finish before any timed run: a torch export running beside a benchmark takes CPU and GPU from it.
cpu_dir=$fp16
if [ "$cpu_dtype" = fp32 ]; then
  cpu_dir="$scratch/$scale-fp32"
  build fp32 "$cpu_dir" 150 || { cpu_dir=$fp16; cpu_dtype=fp16; say "cpu: falling back to the fp16 models"; }
fi

# --- one bench per provider ----------------------------------------------------------------------------------
providers=" ${SDS_PROVIDERS:-cuda webgpu cpu} "
bench() { # provider model-dir iterations warmup limit reserve label [steps]
  local p=$1 dir=$2 label=$7 steps=${8:-1} t
  if [[ "$providers" != *" $p "* ]]; then note "$label skipped not in SDS_PROVIDERS"; return; fi
  if [ -z "$dir" ]; then note "$label skipped no model"; return; fi
  t=$(bound "$5" "$6")
  if [ "$t" -lt 30 ]; then note "$label skipped out of time"; return; fi
  say "bench $label: --provider $p, $steps step(s), $3 iterations + $4 warm-up (limit ${t}s)"
  timeout --kill-after=10 "$t" "$node" "$sds" bench model --model "$dir" --provider "$p" --resolution 512x512 --steps "$steps" \
    --iterations "$3" --warmup "$4" --no-cpu-fallback --out "$out/$label.json" > "$out/$label.log" 2>&1
  local rc=$?
  case $rc in
    0) note "$label ok $dir"; cat "$out/$label.log" ;;
    124|137) note "$label timeout after ${t}s"; rm -f "$out/$label.json" ;;
    *) local why; why=$(grep -m1 '^sds: ' "$out/$label.log" || grep -m1 -iE 'error|failed' "$out/$label.log")
       note "$label unavailable rc=$rc: $(echo "$why" | cut -c1-400) (full log: $label.log)"; rm -f "$out/$label.json" ;;
  esac
}

gpu_iter=${SDS_GPU_ITERATIONS:-20}; gpu_warm=${SDS_GPU_WARMUP:-5}
cpu_iter=${SDS_CPU_ITERATIONS:-3}; cpu_warm=${SDS_CPU_WARMUP:-1}

# CUDA: onnxruntime-node has no CUDA provider unless its libraries were carried (shared/gpu/README.md §2).
if [ -n "${SDS_CUDA_PROVIDER:-}" ] && [ ! -f "$ortbin/libonnxruntime_providers_cuda.so" ]; then
  src=$SDS_CUDA_PROVIDER
  if [ -f "$src" ]; then
    mkdir -p "$scratch/cuda-provider" && "$python" -m tarfile -e "$src" "$scratch/cuda-provider" && src="$scratch/cuda-provider"
  fi
  for lib in libonnxruntime_providers_cuda.so libonnxruntime_providers_shared.so; do
    f=$(find "$src" -name "$lib" 2> /dev/null | head -1)
    [ -n "$f" ] && cp "$f" "$ortbin/"
  done
fi
if [ -f "$ortbin/libonnxruntime_providers_cuda.so" ] && [ -f "$ortbin/libonnxruntime_providers_shared.so" ]; then
  # CUDA 13 wheels keep their libraries in nvidia/cu13/lib, cuDNN in nvidia/cudnn/lib: every lib/ with a .so in it.
  nvlibs=$("$python" -c "import nvidia,glob,os; r=list(nvidia.__path__)[0]; print(':'.join(sorted({os.path.dirname(f) for f in glob.glob(os.path.join(r,'**','lib','*.so*'),recursive=True)})))" 2> /dev/null)
  echo "LD_LIBRARY_PATH += $nvlibs" >> "$out/versions.txt"
  # A provider that fails to load says only "Failed to load shared library": name the missing libraries up front.
  { echo "ldd libonnxruntime_providers_cuda.so, unresolved:"; ldd "$ortbin/libonnxruntime_providers_cuda.so" | grep 'not found' || echo "  none"; } >> "$out/versions.txt" 2>&1
  [ -n "$nvlibs" ] && export LD_LIBRARY_PATH="$nvlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  bench cuda "$fp16" "$gpu_iter" "$gpu_warm" 180 150 cuda
  # SD-Turbo's and LCM's longest schedule, for the cost per extra step.
  bench cuda "$fp16" "$gpu_iter" "$gpu_warm" 90 150 cuda-4steps 4
else
  note "cuda unavailable libonnxruntime_providers_{cuda,shared}.so are not next to $ortbin/libonnxruntime.so.1 (carry them: shared/gpu/README.md §2, SDS_CUDA_PROVIDER)"
fi

# WebGPU: compiled into onnxruntime-node; needs the Vulkan loader (carried as .gpu/gl/*.deb) to find an adapter.
# The NVIDIA Vulkan ICD is libGLX_nvidia.so.0, which needs glvnd's libraries (libglvnd0, libglx0, …): without
# them the loader reports "Could not get 'vkCreateInstance' … for ICD libGLX_nvidia.so.0" and no adapter.
egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
[ -f "$egl" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$egl
if ldconfig -p 2> /dev/null | grep -q libvulkan.so.1; then
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f "$icd" ] && export VK_DRIVER_FILES=$icd
  say "webgpu: Vulkan loader already installed (prepare-realsize.sh)"
elif ls .gpu/gl/*.deb > /dev/null 2>&1; then
  for f in .gpu/gl/*.deb; do dpkg -x "$f" / 2>> "$out/webgpu-setup.log"; done
  ldconfig 2>> "$out/webgpu-setup.log"
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f "$icd" ] && export VK_DRIVER_FILES=$icd
  say "webgpu: Vulkan loader unpacked from .gpu/gl ($(ls .gpu/gl/*.deb | xargs -n1 basename | tr '\n' ' '))"
else
  say "webgpu: no .gpu/gl/*.deb carried (the Vulkan loader); trying anyway"
fi
bench webgpu "$fp16" "$gpu_iter" "$gpu_warm" 150 120 webgpu

# CPU: the baseline, in the same call. fp32 by default (see SDS_CPU_DTYPE above).
bench cpu "$cpu_dir" "$cpu_iter" "$cpu_warm" 240 0 "cpu-$cpu_dtype"

# --- summary -------------------------------------------------------------------------------------------------
"$python" - "$out" "$scale" << 'EOF' | tee "$out/summary.md"
import glob, json, os, sys
out, scale = sys.argv[1], sys.argv[2]
gpu = open(os.path.join(out, "nvidia-smi.csv")).read().strip().splitlines()[-1]
print(f"SD-Turbo UNet (SD 2.1 architecture) + TAESD, random weights, scale {scale} · img2img 512×512 · GPU: {gpu}")
print("times in ms, median / p95\n")
cols = ["preprocess", "vae_encode", "denoise", "vae_decode", "postprocess", "total"]
print("| run | provider | model | steps | " + " | ".join(cols) + " | fps | iterations |")
print("|---|---|---|---|" + "---|" * len(cols) + "---|---|")
for f in sorted(glob.glob(os.path.join(out, "*.json"))):
    r = json.load(open(f))
    for row in r["rows"]:
        cells = " | ".join(f"{row['stages'][c]['median']:.1f} / {row['stages'][c]['p95']:.1f}" for c in cols)
        name = os.path.basename(f)[:-5]
        print(f"| {name} | {r['provider']} | {r['model']} | {row['steps']} | {cells} | {row['fps']:.2f} | {row['iterations']} |")
print()
for line in open(os.path.join(out, "status.txt")):
    print("- " + line.rstrip())
EOF
say "done in $((SECONDS - start))s; results in $out"
