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
    /// HEIC/HEIF (HEVC-coded), decoded by libheif.
    Heic,
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
            Self::Heic => "image/heic",
        }
    }

    /// The `image` crate's decoder for this format, if it has one (not HEIC).
    pub fn image_format(self) -> Option<image::ImageFormat> {
        Some(match self {
            Self::Jpeg => image::ImageFormat::Jpeg,
            Self::Png => image::ImageFormat::Png,
            Self::Gif => image::ImageFormat::Gif,
            Self::Webp => image::ImageFormat::WebP,
            Self::Bmp => image::ImageFormat::Bmp,
            Self::Tiff => image::ImageFormat::Tiff,
            Self::Heic => return None,
        })
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
        if brand.starts_with(b"hei") || brand.starts_with(b"hev") {
            return heic();
        }
        if brand.starts_with(b"mif") || brand.starts_with(b"msf") {
            // The generic HEIF brands, also used by AVIF files: the compatible brands say
            // which codec the file needs.
            return match ftyp_codec(b) {
                Some(FtypCodec::Av1) => Sniffed::Unsupported("image/avif"),
                Some(FtypCodec::Hevc) => heic(),
                None => Sniffed::Unsupported("image/heif"),
            };
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

/// HEIC is decoded only in builds with libheif (the `heic` feature).
fn heic() -> Sniffed {
    if cfg!(feature = "heic") {
        Sniffed::Supported(SourceFormat::Heic)
    } else {
        Sniffed::Unsupported("image/heic")
    }
}

enum FtypCodec {
    Hevc,
    Av1,
}

/// The codec named by the compatible brands of a leading `ftyp` box, read within the box's
/// declared size and the input.
fn ftyp_codec(b: &[u8]) -> Option<FtypCodec> {
    let size = usize::try_from(rd32(b, 0, false)?).ok()?.min(b.len());
    let brands = b.get(16..size)?;
    let mut found = None;
    for brand in brands.chunks_exact(4) {
        if brand.starts_with(b"avi") {
            return Some(FtypCodec::Av1);
        }
        if brand.starts_with(b"hei") || brand.starts_with(b"hev") {
            found = Some(FtypCodec::Hevc);
        }
    }
    found
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

/// One entry of a TIFF structure's first IFD (IFD0, where EXIF keeps orientation, artist
/// and copyright): its type, count and the 4 bytes holding its value or the value's offset,
/// with the byte order. Never reads outside `t`.
pub struct TiffEntry<'a> {
    pub typ: u16,
    pub count: u32,
    pub little_endian: bool,
    field: usize,
    t: &'a [u8],
}

impl<'a> TiffEntry<'a> {
    /// The value as SHORT, or LONG (non-standard but seen).
    pub fn integer(&self) -> Option<u32> {
        match self.typ {
            3 => rd16(self.t, self.field, self.little_endian).map(u32::from),
            4 => rd32(self.t, self.field, self.little_endian),
            _ => None,
        }
    }

    /// An ASCII value's bytes (type 2), without its terminating NUL. Values of up to four
    /// bytes are stored in the entry itself, longer ones at an offset.
    pub fn ascii(&self) -> Option<&'a [u8]> {
        if self.typ != 2 {
            return None;
        }
        let n = self.count as usize;
        let at = if n <= 4 {
            self.field
        } else {
            rd32(self.t, self.field, self.little_endian)? as usize
        };
        let v = self.t.get(at..at.checked_add(n)?)?;
        Some(v.strip_suffix(&[0]).unwrap_or(v))
    }
}

/// The IFD0 entry with `tag` in a TIFF structure (an EXIF block, or a TIFF file).
pub fn tiff_entry(t: &[u8], tag: u16) -> Option<TiffEntry<'_>> {
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
        if rd16(t, e, le)? == tag {
            return Some(TiffEntry {
                typ: rd16(t, e + 2, le)?,
                count: rd32(t, e + 4, le)?,
                little_endian: le,
                field: e + 8,
                t,
            });
        }
    }
    None
}

/// Orientation (1..=8) from a TIFF structure (the body of an EXIF block), if present and valid.
pub fn tiff_orientation(t: &[u8]) -> Option<u8> {
    let v = tiff_entry(t, 0x0112)?.integer()?;
    (1..=8).contains(&v).then_some(v as u8)
}

/// The marker segments of a JPEG before its first scan, as (marker, body): where the
/// metadata lives (EXIF in APP1, ICC profiles in APP2, Adobe's in APP14). Stops at the first
/// scan, at the end of the input or at anything that is not a well-formed segment, so damage
/// ends the walk instead of misreading data as markers; a lying length cannot make it read
/// outside the input.
pub fn jpeg_segments(b: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut i = 2usize;
    let mut done = b.get(0..2) != Some(&[0xFF, 0xD8][..]);
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let next = next_segment(b, &mut i);
        done = next.is_none();
        next
    })
}

