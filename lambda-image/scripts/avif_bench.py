#!/usr/bin/env python3
"""Bytes and encode time of JPEG, WebP and AVIF thumbnails at equal SSIM.

For every corpus image and box size: the engine's thumbnail, un-encoded (lossless PNG), is the
reference. The SSIM target is what the default JPEG (quality 80) reaches against it; for WebP
and AVIF the script searches (bisection over 1..100) the lowest quality whose output reaches
at least that SSIM, then times the encoder at the found quality (median of --reps runs, after
one untimed run, on one thread) and reports its bytes.

The encoding, timing and decoding is examples/encode_bench.rs (the engine's own encoders; AVIF
decoded by libaom, JPEG and WebP by the pure-Rust decoders of the `image` crate); this script
only computes SSIM and searches. SSIM: scikit-image's structural_similarity with the parameters
of Wang et al. 2004 (11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03), the mean over R, G
and B (so colour errors count, not luma alone), 8-bit, images with alpha composited on white.

Needs: python3 with numpy, Pillow (13, built with AVIF: every AVIF is also decoded by Pillow's
libavif as a cross-check) and scikit-image; and the release example:

  cargo build --release -p lambda-image --example encode_bench
  python3 lambda-image/scripts/avif_bench.py --bin target/release/examples/encode_bench \\
      --corpus ~/.cache/thumbbench/corpus --work /tmp/avif-bench [--reps 5] [--speeds 6,7,8,9,10]

The corpus is made by shared/bench/thumbs/gen_corpus.py. Timings are wall-clock; run it on an
idle machine (it prints the load average before and after).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity

FILES = [
    "jpeg_2mp_1600x1200.jpg",
    "jpeg_12mp_4000x3000.jpg",
    "jpeg_24mp_6000x4000.jpg",
    "jpeg_12mp_exif6_4000x3000.jpg",
    "jpeg_12mp_progressive_4000x3000.jpg",
    "png_rgb_12mp_4000x3000.png",
    "png_rgba_2000x2000.png",
    "webp_6mp_3000x2000.webp",
]
EXT = {"jpeg": "jpg", "webp": "webp", "avif": "avif"}
JPEG_QUALITY = 80


def on_white(path):
    img = Image.open(path)
    img.load()
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    return np.asarray(img.convert("RGB"))


def ssim(ref, path):
    return structural_similarity(
        ref,
        on_white(path),
        channel_axis=2,
        data_range=255,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )


class Bench:
    def __init__(self, args):
        self.bin = args.bin
        self.work = args.work

    def run(self, *argv):
        out = subprocess.run([self.bin, *argv], check=True, capture_output=True, text=True)
        return json.loads(out.stdout)

    def encode(self, stem, ref_png, ref, fmt, q, reps, speed=None):
        tag = f"{stem}_{fmt}_q{q}" + (f"_s{speed}" if speed else "")
        out = os.path.join(self.work, f"{tag}.{EXT[fmt]}")
        dec = os.path.join(self.work, f"{tag}.decoded.png")
        argv = ["encode", "--ref", ref_png, "--format", fmt, "--quality", str(q),
                "--reps", str(reps), "--out", out, "--decoded", dec]
        if speed:
            argv += ["--speed", str(speed)]
        r = self.run(*argv)
        r["ssim"] = ssim(ref, dec)
        if fmt == "avif":
            # A second, independent decoder (libavif in Pillow) must see the same picture.
            other = on_white(out)
            diff = np.abs(other.astype(int) - on_white(dec).astype(int)).max()
            if diff > 3:
                sys.exit(f"{out}: libaom and Pillow decode it {diff} levels apart")
        if r.get("threads") not in (None, 1):
            sys.exit(f"{out}: the encoder left {r['threads']} threads running")
        return r

    def lowest_quality(self, stem, ref_png, ref, fmt, target):
        """The lowest quality in 1..100 whose SSIM reaches `target` (SSIM rises with quality
        closely enough for a bisection), or 100 if none does."""
        lo, hi = 1, 100
        seen = {}
        while lo < hi:
            mid = (lo + hi) // 2
            seen[mid] = self.encode(stem, ref_png, ref, fmt, mid, 0)
            if seen[mid]["ssim"] >= target:
                hi = mid
            else:
                lo = mid + 1
        return lo


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--sizes", default="256,1024")
    ap.add_argument("--files", default=",".join(FILES))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--speeds", default="", help="also: AVIF at quality 80 for each of these rav1e speeds")
    ap.add_argument("--only-speeds", action="store_true", help="skip the equal-SSIM table")
    ap.add_argument("--json", help="append every row as a JSON line to this file")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    bench = Bench(args)
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)

    rows = []
    if args.only_speeds:
        args.sizes, sizes = "", args.sizes
    if args.sizes:
        print("| image @ box | thumbnail | SSIM target (JPEG q80) | JPEG ms | JPEG bytes | WebP q | WebP SSIM | WebP ms | WebP bytes | AVIF q | AVIF SSIM | AVIF ms | AVIF bytes |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in [int(s) for s in args.sizes.split(",") if s]:
        for name in args.files.split(","):
            stem = f"{os.path.splitext(name)[0]}_{size}"
            ref_png = os.path.join(args.work, f"{stem}.ref.png")
            dims = bench.run("ref", "--file", os.path.join(args.corpus, name), "--size", str(size), "--out", ref_png)
            ref = on_white(ref_png)
            row = {"file": name, "size": size, "width": dims["width"], "height": dims["height"]}
            jpeg = bench.encode(stem, ref_png, ref, "jpeg", JPEG_QUALITY, args.reps)
            target = jpeg["ssim"]
            row["target_ssim"] = target
            row["jpeg"] = jpeg
            for fmt in ("webp", "avif"):
                q = bench.lowest_quality(stem, ref_png, ref, fmt, target)
                row[fmt] = bench.encode(stem, ref_png, ref, fmt, q, args.reps)
            rows.append(row)
            w, a = row["webp"], row["avif"]
            print(f"| {name} @{size} | {dims['width']}x{dims['height']} | {target:.4f} "
                  f"| {jpeg['median_ms']:.1f} | {jpeg['bytes']} "
                  f"| {w['quality']} | {w['ssim']:.4f} | {w['median_ms']:.1f} | {w['bytes']} "
                  f"| {a['quality']} | {a['ssim']:.4f} | {a['median_ms']:.1f} | {a['bytes']} |", flush=True)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(row) + "\n")

    for size in sorted({r["size"] for r in rows}):
        rs = [r for r in rows if r["size"] == size]
        def geo(key, fmt):
            return statistics.geometric_mean([r[fmt][key] for r in rs])
        print(f"\n**@{size}, geometric mean over {len(rs)} images:** "
              + ", ".join(f"{fmt} {geo('median_ms', fmt):.1f} ms / {geo('bytes', fmt):.0f} bytes"
                          for fmt in ("jpeg", "webp", "avif"))
              + f"; AVIF bytes / JPEG {geo('bytes', 'avif') / geo('bytes', 'jpeg'):.2f}, / WebP {geo('bytes', 'avif') / geo('bytes', 'webp'):.2f}"
              + f"; AVIF ms / JPEG {geo('median_ms', 'avif') / geo('median_ms', 'jpeg'):.0f}x")

    if args.only_speeds:
        args.sizes = sizes
    if args.speeds:
        print("\n| image @ box | rav1e speed | AVIF q80 ms | bytes | SSIM |")
        print("|---|---:|---:|---:|---:|")
        for size in [int(s) for s in args.sizes.split(",")]:
            for name in args.files.split(","):
                stem = f"{os.path.splitext(name)[0]}_{size}"
                ref_png = os.path.join(args.work, f"{stem}.ref.png")
                if not os.path.exists(ref_png):
                    bench.run("ref", "--file", os.path.join(args.corpus, name), "--size", str(size), "--out", ref_png)
                ref = on_white(ref_png)
                for speed in [int(s) for s in args.speeds.split(",")]:
                    r = bench.encode(stem, ref_png, ref, "avif", 80, args.reps, speed)
                    print(f"| {name} @{size} | {speed} | {r['median_ms']:.1f} | {r['bytes']} | {r['ssim']:.4f} |", flush=True)
    print(f"load average after: {os.getloadavg()}", file=sys.stderr)


if __name__ == "__main__":
    main()
