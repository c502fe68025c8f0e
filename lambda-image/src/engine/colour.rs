//! Colour management: every thumbnail is sRGB, whatever space its source was in.
//!
//! A photo is only a set of numbers until its ICC profile says what they mean. Every recent
//! iPhone writes Display P3; cameras offer Adobe RGB; print workflows produce CMYK. Read as
//! if they were sRGB (what browsers assume of an untagged thumbnail), P3 and Adobe RGB come
//! out dull and CMYK comes out wrong. So an image with an embedded profile is converted
//! from that profile to sRGB, by moxcms (a pure-Rust CMS: nothing to build for the static
//! musl binary, and already in the tree as the `image` crate's CMS). The conversion runs
//! once, on the decoded pixels, which DCT scaling and the box shrink have already made
//! small.
//!
//! A profile that cannot be parsed or used is ignored and the pixels are taken as sRGB,
//! which is what every browser does with it too: a damaged profile should not cost the
//! user their thumbnails. Grey images keep their grey values (a grey profile's curve is
//! in practice the sRGB or a 2.2 curve, a difference below what a thumbnail shows).

use moxcms::{
    ColorProfile, DataColorSpace, Layout as CmsLayout, RenderingIntent, TransformOptions,
};

use super::detect::{self, SourceFormat};
use super::pixels::{Layout, Pixels};

/// Largest profile we assemble. Real ones are under a megabyte (CMYK profiles with big
/// tables are the largest); a JPEG could declare up to 255 APP2 chunks of 64 KB.
const MAX_PROFILE_BYTES: usize = 4 << 20;

/// The embedded ICC profile of a JPEG, PNG or WebP (the other formats' come from their
/// decoders).
pub fn embedded_profile(b: &[u8], format: SourceFormat) -> Option<Vec<u8>> {
    match format {
        SourceFormat::Jpeg => jpeg_profile(b),
        SourceFormat::Png => png_profile(b),
        SourceFormat::Webp => detect::riff_chunks(b)
            .find(|(fourcc, _)| *fourcc == b"ICCP")
            .map(|(_, body)| body.to_vec()),
        _ => None,
    }
}

/// A JPEG's profile is split over APP2 segments `ICC_PROFILE\0<seq><count><data>`, numbered
/// from 1; they are joined in sequence order. A set with a gap, a duplicate or an
/// inconsistent count is damaged and is ignored as a whole.
fn jpeg_profile(b: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<(u8, &[u8])> = Vec::new();
    let mut count = None;
    for (m, body) in detect::jpeg_segments(b) {
        let Some(rest) = (m == 0xE2)
            .then(|| body.strip_prefix(b"ICC_PROFILE\0"))
            .flatten()
        else {
            continue;
        };
        let [seq, n, data @ ..] = rest else {
            return None;
        };
        if *count.get_or_insert(*n) != *n {
            return None;
        }
        parts.push((*seq, data));
    }
    let count = usize::from(count?);
    parts.sort_by_key(|p| p.0);
    let in_order = parts
        .iter()
        .enumerate()
        .all(|(i, p)| usize::from(p.0) == i + 1);
    if parts.len() != count || !in_order {
        return None;
    }
    let total: usize = parts.iter().map(|p| p.1.len()).sum();
    if total == 0 || total > MAX_PROFILE_BYTES {
        return None;
    }
    Some(parts.iter().flat_map(|p| p.1.iter().copied()).collect())
}

/// PNG's iCCP chunk: a name, a NUL, the compression method (0), then the zlib-compressed
/// profile. Inflated here, with our bound, rather than by the png decoder, whose bound is the
/// whole image's allocation limit: a few hundred kilobytes of chunk could otherwise inflate
/// to hundreds of megabytes before the pixel limit is even checked.
fn png_profile(b: &[u8]) -> Option<Vec<u8>> {
    let (_, body) = detect::png_header_chunks(b).find(|(kind, _)| *kind == b"iCCP")?;
    let name_end = body.iter().take(80).position(|&c| c == 0)?;
    let (&method, zlib) = body.get(name_end + 1..)?.split_first()?;
    if method != 0 {
        return None;
    }
    fdeflate::decompress_to_vec_bounded(zlib, MAX_PROFILE_BYTES).ok()
}

/// Relative colorimetric, libvips's default: colours inside sRGB stay exactly what they
/// were, colours outside are clipped to its edge; the perceptual tables of CMYK profiles
/// differ from vendor to vendor, and a thumbnail should look like its original, not like a
/// print preview.
fn options() -> TransformOptions {
    TransformOptions {
        rendering_intent: RenderingIntent::RelativeColorimetric,
        ..TransformOptions::default()
    }
}

fn parse(icc: &[u8]) -> Option<ColorProfile> {
    if icc.len() > MAX_PROFILE_BYTES {
        return None;
    }
    ColorProfile::new_from_slice(icc).ok()
}

