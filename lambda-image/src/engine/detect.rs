//! Format sniffing from magic bytes and EXIF orientation parsing. Never allocates more than a
//! few bytes and never reads outside the input.

/// Source formats that the engine decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Gif,
    Webp,
    Bmp,
    Tiff,
}

impl SourceFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
            Self::Bmp => "image/bmp",
            Self::Tiff => "image/tiff",
        }
    }

    pub fn image_format(self) -> image::ImageFormat {
        match self {
            Self::Jpeg => image::ImageFormat::Jpeg,
            Self::Png => image::ImageFormat::Png,
            Self::Gif => image::ImageFormat::Gif,
            Self::Webp => image::ImageFormat::WebP,
            Self::Bmp => image::ImageFormat::Bmp,
            Self::Tiff => image::ImageFormat::Tiff,
        }
    }
}

/// What the first bytes say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniffed {
    Supported(SourceFormat),
    /// An image format that we recognise but do not decode (HEIC, AVIF, ICO, ...).
    Unsupported(&'static str),
    NotAnImage,
}

pub fn sniff(b: &[u8]) -> Sniffed {
    use SourceFormat::*;
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Sniffed::Supported(Jpeg);
    }
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Sniffed::Supported(Png);
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        return Sniffed::Supported(Gif);
    }
    if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        return Sniffed::Supported(Webp);
    }
    if b.starts_with(b"II*\0") || b.starts_with(b"MM\0*") {
        return Sniffed::Supported(Tiff);
    }
    if b.len() >= 26 && b.starts_with(b"BM") {
        // BITMAPFILEHEADER is 14 bytes, then a DIB header whose size is one of a few values.
        let dib = u32::from_le_bytes([b[14], b[15], b[16], b[17]]);
        if matches!(dib, 12 | 16 | 40 | 52 | 56 | 64 | 108 | 124) {
            return Sniffed::Supported(Bmp);
        }
    }
    if b.len() >= 12 && &b[4..8] == b"ftyp" {
        let brand = &b[8..12];
        if brand.starts_with(b"avi") {
            return Sniffed::Unsupported("image/avif");
        }
        if brand.starts_with(b"hei") || brand.starts_with(b"mif") || brand.starts_with(b"hev") {
            return Sniffed::Unsupported("image/heic");
        }
        return Sniffed::NotAnImage;
    }
    if b.starts_with(b"\0\0\x01\0") && b.len() >= 6 {
        return Sniffed::Unsupported("image/x-icon");
    }
    if b.starts_with(b"\xFF\x0A") || b.starts_with(b"\0\0\0\x0CJXL ") {
        return Sniffed::Unsupported("image/jxl");
    }
    if b.starts_with(b"qoif") {
        return Sniffed::Unsupported("image/qoi");
    }
    if b.starts_with(b"8BPS") {
        return Sniffed::Unsupported("image/vnd.adobe.photoshop");
    }
    if b.starts_with(b"\x76\x2f\x31\x01") {
        return Sniffed::Unsupported("image/x-exr");
    }
    Sniffed::NotAnImage
}

fn rd16(b: &[u8], at: usize, le: bool) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(if le {
        u16::from_le_bytes([s[0], s[1]])
    } else {
        u16::from_be_bytes([s[0], s[1]])
    })
}

fn rd32(b: &[u8], at: usize, le: bool) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(if le {
        u32::from_le_bytes([s[0], s[1], s[2], s[3]])
    } else {
        u32::from_be_bytes([s[0], s[1], s[2], s[3]])
    })
}

