//! The pure image engine: bytes and options in, thumbnails out. No AWS, no I/O.
//!
//! Pipeline: sniff the format from magic bytes; read only the header and refuse images over
//! the pixel limit; decode once, as small as the largest requested box allows (DCT-scaled JPEG
//! decoding in libjpeg-turbo, libwebp's scaler for WebP); convert from an embedded ICC profile
//! to sRGB; drop opaque alpha, or flatten alpha on white for JPEG output; Lanczos3 resize (fast_image_resize, SIMD) to every size; apply the
//! EXIF orientation to each small result; encode without any metadata.

mod attribution;
mod colour;
mod crop;
mod decode;
mod detect;
#[cfg(feature = "heic")]
mod heic;
mod jpeg_dc;
mod pixels;
mod spec;

pub use detect::SourceFormat;
pub use spec::{Crop, MAX_BOX_SIDE, OutputFormat, OutputFormatError, ThumbSpec, ThumbSpecError};

use detect::Sniffed;
use pixels::{Layout, Pixels};

/// Default pixel limit (width x height of the source as stored).
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;
/// Default byte limit of a source object: 50 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 50 * 1024 * 1024;

/// What to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThumbOptions {
    pub sizes: Vec<ThumbSpec>,
    pub format: OutputFormat,
    /// 1..=100 (JPEG, WebP and AVIF; ignored for PNG, which is lossless).
    pub quality: u8,
    pub max_pixels: u64,
    pub max_bytes: u64,
    /// Carry the source's EXIF Artist and Copyright (only those) into every thumbnail; by
    /// default thumbnails carry no metadata at all.
    pub keep_copyright: bool,
}

impl Default for ThumbOptions {
    fn default() -> Self {
        Self {
            sizes: vec![ThumbSpec::square(256)],
            format: OutputFormat::Jpeg,
            quality: 80,
            max_pixels: DEFAULT_MAX_PIXELS,
            max_bytes: DEFAULT_MAX_BYTES,
            keep_copyright: false,
        }
    }
}

/// The source as understood by the engine.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceInfo {
    /// MIME type detected from the content (not from the name).
    pub content_type: &'static str,
    /// Dimensions as displayed, i.e. after the EXIF orientation.
    pub width: u32,
    pub height: u32,
    /// EXIF orientation that was applied (1 = none).
    pub orientation: u8,
    /// Frames of an animated GIF, WebP or PNG (1 for a still image); thumbnails are made of
    /// the first frame only.
    pub frames: u32,
}

/// One encoded thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub spec: ThumbSpec,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

/// Everything made from one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnails {
    pub source: SourceInfo,
    /// In the order of `ThumbOptions::sizes`.
    pub thumbnails: Vec<Thumbnail>,
    /// A ThumbHash of the image, base64: about 30 characters from which a page paints a
    /// blurred preview (with the aspect ratio and alpha) before any thumbnail has loaded.
    pub placeholder: String,
}

/// Why no thumbnails could be made. All of these are permanent for a given input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("empty object")]
    Empty,
    #[error("too many bytes: {size} > {max}")]
    TooManyBytes { size: u64, max: u64 },
    #[error("not an image")]
    NotAnImage,
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("too many pixels: {width}x{height} > {max}")]
    TooManyPixels { width: u64, height: u64, max: u64 },
    #[error("too many pixels: decoder limit: {0}")]
    DecoderLimit(String),
    #[error("corrupt image: {0}")]
    Corrupt(String),
    #[error("bad options: {0}")]
    BadOptions(String),
    #[error("encode failed: {0}")]
    Encode(String),
}

impl EngineError {
    /// The short, stable reason recorded in the metadata item (`error` attribute).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Empty => "empty object",
            Self::TooManyBytes { .. } => "too many bytes",
            Self::NotAnImage => "not an image",
            Self::Unsupported(_) => "unsupported",
            Self::TooManyPixels { .. } | Self::DecoderLimit(_) => "too many pixels",
            Self::Corrupt(_) => "corrupt image",
            Self::BadOptions(_) => "bad options",
            Self::Encode(_) => "encode failed",
        }
    }
}

