//! Header probing and decoding. `open` reads only headers (dimensions, orientation) so that the
//! pixel limit is enforced before any pixel buffer is allocated; `Opened::decode` then decodes
//! once, as small as the largest requested thumbnail allows (DCT scaling for JPEG, libwebp's
//! scaler for WebP).

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, metadata::Orientation};

use super::EngineError;
use super::detect::{self, SourceFormat};
use super::pixels::{Layout, Pixels, cmyk_to_rgb};

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
    Image(Box<dyn ImageDecoder + 'a>),
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
                kind: Kind::Webp {
                    bytes,
                    alpha: f.has_alpha != 0,
                },
            })
        }
        _ => open_with_image(bytes, format, max_pixels),
    }
}

fn open_with_image(
    bytes: &[u8],
    format: SourceFormat,
    max_pixels: u64,
) -> Result<Opened<'_>, EngineError> {
    let mut limits = image::Limits::default();
    // Second line of defence after our own header check: the decoder refuses to allocate more
    // than the largest legal image could need (16-bit RGBA).
    limits.max_alloc = Some(max_pixels.saturating_mul(8).clamp(64 << 20, 8 << 30));
    let side = u32::try_from(max_pixels).unwrap_or(u32::MAX);
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    reader.limits(limits);
    let mut dec = reader.into_decoder().map_err(image_err)?;
    let (w, h) = dec.dimensions();
    check_pixels(u64::from(w), u64::from(h), max_pixels)?;
    let orientation = match format {
        SourceFormat::Webp => detect::webp_orientation(bytes).unwrap_or(1),
        _ => dec.orientation().map(orientation_u8).unwrap_or(1),
    };
    Ok(Opened {
        format,
        width: w,
        height: h,
        orientation,
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
            } => decode_jpeg(bytes, colorspace, lossless, min_w, min_h),
            Kind::Webp { bytes, alpha } => decode_webp(bytes, w, h, alpha, min_w, min_h),
            Kind::Image(dec) => {
                dynamic_to_pixels(DynamicImage::from_decoder(dec).map_err(image_err)?)
            }
        }
    }
}

fn decode_jpeg(
    bytes: &[u8],
    colorspace: turbojpeg::Colorspace,
    lossless: bool,
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
        buf = cmyk_to_rgb(&buf, detect::jpeg_has_adobe_marker(bytes));
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
