//! Decodes AVIF with libaom (`avif-decode`), not the rav1e that encodes our thumbnails: shared
//! by the engine tests and `examples/encode_bench.rs` (included there with `#[path]`).

use image::RgbaImage;

/// An AVIF file as 8-bit RGBA, whatever depth and layout libaom returns.
pub fn decode_avif_rgba(bytes: &[u8]) -> Result<RgbaImage, String> {
    use avif_decode::{Decoder, Image};
    let img = Decoder::from_avif(bytes)
        .and_then(Decoder::to_image)
        .map_err(|e| e.to_string())?;
    // 10-bit AV1 comes back scaled to 16 bits: the high byte is the 8-bit value.
    let hi = |v: u16| (v >> 8) as u8;
    let (w, h, px): (usize, usize, Vec<[u8; 4]>) = match img {
        Image::Rgb8(i) => (
            i.width(),
            i.height(),
            i.pixels().map(|p| [p.r, p.g, p.b, 255]).collect(),
        ),
        Image::Rgba8(i) => (
            i.width(),
            i.height(),
            i.pixels().map(|p| [p.r, p.g, p.b, p.a]).collect(),
        ),
        Image::Rgb16(i) => (
            i.width(),
            i.height(),
            i.pixels()
                .map(|p| [hi(p.r), hi(p.g), hi(p.b), 255])
                .collect(),
        ),
        Image::Rgba16(i) => (
            i.width(),
            i.height(),
            i.pixels()
                .map(|p| [hi(p.r), hi(p.g), hi(p.b), hi(p.a)])
                .collect(),
        ),
        Image::Gray8(i) => (
            i.width(),
            i.height(),
            i.pixels()
                .map(|g| [g.value(), g.value(), g.value(), 255])
                .collect(),
        ),
        Image::Gray16(i) => (
            i.width(),
            i.height(),
            i.pixels()
                .map(|g| [hi(g.value()), hi(g.value()), hi(g.value()), 255])
                .collect(),
        ),
    };
    RgbaImage::from_raw(w as u32, h as u32, px.concat())
        .ok_or_else(|| "decoded buffer does not match its size".to_string())
}