fn validate(opts: &ThumbOptions) -> Result<(), EngineError> {
    if opts.sizes.is_empty() {
        return Err(EngineError::BadOptions("no sizes".into()));
    }
    if let Some(s) = opts.sizes.iter().find(|s| {
        s.width == 0 || s.height == 0 || s.width > MAX_BOX_SIDE || s.height > MAX_BOX_SIDE
    }) {
        return Err(EngineError::BadOptions(format!("size {s} out of range")));
    }
    if !(1..=100).contains(&opts.quality) {
        return Err(EngineError::BadOptions(format!(
            "quality {} not in 1..=100",
            opts.quality
        )));
    }
    if opts.max_pixels == 0 || opts.max_bytes == 0 {
        return Err(EngineError::BadOptions("limits must be positive".into()));
    }
    Ok(())
}

/// Checks only what can be known without looking at pixels: size limits, format, header
/// dimensions against `max_pixels`. Returns the source info. Cheap (reads headers only).
pub fn probe(bytes: &[u8], opts: &ThumbOptions) -> Result<SourceInfo, EngineError> {
    validate(opts)?;
    let opened = open(bytes, opts)?;
    let (width, height) = opened.displayed();
    Ok(SourceInfo {
        content_type: opened.format.content_type(),
        width,
        height,
        orientation: opened.orientation,
        frames: detect::frame_count(bytes, opened.format),
    })
}

fn open<'a>(bytes: &'a [u8], opts: &ThumbOptions) -> Result<decode::Opened<'a>, EngineError> {
    if bytes.is_empty() {
        return Err(EngineError::Empty);
    }
    let size = bytes.len() as u64;
    if size > opts.max_bytes {
        return Err(EngineError::TooManyBytes {
            size,
            max: opts.max_bytes,
        });
    }
    let format = match detect::sniff(bytes) {
        Sniffed::Supported(f) => f,
        Sniffed::Unsupported(t) => return Err(EngineError::Unsupported(t.to_string())),
        Sniffed::NotAnImage => return Err(EngineError::NotAnImage),
    };
    decode::open(bytes, format, opts.max_pixels)
}

/// Makes every requested thumbnail from one decode of `bytes`.
pub fn make_thumbnails(bytes: &[u8], opts: &ThumbOptions) -> Result<Thumbnails, EngineError> {
    validate(opts)?;
    let opened = open(bytes, opts)?;
    let (dw, dh) = opened.displayed();
    let orientation = opened.orientation;
    let transposed = opened.transposed();
    let source = SourceInfo {
        content_type: opened.format.content_type(),
        width: dw,
        height: dh,
        orientation,
        frames: detect::frame_count(bytes, opened.format),
    };

    // Target sizes as displayed, and as stored (before orientation).
    // For a crop, the whole image is first scaled to cover the box (`cover`), and the box
    // is then cut out of that; for a fit the two are the same.
    let targets: Vec<(ThumbSpec, u32, u32)> = opts
        .sizes
        .iter()
        .map(|s| {
            let (w, h) = s.target(dw, dh);
            (*s, w, h)
        })
        .collect();
    let stored = |w: u32, h: u32| if transposed { (h, w) } else { (w, h) };
    let (need_w, need_h) = targets.iter().fold((1, 1), |(mw, mh), &(spec, _, _)| {
        let (cw, ch) = spec.cover(dw, dh);
        let (sw, sh) = stored(cw, ch);
        (mw.max(sw), mh.max(sh))
    });

    let profile = opened.profile.clone();
    let attribution = opts
        .keep_copyright
        .then(|| attribution::from_source(bytes, opened.format))
        .flatten();
    let mut pixels = opened.decode(need_w, need_h)?.drop_opaque_alpha();
    // Formats without scaled decoding: average integer blocks first while keeping at least
    // twice the largest target, then let Lanczos do the final, exact step.
    let k = (pixels.width / (2 * need_w)).min(pixels.height / (2 * need_h));
    if k >= 2 {
        pixels = pixels.box_shrink(k);
    }
    // Into sRGB once, on pixels already made small (CMYK was converted while decoding).
    if let Some(icc) = &profile {
        pixels = colour::rgb_to_srgb(pixels, icc);
    }
    let mut resizer = fast_image_resize::Resizer::new();
    // Before any flattening: the placeholder keeps the source's alpha.
    let placeholder = placeholder(&pixels, (dw, dh), transposed, orientation, &mut resizer)?;
    if opts.format == OutputFormat::Jpeg {
        pixels = pixels.flatten_on_white();
    }

    let mut thumbnails = Vec::with_capacity(targets.len());
    for (spec, w, h) in targets {
        let (cw, ch) = spec.cover(dw, dh);
        let (sw, sh) = stored(cw, ch);
        let covering = pixels.resize(sw, sh, &mut resizer)?.orient(orientation);
        let (x, y) = match spec.crop {
            Crop::Fit => (0, 0),
            Crop::Centre => ((cw - w) / 2, (ch - h) / 2),
            Crop::Attention => crop::busiest(&covering, w, h),
        };
        let small = covering.crop(x, y, w, h);
        debug_assert_eq!((small.width, small.height), (w, h));
        let alpha = small.layout == Layout::Rgba;
        let mut bytes = encode(small, opts.format, opts.quality, attribution.as_deref())?;
        if let Some(tiff) = &attribution {
            bytes = attribution::embed(bytes, opts.format, tiff, alpha);
        }
        thumbnails.push(Thumbnail {
            spec,
            width: w,
            height: h,
            bytes,
            content_type: opts.format.content_type(),
        });
    }
    Ok(Thumbnails {
        source,
        thumbnails,
        placeholder,
    })
}

