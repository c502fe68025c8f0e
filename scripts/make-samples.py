#!/usr/bin/env python3
"""Makes the small sample images the demo uploads (standard library only, deterministic).

    python3 scripts/make-samples.py [DIR]     (default: samples/)
"""
import math
import os
import struct
import sys
import zlib


def png(path, w, h, mode, pixel):
    """mode 2 = RGB, 6 = RGBA, 0 = gray; pixel(x, y) returns a tuple of channel values."""
    rows = bytearray()
    for y in range(h):
        rows.append(0)
        for x in range(w):
            rows.extend(pixel(x, y))

    def chunk(kind, data):
        c = kind + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, mode, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def bmp(path, w, h, pixel):
    row = (w * 3 + 3) & ~3
    body = bytearray()
    for y in reversed(range(h)):
        line = bytearray()
        for x in range(w):
            r, g, b = pixel(x, y)
            line.extend((b, g, r))
        body.extend(line.ljust(row, b"\0"))
    header = struct.pack("<2sIHHI", b"BM", 54 + len(body), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(body), 2835, 2835, 0, 0)
    with open(path, "wb") as f:
        f.write(header + info + body)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "samples")
    os.makedirs(out, exist_ok=True)
    png(os.path.join(out, "sunset gradient.png"), 640, 400, 2,
        lambda x, y: (255 - y * 255 // 400, x * 180 // 640, 90 + y * 120 // 400))
    png(os.path.join(out, "badge-alpha.png"), 256, 256, 6,
        lambda x, y: (30, 144, 255, 255 if math.hypot(x - 128, y - 128) < 110 else 0))
    png(os.path.join(out, "tall-gray.png"), 120, 480, 0, lambda x, y: ((x * 2 + y) % 256,))
    bmp(os.path.join(out, "checker.bmp"), 200, 150,
        lambda x, y: (240, 240, 240) if (x // 25 + y // 25) % 2 else (40, 40, 40))
    print(f"samples written to {os.path.abspath(out)}")


if __name__ == "__main__":
    main()
