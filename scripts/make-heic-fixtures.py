#!/usr/bin/env python3
"""Writes the HEIC test fixtures in lambda-image/tests/data/ (committed; rerun only to change them).

Needs Pillow and pillow-heif (PyPI; its wheels carry libheif with the x265 encoder):
    python3 -m venv /tmp/heic-venv && /tmp/heic-venv/bin/pip install pillow pillow-heif
    /tmp/heic-venv/bin/python scripts/make-heic-fixtures.py

quad.heic         64x48, four flat quadrants: red, green (top), blue, white (bottom)
quad_irot90.heic  the same coded image with an `irot` property: 90 degrees anticlockwise
quad_imir0.heic   the same coded image with an `imir` property, mode (first-edition "axis") 0:
                  a top-to-bottom mirror (see the engine test for why)
alpha.heic        32x32 RGBA: opaque red left half, fully transparent right half

The three are also the fuzzer's HEIC seeds (lambda-image/fuzz/seeds/heic_*.heic).

No encoder writes `irot`/`imir` on request, so this script adds the property to the encoded
file: it appends the box to `ipco`, associates it (essential) with the primary item in `ipma`,
and shifts the `iloc` offsets into `mdat` by the bytes it inserted.
"""

import io
import struct
from pathlib import Path

from PIL import Image
import pillow_heif

OUT = Path(__file__).resolve().parent.parent / "lambda-image" / "tests" / "data"
SEEDS = OUT.parent.parent / "fuzz" / "seeds"


def boxes(b, start, end):
    """(type, offset, header length, size) of each box in b[start:end]."""
    out = []
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", b[at:at + 8])
        head = 8
        if size == 1:
            size = struct.unpack(">Q", b[at + 8:at + 16])[0]
            head = 16
        elif size == 0:
            size = end - at
        out.append((kind.decode("latin-1"), at, head, size))
        at += size
    return out


def find(children, kind):
    return next(c for c in children if c[0] == kind)


def encode(img):
    buf = io.BytesIO()
    img.save(buf, format="HEIF", quality=95, save_to_12bit=False, chroma=444)
    return buf.getvalue()


