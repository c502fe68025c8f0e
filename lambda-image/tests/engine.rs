//! Engine tests on generated images: every input format and variant, all EXIF orientations
//! (checked on pixel content), alpha, 16-bit, CMYK, box fitting, hostile inputs.

#[path = "common/avif.rs"]
mod avif_support;

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use lambda_image::engine::{
    EngineError, OutputFormat, ThumbOptions, ThumbSpec, Thumbnails, make_thumbnails, probe,
};

// ---------------------------------------------------------------- generators

const RED: [u8; 3] = [230, 20, 20];
const GREEN: [u8; 3] = [20, 200, 40];
const BLUE: [u8; 3] = [20, 40, 220];
const YELLOW: [u8; 3] = [240, 230, 30];
/// Stored quadrant colours: top-left, top-right, bottom-left, bottom-right.
const QUADS: [[u8; 3]; 4] = [RED, GREEN, BLUE, YELLOW];

fn quadrants(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let q = usize::from(x >= w / 2) + 2 * usize::from(y >= h / 2);
        Rgb(QUADS[q])
    })
}

fn exif_tiff(orientation: u16) -> Vec<u8> {
    let mut t = b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
    t.extend_from_slice(&orientation.to_le_bytes());
    t.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    t
}

struct JpegOpts {
    progressive: bool,
    exif: Option<u16>,
    quality: u8,
}

fn jpeg_with(data: &[u8], w: u32, h: u32, ct: jpeg_encoder::ColorType, o: JpegOpts) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, o.quality);
    enc.set_progressive(o.progressive);
    if let Some(orientation) = o.exif {
        enc.add_exif_metadata(&exif_tiff(orientation)).unwrap();
    }
    enc.encode(data, w as u16, h as u16, ct).unwrap();
    out
}

fn jpeg_rgb(img: &RgbImage, progressive: bool, exif: Option<u16>) -> Vec<u8> {
    jpeg_with(
        img.as_raw(),
        img.width(),
        img.height(),
        jpeg_encoder::ColorType::Rgb,
        JpegOpts {
            progressive,
            exif,
            quality: 92,
        },
    )
}

fn encode_with_image(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut h = crc32fast::Hasher::new();
    h.update(kind);
    h.update(data);
    out.extend_from_slice(&h.finalize().to_be_bytes());
}

/// A PNG written with the png crate, optionally with an eXIf chunk.
fn png_raw(
    w: u32,
    h: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    palette: Option<(&[u8], &[u8])>,
    exif: Option<u16>,
) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(depth);
        if let Some((plte, trns)) = palette {
            enc.set_palette(plte.to_vec());
            enc.set_trns(trns.to_vec());
        }
        let mut wr = enc.write_header().unwrap();
        if let Some(o) = exif {
            wr.write_chunk(png::chunk::ChunkType(*b"eXIf"), &exif_tiff(o))
                .unwrap();
        }
        wr.write_image_data(data).unwrap();
    }
    out
}

/// A lossless WebP in the extended format with an EXIF chunk.
fn webp_with_exif(img: &RgbImage, orientation: u16) -> Vec<u8> {
    let simple = encode_with_image(DynamicImage::ImageRgb8(img.clone()), ImageFormat::WebP);
    assert_eq!(&simple[12..16], b"VP8L");
    let vp8l = &simple[12..];
    let mut vp8x = vec![0x08u8, 0, 0, 0]; // EXIF flag
    let (w1, h1) = (img.width() - 1, img.height() - 1);
    vp8x.extend_from_slice(&w1.to_le_bytes()[..3]);
    vp8x.extend_from_slice(&h1.to_le_bytes()[..3]);
    let mut body = b"WEBP".to_vec();
    body.extend_from_slice(b"VP8X");
    body.extend_from_slice(&10u32.to_le_bytes());
    body.extend_from_slice(&vp8x);
    body.extend_from_slice(vp8l);
    if body.len() % 2 == 1 {
        body.push(0);
    }
    let exif = exif_tiff(orientation);
    body.extend_from_slice(b"EXIF");
    body.extend_from_slice(&(exif.len() as u32).to_le_bytes());
    body.extend_from_slice(&exif);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

// ---------------------------------------------------------------- checks

fn opts(sizes: &[&str], format: OutputFormat) -> ThumbOptions {
    ThumbOptions {
        sizes: sizes.iter().map(|s| s.parse().unwrap()).collect(),
        format,
        quality: 85,
        ..ThumbOptions::default()
    }
}

fn decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).expect("thumbnail decodes")
}

fn close(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (i32::from(*x) - i32::from(y)).abs() <= tol)
}

/// Checks that every thumbnail fits its box exactly and has the displayed aspect ratio.
fn assert_fits(t: &Thumbnails, dw: u32, dh: u32) {
    assert_eq!((t.source.width, t.source.height), (dw, dh), "source dims");
    for th in &t.thumbnails {
        let (bw, bh) = (th.spec.width, th.spec.height);
        let img = decode(&th.bytes);
        assert_eq!(
            (img.width(), img.height()),
            (th.width, th.height),
            "reported size matches the encoded image"
        );
        assert!(
            th.width <= bw && th.height <= bh,
            "{}x{} in {bw}x{bh}",
            th.width,
            th.height
        );
        if dw <= bw && dh <= bh {
            assert_eq!((th.width, th.height), (dw, dh), "never upscaled");
        } else {
            assert!(th.width == bw || th.height == bh, "touches the box");
            // Aspect ratio within rounding.
            let want = f64::from(dw) / f64::from(dh);
            let lo = f64::from(th.width.saturating_sub(1).max(1)) / f64::from(th.height + 1);
            let hi = f64::from(th.width + 1) / f64::from(th.height.saturating_sub(1).max(1));
            assert!(
                lo <= want && want <= hi,
                "aspect {}x{} vs {dw}x{dh}",
                th.width,
                th.height
            );
        }
    }
}

/// Samples the centre of each displayed quadrant and checks its colour.
fn assert_quadrants(bytes: &[u8], expected: [[u8; 3]; 4], tol: i32) {
    let img = decode(bytes).to_rgb8();
    let (w, h) = (img.width(), img.height());
    let points = [
        (w / 4, h / 4),
        (3 * w / 4, h / 4),
        (w / 4, 3 * h / 4),
        (3 * w / 4, 3 * h / 4),
    ];
    for (i, (x, y)) in points.into_iter().enumerate() {
        let got = img.get_pixel(x, y).0;
        assert!(
            close(got, expected[i], tol),
            "quadrant {i} at ({x},{y}) of {w}x{h}: got {got:?}, want {:?}",
            expected[i]
        );
    }
}

/// The displayed quadrant colours for a stored quadrant image under an EXIF orientation.
fn oriented_quads(orientation: u8) -> [[u8; 3]; 4] {
    // Displayed position (as quadrant column, row) of each stored quadrant.
    let mut out = [[0u8; 3]; 4];
    for (q, colour) in QUADS.iter().enumerate() {
        let (x, y) = (q % 2, q / 2); // stored column/row in {0,1}
        let (dx, dy) = match orientation {
            1 => (x, y),
            2 => (1 - x, y),
            3 => (1 - x, 1 - y),
            4 => (x, 1 - y),
            5 => (y, x),
            6 => (1 - y, x),
            7 => (1 - y, 1 - x),
            8 => (y, 1 - x),
            _ => unreachable!(),
        };
        out[dx + 2 * dy] = *colour;
    }
    out
}

fn expect_err(bytes: &[u8], o: &ThumbOptions, reason: &str) -> EngineError {
    let e = make_thumbnails(bytes, o).expect_err("must fail");
    assert_eq!(e.reason(), reason, "{e}");
    e
}

