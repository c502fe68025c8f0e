//! Header probing and decoding. `open` reads only headers (dimensions, orientation) so that the
//! pixel limit is enforced before any pixel buffer is allocated; `Opened::decode` then decodes
//! once, as small as the largest requested thumbnail allows (DCT scaling for JPEG, libwebp's
//! scaler for WebP).

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, metadata::Orientation};

use super::EngineError;
use super::colour;
use super::detect::{self, SourceFormat};
#[cfg(feature = "heic")]
use super::heic;
use super::jpeg_dc;
use super::pixels::{BoxShrink, Layout, Pixels, cmyk_to_rgb};

/// Most scans a progressive JPEG may have (libjpeg-turbo's own fuzzing limit is 500).
const JPEG_SCAN_LIMIT: u32 = 500;

/// A source whose header has been read and checked against the limits.
pub struct Opened<'a> {
    pub format: SourceFormat,
    /// Stored (not yet oriented) dimensions.
    pub width: u32,
    pub height: u32,
    /// EXIF orientation 1..=8.
    pub orientation: u8,
    /// The embedded ICC profile: what the decoded numbers mean (see `colour`).
    pub profile: Option<Vec<u8>>,
    kind: Kind<'a>,
}

enum Kind<'a> {
    Jpeg {
        bytes: &'a [u8],
        colorspace: turbojpeg::Colorspace,
        lossless: bool,
    },
    Webp {
        bytes: &'a [u8],
        alpha: bool,
    },
    Png(Box<png::Reader<Cursor<&'a [u8]>>>),
    Image(Box<dyn ImageDecoder + 'a>),
    #[cfg(feature = "heic")]
    Heic(Box<heic::Source<'a>>),
}

fn check_pixels(w: u64, h: u64, max_pixels: u64) -> Result<(), EngineError> {
    if w == 0 || h == 0 {
        return Err(EngineError::Corrupt(format!("zero dimension {w}x{h}")));
    }
    if w.saturating_mul(h) > max_pixels || w > u64::from(u32::MAX) || h > u64::from(u32::MAX) {
        return Err(EngineError::TooManyPixels {
            width: w,
            height: h,
            max: max_pixels,
        });
    }
    Ok(())
}

fn image_err(e: ImageError) -> EngineError {
    match e {
        ImageError::Limits(l) => EngineError::DecoderLimit(l.to_string()),
        ImageError::Unsupported(u) => EngineError::Unsupported(u.to_string()),
        other => EngineError::Corrupt(other.to_string()),
    }
}

fn png_err(e: png::DecodingError) -> EngineError {
    match e {
        png::DecodingError::LimitsExceeded => EngineError::DecoderLimit("png".into()),
        other => EngineError::Corrupt(other.to_string()),
    }
}

/// Most bytes a decoder may allocate for an image of `max_pixels`: the largest legal image
/// could need 8 bytes per pixel (16-bit RGBA). A second line of defence after our own header
/// check, but only for the decoders that honour it: the GIF decoder allocates the canvas its
/// logical screen declares regardless (a 65535² GIF took 16.8 GB with the header check
/// disabled), so for GIF the header check is the only line; `tests/fuzz_corpus.rs` keeps it.
fn alloc_limit(max_pixels: u64) -> u64 {
    max_pixels.saturating_mul(8).clamp(64 << 20, 8 << 30)
}

fn tj_err(e: turbojpeg::Error) -> EngineError {
    EngineError::Corrupt(e.to_string())
}

fn orientation_u8(o: Orientation) -> u8 {
    match o {
        Orientation::NoTransforms => 1,
        Orientation::FlipHorizontal => 2,
        Orientation::Rotate180 => 3,
        Orientation::FlipVertical => 4,
        Orientation::Rotate90FlipH => 5,
        Orientation::Rotate90 => 6,
        Orientation::Rotate270FlipH => 7,
        Orientation::Rotate270 => 8,
    }
}

/// Reads the header and refuses images over `max_pixels` before decoding anything.
pub fn open(
    bytes: &[u8],
    format: SourceFormat,
    max_pixels: u64,
) -> Result<Opened<'_>, EngineError> {
    match format {
        SourceFormat::Jpeg => {
            let header = turbojpeg::read_header(bytes).map_err(tj_err)?;
            check_pixels(header.width as u64, header.height as u64, max_pixels)?;
            Ok(Opened {
                format,
                width: header.width as u32,
                height: header.height as u32,
                orientation: detect::jpeg_orientation(bytes).unwrap_or(1),
                profile: colour::embedded_profile(bytes, format),
                kind: Kind::Jpeg {
                    bytes,
                    colorspace: header.colorspace,
                    lossless: header.is_lossless,
                },
            })
        }
        SourceFormat::Webp => {
            let mut f = std::mem::MaybeUninit::<libwebp_sys::WebPBitstreamFeatures>::zeroed();
            // SAFETY: reads at most bytes.len() bytes and fills the features struct.
            let status = unsafe {
                libwebp_sys::WebPGetFeatures(bytes.as_ptr(), bytes.len(), f.as_mut_ptr())
            };
            if status != libwebp_sys::VP8StatusCode::VP8_STATUS_OK {
                return Err(EngineError::Corrupt(format!("webp header: {status:?}")));
            }
            // SAFETY: WebPGetFeatures returned OK, so the struct is initialised.
            let f = unsafe { f.assume_init() };
            check_pixels(f.width.max(0) as u64, f.height.max(0) as u64, max_pixels)?;
            if f.has_animation != 0 {
                // libwebp's simple decoder refuses animations; image-webp gives the first frame.
                return open_with_image(bytes, format, max_pixels);
            }
            Ok(Opened {
                format,
                width: f.width as u32,
                height: f.height as u32,
                orientation: detect::webp_orientation(bytes).unwrap_or(1),
                profile: colour::embedded_profile(bytes, format),
                kind: Kind::Webp {
                    bytes,
                    alpha: f.has_alpha != 0,
                },
            })
        }
        SourceFormat::Png => open_png(bytes, max_pixels),
        #[cfg(feature = "heic")]
        SourceFormat::Heic => {
            let src = heic::open(bytes, max_pixels, alloc_limit(max_pixels), |w, h| {
                check_pixels(w, h, max_pixels)
            })?;
            Ok(Opened {
                format,
                width: src.width,
                height: src.height,
                // libheif applies the container's transforms itself (see heic.rs).
                orientation: 1,
                profile: src.profile.clone(),
                kind: Kind::Heic(Box::new(src)),
            })
        }
        _ => open_with_image(bytes, format, max_pixels),
    }
}

fn open_png(bytes: &[u8], max_pixels: u64) -> Result<Opened<'_>, EngineError> {
    let limits = png::Limits {
        bytes: usize::try_from(alloc_limit(max_pixels)).unwrap_or(usize::MAX),
    };
    let mut dec = png::Decoder::new_with_limits(Cursor::new(bytes), limits);
    // 8 bits per channel, palettes and tRNS expanded: the engine's only sample format.
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    // Text and colour-profile chunks are never used (thumbnails carry no metadata): not
    // inflating them also takes away a place for compressed bombs.
    dec.set_ignore_text_chunk(true);
    dec.set_ignore_iccp_chunk(true);
    // Reads the chunks up to the first image data only; nothing sized by the image yet.
    let reader = dec.read_info().map_err(png_err)?;
    let info = reader.info();
    let (width, height) = (info.width, info.height);
    check_pixels(u64::from(width), u64::from(height), max_pixels)?;
    let orientation = info
        .exif_metadata
        .as_deref()
        .and_then(detect::tiff_orientation)
        .unwrap_or(1);
    Ok(Opened {
        format: SourceFormat::Png,
        width,
        height,
        orientation,
        profile: colour::embedded_profile(bytes, SourceFormat::Png),
        kind: Kind::Png(Box::new(reader)),
    })
}

