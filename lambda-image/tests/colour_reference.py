#!/usr/bin/env python3
"""Makes the colour-management test's sources and LittleCMS's answers for them.

    colour_reference.py OUTDIR

For each case it writes `<case>.<ext>` (a photo-like image tagged with an ICC profile),
`<case>.ref.png` (that file as Pillow decodes it, converted to sRGB by Pillow's ImageCms, i.e.
LittleCMS, relative colorimetric intent as libvips uses by default: the independent
reference) and `<case>.raw.png` (the same
decode with the profile ignored: what an engine without colour management shows).

The profiles: Adobe RGB and CMYK are Ghostscript's (Debian's libgs-common). Display P3 is
written here as an ICC v4 matrix/curve profile like the one iPhones embed (the primaries of
Apple's Display P3 profile, adapted to D50, and the sRGB curve as a parametric curve), since
no Debian package ships one.
"""

import io
import math
import struct
import sys
from pathlib import Path

from PIL import Image, ImageCms

GS = Path("/usr/share/color/icc/ghostscript")


def s15(v):
    return struct.pack(">i", round(v * 65536))


def xyz_tag(x, y, z):
    return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)


def mluc(text):
    body = text.encode("utf-16-be")
    return b"mluc" + b"\0" * 4 + struct.pack(">II", 1, 12) + b"enUS" + struct.pack(">II", len(body), 28) + body


def para_srgb():
    # Function type 3: Y = (aX + b)^g for X >= d, else cX.
    g, a, b, c, d = 2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045
    return b"para" + b"\0" * 4 + struct.pack(">HH", 3, 0) + b"".join(s15(v) for v in (g, a, b, c, d))


def sf32(matrix):
    return b"sf32" + b"\0" * 4 + b"".join(s15(v) for v in matrix)


def display_p3():
    curve = para_srgb()
    tags = [
        (b"desc", mluc("Display P3 (thumbctl test)")),
        (b"cprt", mluc("No copyright, use freely")),
        (b"wtpt", xyz_tag(0.96420, 1.0, 0.82491)),
        (b"rXYZ", xyz_tag(0.515121, 0.241196, -0.001053)),
        (b"gXYZ", xyz_tag(0.291977, 0.692245, 0.041885)),
        (b"bXYZ", xyz_tag(0.157104, 0.066574, 0.784073)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
        # Bradford D65 -> D50, as Apple's profile carries it.
        (b"chad", sf32([1.047882, 0.022919, -0.050201, 0.029587, 0.990479, -0.017059, -0.009232, 0.015076, 0.751678])),
    ]
    table = b""
    data = b""
    offset = 128 + 4 + 12 * len(tags)
    for sig, body in tags:
        while (offset + len(data)) % 4:
            data += b"\0"
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = struct.pack(">I", size) + b"\0" * 4 + struct.pack(">I", 0x04300000) + b"mntrRGB XYZ "
    header += struct.pack(">HHHHHH", 2024, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 4
    header += b"\0" * 4 + b"\0" * 4 + b"\0" * 4 + b"\0" * 8 + struct.pack(">I", 0)
    header += s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * 4 + b"\0" * 16 + b"\0" * 28
    assert len(header) == 128, len(header)
    return header + struct.pack(">I", len(tags)) + table + data


def photo(w=192, h=128):
    """Hues across, saturation and brightness down, with texture: the saturated colours are
    where wide-gamut spaces differ most from sRGB, the greys check the curves."""
    im = Image.new("RGB", (w, h))
    px = im.load()
    for y in range(h):
        for x in range(w):
            hue = x / w
            sat = min(1.0, 1.2 * y / h)
            val = 0.35 + 0.65 * (0.5 + 0.5 * math.sin(x / 7.0 + y / 11.0))
            i = int(hue * 6) % 6
            f = hue * 6 - int(hue * 6)
            p, q, t = val * (1 - sat), val * (1 - f * sat), val * (1 - (1 - f) * sat)
            r, g, b = [(val, t, p), (q, val, p), (p, val, t), (p, q, val), (t, p, val), (val, p, q)][i]
            px[x, y] = (round(r * 255), round(g * 255), round(b * 255))
    return im


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    srgb = ImageCms.createProfile("sRGB")
    src = photo()
    p3 = display_p3()
    a98 = (GS / "a98.icc").read_bytes()
    cmyk_icc = (GS / "default_cmyk.icc").read_bytes()

    src.save(out / "p3.png", icc_profile=p3)
    src.save(out / "p3.webp", lossless=True, icc_profile=p3)
    # 4:4:4 at high quality: the two decoders' upsampling is then not what is measured.
    src.save(out / "adobergb.jpg", quality=95, subsampling=0, icc_profile=a98)
    cmyk = ImageCms.profileToProfile(src, srgb, ImageCms.ImageCmsProfile(io.BytesIO(cmyk_icc)), outputMode="CMYK")
    # Pillow writes CMYK JPEGs with the Adobe marker, inverted, as Photoshop does.
    cmyk.save(out / "cmyk.jpg", quality=95, subsampling=0, icc_profile=cmyk_icc)

    for name in ["p3.png", "p3.webp", "adobergb.jpg", "cmyk.jpg"]:
        im = Image.open(out / name)
        im.load()
        profile = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))
        ref = ImageCms.profileToProfile(
            im, profile, srgb, renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, outputMode="RGB"
        )
        stem = name.replace(".", "_")
        ref.save(out / f"{stem}.ref.png")
        im.convert("RGB").save(out / f"{stem}.raw.png")


if __name__ == "__main__":
    main()