// ---------------------------------------------------------------- tests

#[test]
fn jpeg_baseline_and_progressive_fit_every_box() {
    let img = quadrants(640, 480);
    for progressive in [false, true] {
        let src = jpeg_rgb(&img, progressive, None);
        let t = make_thumbnails(
            &src,
            &opts(&["64", "100x30", "256", "1000"], OutputFormat::Jpeg),
        )
        .unwrap();
        assert_eq!(t.source.content_type, "image/jpeg");
        assert_fits(&t, 640, 480);
        let dims: Vec<_> = t.thumbnails.iter().map(|t| (t.width, t.height)).collect();
        assert_eq!(dims, [(64, 48), (40, 30), (256, 192), (640, 480)]);
        for th in &t.thumbnails {
            assert_eq!(th.content_type, "image/jpeg");
            assert_quadrants(&th.bytes, QUADS, 40);
        }
    }
}

#[test]
fn jpeg_all_eight_orientations_turn_the_pixels() {
    let img = quadrants(320, 200);
    for o in 1..=8u8 {
        let src = jpeg_rgb(&img, false, Some(u16::from(o)));
        let t = make_thumbnails(&src, &opts(&["64", "150x100"], OutputFormat::Png)).unwrap();
        let (dw, dh) = if o >= 5 { (200, 320) } else { (320, 200) };
        assert_eq!(t.source.orientation, o);
        assert_fits(&t, dw, dh);
        for th in &t.thumbnails {
            assert_quadrants(&th.bytes, oriented_quads(o), 40);
        }
    }
}

#[test]
fn progressive_jpeg_orientation_six() {
    let src = jpeg_rgb(&quadrants(400, 300), true, Some(6));
    let t = make_thumbnails(&src, &opts(&["100"], OutputFormat::Jpeg)).unwrap();
    assert_eq!((t.thumbnails[0].width, t.thumbnails[0].height), (75, 100));
    assert_quadrants(&t.thumbnails[0].bytes, oriented_quads(6), 40);
}

#[test]
fn png_and_webp_orientation_from_exif() {
    let img = quadrants(300, 200);
    for o in [3u8, 6, 8] {
        let png = png_raw(
            300,
            200,
            png::ColorType::Rgb,
            png::BitDepth::Eight,
            img.as_raw(),
            None,
            Some(u16::from(o)),
        );
        let t = make_thumbnails(&png, &opts(&["90"], OutputFormat::Png)).unwrap();
        assert_eq!(t.source.orientation, o, "png");
        assert_quadrants(&t.thumbnails[0].bytes, oriented_quads(o), 2);

        let webp = webp_with_exif(&img, u16::from(o));
        let t = make_thumbnails(&webp, &opts(&["90"], OutputFormat::Png)).unwrap();
        assert_eq!(t.source.content_type, "image/webp");
        assert_eq!(t.source.orientation, o, "webp");
        assert_quadrants(&t.thumbnails[0].bytes, oriented_quads(o), 2);
    }
}

#[test]
fn grayscale_jpeg_and_png() {
    let gray: Vec<u8> = (0..200 * 100)
        .map(|i| if (i % 200) < 100 { 30 } else { 220 })
        .collect();
    let jpg = jpeg_with(
        &gray,
        200,
        100,
        jpeg_encoder::ColorType::Luma,
        JpegOpts {
            progressive: false,
            exif: None,
            quality: 95,
        },
    );
    let png = png_raw(
        200,
        100,
        png::ColorType::Grayscale,
        png::BitDepth::Eight,
        &gray,
        None,
        None,
    );
    for (src, fmt) in [
        (jpg, OutputFormat::Jpeg),
        (png.clone(), OutputFormat::Png),
        (png, OutputFormat::Webp),
    ] {
        let t = make_thumbnails(&src, &opts(&["50"], fmt)).unwrap();
        assert_fits(&t, 200, 100);
        let out = decode(&t.thumbnails[0].bytes).to_luma8();
        assert!(out.get_pixel(5, 12).0[0] < 60, "left dark");
        assert!(out.get_pixel(45, 12).0[0] > 190, "right light");
    }
}

#[test]
fn cmyk_jpeg_converts_to_rgb() {
    // Stored quadrants: cyan, magenta, yellow, black (as ink amounts, 255 = full ink).
    let (w, h) = (160u32, 120u32);
    let inks: [[u8; 4]; 4] = [
        [255, 0, 0, 0],
        [0, 255, 0, 0],
        [0, 0, 255, 0],
        [0, 0, 0, 255],
    ];
    let mut data = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let q = usize::from(x >= w / 2) + 2 * usize::from(y >= h / 2);
            data.extend_from_slice(&inks[q]);
        }
    }
    for ct in [
        jpeg_encoder::ColorType::Cmyk,
        jpeg_encoder::ColorType::CmykAsYcck,
    ] {
        let src = jpeg_with(
            &data,
            w,
            h,
            ct,
            JpegOpts {
                progressive: false,
                exif: None,
                quality: 95,
            },
        );
        let t = make_thumbnails(&src, &opts(&["80"], OutputFormat::Png)).unwrap();
        assert_fits(&t, w, h);
        assert_quadrants(
            &t.thumbnails[0].bytes,
            [[0, 255, 255], [255, 0, 255], [255, 255, 0], [0, 0, 0]],
            30,
        );
    }
}

#[test]
fn png_variants_8_16_bit_palette_alpha() {
    let img = quadrants(240, 160);
    // 8-bit RGB
    let rgb8 = png_raw(
        240,
        160,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        img.as_raw(),
        None,
        None,
    );
    // 16-bit RGB (big-endian samples)
    let rgb16: Vec<u8> = img
        .as_raw()
        .iter()
        .flat_map(|&v| (u16::from(v) * 257).to_be_bytes())
        .collect();
    let rgb16 = png_raw(
        240,
        160,
        png::ColorType::Rgb,
        png::BitDepth::Sixteen,
        &rgb16,
        None,
        None,
    );
    // Palette (4 entries, all opaque)
    let plte: Vec<u8> = QUADS.iter().flatten().copied().collect();
    let idx: Vec<u8> = (0..160u32)
        .flat_map(|y| (0..240u32).map(move |x| (u8::from(x >= 120)) + 2 * u8::from(y >= 80)))
        .collect();
    let pal = png_raw(
        240,
        160,
        png::ColorType::Indexed,
        png::BitDepth::Eight,
        &idx,
        Some((&plte, &[255, 255, 255, 255])),
        None,
    );
    for (name, src) in [("rgb8", rgb8), ("rgb16", rgb16), ("palette", pal)] {
        for fmt in [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp] {
            let t = make_thumbnails(&src, &opts(&["60", "200x20"], fmt)).unwrap();
            assert_eq!(t.source.content_type, "image/png", "{name}");
            assert_fits(&t, 240, 160);
            assert_eq!(t.thumbnails[0].content_type, fmt.content_type());
            let tol = if fmt == OutputFormat::Png { 3 } else { 40 };
            assert_quadrants(&t.thumbnails[0].bytes, QUADS, tol);
        }
    }
}