fn open_with_image(
    bytes: &[u8],
    format: SourceFormat,
    max_pixels: u64,
) -> Result<Opened<'_>, EngineError> {
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(alloc_limit(max_pixels));
    let side = u32::try_from(max_pixels).unwrap_or(u32::MAX);
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    let image_format = format
        .image_format()
        .ok_or_else(|| EngineError::Unsupported(format.content_type().into()))?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    reader.limits(limits);
    let mut dec = reader.into_decoder().map_err(image_err)?;
    let (w, h) = dec.dimensions();
    check_pixels(u64::from(w), u64::from(h), max_pixels)?;
    let (orientation, profile) = match format {
        SourceFormat::Webp => (
            detect::webp_orientation(bytes).unwrap_or(1),
            colour::embedded_profile(bytes, format),
        ),
        // An unreadable profile is no profile (see `colour`).
        _ => (
            dec.orientation().map(orientation_u8).unwrap_or(1),
            dec.icc_profile().ok().flatten(),
        ),
    };
    Ok(Opened {
        format,
        width: w,
        height: h,
        orientation,
        profile,
        kind: Kind::Image(Box::new(dec)),
    })
}

impl Opened<'_> {
    /// Whether the orientation swaps width and height.
    pub fn transposed(&self) -> bool {
        self.orientation >= 5
    }

    /// Displayed dimensions (after orientation).
    pub fn displayed(&self) -> (u32, u32) {
        if self.transposed() {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }

    /// Decodes, at least `min_w` x `min_h` pixels (stored orientation) where the format can
    /// decode smaller than full size.
    pub fn decode(self, min_w: u32, min_h: u32) -> Result<Pixels, EngineError> {
        let (w, h) = (self.width, self.height);
        match self.kind {
            Kind::Jpeg {
                bytes,
                colorspace,
                lossless,
            } => decode_jpeg(
                bytes,
                colorspace,
                lossless,
                self.profile.as_deref(),
                min_w,
                min_h,
            ),
            Kind::Webp { bytes, alpha } => decode_webp(bytes, w, h, alpha, min_w, min_h),
            Kind::Png(reader) => decode_png(*reader, min_w, min_h),
            Kind::Image(dec) => {
                dynamic_to_pixels(DynamicImage::from_decoder(dec).map_err(image_err)?)
            }
            #[cfg(feature = "heic")]
            Kind::Heic(src) => src.decode(),
        }
    }
}

