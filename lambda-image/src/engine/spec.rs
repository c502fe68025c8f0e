//! Thumbnail sizes and output formats.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Largest box side accepted in a [`ThumbSpec`].
pub const MAX_BOX_SIDE: u32 = 16_384;

/// A box a thumbnail is made for: `256` is a 256x256 box, `320x200` a rectangle; the image
/// is fitted into it. A trailing `!` (`256!`, `320x200!`) makes it exactly that size instead,
/// cropped from the centre (square avatars, even grids); `!attention` crops where the image is
/// busiest instead of at its centre.
///
/// `Display` gives back the canonical text: `256` for a square box, `320x200` otherwise, with
/// the crop suffix. It is used as the key prefix of the thumbnail in the destination bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThumbSpec {
    pub width: u32,
    pub height: u32,
    pub crop: Crop,
}

/// How a thumbnail meets its box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Crop {
    /// Fitted into the box, aspect ratio kept, nothing cut.
    #[default]
    Fit,
    /// Exactly the box: scaled to cover it, then the centre cut out.
    Centre,
    /// Exactly the box: scaled to cover it, then the window with the most detail (edges and
    /// saturated colour) cut out, like libvips's `attention` crop.
    Attention,
}

/// Why a size could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid thumbnail size {input:?}: expected N or WxH with 1 <= N <= {MAX_BOX_SIDE}, optionally followed by ! (crop to exactly that size) or !attention"
)]
pub struct ThumbSpecError {
    pub input: String,
}

impl ThumbSpec {
    /// A square box.
    pub fn square(side: u32) -> Self {
        Self {
            width: side,
            height: side,
            crop: Crop::Fit,
        }
    }

    /// The size of an image of `src_w` x `src_h` (as displayed) made for this box: fitted
    /// into it, or for a crop exactly the box (each side at most the source's: never
    /// upscaled).
    pub fn target(&self, src_w: u32, src_h: u32) -> (u32, u32) {
        match self.crop {
            Crop::Fit => self.fit(src_w, src_h),
            Crop::Centre | Crop::Attention => {
                (self.width.min(src_w.max(1)), self.height.min(src_h.max(1)))
            }
        }
    }

    /// For a crop: the size the whole image is scaled to before the box is cut out of it,
    /// the smallest that covers the box (never upscaled). For a fit, the fitted size.
    pub fn cover(&self, src_w: u32, src_h: u32) -> (u32, u32) {
        if self.crop == Crop::Fit {
            return self.fit(src_w, src_h);
        }
        let (sw, sh) = (u64::from(src_w.max(1)), u64::from(src_h.max(1)));
        let (tw, th) = self.target(src_w, src_h);
        let (tw, th) = (u64::from(tw), u64::from(th));
        // Scale by the larger of the two ratios, rounding up so the cut always fits.
        let (w, h) = if tw * sh >= th * sw {
            (tw, (sh * tw).div_ceil(sw).max(th))
        } else {
            ((sw * th).div_ceil(sh).max(tw), th)
        };
        (w.min(sw) as u32, h.min(sh) as u32)
    }

    /// The size that an image of `src_w` x `src_h` (as displayed) gets when it is fitted into
    /// this box keeping its aspect ratio, never upscaled. The long side (relative to the box)
    /// equals the box side exactly unless the source is smaller.
    pub fn fit(&self, src_w: u32, src_h: u32) -> (u32, u32) {
        let (sw, sh) = (u64::from(src_w.max(1)), u64::from(src_h.max(1)));
        let (bw, bh) = (u64::from(self.width), u64::from(self.height));
        if sw <= bw && sh <= bh {
            return (src_w.max(1), src_h.max(1));
        }
        if sw * bh >= sh * bw {
            // Width is the constraining side.
            let h = ((sh * bw + sw / 2) / sw).clamp(1, bh);
            (self.width, h as u32)
        } else {
            let w = ((sw * bh + sh / 2) / sh).clamp(1, bw);
            (w as u32, self.height)
        }
    }
}

fn parse_side(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u32 = s.parse().ok()?;
    (1..=MAX_BOX_SIDE).contains(&v).then_some(v)
}

impl FromStr for ThumbSpec {
    type Err = ThumbSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ThumbSpecError {
            input: s.to_string(),
        };
        let t = s.trim();
        let (t, crop) = match t.split_once('!') {
            None => (t, Crop::Fit),
            Some((t, "")) => (t, Crop::Centre),
            Some((t, m)) if m.eq_ignore_ascii_case("attention") => (t, Crop::Attention),
            Some(_) => return Err(err()),
        };
        match t.split_once(['x', 'X']) {
            Some((w, h)) => Ok(Self {
                width: parse_side(w).ok_or_else(err)?,
                height: parse_side(h).ok_or_else(err)?,
                crop,
            }),
            None => Ok(Self {
                crop,
                ..Self::square(parse_side(t).ok_or_else(err)?)
            }),
        }
    }
}