/// Converts RGB or RGBA pixels from the space `icc` describes to sRGB (alpha untouched).
/// Grey pixels, a profile for another colour space and an unusable profile leave the
/// pixels as they are.
pub fn rgb_to_srgb(p: Pixels, icc: &[u8]) -> Pixels {
    let layout = match p.layout {
        Layout::Rgb => CmsLayout::Rgb,
        Layout::Rgba => CmsLayout::Rgba,
        Layout::Gray => return p,
    };
    // The header's data colour space (ICC.1, 7.2.6) decides before a full parse: a CMYK
    // JPEG's profile, already applied while decoding, would otherwise be parsed a second time.
    if icc.get(16..20) != Some(b"RGB ".as_slice()) {
        return p;
    }
    let Some(src) = parse(icc).filter(|s| s.color_space == DataColorSpace::Rgb) else {
        return p;
    };
    let srgb = ColorProfile::new_srgb();
    let Ok(t) = src.create_transform_8bit(layout, &srgb, layout, options()) else {
        return p;
    };
    let mut out = vec![0u8; p.data.len()];
    if t.transform(&p.data, &mut out).is_err() {
        return p;
    }
    Pixels { data: out, ..p }
}

/// Converts CMYK samples as a JPEG stores them (`inverted` for Adobe's files, where 0 means
/// full ink) to sRGB through the file's CMYK profile. `None` when the profile is not a
/// usable CMYK profile: the caller then falls back to the naive formula.
pub fn cmyk_to_srgb(cmyk: &[u8], inverted: bool, icc: &[u8]) -> Option<Vec<u8>> {
    let src = parse(icc).filter(|s| s.color_space == DataColorSpace::Cmyk)?;
    let srgb = ColorProfile::new_srgb();
    let t = src
        .create_transform_8bit(CmsLayout::Rgba, &srgb, CmsLayout::Rgb, options())
        .ok()?;
    // ICC CMYK is ink amounts: 0 = no ink.
    let ink: Vec<u8> = if inverted {
        cmyk.iter().map(|v| 255 - v).collect()
    } else {
        cmyk.to_vec()
    };
    let mut out = vec![0u8; cmyk.len() / 4 * 3];
    t.transform(&ink, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app2(seq: u8, count: u8, data: &[u8]) -> Vec<u8> {
        let body = [b"ICC_PROFILE\0".as_slice(), &[seq, count], data].concat();
        let mut s = vec![0xFF, 0xE2];
        s.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        s.extend_from_slice(&body);
        s
    }

    fn jpeg(segments: &[Vec<u8>]) -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8];
        for s in segments {
            j.extend_from_slice(s);
        }
        j.extend_from_slice(&[0xFF, 0xDA, 0, 2]);
        j
    }

    #[test]
    fn jpeg_profile_is_joined_in_sequence_order() {
        let j = jpeg(&[app2(2, 2, b"world"), app2(1, 2, b"hello ")]);
        assert_eq!(jpeg_profile(&j).as_deref(), Some(b"hello world".as_slice()));
    }

    #[test]
    fn damaged_profile_sets_are_ignored() {
        // A gap, a duplicate, a count that changes, a missing part, an empty body.
        for segs in [
            vec![app2(1, 3, b"a"), app2(3, 3, b"c")],
            vec![app2(1, 2, b"a"), app2(1, 2, b"a")],
            vec![app2(1, 2, b"a"), app2(2, 3, b"b")],
            vec![app2(1, 2, b"a")],
            vec![app2(1, 1, b"")],
        ] {
            assert_eq!(jpeg_profile(&jpeg(&segs)), None, "{segs:?}");
        }
        // Truncated anywhere: never panics.
        let j = jpeg(&[app2(1, 2, b"hello "), app2(2, 2, b"world")]);
        for n in 0..j.len() {
            let _ = jpeg_profile(&j[..n]);
        }
    }

    #[test]
    fn unusable_profiles_leave_pixels_alone() {
        let p = Pixels::new(2, 1, Layout::Rgb, vec![10, 200, 30, 40, 50, 60]).expect("pixels");
        for icc in [&b""[..], b"not a profile", &[0u8; 200]] {
            assert_eq!(rgb_to_srgb(p.clone(), icc).data, p.data);
            assert_eq!(cmyk_to_srgb(&[0, 0, 0, 0], false, icc), None);
        }
    }

    #[test]
    fn p3_red_becomes_a_more_saturated_srgb_red_than_srgb_can_hold() {
        let p3 = ColorProfile::new_display_p3().encode().expect("encode P3");
        let p = Pixels::new(1, 1, Layout::Rgb, vec![255, 0, 0]).expect("pixels");
        let out = rgb_to_srgb(p, &p3);
        // P3's red lies outside sRGB: clipped to full red, with no green or blue added.
        assert_eq!(out.data[0], 255);
        assert!(out.data[1] < 10 && out.data[2] < 10, "{:?}", out.data);
        // A mid grey stays grey (same white point and curve).
        let g = Pixels::new(1, 1, Layout::Rgb, vec![128, 128, 128]).expect("pixels");
        let out = rgb_to_srgb(g, &p3);
        assert!(
            out.data.iter().all(|&v| v.abs_diff(128) <= 1),
            "{:?}",
            out.data
        );
    }
}