def add_property(heic, prop):
    """Returns heic with the property box `prop` made essential to the primary item."""
    b = bytearray(heic)
    top = boxes(b, 0, len(b))
    _, meta_at, meta_head, meta_size = find(top, "meta")
    kids = boxes(b, meta_at + meta_head + 4, meta_at + meta_size)
    _, pitm_at, pitm_head, _ = find(kids, "pitm")
    pitm_version = b[pitm_at + pitm_head]
    if pitm_version == 0:
        primary = struct.unpack(">H", b[pitm_at + pitm_head + 4:pitm_at + pitm_head + 6])[0]
    else:
        primary = struct.unpack(">I", b[pitm_at + pitm_head + 4:pitm_at + pitm_head + 8])[0]
    _, iprp_at, iprp_head, iprp_size = find(kids, "iprp")
    iprp_kids = boxes(b, iprp_at + iprp_head, iprp_at + iprp_size)
    _, ipco_at, ipco_head, ipco_size = find(iprp_kids, "ipco")
    index = len(boxes(b, ipco_at + ipco_head, ipco_at + ipco_size)) + 1
    assert index < 128, "one-byte association"
    _, ipma_at, ipma_head, ipma_size = find(iprp_kids, "ipma")
    ipma_version = b[ipma_at + ipma_head]
    ipma_flags = int.from_bytes(b[ipma_at + ipma_head + 1:ipma_at + ipma_head + 4], "big")
    assert ipma_flags & 1 == 0, "one-byte associations"

    # Where the primary item's association count sits in ipma.
    at = ipma_at + ipma_head + 4
    (count,) = struct.unpack(">I", b[at:at + 4])
    at += 4
    count_at = None
    for _ in range(count):
        if ipma_version < 1:
            (item,) = struct.unpack(">H", b[at:at + 2])
            at += 2
        else:
            (item,) = struct.unpack(">I", b[at:at + 4])
            at += 4
        n = b[at]
        if item == primary:
            count_at = at
        at += 1 + n
    assert count_at is not None, "primary item has associations"
    n = b[count_at]

    # iloc, read before anything moves.
    _, iloc_at, iloc_head, _ = find(kids, "iloc")
    iloc_version = b[iloc_at + iloc_head]
    p = iloc_at + iloc_head + 4
    offset_size, length_size = b[p] >> 4, b[p] & 15
    base_size, index_size = b[p + 1] >> 4, (b[p + 1] & 15 if iloc_version in (1, 2) else 0)
    p += 2
    if iloc_version < 2:
        (items,) = struct.unpack(">H", b[p:p + 2])
        p += 2
    else:
        (items,) = struct.unpack(">I", b[p:p + 4])
        p += 4
    patches = []  # (position, size) of file offsets into mdat
    for _ in range(items):
        p += 2 if iloc_version < 2 else 4
        method = 0
        if iloc_version in (1, 2):
            method = struct.unpack(">H", b[p:p + 2])[0] & 15
            p += 2
        p += 2  # data_reference_index
        base_at = p
        p += base_size
        (extents,) = struct.unpack(">H", b[p:p + 2])
        p += 2
        for _ in range(extents):
            p += index_size
            if method == 0 and base_size == 0:
                patches.append((p, offset_size))
            p += offset_size + length_size
        if method == 0 and base_size:
            patches.append((base_at, base_size))

    grow = len(prop) + 1
    mdat_at = find(top, "mdat")[1]
    assert mdat_at > meta_at, "mdat after meta"
    for pos, size in patches:
        v = int.from_bytes(b[pos:pos + size], "big")
        if v >= mdat_at:
            b[pos:pos + size] = (v + grow).to_bytes(size, "big")

    # Sizes first, while every box is where it was; then the insertions, from the back so
    # that the earlier positions stay valid.
    for at, size, delta in (
        (ipma_at, ipma_size, 1),
        (ipco_at, ipco_size, len(prop)),
        (iprp_at, iprp_size, grow),
        (meta_at, meta_size, grow),
    ):
        b[at:at + 4] = struct.pack(">I", size + delta)
    b[count_at] = n + 1
    b[count_at + 1 + n:count_at + 1 + n] = bytes([0x80 | index])
    b[ipco_at + ipco_size:ipco_at + ipco_size] = prop
    return bytes(b)


def main():
    pillow_heif.register_heif_opener()
    OUT.mkdir(parents=True, exist_ok=True)
    quad = Image.new("RGB", (64, 48))
    for (x, y), colour in {
        (0, 0): (255, 0, 0),
        (32, 0): (0, 255, 0),
        (0, 24): (0, 0, 255),
        (32, 24): (255, 255, 255),
    }.items():
        quad.paste(colour, (x, y, x + 32, y + 24))
    plain = encode(quad)
    (OUT / "quad.heic").write_bytes(plain)
    (OUT / "quad_irot90.heic").write_bytes(add_property(plain, b"\0\0\0\x09irot\x01"))
    (OUT / "quad_imir0.heic").write_bytes(add_property(plain, b"\0\0\0\x09imir\x00"))

    alpha = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    alpha.paste((255, 0, 0, 255), (0, 0, 16, 32))
    (OUT / "alpha.heic").write_bytes(encode(alpha))

    # The fuzzer's seeds (scripts/fuzz_hostile.py cuts its hostile HEICs from heic_quad.heic).
    for name in ("quad.heic", "quad_irot90.heic", "alpha.heic"):
        (SEEDS / f"heic_{name}").write_bytes((OUT / name).read_bytes())

    # What libheif (pillow-heif's) makes of them: the transforms must be applied on decode.
    for name in ("quad.heic", "quad_irot90.heic", "quad_imir0.heic", "alpha.heic"):
        img = Image.open(OUT / name)
        print(name, (OUT / name).stat().st_size, "bytes", img.size, img.mode,
              [img.getpixel((x, y)) for x, y in ((4, 4), (img.width - 5, 4),
                                                 (4, img.height - 5),
                                                 (img.width - 5, img.height - 5))])


if __name__ == "__main__":
    main()
