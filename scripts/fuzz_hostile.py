#!/usr/bin/env python3
"""Writes the hostile inputs the stable fuzz replay must see refused (lambda-image/fuzz/regressions).

Usage: fuzz_hostile.py [DIR]   (default: lambda-image/fuzz/regressions; Python standard library only)

Each file is minimised by construction: the fewest bytes that still carry the attack. Three are
cut from the committed seeds (lambda-image/fuzz/seeds, made by fuzz_seeds.py), the rest are built
byte by byte here, so rerunning this script rewrites the same bytes. What the engine must answer
for each is in lambda-image/tests/fuzz_corpus.rs (`HOSTILE`); a file named `hostile-*` that the
test does not know fails it.
"""
import random
import struct
import sys
import zlib
from pathlib import Path

root = Path(__file__).resolve().parent.parent
seeds = root / "lambda-image/fuzz/seeds"
out = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "lambda-image/fuzz/regressions"
out.mkdir(parents=True, exist_ok=True)


def write(name, data):
    (out / f"hostile-{name}").write_bytes(data)
    print(f"hostile-{name}: {len(data)} bytes")


def jpeg_segments(data):
    """(marker, offset, length) of each segment up to and including SOS."""
    i, segs = 2, []
    while i < len(data):
        assert data[i] == 0xFF, f"no marker at {i}"
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        segs.append((marker, i, length))
        if marker == 0xDA:
            return segs
        i += 2 + length
    raise ValueError("no SOS")


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


jpeg = (seeds / "jpeg_baseline_exif6.jpg").read_bytes()
segs = jpeg_segments(jpeg)
_, sos, sos_len = segs[-1]
scan = sos + 2 + sos_len

# A JPEG cut in the middle of its entropy-coded data (an interrupted upload): headers all
# valid, half the pixels missing. libjpeg-turbo only warns ("premature end"); must be refused.
write("jpeg-truncated.jpg", jpeg[:scan + (len(jpeg) - scan) // 2])

# A JPEG whose SOF0 declares 65500 x 65500 (4.3 gigapixels) in front of the seed's 72 bytes of
# scan data: a decompression bomb, refused from the header before any pixel buffer exists.
sof = next(off for m, off, _ in segs if m == 0xC0)
bomb = bytearray(jpeg)
bomb[sof + 5:sof + 9] = struct.pack(">HH", 65500, 65500)
write("jpeg-bomb-65500x65500.jpg", bytes(bomb))

# The JPEG magic followed by noise: a file that sniffs as JPEG and is nothing.
rng = random.Random(20261126)
write("jpeg-magic-random.jpg", b"\xff\xd8\xff\xe0" + bytes(rng.getrandbits(8) for _ in range(2048)))

# A PNG whose IHDR declares 20000 x 20000 RGB (1.2 GB of pixels) with a body of two zero rows:
# the classic decompression bomb, small enough to upload, huge once decoded.
ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
idat = zlib.compress(b"\0" * (1 + 20000 * 3) * 2, 9)
write(
    "png-bomb-20000x20000.png",
    b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b""),
)

# A GIF whose logical screen is 65535 x 65535 around one 1x1 frame: decoders that allocate the
# canvas up front ask for 17 GB of RGBA.
gif = (
    b"GIF89a"
    + struct.pack("<HHBBB", 65535, 65535, 0x80, 0, 0)  # screen, global colour table of 2
    + b"\x00\x00\x00\xff\xff\xff"
    + b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0)  # image descriptor: 1x1 at 0,0
    + b"\x02\x02\x44\x01\x00"  # LZW minimum code size 2, one sub-block: clear, 0, end
    + b"\x3b"
)
write("gif-huge-screen-65535x65535.gif", gif)

# An empty object (a zero-byte upload).
write("empty", b"")

# A little-endian TIFF whose first IFD is said to be at 0xFFFFFFF0, far beyond its 16 bytes.
write("tiff-bogus-ifd-offset.tif", b"II*\x00" + struct.pack("<I", 0xFFFFFFF0) + b"\x00" * 8)

# The lossy WebP seed with its RIFF size claiming almost 4 GiB: the VP8 chunk inside is intact,
# only the container lies about how much follows.
webp = bytearray((seeds / "webp_lossy.webp").read_bytes())
webp[4:8] = struct.pack("<I", 0xFFFFFFF0)
write("webp-lying-riff-size.webp", bytes(webp))

# A lossless WebP (VP8L) whose header declares 16384 x 16384 (268 megapixels) with no pixel data.
bits = (16384 - 1) | ((16384 - 1) << 14) | (0 << 28) | (0 << 29)  # width-1, height-1, no alpha, v0
vp8l = b"\x2f" + struct.pack("<I", bits) + b"\x00" * 3
chunk = b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l
write("webp-bomb-16384x16384.webp", b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk)

# HEIC (seed written by make-heic-fixtures.py): the image's `ispe` (declared size) set to
# 20000 x 20000 (400 megapixels) around the same 64x48 HEVC stream; and the same file cut in the
# middle of its coded data, where the container still parses.
heic = bytearray((seeds / "heic_quad.heic").read_bytes())
ispe = heic.index(b"ispe")
heic[ispe + 8:ispe + 16] = struct.pack(">II", 20000, 20000)
write("heic-bomb-20000x20000.heic", bytes(heic))
heic = (seeds / "heic_quad.heic").read_bytes()
write("heic-truncated.heic", heic[:len(heic) - 150])