fn next_segment<'a>(b: &'a [u8], i: &mut usize) -> Option<(u8, &'a [u8])> {
    loop {
        // Each marker is 0xFF, possibly padded with more 0xFF.
        if b.get(*i) != Some(&0xFF) {
            return None;
        }
        while b.get(*i) == Some(&0xFF) {
            *i += 1;
        }
        let m = *b.get(*i)?;
        *i += 1;
        match m {
            0xD8 | 0x01 | 0xD0..=0xD7 => continue,
            0xDA | 0xD9 => return None,
            _ => {}
        }
        let len = rd16(b, *i, false)? as usize;
        if len < 2 {
            return None;
        }
        let body = b.get(i.checked_add(2)?..i.checked_add(len)?)?;
        *i += len;
        return Some((m, body));
    }
}

/// The chunks of a RIFF (WebP) container, as (fourcc, body). Stops at the first chunk that
/// does not fit in the input.
pub fn riff_chunks(b: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut i = 12usize;
    std::iter::from_fn(move || {
        let fourcc = b.get(i..i.checked_add(4)?)?;
        let size = rd32(b, i + 4, true)? as usize;
        let start = i.checked_add(8)?;
        let body = b.get(start..start.checked_add(size)?)?;
        // Chunks are padded to an even size.
        i = start.checked_add(size)?.checked_add(size & 1)?;
        Some((fourcc, body))
    })
}

/// The chunks of a PNG before its image data, as (type, body): the metadata chunks (iCCP,
/// eXIf, acTL) must all come before the first IDAT. Stops there, at the end of the input, or
/// at a chunk that does not fit in it.
pub fn png_header_chunks(b: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut i = 8usize;
    std::iter::from_fn(move || {
        let len = rd32(b, i, false)? as usize;
        let kind = b.get(i.checked_add(4)?..i.checked_add(8)?)?;
        if kind == b"IDAT" || kind == b"IEND" {
            return None;
        }
        let start = i.checked_add(8)?;
        let body = b.get(start..start.checked_add(len)?)?;
        // Four bytes of CRC follow each chunk.
        i = start.checked_add(len)?.checked_add(4)?;
        Some((kind, body))
    })
}

/// The EXIF block (a TIFF structure) of a JPEG: the first APP1 "Exif" segment.
pub fn jpeg_exif(b: &[u8]) -> Option<&[u8]> {
    jpeg_segments(b).find_map(|(m, body)| {
        (m == 0xE1)
            .then(|| body.strip_prefix(b"Exif\0\0"))
            .flatten()
    })
}

/// The EXIF block of a WebP: its `EXIF` chunk (some writers keep the JPEG-style prefix).
pub fn webp_exif(b: &[u8]) -> Option<&[u8]> {
    riff_chunks(b)
        .find(|(fourcc, _)| *fourcc == b"EXIF")
        .map(|(_, body)| body.strip_prefix(b"Exif\0\0").unwrap_or(body))
}

/// EXIF orientation of a JPEG: the first APP1 "Exif" segment before the first scan.
pub fn jpeg_orientation(b: &[u8]) -> Option<u8> {
    tiff_orientation(jpeg_exif(b)?)
}

/// EXIF orientation of a WebP (an `EXIF` chunk in the RIFF container).
pub fn webp_orientation(b: &[u8]) -> Option<u8> {
    tiff_orientation(webp_exif(b)?)
}

/// Whether the JPEG carries an Adobe APP14 marker (which means CMYK data is stored inverted).
pub fn jpeg_has_adobe_marker(b: &[u8]) -> bool {
    jpeg_segments(b).any(|(m, body)| m == 0xEE && body.starts_with(b"Adobe"))
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
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0\0\0"), heic());
        // The generic brand: the compatible brands decide between HEIC and AVIF.
        assert_eq!(sniff(b"\0\0\0\x18ftypmif1\0\0\0\0mif1heic"), heic());
        assert_eq!(
            sniff(b"\0\0\0\x18ftypmif1\0\0\0\0mif1avif"),
            Sniffed::Unsupported("image/avif")
        );
        // Brands past the box's declared size are not the box's.
        assert_eq!(
            sniff(b"\0\0\0\x14ftypmif1\0\0\0\0mif1heic"),
            Sniffed::Unsupported("image/heif")
        );
        assert_eq!(
            sniff(b"\xff\xd8\xff\xe0"),
            Sniffed::Supported(SourceFormat::Jpeg)
        );
    }
}

