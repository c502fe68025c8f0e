#!/usr/bin/env python3
"""Writes the fuzz seed corpus: one tiny image per format and variant the engine reads.

Usage: fuzz_seeds.py DIR   (needs Pillow; scripts/fuzz.sh installs it into .venv)

The seeds are committed (lambda-image/fuzz/seeds) so that the stable replay test needs no
Python; rerun this only to change them. Small on purpose: libFuzzer mutates faster, and
every decoder branch is reached from a few hundred bytes.
"""
import importlib.util
import io
import sys
from pathlib import Path

from PIL import Image

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)


def base(mode="RGB", size=(24, 16)):
    im = Image.new("RGB", size)
    for y in range(size[1]):
        for x in range(size[0]):
            im.putpixel((x, y), (x * 10 % 256, y * 15 % 256, (x + y) * 7 % 256))
    return im.convert(mode) if mode != "RGB" else im


def save(name, im, fmt, **kw):
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    (out / name).write_bytes(buf.getvalue())


exif = Image.Exif()
exif[0x0112] = 6  # orientation: rotate 90
save("jpeg_baseline_exif6.jpg", base(), "JPEG", quality=75, exif=exif.tobytes())
save("jpeg_progressive.jpg", base(), "JPEG", quality=75, progressive=True)
# More progressive variants for the DC-only decoder (engine/jpeg_dc.rs): one component,
# 4:4:4 with a restart interval every block, and 4:2:2 on an image whose width is not a
# multiple of the MCU (libjpeg's default script refines the DC by successive approximation).
save("jpeg_progressive_gray.jpg", base("L"), "JPEG", quality=75, progressive=True)
save("jpeg_progressive_444_restart.jpg", base(), "JPEG", quality=90, progressive=True,
     subsampling=0, restart_marker_blocks=1)
save("jpeg_progressive_422_odd.jpg", base(size=(37, 21)), "JPEG", quality=60, progressive=True,
     subsampling=1)
save("jpeg_gray.jpg", base("L"), "JPEG", quality=75)
save("jpeg_cmyk.jpg", base("CMYK"), "JPEG", quality=75)
save("jpeg_444_restart.jpg", base(), "JPEG", quality=90, subsampling=0, restart_marker_blocks=1)
save("png_rgb.png", base(), "PNG")
save("png_rgba.png", base("RGBA"), "PNG")
pal = base().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
save("png_palette_trns.png", pal, "PNG", transparency=3)
save("png_gray16.png", base("I;16"), "PNG")
save("png_la.png", base("LA"), "PNG")
save("png_1bit.png", base("1"), "PNG")
save("png_exif8.png", base(), "PNG", exif=exif.tobytes().replace(b"\x06\x00", b"\x08\x00", 1))
frames = [base(), base().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
save("gif_animated.gif", frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
save("bmp_rgb.bmp", base(), "BMP")
save("tiff_rgb.tif", base(), "TIFF")
save("tiff_lzw_rgba.tif", base("RGBA"), "TIFF", compression="tiff_lzw")
save("webp_lossy.webp", base(), "WEBP", quality=70)
save("webp_lossless_rgba.webp", base("RGBA"), "WEBP", lossless=True)
save("webp_animated.webp", frames[0], "WEBP", save_all=True, append_images=frames[1:])
# Embedded ICC profiles, so the fuzzer reaches the profile parsing and the conversion: the
# test's Display P3 (a v4 matrix/curve profile) and Ghostscript's small CMYK LUT profile.
_spec = importlib.util.spec_from_file_location(
    "colour_reference", Path(__file__).resolve().parent.parent / "lambda-image/tests/colour_reference.py"
)
_colour = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_colour)
_p3 = _colour.display_p3()
save("png_icc_p3.png", base(), "PNG", icc_profile=_p3)
save("jpeg_icc_p3.jpg", base(), "JPEG", quality=75, icc_profile=_p3)
save("webp_icc_p3.webp", base(), "WEBP", quality=70, icc_profile=_p3)
save("jpeg_cmyk_icc.jpg", base("CMYK"), "JPEG", quality=75,
     icc_profile=(_colour.GS / "ps_cmyk.icc").read_bytes())
print(f"{len(list(out.iterdir()))} seeds in {out}")