fn decode_jpeg(
    bytes: &[u8],
    colorspace: turbojpeg::Colorspace,
    lossless: bool,
    profile: Option<&[u8]>,
    min_w: u32,
    min_h: u32,
) -> Result<Pixels, EngineError> {
    use turbojpeg::{Colorspace, PixelFormat, ScalingFactor};
    let mut d = turbojpeg::Decompressor::new().map_err(tj_err)?;
    d.set_scan_limit(JPEG_SCAN_LIMIT).map_err(tj_err)?;
    let header = d.read_header(bytes).map_err(tj_err)?;
    if !lossless {
        // The smallest DCT scale that still gives at least the requested size.
        let mut best = ScalingFactor::ONE;
        for f in turbojpeg::Decompressor::supported_scaling_factors() {
            if f.num() * best.denom() >= best.num() * f.denom() {
                continue; // not smaller than the current best
            }
            if f.scale(header.width) >= min_w as usize && f.scale(header.height) >= min_h as usize {
                best = f;
            }
        }
        d.set_scaling_factor(best).map_err(tj_err)?;
        // At 1/8 a progressive file's DC scans are all a thumbnail needs, at 1/4 those and its
        // first AC scans (see `jpeg_dc`); anything that decoder does not take falls through to
        // libjpeg-turbo.
        let scale = match best.denom() / best.num().max(1) {
            8 if best.num() == 1 => Some(jpeg_dc::Scale::Eighth),
            4 if best.num() == 1 => Some(jpeg_dc::Scale::Quarter),
            _ => None,
        };
        let ycc_or_gray = !matches!(colorspace, Colorspace::CMYK | Colorspace::YCCK);
        if let Some(scale) = scale
            && ycc_or_gray
            && let Some(p) = jpeg_dc::decode(bytes, scale)
        {
            return Ok(p);
        }
    }
    let scaled = header.scaled(d.scaling_factor());
    let (w, h) = (scaled.width, scaled.height);
    let (format, layout) = match colorspace {
        Colorspace::Gray => (PixelFormat::GRAY, Layout::Gray),
        Colorspace::CMYK | Colorspace::YCCK => (PixelFormat::CMYK, Layout::Rgb),
        _ => (PixelFormat::RGB, Layout::Rgb),
    };
    let pitch = w * format.size();
    let mut buf = vec![0u8; pitch * h];
    let res = d.decompress(
        bytes,
        turbojpeg::Image {
            pixels: buf.as_mut_slice(),
            width: w,
            pitch,
            height: h,
            format,
        },
    );
    match res {
        Ok(()) => {}
        // libjpeg-turbo reports warnings as errors after a complete decode. Stray bytes between
        // segments are common in camera files and harmless; every other warning (premature end
        // of file, bad Huffman code, ...) means missing or damaged pixels: refuse.
        Err(turbojpeg::Error::TurboJpegError(msg))
            if msg.contains("extraneous bytes before marker") => {}
        Err(e) => return Err(tj_err(e)),
    }
    if format == PixelFormat::CMYK {
        let inverted = detect::jpeg_has_adobe_marker(bytes);
        // Through the file's CMYK profile where it has a usable one; the naive formula is
        // only a fallback, as wrong as CMYK without a profile has to be.
        buf = profile
            .and_then(|icc| colour::cmyk_to_srgb(&buf, inverted, icc))
            .unwrap_or_else(|| cmyk_to_rgb(&buf, inverted));
    }
    Pixels::new(w as u32, h as u32, layout, buf)
}