/// ThumbHash works on at most 100×100 pixels: the image fitted into that box, as displayed.
const PLACEHOLDER_BOX: u32 = 100;

fn placeholder(
    pixels: &Pixels,
    (dw, dh): (u32, u32),
    transposed: bool,
    orientation: u8,
    resizer: &mut fast_image_resize::Resizer,
) -> Result<String, EngineError> {
    use base64::Engine as _;
    let (w, h) = ThumbSpec::square(PLACEHOLDER_BOX).fit(dw, dh);
    let (sw, sh) = if transposed { (h, w) } else { (w, h) };
    let small = pixels.resize(sw, sh, resizer)?.orient(orientation);
    let rgba: Vec<u8> = match small.layout {
        Layout::Rgba => small.data,
        Layout::Rgb => small
            .data
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        Layout::Gray => small.data.iter().flat_map(|&g| [g, g, g, 255]).collect(),
    };
    let hash = thumbhash::rgba_to_thumb_hash(small.width as usize, small.height as usize, &rgba);
    Ok(base64::engine::general_purpose::STANDARD.encode(hash))
}

/// Encodes packed 8-bit pixels (`channels` 1 = gray, 3 = RGB, 4 = RGBA with straight alpha)
/// exactly as [`make_thumbnails`] encodes a finished thumbnail. Not part of the pipeline: it
/// lets a benchmark time the encoders alone (`examples/encode_bench.rs`).
#[doc(hidden)]
pub fn encode_pixels(
    width: u32,
    height: u32,
    channels: usize,
    data: Vec<u8>,
    format: OutputFormat,
    quality: u8,
) -> Result<Vec<u8>, EngineError> {
    let layout = match channels {
        1 => Layout::Gray,
        3 => Layout::Rgb,
        4 => Layout::Rgba,
        n => return Err(EngineError::BadOptions(format!("{n} channels"))),
    };
    if !(1..=100).contains(&quality) {
        return Err(EngineError::BadOptions(format!(
            "quality {quality} not in 1..=100"
        )));
    }
    encode(
        Pixels::new(width, height, layout, data)?,
        format,
        quality,
        None,
    )
}