/// Orientation (1..=8) from a TIFF structure (the body of an EXIF block), if present and valid.
pub fn tiff_orientation(t: &[u8]) -> Option<u8> {
    let le = match t.get(0..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    if rd16(t, 2, le)? != 42 {
        return None;
    }
    let ifd = rd32(t, 4, le)? as usize;
    let count = rd16(t, ifd, le)? as usize;
    for i in 0..count {
        let e = ifd.checked_add(2)?.checked_add(i.checked_mul(12)?)?;
        let tag = rd16(t, e, le)?;
        if tag == 0x0112 {
            let typ = rd16(t, e + 2, le)?;
            let v = match typ {
                3 => rd16(t, e + 8, le)? as u32, // SHORT
                4 => rd32(t, e + 8, le)?,        // LONG (non-standard but seen)
                _ => return None,
            };
            return (1..=8).contains(&v).then_some(v as u8);
        }
    }
    None
}

/// EXIF orientation of a JPEG: the first APP1 "Exif" segment before the first scan.
pub fn jpeg_orientation(b: &[u8]) -> Option<u8> {
    let mut i = 2usize;
    loop {
        // Skip to the next marker (0xFF, possibly padded with more 0xFF).
        if *b.get(i)? != 0xFF {
            return None;
        }
        while *b.get(i)? == 0xFF {
            i += 1;
        }
        let m = *b.get(i)?;
        i += 1;
        match m {
            0xD8 | 0x01 | 0xD0..=0xD7 => continue,
            0xDA | 0xD9 => return None,
            _ => {}
        }
        let len = rd16(b, i, false)? as usize;
        if len < 2 {
            return None;
        }
        let body = b.get(i + 2..i + len)?;
        if m == 0xE1
            && let Some(tiff) = body.strip_prefix(b"Exif\0\0")
        {
            return tiff_orientation(tiff);
        }
        i += len;
    }
}

/// EXIF orientation of a WebP (an `EXIF` chunk in the RIFF container).
pub fn webp_orientation(b: &[u8]) -> Option<u8> {
    let mut i = 12usize;
    while let Some(fourcc) = b.get(i..i + 4) {
        let size = rd32(b, i + 4, true)? as usize;
        let body_start = i + 8;
        if fourcc == b"EXIF" {
            let body = b.get(body_start..body_start.checked_add(size)?)?;
            let body = body.strip_prefix(b"Exif\0\0").unwrap_or(body);
            return tiff_orientation(body);
        }
        // Chunks are padded to an even size.
        i = body_start.checked_add(size)?.checked_add(size & 1)?;
    }
    None
}

/// Whether the JPEG carries an Adobe APP14 marker (which means CMYK data is stored inverted).
pub fn jpeg_has_adobe_marker(b: &[u8]) -> bool {
    let mut i = 2usize;
    let mut steps = 0;
    while steps < 10_000 {
        steps += 1;
        if b.get(i) != Some(&0xFF) {
            return false;
        }
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&m) = b.get(i) else { return false };
        i += 1;
        match m {
            0xD8 | 0x01 | 0xD0..=0xD7 => continue,
            0xDA | 0xD9 => return false,
            _ => {}
        }
        let Some(len) = rd16(b, i, false) else {
            return false;
        };
        let len = len as usize;
        if len < 2 {
            return false;
        }
        if m == 0xEE && b.get(i + 2..i + 7) == Some(b"Adobe".as_slice()) {
            return true;
        }
        i += len;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exif(o: u16, le: bool) -> Vec<u8> {
        let mut t = Vec::new();
        if le {
            t.extend_from_slice(b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0");
            t.extend_from_slice(&o.to_le_bytes());
        } else {
            t.extend_from_slice(b"MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01");
            t.extend_from_slice(&o.to_be_bytes());
        }
        t.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        t
    }

    #[test]
    fn tiff_orientation_both_byte_orders() {
        for o in 1..=8 {
            assert_eq!(tiff_orientation(&exif(o, true)), Some(o as u8));
            assert_eq!(tiff_orientation(&exif(o, false)), Some(o as u8));
        }
        assert_eq!(tiff_orientation(&exif(9, true)), None);
        assert_eq!(tiff_orientation(b"II*\0\xff\xff\xff\xff"), None);
        assert_eq!(tiff_orientation(b""), None);
    }

    #[test]
    fn jpeg_orientation_hostile_segments() {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE1];
        let body = [b"Exif\0\0".as_slice(), &exif(6, true)].concat();
        j.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        j.extend_from_slice(&body);
        j.extend_from_slice(&[0xFF, 0xDA]);
        assert_eq!(jpeg_orientation(&j), Some(6));
        // Truncated everywhere: never panics.
        for n in 0..j.len() {
            let _ = jpeg_orientation(&j[..n]);
        }
        assert_eq!(
            jpeg_orientation(&[0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x00]),
            None
        );
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b""), Sniffed::NotAnImage);
        assert_eq!(sniff(b"hello world, not an image"), Sniffed::NotAnImage);
        assert_eq!(
            sniff(b"\0\0\0\x18ftypheic\0\0\0\0"),
            Sniffed::Unsupported("image/heic")
        );
        assert_eq!(
            sniff(b"\xff\xd8\xff\xe0"),
            Sniffed::Supported(SourceFormat::Jpeg)
        );
    }
}