/// How many frames an animated GIF, WebP or PNG (APNG) holds; 1 for everything else. The
/// engine makes thumbnails of the first frame only, and the item records this count so
/// that an animation's still thumbnail is not mistaken for a broken one. Walks the
/// container's blocks without decoding anything; a truncated or damaged container counts the
/// frames seen up to the damage (at least 1).
pub fn frame_count(b: &[u8], format: SourceFormat) -> u32 {
    let n = match format {
        SourceFormat::Gif => gif_frames(b),
        SourceFormat::Webp => webp_frames(b),
        SourceFormat::Png => apng_frames(b),
        _ => 1,
    };
    n.max(1)
}

fn gif_frames(b: &[u8]) -> u32 {
    // Header (6), logical screen descriptor (7), then the global colour table if flagged.
    let Some(&flags) = b.get(10) else { return 1 };
    let mut i = 13;
    if flags & 0x80 != 0 {
        i += 3 << ((flags & 7) + 1);
    }
    // Data sub-blocks: a length byte, that many bytes, until a zero length.
    let skip_sub_blocks = |mut i: usize| -> Option<usize> {
        loop {
            let len = usize::from(*b.get(i)?);
            i += 1;
            if len == 0 {
                return Some(i);
            }
            i += len;
        }
    };
    let mut frames = 0u32;
    while let Some(&kind) = b.get(i) {
        match kind {
            0x2C => {
                frames = frames.saturating_add(1);
                let Some(&local) = b.get(i + 9) else { break };
                i += 10;
                if local & 0x80 != 0 {
                    i += 3 << ((local & 7) + 1);
                }
                // The LZW minimum code size, then the image data.
                match skip_sub_blocks(i + 1) {
                    Some(next) => i = next,
                    None => break,
                }
            }
            0x21 => match skip_sub_blocks(i + 2) {
                Some(next) => i = next,
                None => break,
            },
            _ => break, // 0x3B, the trailer, or damage
        }
    }
    frames
}

fn webp_frames(b: &[u8]) -> u32 {
    let mut i = 12;
    let (mut animated, mut frames) = (false, 0u32);
    while let Some(head) = b.get(i..i + 8) {
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        match &head[0..4] {
            b"ANIM" => animated = true,
            b"ANMF" => frames = frames.saturating_add(1),
            _ => {}
        }
        // Chunks are padded to an even length.
        i = i
            .saturating_add(8)
            .saturating_add(len)
            .saturating_add(len & 1);
    }
    if animated { frames } else { 1 }
}

fn apng_frames(b: &[u8]) -> u32 {
    // The animation control chunk comes before the first image data.
    png_header_chunks(b)
        .find(|(kind, _)| *kind == b"acTL")
        .and_then(|(_, body)| rd32(body, 0, false))
        .unwrap_or(1)
}

#[cfg(test)]
mod frame_tests {
    use super::*;

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = kind.to_vec();
        c.extend_from_slice(&(data.len() as u32).to_le_bytes());
        c.extend_from_slice(data);
        if data.len() % 2 == 1 {
            c.push(0);
        }
        c
    }

    fn webp(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut b = b"RIFF".to_vec();
        b.extend_from_slice(&((body.len() + 4) as u32).to_le_bytes());
        b.extend_from_slice(b"WEBP");
        b.extend_from_slice(&body);
        b
    }

    #[test]
    fn webp_frames_are_counted_only_when_animated() {
        let vp8x = chunk(b"VP8X", &[0x02, 0, 0, 0, 9, 0, 0, 9, 0, 0]);
        let anim = chunk(b"ANIM", &[0; 6]);
        let frame = chunk(b"ANMF", &[0; 17]);
        let animated = webp(&[vp8x.clone(), anim, frame.clone(), frame.clone(), frame]);
        assert_eq!(frame_count(&animated, SourceFormat::Webp), 3);
        let still = webp(&[vp8x, chunk(b"VP8L", &[0; 5])]);
        assert_eq!(frame_count(&still, SourceFormat::Webp), 1);
        // Truncated inside the second frame: what was seen; a chunk length past the end of
        // the input ends the walk, it does not overflow.
        assert_eq!(
            frame_count(&animated[..animated.len() - 40], SourceFormat::Webp),
            2
        );
        let mut lying = animated.clone();
        let at = lying.len() - 22;
        lying[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(frame_count(&lying, SourceFormat::Webp) >= 1);
    }

    #[test]
    fn damaged_containers_count_at_least_one_frame() {
        for format in [SourceFormat::Gif, SourceFormat::Png, SourceFormat::Webp] {
            assert_eq!(frame_count(b"", format), 1);
            assert_eq!(frame_count(b"GIF89a\x01", format), 1);
        }
        // A GIF whose colour table size points past the end.
        assert_eq!(
            frame_count(b"GIF89a\x01\0\x01\0\xff\0\0", SourceFormat::Gif),
            1
        );
        assert_eq!(frame_count(b"anything", SourceFormat::Jpeg), 1);
    }
}
