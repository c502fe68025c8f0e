#!/usr/bin/env python3
"""How close the DC-only thumbnails of progressive JPEGs are to thumbnails of the full decode.

    bench_progressive_ssim.py THUMBCTL JPEG [JPEG...] [--sizes 256,1024]

For each JPEG and size: our thumbnail (`THUMBCTL thumbnail --format png`, lossless, so only
the decode and the resize are compared) against the reference, Pillow's full decode (no draft
mode: every scan, every coefficient) resized with Lanczos to the same dimensions. Prints SSIM
(scikit-image's `structural_similarity`, on the three channels, data range 255) and the mean
absolute difference. For context it prints the same for Pillow's own draft-mode thumbnail
(libjpeg's DCT-scaled decode, what Pillow-draft does in the shared benchmark).

Needs Pillow, NumPy and scikit-image (pip install pillow numpy scikit-image). Not a test: the
issue's figure (SSIM >= 0.98 at 256) is measured, reported in the README, and not asserted in CI.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from skimage.metrics import structural_similarity


def ours(thumbctl, src, size, work):
    out = Path(work) / f"{src.stem}_{size}"
    subprocess.run(
        [thumbctl, "thumbnail", str(src), "--out", str(out), "--sizes", str(size), "--format", "png"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    found = list(out.rglob("*.png"))
    if len(found) != 1:
        sys.exit(f"expected one thumbnail under {out}, found {found}")
    return np.asarray(Image.open(found[0]).convert("RGB"))


def full_decode(src, shape):
    im = ImageOps.exif_transpose(Image.open(src)).convert("RGB")
    h, w = shape[:2]
    return np.asarray(im.resize((w, h), Image.Resampling.LANCZOS))


def draft(src, size):
    im = Image.open(src)
    im.draft("RGB", (size, size))
    im = ImageOps.exif_transpose(im).convert("RGB")
    im.thumbnail((size, size), Image.Resampling.LANCZOS)
    return np.asarray(im)


def compare(a, b):
    if a.shape != b.shape:
        return float("nan"), float("nan")
    ssim = structural_similarity(a, b, channel_axis=2, data_range=255)
    return ssim, float(np.abs(a.astype(int) - b.astype(int)).mean())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("thumbctl")
    p.add_argument("jpegs", nargs="+", type=Path)
    p.add_argument("--sizes", default="256,1024")
    a = p.parse_args()
    print("| image | size | ours vs full decode: SSIM | mean abs diff | Pillow draft vs full decode: SSIM |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as work:
        for src in a.jpegs:
            for size in [int(s) for s in a.sizes.split(",")]:
                o = ours(a.thumbctl, src, size, work)
                ref = full_decode(src, o.shape)
                ssim, mad = compare(o, ref)
                d = draft(src, size)
                dssim, _ = compare(d, full_decode(src, d.shape))
                print(f"| {src.name} | {size} | {ssim:.4f} | {mad:.2f} | {dssim:.4f} |")


if __name__ == "__main__":
    main()