/// `exif` is used by AVIF only (see `attribution::embed`).
fn encode(
    p: Pixels,
    format: OutputFormat,
    quality: u8,
    exif: Option<&[u8]>,
) -> Result<Vec<u8>, EngineError> {
    let enc = |e: &dyn std::fmt::Display| EngineError::Encode(e.to_string());
    match format {
        OutputFormat::Jpeg => {
            let p = if p.layout == Layout::Rgba {
                p.flatten_on_white()
            } else {
                p
            };
            let (pf, subsamp) = match p.layout {
                Layout::Gray => (turbojpeg::PixelFormat::GRAY, turbojpeg::Subsamp::Gray),
                _ => (turbojpeg::PixelFormat::RGB, turbojpeg::Subsamp::Sub2x2),
            };
            let mut c = turbojpeg::Compressor::new().map_err(|e| enc(&e))?;
            c.set_quality(i32::from(quality)).map_err(|e| enc(&e))?;
            c.set_subsamp(subsamp).map_err(|e| enc(&e))?;
            c.compress_to_vec(turbojpeg::Image {
                pixels: p.data.as_slice(),
                width: p.width as usize,
                pitch: p.width as usize * p.layout.channels(),
                height: p.height as usize,
                format: pf,
            })
            .map_err(|e| enc(&e))
        }
        OutputFormat::Png => {
            use image::ImageEncoder;
            let ct = match p.layout {
                Layout::Gray => image::ExtendedColorType::L8,
                Layout::Rgb => image::ExtendedColorType::Rgb8,
                Layout::Rgba => image::ExtendedColorType::Rgba8,
            };
            let mut out = Vec::new();
            image::codecs::png::PngEncoder::new(&mut out)
                .write_image(&p.data, p.width, p.height, ct)
                .map_err(|e| enc(&e))?;
            Ok(out)
        }
        OutputFormat::Webp => {
            let p = if p.layout == Layout::Gray {
                p.into_rgb()
            } else {
                p
            };
            let layout = if p.layout == Layout::Rgba {
                webp::PixelLayout::Rgba
            } else {
                webp::PixelLayout::Rgb
            };
            let mem = webp::Encoder::new(&p.data, layout, p.width, p.height)
                .encode_simple(false, f32::from(quality))
                .map_err(|e| enc(&format!("{e:?}")))?;
            Ok(mem.to_vec())
        }
        OutputFormat::Avif => encode_avif(p, quality, exif),
    }
}

/// rav1e's speed preset for thumbnails (1 slowest .. 10 fastest). A Lambda is billed per
/// millisecond and AV1 is by far the slowest encoder here. Measured on the corpus's 12 MP JPEG
/// at 256 and 1024, quality 80 (README, "AVIF"): 6, 7 and 8 give the same bytes and SSIM within
/// 1% in about the same time (ravif's own tweaks decide most of the search there); 9 is about 2x
/// faster for 2-8% more bytes, 10 about 6-8x faster for 6-15% more bytes, both at a lower SSIM.
/// 8 is the fastest preset that keeps the full compression, which is the reason to choose AVIF.
#[doc(hidden)]
pub const AVIF_SPEED: u8 = 8;

fn encode_avif(p: Pixels, quality: u8, exif: Option<&[u8]>) -> Result<Vec<u8>, EngineError> {
    use ravif::{Encoder, Img, RGB8, RGBA8};
    // ravif's 1..=100 scale was made to read like JPEG's (80 is a typical photo setting), so
    // `quality` passes through unchanged; the README gives the SSIM each format reaches.
    // One thread: the engine is single-threaded per image by design (the Lambda's vCPU share
    // is small and a batch runs records concurrently), and without ravif's `threading` feature
    // there is no rayon pool to start; this also makes rav1e use a single tile.
    let encoder = Encoder::new()
        .with_quality(f32::from(quality))
        .with_alpha_quality(f32::from(quality))
        .with_speed(AVIF_SPEED)
        .with_num_threads(Some(1));
    let encoder = match exif {
        Some(tiff) => encoder.with_exif(tiff),
        None => encoder,
    };
    let (w, h) = (p.width as usize, p.height as usize);
    let enc = |e: ravif::Error| EngineError::Encode(format!("avif: {e}"));
    let encoded = match p.layout {
        // ravif reads straight (unassociated) alpha, which is what the resize gives back.
        Layout::Rgba => {
            let px: Vec<RGBA8> = p
                .data
                .chunks_exact(4)
                .map(|c| RGBA8::new(c[0], c[1], c[2], c[3]))
                .collect();
            encoder.encode_rgba(Img::new(px.as_slice(), w, h))
        }
        Layout::Rgb | Layout::Gray => {
            let p = p.into_rgb();
            let px: Vec<RGB8> = p
                .data
                .chunks_exact(3)
                .map(|c| RGB8::new(c[0], c[1], c[2]))
                .collect();
            encoder.encode_rgb(Img::new(px.as_slice(), w, h))
        }
    }
    .map_err(enc)?;
    Ok(encoded.avif_file)
}