impl fmt::Display for ThumbSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.width == self.height {
            write!(f, "{}", self.width)?;
        } else {
            write!(f, "{}x{}", self.width, self.height)?;
        }
        match self.crop {
            Crop::Fit => Ok(()),
            Crop::Centre => f.write_str("!"),
            Crop::Attention => f.write_str("!attention"),
        }
    }
}

impl Serialize for ThumbSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ThumbSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Output encoding of the thumbnails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OutputFormat {
    #[default]
    Jpeg,
    Png,
    Webp,
    /// AV1 still image (rav1e through ravif): the smallest files for the same look, at many
    /// times JPEG's encode time.
    Avif,
}

/// Why an output format could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid thumbnail format {input:?}: expected jpeg, jpg, png, webp or avif")]
pub struct OutputFormatError {
    pub input: String,
}

impl OutputFormat {
    /// MIME type written as the thumbnail's Content-Type.
    pub fn content_type(&self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
            Self::Avif => "image/avif",
        }
    }

    /// File extension (without the dot).
    pub fn extension(&self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Avif => "avif",
        }
    }

    /// Whether `ext` (without the dot, any case) is an extension of this format.
    pub fn matches_extension(&self, ext: &str) -> bool {
        let ext = ext.to_ascii_lowercase();
        match self {
            Self::Jpeg => ext == "jpg" || ext == "jpeg",
            Self::Png => ext == "png",
            Self::Webp => ext == "webp",
            Self::Avif => ext == "avif",
        }
    }
}

impl FromStr for OutputFormat {
    type Err = OutputFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "jpeg" | "jpg" => Ok(Self::Jpeg),
            "png" => Ok(Self::Png),
            "webp" => Ok(Self::Webp),
            "avif" => Ok(Self::Avif),
            _ => Err(OutputFormatError {
                input: s.to_string(),
            }),
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Avif => "avif",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let s: ThumbSpec = "256".parse().unwrap();
        assert_eq!((s.width, s.height), (256, 256));
        assert_eq!(s.to_string(), "256");
        let r: ThumbSpec = "320x200".parse().unwrap();
        assert_eq!((r.width, r.height), (320, 200));
        assert_eq!(r.to_string(), "320x200");
        let c: ThumbSpec = "256x256!".parse().unwrap();
        assert_eq!((c.width, c.height, c.crop), (256, 256, Crop::Centre));
        assert_eq!(c.to_string(), "256!");
        let a: ThumbSpec = " 320x200!Attention ".parse().unwrap();
        assert_eq!(a.crop, Crop::Attention);
        assert_eq!(a.to_string(), "320x200!attention");
        assert_eq!(a.to_string().parse::<ThumbSpec>().unwrap(), a);
        for bad in [
            "",
            "0",
            "x",
            "12x",
            "-5",
            "1.5",
            "99999",
            "256x0",
            "a256",
            "!",
            "256!!",
            "256!centre",
        ] {
            assert!(bad.parse::<ThumbSpec>().is_err(), "{bad:?} should fail");
        }
        assert_eq!("JPG".parse::<OutputFormat>().unwrap(), OutputFormat::Jpeg);
        assert_eq!("webp".parse::<OutputFormat>().unwrap().extension(), "webp");
        let avif: OutputFormat = " AVIF".parse().unwrap();
        assert_eq!(avif, OutputFormat::Avif);
        assert_eq!(avif.to_string().parse::<OutputFormat>().unwrap(), avif);
        assert_eq!(
            (avif.extension(), avif.content_type()),
            ("avif", "image/avif")
        );
        assert!(avif.matches_extension("AVIF") && !avif.matches_extension("heic"));
        assert!("gif".parse::<OutputFormat>().is_err());
    }

    #[test]
    fn fit_never_upscales_and_hits_the_box() {
        let b = ThumbSpec::square(256);
        assert_eq!(b.fit(4000, 3000), (256, 192));
        assert_eq!(b.fit(3000, 4000), (192, 256));
        assert_eq!(b.fit(100, 50), (100, 50));
        assert_eq!(b.fit(10000, 1), (256, 1));
        let r: ThumbSpec = "320x200".parse().unwrap();
        assert_eq!(r.fit(4000, 3000), (267, 200));
        assert_eq!(r.fit(4000, 1000), (320, 80));
        assert_eq!(r.fit(300, 200), (300, 200));
    }

    #[test]
    fn crops_are_exactly_the_box_from_the_smallest_cover() {
        let c: ThumbSpec = "100x100!".parse().unwrap();
        assert_eq!(c.target(400, 200), (100, 100));
        assert_eq!(c.cover(400, 200), (200, 100));
        assert_eq!(c.cover(200, 400), (100, 200));
        // Never upscaled: a small source gives what it has.
        assert_eq!(c.target(60, 300), (60, 100));
        assert_eq!(c.cover(60, 300), (60, 300));
        let w: ThumbSpec = "300x100!".parse().unwrap();
        assert_eq!(w.target(1000, 1000), (300, 100));
        assert_eq!(w.cover(1000, 1000), (300, 300));
        // Odd ratios round up, so the cut always fits inside.
        let (cw, ch) = c.cover(333, 100);
        assert!(cw >= 100 && ch >= 100, "{cw}x{ch}");
    }
}
