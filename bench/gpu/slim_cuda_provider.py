#!/usr/bin/env python3
"""Keep one GPU architecture's kernels in onnxruntime's CUDA provider library, so that it can travel to the GPU machine.

Why: libonnxruntime_providers_cuda.so (ONNX Runtime 1.29.0, CUDA 13, from the npm package
com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9) is 230 MB, 164 MB even under xz, and one transfer to the GPU
machine carries at most 64 MiB. 166 MB of it is the `.nv_fatbin` section: the same kernels compiled as cubins for
sm_75, 80, 86, 89, 90 and 120, with no PTX. The CUDA driver loads only the cubin that matches the device, so for an
H100/H200 (sm_90) the other cubins are dead weight. This zeroes their payloads in place (headers, sizes and every
offset stay as they were, so the ELF file and the fatbin index are unchanged) and the zeros then compress to nothing.

The result runs only on GPUs of the architecture kept. Usage:
  python3 bench/gpu/slim_cuda_provider.py IN.so OUT.so [--keep-sm 90]
"""
import argparse
import collections
import struct
import sys

FATBIN_MAGIC = 0xBA55ED50
CUBIN_KIND = 2


def section(data: bytes, name: bytes):
    """(file offset, size) of an ELF64 little-endian section by name."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        sys.exit("not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    str_off, = struct.unpack_from("<Q", data, shoff + shstrndx * shentsize + 0x18)
    for i in range(shnum):
        h = shoff + i * shentsize
        name_off, = struct.unpack_from("<I", data, h)
        end = data.index(b"\0", str_off + name_off)
        if data[str_off + name_off:end] == name:
            off, size = struct.unpack_from("<QQ", data, h + 0x18)
            return off, size
    sys.exit(f"no {name.decode()} section")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--keep-sm", type=int, default=90, help="the SM architecture whose cubins stay (90: H100/H200)")
    args = ap.parse_args()
    data = bytearray(open(args.src, "rb").read())
    off, size = section(data, b".nv_fatbin")
    kept, zeroed, other = collections.Counter(), collections.Counter(), 0
    pos = off
    while pos < off + size:
        magic, _version, header_size, fat_size = struct.unpack_from("<IHHQ", data, pos)
        if magic != FATBIN_MAGIC:
            pos += 8  # containers are 8-byte aligned
            continue
        entry, end = pos + header_size, pos + header_size + fat_size
        while entry < end:
            kind, _v, entry_header, payload = struct.unpack_from("<HHII", data, entry)
            arch, = struct.unpack_from("<I", data, entry + 28)
            body = entry + entry_header
            if kind != CUBIN_KIND:
                other += 1  # PTX or anything unknown: keep it, the driver may need it
            elif arch == args.keep_sm:
                kept[arch] += payload
            else:
                data[body:body + payload] = bytes(payload)
                zeroed[arch] += payload
            entry = body + payload
        pos = end
    if not kept:
        sys.exit(f"no sm_{args.keep_sm} cubins in {args.src}: refusing to write a library with no usable kernels")
    open(args.dst, "wb").write(data)
    mb = lambda c: f"{sum(c.values()) / 1e6:.1f} MB"
    print(f"kept sm_{args.keep_sm} cubins ({mb(kept)}); zeroed {', '.join(f'sm_{a}' for a in sorted(zeroed))} "
          f"({mb(zeroed)}); {other} non-cubin entries kept")


if __name__ == "__main__":
    main()
