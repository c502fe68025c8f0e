//! HEIC/HEIF input through libheif, with libde265 as its HEVC decoder. Decode only: no
//! output format is HEIC.
//!
//! Orientation: HEIF stores it as `irot`/`imir` transform properties, which libheif applies
//! while decoding and already accounts for in the handle's dimensions. The engine applies
//! EXIF orientation itself, so to apply it exactly once a HEIC source reports orientation 1
//! and its displayed dimensions as stored; an EXIF orientation tag inside a HEIC is
//! informational by the HEIF specification and is ignored here, as libheif ignores it.
//!
//! The primary image is decoded at full size: HEVC cannot be decoded at a reduced scale, and
//! the small `thmb` images HEIC files carry are not used, since their size and quality are
//! up to the camera.

use libheif_rs::{
    ColorSpace, DecodingOptions, HeifContext, HeifError, HeifErrorCode, HeifErrorSubCode,
    ImageHandle, LibHeif, RgbChroma, SecurityLimits,
};

use super::EngineError;
use super::pixels::{Layout, Pixels};

/// A parsed HEIF container whose primary image has passed the pixel limit.
pub struct Source<'a> {
    // Fields drop in this order: the handle before the context it points into, and both
    // before libheif's initialisation (reference counted) is released.
    handle: ImageHandle,
    _ctx: HeifContext<'a>,
    lib: LibHeif,
    pub width: u32,
    pub height: u32,
    /// The primary image's ICC profile (a `colr` box of type `prof`/`rICC`): iPhones tag
    /// their HEICs Display P3 this way, and `colour` converts from it like from any other.
    pub profile: Option<Vec<u8>>,
}

fn heif_err(e: HeifError) -> EngineError {
    match (e.code, e.sub_code) {
        (_, HeifErrorSubCode::SecurityLimitExceeded) => {
            EngineError::DecoderLimit(format!("libheif: {}", e.message))
        }
        (HeifErrorCode::UnsupportedFeature | HeifErrorCode::UnsupportedFileType, _) => {
            EngineError::Unsupported(format!("heif: {}", e.message))
        }
        _ => EngineError::Corrupt(format!(
            "heif: {:?}/{:?}: {}",
            e.code, e.sub_code, e.message
        )),
    }
}

/// Parses the container (boxes only, no image data is decoded) and checks the primary
/// image's dimensions with `check`, which refuses images over the pixel limit.
pub fn open(
    bytes: &[u8],
    max_pixels: u64,
    alloc_limit: u64,
    check: impl Fn(u64, u64) -> Result<(), EngineError>,
) -> Result<Source<'_>, EngineError> {
    let lib = LibHeif::new_checked().map_err(heif_err)?;
    let mut ctx: HeifContext<'_> = HeifContext::new().map_err(heif_err)?;
    let mut limits = SecurityLimits::new();
    limits.set_max_total_memory(alloc_limit);
    // Parsing allocates no pixels. libheif would refuse an oversized `ispe` while parsing,
    // but with no dimensions to report, so its size limit stays at its default (32768²)
    // until our own check below has seen the declared size.
    ctx.set_security_limits(&limits).map_err(heif_err)?;
    ctx.read_bytes(bytes).map_err(heif_err)?;
    let handle = ctx.primary_image_handle().map_err(heif_err)?;
    // The coded size (`ispe`) is what decoding allocates; a clean-aperture crop (`clap`) can
    // make the displayed size much smaller, so both are checked.
    let (ispe_w, ispe_h) = (handle.ispe_width(), handle.ispe_height());
    if ispe_w > 0 && ispe_h > 0 {
        check(ispe_w.unsigned_abs().into(), ispe_h.unsigned_abs().into())?;
    }
    // Dimensions after libheif's transforms (rotation, mirroring, cropping): as displayed.
    let (width, height) = (handle.width(), handle.height());
    check(u64::from(width), u64::from(height))?;
    // The second line of defence: when decoding, libheif refuses before allocating any plane
    // over the pixel limit, including those that a grid's tiles or an HEVC stream's own
    // headers declare (which may disagree with the container's `ispe`).
    limits.set_max_image_size_pixels(max_pixels);
    ctx.set_security_limits(&limits).map_err(heif_err)?;
    let profile = handle.color_profile_raw().map(|p| p.data);
    Ok(Source {
        profile,
        handle,
        _ctx: ctx,
        lib,
        width,
        height,
    })
}

impl Source<'_> {
    /// Decodes the primary image, transforms applied, to 8-bit RGB or RGBA.
    pub fn decode(self) -> Result<Pixels, EngineError> {
        let alpha = self.handle.has_alpha_channel();
        let (chroma, layout) = if alpha {
            (RgbChroma::Rgba, Layout::Rgba)
        } else {
            (RgbChroma::Rgb, Layout::Rgb)
        };
        let mut options = DecodingOptions::new()
            .ok_or_else(|| EngineError::Corrupt("libheif: decoding options".into()))?;
        // 10-bit sources (common from newer phones) become 8 bits, the engine's only depth.
        options.set_convert_hdr_to_8bit(true);
        let image = self
            .lib
            .decode(&self.handle, ColorSpace::Rgb(chroma), Some(options))
            .map_err(heif_err)?;
        let (w, h) = (image.width(), image.height());
        if (w, h) != (self.width, self.height) {
            return Err(EngineError::Corrupt(format!(
                "heif: decoded {w}x{h}, header said {}x{}",
                self.width, self.height
            )));
        }
        let planes = image.planes();
        let plane = planes
            .interleaved
            .ok_or_else(|| EngineError::Corrupt("heif: no interleaved plane".into()))?;
        let row = w as usize * layout.channels();
        if plane.storage_bits_per_pixel as usize != 8 * layout.channels() || plane.stride < row {
            return Err(EngineError::Corrupt(format!(
                "heif: {} bits per pixel, stride {}",
                plane.storage_bits_per_pixel, plane.stride
            )));
        }
        let mut buf = Vec::with_capacity(row * h as usize);
        for y in 0..h as usize {
            let start = y * plane.stride;
            let line = plane
                .data
                .get(start..start + row)
                .ok_or_else(|| EngineError::Corrupt("heif: short plane".into()))?;
            buf.extend_from_slice(line);
        }
        Pixels::new(w, h, layout, buf)
    }
}