#[test]
fn gray_alpha_png_streams_through_the_box_shrink() {
    // 240x160 into 60: decoded row by row and averaged 2x2 on the way (never held whole).
    // Left half opaque gray 200, right half fully transparent.
    let ga: Vec<u8> = (0..160u32)
        .flat_map(|_| (0..240u32).flat_map(|x| if x < 120 { [200, 255] } else { [0, 0] }))
        .collect();
    let src = png_raw(
        240,
        160,
        png::ColorType::GrayscaleAlpha,
        png::BitDepth::Eight,
        &ga,
        None,
        None,
    );
    let t = make_thumbnails(&src, &opts(&["60"], OutputFormat::Png)).unwrap();
    assert_fits(&t, 240, 160);
    let out = decode(&t.thumbnails[0].bytes).into_rgba8();
    assert_eq!((out.width(), out.height()), (60, 40));
    assert_eq!(out.get_pixel(5, 20).0, [200, 200, 200, 255]);
    assert_eq!(out.get_pixel(55, 20).0[3], 0);
}

#[test]
fn alpha_is_kept_for_png_webp_and_flattened_on_white_for_jpeg() {
    // Left half opaque red, right half fully transparent (colour behind it is black).
    let img = RgbaImage::from_fn(200, 100, |x, _| {
        if x < 100 {
            Rgba([230, 20, 20, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    let rgba = png_raw(
        200,
        100,
        png::ColorType::Rgba,
        png::BitDepth::Eight,
        img.as_raw(),
        None,
        None,
    );
    let rgba16: Vec<u8> = img
        .as_raw()
        .iter()
        .flat_map(|&v| (u16::from(v) * 257).to_be_bytes())
        .collect();
    let rgba16 = png_raw(
        200,
        100,
        png::ColorType::Rgba,
        png::BitDepth::Sixteen,
        &rgba16,
        None,
        None,
    );
    let pal = png_raw(
        200,
        100,
        png::ColorType::Indexed,
        png::BitDepth::Eight,
        &(0..100)
            .flat_map(|_| (0..200).map(|x| u8::from(x >= 100)))
            .collect::<Vec<u8>>(),
        Some((&[230, 20, 20, 0, 0, 0], &[255, 0])),
        None,
    );
    let webp_src = encode_with_image(DynamicImage::ImageRgba8(img.clone()), ImageFormat::WebP);
    for (name, src) in [
        ("rgba8", rgba),
        ("rgba16", rgba16),
        ("palette+tRNS", pal),
        ("webp", webp_src),
    ] {
        let t = make_thumbnails(&src, &opts(&["50"], OutputFormat::Jpeg)).unwrap();
        let out = decode(&t.thumbnails[0].bytes).to_rgb8();
        assert_eq!((out.width(), out.height()), (50, 25), "{name}");
        assert!(
            close(out.get_pixel(5, 12).0, [230, 20, 20], 40),
            "{name}: red stays red"
        );
        assert!(
            close(out.get_pixel(45, 12).0, [255, 255, 255], 8),
            "{name}: transparent is white, got {:?}",
            out.get_pixel(45, 12)
        );

        for fmt in [OutputFormat::Png, OutputFormat::Webp] {
            let t = make_thumbnails(&src, &opts(&["50"], fmt)).unwrap();
            let out = decode(&t.thumbnails[0].bytes).to_rgba8();
            assert!(
                out.get_pixel(45, 12).0[3] < 10,
                "{name} {fmt}: stays transparent"
            );
            let p = out.get_pixel(5, 12).0;
            assert!(
                p[3] > 245 && close([p[0], p[1], p[2]], [230, 20, 20], 40),
                "{name} {fmt}: {p:?}"
            );
            // No dark fringe at the edge from the black behind the transparent pixels.
            let edge = out.get_pixel(24, 12).0;
            if edge[3] > 64 {
                assert!(
                    edge[0] > 150,
                    "{name} {fmt}: premultiplied resize, edge {edge:?}"
                );
            }
        }
    }
}

#[test]
fn webp_gif_bmp_tiff_inputs() {
    let img = quadrants(300, 180);
    let lossy = webp::Encoder::from_rgb(img.as_raw(), 300, 180)
        .encode(90.0)
        .to_vec();
    let cases = [
        (
            "image/webp",
            encode_with_image(DynamicImage::ImageRgb8(img.clone()), ImageFormat::WebP),
            3,
        ),
        ("image/webp", lossy, 40),
        (
            "image/gif",
            encode_with_image(DynamicImage::ImageRgb8(img.clone()), ImageFormat::Gif),
            30,
        ),
        (
            "image/bmp",
            encode_with_image(DynamicImage::ImageRgb8(img.clone()), ImageFormat::Bmp),
            3,
        ),
        (
            "image/tiff",
            encode_with_image(DynamicImage::ImageRgb8(img.clone()), ImageFormat::Tiff),
            3,
        ),
        (
            "image/tiff",
            encode_with_image(
                DynamicImage::ImageRgba16(DynamicImage::ImageRgb8(img.clone()).into_rgba16()),
                ImageFormat::Tiff,
            ),
            3,
        ),
    ];
    for (ct, src, tol) in cases {
        let t = make_thumbnails(&src, &opts(&["90", "1024", "30x30"], OutputFormat::Png))
            .unwrap_or_else(|e| panic!("{ct}: {e}"));
        assert_eq!(t.source.content_type, ct);
        assert_fits(&t, 300, 180);
        assert_quadrants(&t.thumbnails[0].bytes, QUADS, tol);
        // A large WebP takes the libwebp scaled path: still the right picture.
    }
    let big = quadrants(1600, 1000);
    let src = webp::Encoder::from_rgb(big.as_raw(), 1600, 1000)
        .encode(90.0)
        .to_vec();
    let t = make_thumbnails(&src, &opts(&["100", "400"], OutputFormat::Jpeg)).unwrap();
    assert_fits(&t, 1600, 1000);
    for th in &t.thumbnails {
        assert_quadrants(&th.bytes, QUADS, 40);
    }
}

#[test]
fn animated_gif_gives_its_first_frame() {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame};
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut out);
        let red = RgbaImage::from_pixel(120, 80, Rgba([230, 20, 20, 255]));
        let blue = RgbaImage::from_pixel(120, 80, Rgba([20, 40, 220, 255]));
        let frames = [red, blue.clone(), blue]
            .into_iter()
            .map(|f| Frame::from_parts(f, 0, 0, Delay::from_numer_denom_ms(100, 1)));
        enc.encode_frames(frames).unwrap();
    }
    let t = make_thumbnails(&out, &opts(&["60"], OutputFormat::Jpeg)).unwrap();
    assert_fits(&t, 120, 80);
    let img = decode(&t.thumbnails[0].bytes).to_rgb8();
    assert!(
        close(img.get_pixel(30, 20).0, [230, 20, 20], 40),
        "first frame is red"
    );
}

#[test]
fn outputs_carry_no_metadata() {
    // A JPEG with EXIF (orientation + fake GPS-looking text) gives thumbnails without it.
    let mut src = jpeg_rgb(&quadrants(200, 200), false, Some(1));
    // Insert a COM segment and an XMP-like APP1 after SOI.
    let mut extra = vec![0xFF, 0xFE];
    let text = b"GPSLatitude 48.8584 secret";
    extra.extend_from_slice(&((text.len() + 2) as u16).to_be_bytes());
    extra.extend_from_slice(text);
    src.splice(2..2, extra);
    for fmt in [
        OutputFormat::Jpeg,
        OutputFormat::Png,
        OutputFormat::Webp,
        OutputFormat::Avif,
    ] {
        let t = make_thumbnails(&src, &opts(&["64"], fmt)).unwrap();
        let b = &t.thumbnails[0].bytes;
        for needle in [b"Exif".as_slice(), b"GPS", b"secret", b"eXIf", b"EXIF"] {
            assert!(
                !b.windows(needle.len()).any(|w| w == needle),
                "{fmt}: {needle:?} leaked"
            );
        }
    }
}

#[test]
fn single_decode_many_sizes_in_order() {
    let src = jpeg_rgb(&quadrants(1200, 800), false, None);
    let sizes = ["32", "64", "1024", "320x200", "200x320", "16x16"];
    let t = make_thumbnails(&src, &opts(&sizes, OutputFormat::Webp)).unwrap();
    let names: Vec<String> = t.thumbnails.iter().map(|t| t.spec.to_string()).collect();
    assert_eq!(names, ["32", "64", "1024", "320x200", "200x320", "16"]);
    assert_fits(&t, 1200, 800);
    let dims: Vec<_> = t.thumbnails.iter().map(|t| (t.width, t.height)).collect();
    assert_eq!(
        dims,
        [
            (32, 21),
            (64, 43),
            (1024, 683),
            (300, 200),
            (200, 133),
            (16, 11)
        ]
    );
}

#[test]
fn extreme_aspect_ratios_stay_at_least_one_pixel() {
    let src = encode_with_image(
        DynamicImage::ImageRgb8(RgbImage::from_pixel(3000, 2, Rgb(RED))),
        ImageFormat::Png,
    );
    let t = make_thumbnails(&src, &opts(&["100"], OutputFormat::Jpeg)).unwrap();
    assert_eq!((t.thumbnails[0].width, t.thumbnails[0].height), (100, 1));
}

// ---------------------------------------------------------------- hostile inputs

#[test]
fn zero_bytes_is_empty_object() {
    expect_err(b"", &ThumbOptions::default(), "empty object");
}

#[test]
fn over_max_bytes_is_refused() {
    let src = jpeg_rgb(&quadrants(100, 100), false, None);
    let o = ThumbOptions {
        max_bytes: src.len() as u64 - 1,
        ..ThumbOptions::default()
    };
    expect_err(&src, &o, "too many bytes");
    let o = ThumbOptions {
        max_bytes: src.len() as u64,
        ..ThumbOptions::default()
    };
    assert!(make_thumbnails(&src, &o).is_ok());
}

#[test]
fn truncated_jpeg_is_corrupt() {
    let src = jpeg_rgb(&quadrants(400, 300), false, None);
    for cut in [src.len() / 2, src.len() - 2, 20, 3] {
        expect_err(&src[..cut], &ThumbOptions::default(), "corrupt image");
    }
    let src = jpeg_rgb(&quadrants(400, 300), true, None);
    expect_err(
        &src[..src.len() / 2],
        &ThumbOptions::default(),
        "corrupt image",
    );
}

#[test]
fn stray_bytes_before_a_marker_are_tolerated() {
    // Camera files sometimes carry a few garbage bytes before EOI: libjpeg-turbo warns, the
    // pixels are complete, so this must still make a thumbnail.
    let mut src = jpeg_rgb(&quadrants(320, 240), false, None);
    let eoi = src.len() - 2;
    assert_eq!(&src[eoi..], &[0xFF, 0xD9]);
    src.splice(eoi..eoi, [0x00, 0x12, 0x34, 0x56]);
    let t = make_thumbnails(&src, &opts(&["64"], OutputFormat::Jpeg)).expect("tolerated");
    assert_quadrants(&t.thumbnails[0].bytes, QUADS, 40);
}

#[test]
fn random_bytes_and_text_are_not_images() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let random: Vec<u8> = (0..10_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    expect_err(&random, &ThumbOptions::default(), "not an image");
    expect_err(
        b"Hello, this is a text file.\nNot a picture.\n",
        &ThumbOptions::default(),
        "not an image",
    );
    expect_err(
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        &ThumbOptions::default(),
        "not an image",
    );
    // A HEIC header and nothing else: decoded with libheif, refused as damaged; without it,
    // refused as a format this build does not read.
    expect_err(
        b"\0\0\0\x18ftypheic\0\0\0\0mif1heic",
        &ThumbOptions::default(),
        if cfg!(feature = "heic") {
            "corrupt image"
        } else {
            "unsupported"
        },
    );
    // A JPEG signature followed by garbage.
    let mut fake = vec![0xFF, 0xD8, 0xFF, 0xE0];
    fake.extend_from_slice(&random[..500]);
    expect_err(&fake, &ThumbOptions::default(), "corrupt image");
}

/// A PNG whose IHDR claims `w` x `h` followed by a small (but valid) compressed stream.
fn png_bomb_header(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    png_chunk(&mut out, b"IHDR", &ihdr);
    // A zlib stream of a few KB of zeros is enough to claim it; the decoder must never get here.
    png_chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    png_chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn png_bomb_is_refused_from_the_header() {
    let bomb = png_bomb_header(30_000, 30_000);
    assert!(bomb.len() < 100);
    let e = expect_err(&bomb, &ThumbOptions::default(), "too many pixels");
    assert!(
        matches!(
            e,
            EngineError::TooManyPixels {
                width: 30_000,
                height: 30_000,
                ..
            }
        ),
        "{e:?}"
    );
    // probe() refuses it too, reading only the header.
    assert_eq!(
        probe(&bomb, &ThumbOptions::default()).unwrap_err().reason(),
        "too many pixels"
    );
    // Even with our own pixel limit raised, the decoder limit refuses the allocation.
    let o = ThumbOptions {
        max_pixels: u64::MAX / 16,
        ..ThumbOptions::default()
    };
    let e = make_thumbnails(&bomb, &o).unwrap_err();
    assert!(
        matches!(e.reason(), "too many pixels" | "corrupt image"),
        "{e}"
    );
}

#[test]
fn jpeg_and_webp_headers_over_the_pixel_limit() {
    let src = jpeg_rgb(&quadrants(400, 300), false, None);
    let o = ThumbOptions {
        max_pixels: 400 * 300 - 1,
        ..ThumbOptions::default()
    };
    expect_err(&src, &o, "too many pixels");
    let webp = encode_with_image(
        DynamicImage::ImageRgb8(quadrants(400, 300)),
        ImageFormat::WebP,
    );
    expect_err(&webp, &o, "too many pixels");
    let gif = encode_with_image(
        DynamicImage::ImageRgb8(quadrants(400, 300)),
        ImageFormat::Gif,
    );
    expect_err(&gif, &o, "too many pixels");
}

#[test]
fn huge_and_hostile_exif_is_survived_and_dropped() {
    let img = quadrants(320, 240);
    let mut src = jpeg_rgb(&img, false, None);
    // 100 APP1 segments of 64 KB each (6.4 MB of metadata) with a broken IFD that claims 65535
    // entries and points past the end, inserted after SOI.
    let mut segs = Vec::new();
    for i in 0..100 {
        let mut body = b"Exif\0\0II*\0\x08\0\0\0\xff\xff".to_vec();
        body.resize(65_000, (i % 251) as u8);
        segs.extend_from_slice(&[0xFF, 0xE1]);
        segs.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        segs.extend_from_slice(&body);
    }
    src.splice(2..2, segs);
    assert!(src.len() > 6_000_000);
    let t = make_thumbnails(&src, &opts(&["64"], OutputFormat::Jpeg)).unwrap();
    assert_eq!(t.source.orientation, 1);
    assert!(t.thumbnails[0].bytes.len() < 20_000);
    assert_quadrants(&t.thumbnails[0].bytes, QUADS, 40);
    // A lone oversized APP1 length running past the end of the file: corrupt, no panic.
    let mut bad = vec![0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF];
    bad.extend_from_slice(b"Exif\0\0MM\0*");
    let e = make_thumbnails(&bad, &ThumbOptions::default()).unwrap_err();
    assert_eq!(e.reason(), "corrupt image");
}

#[test]
fn every_truncation_of_every_format_fails_cleanly() {
    let img = quadrants(64, 48);
    let sources = [
        jpeg_rgb(&img, false, Some(6)),
        jpeg_rgb(&img, true, None),
        encode_with_image(DynamicImage::ImageRgb8(img.clone()), ImageFormat::Png),
        encode_with_image(DynamicImage::ImageRgb8(img.clone()), ImageFormat::WebP),
        encode_with_image(DynamicImage::ImageRgb8(img.clone()), ImageFormat::Gif),
        encode_with_image(DynamicImage::ImageRgb8(img.clone()), ImageFormat::Bmp),
        encode_with_image(DynamicImage::ImageRgb8(img.clone()), ImageFormat::Tiff),
    ];
    let o = opts(&["16"], OutputFormat::Jpeg);
    for src in &sources {
        let step = (src.len() / 97).max(1);
        for cut in (0..src.len()).step_by(step) {
            // Must not panic; a result either way is fine for partial data that still parses.
            if let Err(e) = make_thumbnails(&src[..cut], &o) {
                assert!(
                    matches!(
                        e.reason(),
                        "empty object" | "corrupt image" | "not an image" | "unsupported"
                    ),
                    "cut {cut}: {e}"
                );
            }
        }
    }
}

#[test]
fn bad_options_are_reported() {
    let src = jpeg_rgb(&quadrants(100, 100), false, None);
    let o = ThumbOptions {
        quality: 0,
        ..ThumbOptions::default()
    };
    expect_err(&src, &o, "bad options");
    let o = ThumbOptions {
        sizes: vec![],
        ..ThumbOptions::default()
    };
    expect_err(&src, &o, "bad options");
    let o = ThumbOptions {
        sizes: vec![ThumbSpec {
            width: 0,
            height: 5,
            crop: lambda_image::engine::Crop::Fit,
        }],
        ..ThumbOptions::default()
    };
    expect_err(&src, &o, "bad options");
}

// ---------------------------------------------------------------- placeholders

/// Decodes a placeholder with ThumbHash's own decoder: its size and the colour at a point.
fn decode_placeholder(p: &str) -> (usize, usize, Vec<u8>) {
    use base64::Engine as _;
    let hash = base64::engine::general_purpose::STANDARD
        .decode(p)
        .expect("base64");
    assert!(hash.len() <= 30, "{} bytes", hash.len());
    thumbhash::thumb_hash_to_rgba(&hash).expect("a ThumbHash")
}

fn near(got: &[u8], want: [u8; 3], tolerance: i32) -> bool {
    got.iter()
        .zip(want)
        .all(|(&g, w)| (i32::from(g) - i32::from(w)).abs() <= tolerance)
}

/// The placeholder is the image as displayed: its quadrants' colours where they are after
/// the EXIF orientation, and its aspect ratio (ThumbHash keeps it).
#[test]
fn placeholders_show_the_displayed_image() {
    let img = quadrants(320, 200);
    for o in [1u8, 6] {
        let src = jpeg_rgb(&img, false, Some(u16::from(o)));
        let t = make_thumbnails(&src, &opts(&["64"], OutputFormat::Jpeg)).unwrap();
        let (w, h, rgba) = decode_placeholder(&t.placeholder);
        let (dw, dh) = if o >= 5 {
            (200.0, 320.0)
        } else {
            (320.0, 200.0)
        };
        let ratio = w as f64 / h as f64;
        assert!(
            (ratio - dw / dh).abs() < 0.25,
            "orientation {o}: {w}x{h} for {dw}x{dh}"
        );
        let at = |fx: f64, fy: f64| {
            let (x, y) = ((fx * w as f64) as usize, (fy * h as f64) as usize);
            rgba[(y * w + x) * 4..(y * w + x) * 4 + 3].to_vec()
        };
        let quads = oriented_quads(o);
        // A blur: colours pull toward each other, so the check is loose but still tells
        // red from green from blue from yellow.
        for (q, (fx, fy)) in [(0.15, 0.15), (0.85, 0.15), (0.15, 0.85), (0.85, 0.85)]
            .into_iter()
            .enumerate()
        {
            let got = at(fx, fy);
            assert!(
                near(&got, quads[q], 90),
                "orientation {o}, quadrant {q}: {got:?} is not near {:?}",
                quads[q]
            );
        }
    }
}

#[test]
fn placeholders_keep_transparency() {
    let img = RgbaImage::from_fn(120, 80, |x, _| {
        if x < 60 {
            Rgba([20, 40, 220, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    let src = encode_with_image(DynamicImage::ImageRgba8(img), ImageFormat::Png);
    let t = make_thumbnails(&src, &opts(&["64"], OutputFormat::Jpeg)).unwrap();
    let (w, h, rgba) = decode_placeholder(&t.placeholder);
    let alpha = |fx: f64| rgba[((h / 2) * w + (fx * w as f64) as usize) * 4 + 3];
    assert!(alpha(0.1) > 200, "the opaque half: {}", alpha(0.1));
    assert!(alpha(0.9) < 60, "the transparent half: {}", alpha(0.9));
}

// ---------------------------------------------------------------- animations

fn animated_gif(colours: &[[u8; 3]], w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
        for c in colours {
            let frame = RgbaImage::from_pixel(w, h, Rgba([c[0], c[1], c[2], 255]));
            enc.encode_frame(image::Frame::new(frame)).unwrap();
        }
    }
    out
}

fn animated_png(colours: &[[u8; 3]], w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_animated(colours.len() as u32, 0).unwrap();
        let mut writer = enc.write_header().unwrap();
        for c in colours {
            let data: Vec<u8> = (0..w * h).flat_map(|_| *c).collect();
            writer.write_image_data(&data).unwrap();
        }
        writer.finish().unwrap();
    }
    out
}

/// An animation's thumbnails are its first frame, and the frames are counted (a still image
/// counts 1); the first frame is what a viewer sees before the animation starts.
#[test]
fn animations_give_their_first_frame_and_their_frame_count() {
    let gif = animated_gif(&[RED, GREEN, BLUE], 64, 48);
    let t = make_thumbnails(&gif, &opts(&["32"], OutputFormat::Png)).unwrap();
    assert_eq!(t.source.frames, 3);
    let first = image::load_from_memory(&t.thumbnails[0].bytes)
        .unwrap()
        .to_rgb8();
    let p = first.get_pixel(first.width() / 2, first.height() / 2).0;
    assert!(
        p[0] > 180 && p[1] < 80 && p[2] < 80,
        "not the red first frame: {p:?}"
    );

    let apng = animated_png(&[GREEN, BLUE], 40, 30);
    let t = make_thumbnails(&apng, &opts(&["16"], OutputFormat::Png)).unwrap();
    assert_eq!(t.source.frames, 2);

    let still = animated_gif(&[BLUE], 20, 20);
    assert_eq!(
        probe(&still, &opts(&["16"], OutputFormat::Png))
            .unwrap()
            .frames,
        1
    );
    let still_png = encode_with_image(DynamicImage::ImageRgb8(quadrants(20, 20)), ImageFormat::Png);
    assert_eq!(
        probe(&still_png, &opts(&["16"], OutputFormat::Png))
            .unwrap()
            .frames,
        1
    );
}

// ---------------------------------------------------------------- exact-size crops

/// `WxH!`: exactly the box, from the centre of the image scaled to cover it, as displayed
/// (after the EXIF orientation); never upscaled.
#[test]
fn centre_crops_are_exactly_the_box_from_the_middle() {
    let t = make_thumbnails(
        &jpeg_rgb(&quadrants(400, 200), false, None),
        &opts(&["100x100!", "80x40!"], OutputFormat::Png),
    )
    .unwrap();
    assert_eq!((t.thumbnails[0].width, t.thumbnails[0].height), (100, 100));
    assert_eq!((t.thumbnails[1].width, t.thumbnails[1].height), (80, 40));
    // The middle of a 2:1 image cut square: the quadrant boundary stays in the middle.
    assert_quadrants(&t.thumbnails[0].bytes, QUADS, 40);
    let img = decode(&t.thumbnails[0].bytes).to_rgb8();
    assert_eq!((img.width(), img.height()), (100, 100));

    for o in [6u8, 8] {
        let t = make_thumbnails(
            &jpeg_rgb(&quadrants(320, 200), false, Some(u16::from(o))),
            &opts(&["100!"], OutputFormat::Png),
        )
        .unwrap();
        assert_eq!((t.thumbnails[0].width, t.thumbnails[0].height), (100, 100));
        assert_quadrants(&t.thumbnails[0].bytes, oriented_quads(o), 40);
    }

    // Smaller than the box on one side: that side stays, the other is cut.
    let t = make_thumbnails(
        &jpeg_rgb(&quadrants(60, 300), false, None),
        &opts(&["100x100!"], OutputFormat::Png),
    )
    .unwrap();
    assert_eq!((t.thumbnails[0].width, t.thumbnails[0].height), (60, 100));
}

/// Mean of max minus min channel: 0 for grey.
fn saturation(bytes: &[u8]) -> f64 {
    let img = decode(bytes).to_rgb8();
    let sum: f64 = img
        .pixels()
        .map(|p| {
            let [r, g, b] = p.0;
            f64::from(r.max(g).max(b) - r.min(g).min(b))
        })
        .sum();
    sum / f64::from(img.width() * img.height())
}

fn variance(bytes: &[u8]) -> f64 {
    let img = decode(bytes).to_luma8();
    let v: Vec<f64> = img.pixels().map(|p| f64::from(p.0[0])).collect();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64
}

/// `WxH!attention` keeps the busy part: a flat grey banner with a detailed, colourful patch
/// near one end gives that patch, where a centre crop gives flat grey.
#[test]
fn attention_crops_keep_the_busiest_region() {
    let img = RgbImage::from_fn(600, 150, |x, y| {
        if (420..570).contains(&x) {
            let on = ((x / 6) + (y / 6)) % 2 == 0;
            if on {
                Rgb([230, 40, 40])
            } else {
                Rgb([20, 40, 220])
            }
        } else {
            Rgb([128, 128, 128])
        }
    });
    let src = encode_with_image(DynamicImage::ImageRgb8(img), ImageFormat::Png);
    let t = make_thumbnails(&src, &opts(&["100!attention", "100!"], OutputFormat::Png)).unwrap();
    let (attention, centre) = (&t.thumbnails[0], &t.thumbnails[1]);
    assert_eq!((attention.width, attention.height), (100, 100));
    assert!(variance(&centre.bytes) < 5.0, "the centre is flat grey");
    // Nearly all of the window is the patch: strongly coloured, and varying.
    assert!(
        saturation(&attention.bytes) > 120.0 && variance(&attention.bytes) > 100.0,
        "the attention crop missed the detail: saturation {}, variance {}",
        saturation(&attention.bytes),
        variance(&attention.bytes)
    );
    // Detail in the middle: attention and centre agree, to the byte.
    let img = RgbImage::from_fn(600, 150, |x, y| {
        if (225..375).contains(&x) && ((x / 6) + (y / 6)) % 2 == 0 {
            Rgb([230, 40, 40])
        } else {
            Rgb([128, 128, 128])
        }
    });
    let src = encode_with_image(DynamicImage::ImageRgb8(img), ImageFormat::Png);
    let t = make_thumbnails(&src, &opts(&["100!attention", "100!"], OutputFormat::Png)).unwrap();
    assert_eq!(t.thumbnails[0].bytes, t.thumbnails[1].bytes);
}

// ---------------------------------------------------------------- keep_copyright

/// An EXIF block a camera might write: orientation 6, Artist, Copyright (with the
/// photographer/editor NUL), and a GPS IFD with a latitude.
fn camera_exif() -> Vec<u8> {
    let artist = b"Ann Example\0";
    let copyright = "\u{a9} 2026 Ann Example\0Ed Itor\0".as_bytes();
    let entries = 4u16;
    let ifd0_len = 2 + 12 * usize::from(entries) + 4;
    let artist_at = 8 + ifd0_len;
    let copyright_at = artist_at + artist.len();
    let gps_at = copyright_at + copyright.len();
    let mut t = b"II*\0\x08\0\0\0".to_vec();
    t.extend_from_slice(&entries.to_le_bytes());
    let mut entry = |tag: u16, typ: u16, count: u32, value: u32| {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&typ.to_le_bytes());
        t.extend_from_slice(&count.to_le_bytes());
        t.extend_from_slice(&value.to_le_bytes());
    };
    entry(0x0112, 3, 1, 6);
    entry(0x013B, 2, artist.len() as u32, artist_at as u32);
    entry(0x8298, 2, copyright.len() as u32, copyright_at as u32);
    entry(0x8825, 4, 1, gps_at as u32);
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(artist);
    t.extend_from_slice(copyright);
    // GPS IFD: GPSLatitudeRef = "N".
    t.extend_from_slice(&1u16.to_le_bytes());
    t.extend_from_slice(&[0x01, 0x00, 0x02, 0x00, 0x02, 0, 0, 0, b'N', 0, 0, 0]);
    t.extend_from_slice(&0u32.to_le_bytes());
    t
}

fn exif_of(bytes: &[u8]) -> Option<exif::Exif> {
    exif::Reader::new()
        .read_from_container(&mut Cursor::new(bytes))
        .ok()
}

#[test]
fn keep_copyright_carries_artist_and_copyright_and_nothing_else() {
    let img = quadrants(160, 120);
    let mut src = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut src, 90);
    enc.add_exif_metadata(&camera_exif()).unwrap();
    enc.encode(img.as_raw(), 160, 120, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    // The source really holds what must not leak.
    let original = exif_of(&src).expect("source EXIF");
    assert!(
        original
            .get_field(exif::Tag::GPSLatitudeRef, exif::In::PRIMARY)
            .is_some()
    );

    for format in [
        OutputFormat::Jpeg,
        OutputFormat::Png,
        OutputFormat::Webp,
        OutputFormat::Avif,
    ] {
        let mut o = opts(&["64", "40x40!"], format);
        // Off by default: no metadata at all.
        for t in make_thumbnails(&src, &o).unwrap().thumbnails {
            assert!(
                exif_of(&t.bytes).is_none(),
                "{format:?}: EXIF without the option"
            );
        }
        o.keep_copyright = true;
        for t in make_thumbnails(&src, &o).unwrap().thumbnails {
            let e = exif_of(&t.bytes).unwrap_or_else(|| panic!("{format:?} {}: no EXIF", t.spec));
            let text = |tag| {
                e.get_field(tag, exif::In::PRIMARY).map(|f| match &f.value {
                    exif::Value::Ascii(v) => v
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<Vec<_>>(),
                    other => panic!("{tag}: {other:?}"),
                })
            };
            assert_eq!(
                text(exif::Tag::Artist),
                Some(vec!["Ann Example".to_string()])
            );
            assert_eq!(
                text(exif::Tag::Copyright),
                Some(vec![
                    "\u{a9} 2026 Ann Example".to_string(),
                    "Ed Itor".to_string()
                ])
            );
            // Nothing else: no GPS, and no orientation (the pixels are already turned).
            let tags: Vec<exif::Tag> = e.fields().map(|f| f.tag).collect();
            assert_eq!(
                tags,
                vec![exif::Tag::Artist, exif::Tag::Copyright],
                "{format:?}"
            );
            // Still a valid image of the displayed (portrait) shape.
            let dims = if format == OutputFormat::Avif {
                decode_avif(&t.bytes).dimensions()
            } else {
                image::load_from_memory(&t.bytes)
                    .unwrap_or_else(|e| panic!("{format:?} {}: {e}", t.spec))
                    .into_rgba8()
                    .dimensions()
            };
            assert_eq!(dims, (t.width, t.height));
            assert!(
                t.height >= t.width,
                "{format:?}: orientation 6 gives portrait"
            );
        }
    }
}

#[test]
fn keep_copyright_without_attribution_writes_no_exif() {
    let src = jpeg_rgb(&quadrants(64, 48), false, Some(6));
    let mut o = opts(&["32"], OutputFormat::Png);
    o.keep_copyright = true;
    let t = make_thumbnails(&src, &o).unwrap();
    assert!(exif_of(&t.thumbnails[0].bytes).is_none());
}

// ---------------------------------------------------------------- AVIF output

/// Decodes an AVIF thumbnail with libaom (not the rav1e that made it), as 8-bit RGBA.
fn decode_avif(bytes: &[u8]) -> RgbaImage {
    avif_support::decode_avif_rgba(bytes).expect("AVIF thumbnail decodes")
}

fn rgb_at(img: &RgbaImage, x: u32, y: u32) -> [u8; 3] {
    let p = img.get_pixel(x, y).0;
    [p[0], p[1], p[2]]
}

#[test]
fn avif_output_has_the_size_and_the_turned_pixels() {
    // Stored landscape with EXIF orientation 6: displayed portrait, quadrants turned.
    let src = jpeg_rgb(&quadrants(400, 300), false, Some(6));
    let t = make_thumbnails(&src, &opts(&["128", "64x64!"], OutputFormat::Avif)).unwrap();
    assert_eq!((t.source.width, t.source.height), (300, 400));
    let want = oriented_quads(6);
    for (th, dims) in t.thumbnails.iter().zip([(96, 128), (64, 64)]) {
        assert_eq!(th.content_type, "image/avif");
        assert_eq!((th.width, th.height), dims, "{}", th.spec);
        // An ISO-BMFF file whose major brand is AVIF, as browsers sniff it.
        assert_eq!(&th.bytes[4..12], b"ftypavif", "{}", th.spec);
        let img = decode_avif(&th.bytes);
        assert_eq!(
            (img.width(), img.height()),
            dims,
            "{}: decoded size",
            th.spec
        );
        let (w, h) = dims;
        let points = [
            (w / 4, h / 4),
            (3 * w / 4, h / 4),
            (w / 4, 3 * h / 4),
            (3 * w / 4, 3 * h / 4),
        ];
        for (i, (x, y)) in points.into_iter().enumerate() {
            let got = rgb_at(&img, x, y);
            assert!(
                close(got, want[i], 30),
                "{}: quadrant {i} at ({x},{y}): got {got:?}, want {:?}",
                th.spec,
                want[i]
            );
            assert_eq!(
                img.get_pixel(x, y).0[3],
                255,
                "opaque source, opaque thumbnail"
            );
        }
    }
}

#[test]
fn avif_keeps_alpha_and_takes_gray() {
    // Left half opaque red, right half transparent over black: alpha and straight colour survive.
    let img = RgbaImage::from_fn(200, 100, |x, _| {
        if x < 100 {
            Rgba([230, 20, 20, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    let src = encode_with_image(DynamicImage::ImageRgba8(img), ImageFormat::Png);
    let t = make_thumbnails(&src, &opts(&["50"], OutputFormat::Avif)).unwrap();
    let out = decode_avif(&t.thumbnails[0].bytes);
    assert_eq!((out.width(), out.height()), (50, 25));
    assert!(
        out.get_pixel(45, 12).0[3] < 10,
        "stays transparent: {:?}",
        out.get_pixel(45, 12)
    );
    let p = out.get_pixel(5, 12).0;
    assert!(
        p[3] > 245 && close([p[0], p[1], p[2]], [230, 20, 20], 30),
        "red: {p:?}"
    );
    let edge = out.get_pixel(24, 12).0;
    if edge[3] > 64 {
        assert!(edge[0] > 150, "no dark fringe at the edge: {edge:?}");
    }

    // Gray input (expanded to RGB for the encoder) comes back gray, at its level.
    let gray =
        image::GrayImage::from_fn(120, 80, |x, _| image::Luma([if x < 60 { 40 } else { 200 }]));
    let src = encode_with_image(DynamicImage::ImageLuma8(gray), ImageFormat::Png);
    let t = make_thumbnails(&src, &opts(&["60"], OutputFormat::Avif)).unwrap();
    let out = decode_avif(&t.thumbnails[0].bytes);
    assert_eq!((out.width(), out.height()), (60, 40));
    for (x, level) in [(10, 40), (50, 200)] {
        let got = rgb_at(&out, x, 20);
        assert!(close(got, [level; 3], 12), "gray {level} at x={x}: {got:?}");
    }
}

#[test]
fn avif_quality_trades_bytes_for_fidelity() {
    // Detail that a low quality must smooth away: the higher quality costs more bytes and
    // comes back closer to the source.
    let img = RgbImage::from_fn(96, 96, |x, y| {
        let v = ((x * 37 + y * 91) ^ (x * y)) as u8;
        Rgb([v, v.wrapping_mul(3), 255 - v])
    });
    let src = encode_with_image(DynamicImage::ImageRgb8(img.clone()), ImageFormat::Png);
    let err = |q: u8| {
        let o = ThumbOptions {
            quality: q,
            ..opts(&["96"], OutputFormat::Avif)
        };
        let t = make_thumbnails(&src, &o).unwrap();
        let out = decode_avif(&t.thumbnails[0].bytes);
        let sad: u64 = out
            .pixels()
            .zip(img.pixels())
            .map(|(a, b)| {
                (0..3)
                    .map(|c| u64::from(a.0[c].abs_diff(b.0[c])))
                    .sum::<u64>()
            })
            .sum();
        (t.thumbnails[0].bytes.len(), sad)
    };
    let (low_bytes, low_err) = err(20);
    let (high_bytes, high_err) = err(95);
    assert!(
        high_bytes > low_bytes,
        "bytes: q95 {high_bytes} vs q20 {low_bytes}"
    );
    assert!(high_err < low_err, "error: q95 {high_err} vs q20 {low_err}");
}

#[test]
fn avif_takes_one_pixel_sides_and_odd_sizes() {
    // AV1 codes 8x8 blocks at least: rav1e pads, and the file states the real size.
    for (w, h, boxes) in [
        (3000, 2, "100"),
        (1, 1, "16"),
        (2, 900, "300"),
        (17, 33, "17x33"),
    ] {
        let src = encode_with_image(
            DynamicImage::ImageRgba8(RgbaImage::from_pixel(w, h, Rgba([20, 40, 220, 128]))),
            ImageFormat::Png,
        );
        let t = make_thumbnails(&src, &opts(&[boxes], OutputFormat::Avif)).unwrap();
        let th = &t.thumbnails[0];
        let img = decode_avif(&th.bytes);
        assert_eq!(
            (img.width(), img.height()),
            (th.width, th.height),
            "{w}x{h}"
        );
        let p = img.get_pixel(0, 0).0;
        assert!(
            close([p[0], p[1], p[2]], [20, 40, 220], 30) && p[3].abs_diff(128) <= 12,
            "{w}x{h}: {p:?}"
        );
    }
}

// ---------------------------------------------------------------- HEIC (libheif + libde265)

/// Without libheif (a musl build without the `heic` feature), a HEIC is refused, not misread.
#[cfg(not(feature = "heic"))]
#[test]
fn heic_is_unsupported_without_libheif() {
    let path = format!("{}/tests/data/quad.heic", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read(path).unwrap();
    let e = make_thumbnails(&src, &ThumbOptions::default()).unwrap_err();
    assert_eq!(e, EngineError::Unsupported("image/heic".into()));
}

#[cfg(feature = "heic")]
mod heic {
    use super::*;

    /// Fixtures written by scripts/make-heic-fixtures.py (Pillow + pillow-heif, x265 encoder).
    fn heic_fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    const H_RED: [u8; 3] = [255, 0, 0];
    const H_GREEN: [u8; 3] = [0, 255, 0];
    const H_BLUE: [u8; 3] = [0, 0, 255];
    const H_WHITE: [u8; 3] = [255, 255, 255];

    #[test]
    fn heic_decodes_to_its_pixels_in_every_output_format() {
        let src = heic_fixture("quad.heic");
        let info = probe(&src, &ThumbOptions::default()).unwrap();
        assert_eq!(info.content_type, "image/heic");
        assert_eq!((info.width, info.height, info.orientation), (64, 48, 1));
        for format in [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp] {
            let t = make_thumbnails(&src, &opts(&["32", "200"], format)).unwrap();
            assert_fits(&t, 64, 48);
            assert_eq!((t.thumbnails[0].width, t.thumbnails[0].height), (32, 24));
            for th in &t.thumbnails {
                assert_quadrants(&th.bytes, [H_RED, H_GREEN, H_BLUE, H_WHITE], 40);
            }
        }
    }

    #[test]
    fn heic_transforms_are_applied_exactly_once() {
        // The same coded 64x48 image as quad.heic, with an `irot` (90 degrees anticlockwise) or an
        // `imir` (axis 0) property. The expected layouts are what libheif's own decoder gives for
        // these files (pillow-heif's independent build, printed by the fixture script); for irot
        // it is also the specification's anticlockwise turn. For imir it is a top-to-bottom
        // mirror: HEIF's first edition called the bit `axis` ("a vertical (0) or horizontal (1)
        // axis"), which readers took both ways; its Amendment 2 renamed it `mode` and defined 0
        // as the top-to-bottom mirror that libheif and iPhones had implemented, and libavif
        // followed. Were the engine to apply the orientation a second time, the quadrants would
        // move again.
        let t = make_thumbnails(
            &heic_fixture("quad_irot90.heic"),
            &opts(&["24x32"], OutputFormat::Png),
        )
        .unwrap();
        assert_eq!(
            (t.source.width, t.source.height, t.source.orientation),
            (48, 64, 1)
        );
        assert_eq!((t.thumbnails[0].width, t.thumbnails[0].height), (24, 32));
        assert_quadrants(
            &t.thumbnails[0].bytes,
            [H_GREEN, H_WHITE, H_RED, H_BLUE],
            40,
        );

        let t = make_thumbnails(
            &heic_fixture("quad_imir0.heic"),
            &opts(&["32"], OutputFormat::Png),
        )
        .unwrap();
        assert_eq!(
            (t.source.width, t.source.height, t.source.orientation),
            (64, 48, 1)
        );
        assert_quadrants(
            &t.thumbnails[0].bytes,
            [H_BLUE, H_WHITE, H_RED, H_GREEN],
            40,
        );
    }

    #[test]
    fn heic_alpha_is_kept() {
        let t = make_thumbnails(
            &heic_fixture("alpha.heic"),
            &opts(&["32"], OutputFormat::Png),
        )
        .unwrap();
        let img = decode(&t.thumbnails[0].bytes).to_rgba8();
        assert_eq!(img.dimensions(), (32, 32));
        let left = img.get_pixel(4, 16).0;
        let right = img.get_pixel(28, 16).0;
        assert!(
            close([left[0], left[1], left[2]], H_RED, 40) && left[3] > 245,
            "{left:?}"
        );
        assert_eq!(right[3], 0, "{right:?}");
    }

    /// quad.heic with its `ispe` (the declared image size) set to `w` x `h`.
    fn heic_declaring(w: u32, h: u32) -> Vec<u8> {
        let mut src = heic_fixture("quad.heic");
        let at = src
            .windows(4)
            .position(|b| b == b"ispe")
            .expect("quad.heic has an ispe box");
        src[at + 8..at + 12].copy_from_slice(&w.to_be_bytes());
        src[at + 12..at + 16].copy_from_slice(&h.to_be_bytes());
        src
    }

    #[test]
    fn heic_bomb_is_refused_from_the_header() {
        let bomb = heic_declaring(20_000, 20_000);
        let e = expect_err(&bomb, &ThumbOptions::default(), "too many pixels");
        assert!(
            matches!(
                e,
                EngineError::TooManyPixels {
                    width: 20_000,
                    height: 20_000,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            probe(&bomb, &ThumbOptions::default()).unwrap_err().reason(),
            "too many pixels"
        );
        // With our own limit raised, the declared size still disagrees with the coded stream:
        // refused, never a 20000x20000 image.
        let o = ThumbOptions {
            max_pixels: 1 << 40,
            ..ThumbOptions::default()
        };
        let e = make_thumbnails(&bomb, &o).unwrap_err();
        assert!(
            matches!(e.reason(), "too many pixels" | "corrupt image"),
            "{e}"
        );
        // Just over a small limit, by one pixel.
        let o = ThumbOptions {
            max_pixels: 64 * 48 - 1,
            ..ThumbOptions::default()
        };
        expect_err(&heic_fixture("quad.heic"), &o, "too many pixels");
    }

    #[test]
    fn every_truncation_and_corruption_of_a_heic_fails_cleanly() {
        let o = opts(&["16"], OutputFormat::Jpeg);
        for name in ["quad.heic", "quad_irot90.heic", "alpha.heic"] {
            let src = heic_fixture(name);
            for cut in 0..src.len() {
                if let Err(e) = make_thumbnails(&src[..cut], &o) {
                    assert!(
                        matches!(
                            e.reason(),
                            "empty object" | "corrupt image" | "not an image" | "unsupported"
                        ),
                        "{name} cut {cut}: {e}"
                    );
                }
            }
            // Bytes flipped (every fifth, to keep the debug build's run short): any outcome but
            // a panic or a limit breach.
            for at in (0..src.len()).step_by(5) {
                let mut bad = src.clone();
                bad[at] ^= 0xFF;
                if let Ok(t) = make_thumbnails(&bad, &o) {
                    assert!(t.source.width <= 1 << 16 && t.source.height <= 1 << 16);
                }
            }
        }
        // A zero-sized image and an AVIF (no AV1 decoder) are refused, not decoded.
        let e = make_thumbnails(&heic_declaring(0, 48), &o).unwrap_err();
        assert!(matches!(e.reason(), "corrupt image" | "unsupported"), "{e}");
        let mut avif = heic_fixture("quad.heic");
        avif[8..12].copy_from_slice(b"avif");
        assert_eq!(
            make_thumbnails(&avif, &o).unwrap_err().reason(),
            "unsupported"
        );
    }
}