fn decode_webp(
    bytes: &[u8],
    w: u32,
    h: u32,
    alpha: bool,
    min_w: u32,
    min_h: u32,
) -> Result<Pixels, EngineError> {
    use libwebp_sys as sys;
    // Shrink-on-load: let libwebp scale by an integer factor while keeping at least twice the
    // requested size, so that the final Lanczos pass does the quality work.
    let k = (w / min_w.max(1) / 2).min(h / min_h.max(1) / 2).max(1);
    let (sw, sh) = (w.div_ceil(k), h.div_ceil(k));
    let layout = if alpha { Layout::Rgba } else { Layout::Rgb };
    let stride = sw as usize * layout.channels();
    let mut buf = vec![0u8; stride * sh as usize];
    let mut config = std::mem::MaybeUninit::<sys::WebPDecoderConfig>::zeroed();
    // SAFETY: initialises the config struct for this ABI version.
    if !unsafe { sys::WebPInitDecoderConfig(config.as_mut_ptr()) } {
        return Err(EngineError::Corrupt("libwebp: decoder config".into()));
    }
    // SAFETY: initialised just above.
    let config = unsafe { config.assume_init_mut() };
    config.options.use_threads = 0;
    if k > 1 {
        config.options.use_scaling = 1;
        config.options.scaled_width = sw as i32;
        config.options.scaled_height = sh as i32;
    }
    config.output.colorspace = if alpha {
        sys::WEBP_CSP_MODE::MODE_RGBA
    } else {
        sys::WEBP_CSP_MODE::MODE_RGB
    };
    config.output.is_external_memory = 1;
    config.output.u.RGBA = sys::WebPRGBABuffer {
        rgba: buf.as_mut_ptr(),
        stride: stride as i32,
        size: buf.len(),
    };
    // SAFETY: the output buffer is ours, of the size and stride declared above; libwebp checks
    // that the scaled image fits into it.
    let status = unsafe { sys::WebPDecode(bytes.as_ptr(), bytes.len(), config) };
    // SAFETY: frees nothing of ours (external memory), only libwebp's internal state.
    unsafe { sys::WebPFreeDecBuffer(&mut config.output) };
    if status != sys::VP8StatusCode::VP8_STATUS_OK {
        return Err(EngineError::Corrupt(format!("webp decode: {status:?}")));
    }
    Pixels::new(sw, sh, layout, buf)
}

