//! `keep_copyright`: the source's EXIF Artist and Copyright, and nothing else, carried into
//! each thumbnail.
//!
//! Thumbnails carry no metadata by default: EXIF holds GPS positions, serial numbers and
//! times that a public thumbnail should not leak. Some users must keep attribution on every
//! copy of a photograph (agencies, licences such as CC BY), so with the option the two
//! attribution fields, and only they, are written into a new EXIF block: a fresh IFD0 with
//! Artist (0x013B) and Copyright (0x8298) as ASCII. Nothing is copied byte for byte from the
//! source block, so no other tag (GPS, MakerNote, orientation, which the pixels already have
//! applied) can come along.

use super::OutputFormat;
use super::detect::{self, SourceFormat};

const ARTIST: u16 = 0x013B;
const COPYRIGHT: u16 = 0x8298;
/// Longest value kept, per field: attribution, not a place to smuggle data.
const MAX_FIELD: usize = 2000;

/// The source's attribution as a ready-made EXIF block (a TIFF structure), or `None` when it
/// has neither field.
pub fn from_source(b: &[u8], format: SourceFormat) -> Option<Vec<u8>> {
    let tiff = match format {
        SourceFormat::Jpeg => detect::jpeg_exif(b)?,
        SourceFormat::Webp => detect::webp_exif(b)?,
        SourceFormat::Png => detect::png_header_chunks(b)
            .find_map(|(kind, body)| (kind == b"eXIf").then_some(body))?,
        // A TIFF file is itself the structure whose IFD0 holds the fields.
        SourceFormat::Tiff => b,
        _ => return None,
    };
    let field = |tag| {
        detect::tiff_entry(tiff, tag)
            .and_then(|e| e.ascii())
            .map(clean)
            .filter(|v| !v.is_empty())
    };
    let fields: Vec<(u16, Vec<u8>)> = [ARTIST, COPYRIGHT]
        .into_iter()
        .filter_map(|tag| field(tag).map(|v| (tag, v)))
        .collect();
    (!fields.is_empty()).then(|| tiff_block(&fields))
}

/// Printable text only, at most `MAX_FIELD` bytes. EXIF's Copyright may hold two strings
/// separated by a NUL (photographer, then editor); that NUL is kept.
fn clean(v: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = v
        .iter()
        .copied()
        .filter(|&c| c == 0 || c >= 0x20 && c != 0x7F)
        .take(MAX_FIELD)
        .collect();
    while out.last() == Some(&0) {
        out.pop();
    }
    out
}

/// A little-endian TIFF structure with one IFD of ASCII entries, in tag order.
fn tiff_block(fields: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let ifd_len = 2 + 12 * fields.len() + 4;
    let mut data_at = 8 + ifd_len;
    let mut t = Vec::new();
    t.extend_from_slice(b"II*\0");
    t.extend_from_slice(&8u32.to_le_bytes());
    t.extend_from_slice(&(fields.len() as u16).to_le_bytes());
    let mut data = Vec::new();
    for (tag, v) in fields {
        let mut value = v.clone();
        value.push(0);
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&2u16.to_le_bytes());
        t.extend_from_slice(&(value.len() as u32).to_le_bytes());
        if value.len() <= 4 {
            value.resize(4, 0);
            t.extend_from_slice(&value);
        } else {
            t.extend_from_slice(&(data_at as u32).to_le_bytes());
            data_at += value.len();
            data.extend_from_slice(&value);
        }
    }
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(&data);
    t
}

/// Puts the EXIF block into an encoded thumbnail, where each format keeps EXIF. AVIF is
/// the exception: its EXIF is an item of the HEIF container, which the encoder writes
/// (`encode` hands it the block), so the file is returned as it is.
pub fn embed(encoded: Vec<u8>, format: OutputFormat, tiff: &[u8], alpha: bool) -> Vec<u8> {
    match format {
        OutputFormat::Jpeg => embed_jpeg(encoded, tiff),
        OutputFormat::Png => embed_png(encoded, tiff),
        OutputFormat::Webp => embed_webp(encoded, tiff, alpha),
        OutputFormat::Avif => encoded,
    }
}

/// An APP1 `Exif` segment after SOI and the encoder's JFIF APP0.
fn embed_jpeg(j: Vec<u8>, tiff: &[u8]) -> Vec<u8> {
    let mut at = 2;
    if j.get(2..4) == Some(&[0xFF, 0xE0][..]) {
        let len = j
            .get(4..6)
            .map_or(0, |l| usize::from(u16::from_be_bytes([l[0], l[1]])));
        at = (4 + len).min(j.len());
    }
    let body_len = 2 + 6 + tiff.len();
    let Ok(len) = u16::try_from(body_len) else {
        return j;
    };
    let mut out = Vec::with_capacity(j.len() + body_len + 2);
    out.extend_from_slice(&j[..at]);
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(tiff);
    out.extend_from_slice(&j[at..]);
    out
}

