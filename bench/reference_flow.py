#!/usr/bin/env python3
"""Reference optical flow for the benchmark, computed by an independent implementation (OpenCV).

Reads N grey frames (uint8, row-major, W x H each, concatenated) and writes, as float32 (dx, dy)
interleaved, the N-1 forward flows (t -> t+1) followed by the N-1 backward flows (t+1 -> t).
Prints one JSON line: the method, OpenCV's version and the median time per flow in ms.
Needs Debian's python3-opencv; `sds bench` runs it with /usr/bin/python3.
"""
import argparse
import json
import sys
import time

import cv2
import numpy as np


def make(method):
    if method == "dis-medium":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return lambda a, b: dis.calc(a, b, None)
    if method == "dis-ultrafast":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        return lambda a, b: dis.calc(a, b, None)
    if method == "farneback":
        # OpenCV's documented example parameters.
        return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    raise SystemExit(f"unknown method {method}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--method", default="dis-medium")
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--height", type=int, required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    a = p.parse_args()
    frames = np.fromfile(a.input, dtype=np.uint8).reshape(-1, a.height, a.width)
    calc = make(a.method)
    times = []
    flows = []
    for src, dst in [(t, t + 1) for t in range(len(frames) - 1)] + [(t + 1, t) for t in range(len(frames) - 1)]:
        start = time.perf_counter()
        flows.append(calc(frames[src], frames[dst]).astype(np.float32))
        times.append((time.perf_counter() - start) * 1000)
    np.stack(flows).tofile(a.output)
    json.dump({"method": a.method, "opencv": cv2.__version__, "median_ms": float(np.median(times))}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