/// Decodes row by row straight into a [`BoxShrink`] when the image is much larger than needed,
/// so the full-size image is never held in memory (a 12 MP RGB PNG would take 36 MB).
fn decode_png(
    mut reader: png::Reader<Cursor<&[u8]>>,
    min_w: u32,
    min_h: u32,
) -> Result<Pixels, EngineError> {
    let (w, h) = (reader.info().width, reader.info().height);
    let interlaced = reader.info().interlaced;
    let (color, depth) = reader.output_color_type();
    if depth != png::BitDepth::Eight {
        return Err(EngineError::Corrupt(format!(
            "png: {depth:?} after expansion"
        )));
    }
    // Gray with alpha has no layout of its own: widened to RGBA row by row.
    let (layout, gray_alpha) = match color {
        png::ColorType::Grayscale => (Layout::Gray, false),
        png::ColorType::GrayscaleAlpha => (Layout::Rgba, true),
        png::ColorType::Rgb => (Layout::Rgb, false),
        png::ColorType::Rgba => (Layout::Rgba, false),
        png::ColorType::Indexed => {
            return Err(EngineError::Corrupt("png: palette not expanded".into()));
        }
    };
    let widen = |row: &[u8], out: &mut Vec<u8>| {
        out.extend(row.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]));
    };
    // The same factor the engine would use on the decoded image: at least twice the target.
    let k = (w / (2 * min_w.max(1))).min(h / (2 * min_h.max(1))).max(1);
    if k == 1 || interlaced {
        // Whole frame: nothing to shrink, or Adam7 passes, which are sub-images (only the
        // whole frame gives full rows).
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| EngineError::DecoderLimit("png".into()))?;
        let mut frame = vec![0u8; size];
        reader.next_frame(&mut frame).map_err(png_err)?;
        if gray_alpha {
            let mut rgba = Vec::with_capacity(frame.len() * 2);
            widen(&frame, &mut rgba);
            frame = rgba;
        }
        return Ok(Pixels::new(w, h, layout, frame)?.box_shrink(k));
    }
    let mut shrink = BoxShrink::new(w, h, layout, k);
    let mut wide = Vec::new();
    let row_bytes = w as usize * if gray_alpha { 2 } else { layout.channels() };
    let mut rows = 0u32;
    while let Some(row) = reader.next_row().map_err(png_err)? {
        let data = row.data();
        if data.len() < row_bytes {
            return Err(EngineError::Corrupt("png: short row".into()));
        }
        if gray_alpha {
            wide.clear();
            widen(data, &mut wide);
            shrink.push_row(&wide);
        } else {
            shrink.push_row(data);
        }
        rows += 1;
    }
    if rows != h {
        return Err(EngineError::Corrupt(format!("png: {rows} of {h} rows")));
    }
    Ok(shrink.finish())
}

fn dynamic_to_pixels(img: DynamicImage) -> Result<Pixels, EngineError> {
    let (w, h) = (img.width(), img.height());
    let has_alpha = img.color().has_alpha();
    let is_gray = !img.color().has_color();
    match img {
        DynamicImage::ImageLuma8(b) => Pixels::new(w, h, Layout::Gray, b.into_raw()),
        DynamicImage::ImageRgb8(b) => Pixels::new(w, h, Layout::Rgb, b.into_raw()),
        DynamicImage::ImageRgba8(b) => Pixels::new(w, h, Layout::Rgba, b.into_raw()),
        other if has_alpha => Pixels::new(w, h, Layout::Rgba, other.into_rgba8().into_raw()),
        other if is_gray => Pixels::new(w, h, Layout::Gray, other.into_luma8().into_raw()),
        other => Pixels::new(w, h, Layout::Rgb, other.into_rgb8().into_raw()),
    }
}