/// An `eXIf` chunk right after IHDR (it must come before the image data).
fn embed_png(p: Vec<u8>, tiff: &[u8]) -> Vec<u8> {
    // Signature (8) + IHDR: length (4), type (4), 13 bytes, CRC (4).
    const AFTER_IHDR: usize = 8 + 4 + 4 + 13 + 4;
    if p.get(12..16) != Some(b"IHDR".as_slice()) || p.len() < AFTER_IHDR {
        return p;
    }
    let mut chunk = Vec::with_capacity(tiff.len() + 12);
    chunk.extend_from_slice(&(tiff.len() as u32).to_be_bytes());
    chunk.extend_from_slice(b"eXIf");
    chunk.extend_from_slice(tiff);
    let crc = crc32fast::hash(&chunk[4..]);
    chunk.extend_from_slice(&crc.to_be_bytes());
    [&p[..AFTER_IHDR], &chunk, &p[AFTER_IHDR..]].concat()
}

/// WebP keeps EXIF only in the extended format: a `VP8X` header whose flags announce it,
/// then the image's chunks, then `EXIF`. A simple-format file (one `VP8 ` or `VP8L` chunk)
/// gets a `VP8X` header first.
fn embed_webp(w: Vec<u8>, tiff: &[u8], alpha: bool) -> Vec<u8> {
    if w.get(0..4) != Some(b"RIFF".as_slice()) || w.get(8..12) != Some(b"WEBP".as_slice()) {
        return w;
    }
    let mut chunks = w[12..].to_vec();
    if chunks.get(0..4) == Some(b"VP8X".as_slice()) {
        if let Some(flags) = chunks.get_mut(8) {
            *flags |= 0x08;
        }
    } else {
        let Some((width, height)) = webp_size(&chunks) else {
            return w;
        };
        let mut vp8x = Vec::with_capacity(18);
        vp8x.extend_from_slice(b"VP8X");
        vp8x.extend_from_slice(&10u32.to_le_bytes());
        vp8x.push(0x08 | if alpha { 0x10 } else { 0 });
        vp8x.extend_from_slice(&[0, 0, 0]);
        vp8x.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
        vp8x.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
        chunks = [vp8x, chunks].concat();
    }
    chunks.extend_from_slice(b"EXIF");
    chunks.extend_from_slice(&(tiff.len() as u32).to_le_bytes());
    chunks.extend_from_slice(tiff);
    if !tiff.len().is_multiple_of(2) {
        chunks.push(0);
    }
    let mut out = Vec::with_capacity(chunks.len() + 12);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&((chunks.len() + 4) as u32).to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&chunks);
    out
}

/// Width and height from a simple-format WebP's first chunk (lossy `VP8 ` or lossless `VP8L`).
fn webp_size(chunks: &[u8]) -> Option<(u32, u32)> {
    let body = chunks.get(8..)?;
    match chunks.get(0..4)? {
        b"VP8 " => {
            // Frame tag (3), start code (3), then 14-bit width and height.
            let w = u32::from(u16::from_le_bytes([*body.get(6)?, *body.get(7)?]) & 0x3FFF);
            let h = u32::from(u16::from_le_bytes([*body.get(8)?, *body.get(9)?]) & 0x3FFF);
            Some((w, h))
        }
        b"VP8L" => {
            // Signature 0x2F, then 14 bits of width - 1 and 14 of height - 1.
            let bits =
                u32::from_le_bytes([*body.get(1)?, *body.get(2)?, *body.get(3)?, *body.get(4)?]);
            Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_back_from_the_block_we_write() {
        let t = tiff_block(&[
            (ARTIST, b"Ann".to_vec()),
            (COPYRIGHT, b"(c) 2026 Ann Example\0Ed".to_vec()),
        ]);
        let a = detect::tiff_entry(&t, ARTIST).and_then(|e| e.ascii());
        let c = detect::tiff_entry(&t, COPYRIGHT).and_then(|e| e.ascii());
        assert_eq!(a, Some(b"Ann".as_slice()));
        assert_eq!(c, Some(b"(c) 2026 Ann Example\0Ed".as_slice()));
        assert_eq!(detect::tiff_entry(&t, 0x0112).map(|e| e.typ), None);
    }

    #[test]
    fn control_characters_and_lengths_are_bounded() {
        assert_eq!(clean(b"a\x1b[31mb\x7f\0\0"), b"a[31mb".to_vec());
        assert_eq!(clean(&vec![b'x'; 10_000]).len(), MAX_FIELD);
        // A source with no attribution gives no block at all.
        assert_eq!(from_source(b"\xFF\xD8\xFF\xDA", SourceFormat::Jpeg), None);
    }
}
