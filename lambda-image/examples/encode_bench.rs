//! The encoders alone, for `scripts/avif_bench.py` (which searches the qualities and measures
//! SSIM). Two commands, each printing one JSON line:
//!
//! `encode_bench ref --file IMG --size S --out REF.png`
//!   the engine's thumbnail of IMG fitted into SxS, written losslessly (PNG): the pixels every
//!   format then encodes, and what its output is compared with.
//!
//! `encode_bench encode --ref REF.png --format jpeg|webp|avif --quality Q --reps N
//!                      --out FILE --decoded DEC.png [--speed 1..10]`
//!   encodes REF's pixels as the engine does (`encode_pixels`) once untimed, then N times timed
//!   on this thread; writes the file, and its pixels decoded again (libaom for AVIF, the `image`
//!   crate for JPEG and WebP) as RGBA PNG. `--speed` encodes AVIF with that rav1e preset instead
//!   of the engine's, all other settings the same (for choosing the preset).
//!
//! Run the release build: `cargo build --release -p lambda-image --example encode_bench`.

#[path = "../tests/common/avif.rs"]
mod avif_support;

use std::time::Instant;

use lambda_image::engine::{
    AVIF_SPEED, OutputFormat, ThumbOptions, ThumbSpec, encode_pixels, make_thumbnails,
};

fn main() {
    if let Err(e) = run() {
        eprintln!("encode_bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let command = args.next().ok_or("expected `ref` or `encode`")?;
    let mut flags = std::collections::HashMap::new();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        flags.insert(flag, value);
    }
    let get = |name: &str| {
        flags
            .get(name)
            .cloned()
            .ok_or_else(|| format!("missing {name}"))
    };
    match command.as_str() {
        "ref" => {
            let bytes = std::fs::read(get("--file")?).map_err(|e| e.to_string())?;
            let size: u32 = get("--size")?.parse().map_err(|e| format!("--size: {e}"))?;
            let opts = ThumbOptions {
                sizes: vec![ThumbSpec::square(size)],
                format: OutputFormat::Png,
                ..ThumbOptions::default()
            };
            let t = make_thumbnails(&bytes, &opts).map_err(|e| e.to_string())?;
            let th = &t.thumbnails[0];
            std::fs::write(get("--out")?, &th.bytes).map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::json!({"width": th.width, "height": th.height})
            );
            Ok(())
        }
        "encode" => encode(&get),
        other => Err(format!("unknown command {other}")),
    }
}

fn encode(get: &dyn Fn(&str) -> Result<String, String>) -> Result<(), String> {
    let reference = image::open(get("--ref")?).map_err(|e| e.to_string())?;
    let (w, h) = (reference.width(), reference.height());
    let (channels, data) = match reference {
        image::DynamicImage::ImageLuma8(g) => (1, g.into_raw()),
        image::DynamicImage::ImageRgb8(c) => (3, c.into_raw()),
        other => (4, other.to_rgba8().into_raw()),
    };
    let format: OutputFormat = get("--format")?.parse().map_err(|e| format!("{e}"))?;
    let quality: u8 = get("--quality")?
        .parse()
        .map_err(|e| format!("--quality: {e}"))?;
    let reps: usize = get("--reps")?.parse().map_err(|e| format!("--reps: {e}"))?;
    let speed: Option<u8> = match get("--speed") {
        Ok(s) => Some(s.parse().map_err(|e| format!("--speed: {e}"))?),
        Err(_) => None,
    };
    let once = || -> Result<Vec<u8>, String> {
        match (format, speed) {
            (OutputFormat::Avif, Some(s)) => avif_at_speed(w, h, channels, &data, quality, s),
            (_, Some(_)) => Err("--speed is for avif only".into()),
            _ => encode_pixels(w, h, channels, data.clone(), format, quality)
                .map_err(|e| e.to_string()),
        }
    };
    let out = once()?;
    let mut ms = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = Instant::now();
        let again = once()?;
        ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        if again != out {
            return Err("the encoder is not deterministic".into());
        }
    }
    ms.sort_by(f64::total_cmp);
    let median = if ms.is_empty() { 0.0 } else { ms[ms.len() / 2] };
    std::fs::write(get("--out")?, &out).map_err(|e| e.to_string())?;
    let decoded = decode(&out, format)?;
    if (decoded.width(), decoded.height()) != (w, h) {
        return Err(format!(
            "decoded {}x{}, encoded {w}x{h}",
            decoded.width(),
            decoded.height()
        ));
    }
    decoded.save(get("--decoded")?).map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::json!({
            "format": format.to_string(), "quality": quality,
            "speed": if format == OutputFormat::Avif { Some(speed.unwrap_or(AVIF_SPEED)) } else { None },
            "bytes": out.len(), "median_ms": median, "min_ms": ms.first(), "reps": reps,
            // The encoders must not have started threads of their own (rayon, libwebp's).
            "threads": threads(),
        })
    );
    Ok(())
}

/// The engine's AVIF settings (`encode_avif`) with another rav1e speed preset.
fn avif_at_speed(
    w: u32,
    h: u32,
    channels: usize,
    data: &[u8],
    quality: u8,
    speed: u8,
) -> Result<Vec<u8>, String> {
    use ravif::{Encoder, Img, RGB8, RGBA8};
    let encoder = Encoder::new()
        .with_quality(f32::from(quality))
        .with_alpha_quality(f32::from(quality))
        .with_speed(speed)
        .with_num_threads(Some(1));
    let (w, h) = (w as usize, h as usize);
    let encoded = match channels {
        4 => {
            let px: Vec<RGBA8> = data
                .chunks_exact(4)
                .map(|c| RGBA8::new(c[0], c[1], c[2], c[3]))
                .collect();
            encoder.encode_rgba(Img::new(px.as_slice(), w, h))
        }
        3 => {
            let px: Vec<RGB8> = data
                .chunks_exact(3)
                .map(|c| RGB8::new(c[0], c[1], c[2]))
                .collect();
            encoder.encode_rgb(Img::new(px.as_slice(), w, h))
        }
        _ => {
            let px: Vec<RGB8> = data.iter().map(|&g| RGB8::new(g, g, g)).collect();
            encoder.encode_rgb(Img::new(px.as_slice(), w, h))
        }
    };
    encoded.map(|e| e.avif_file).map_err(|e| e.to_string())
}

fn decode(bytes: &[u8], format: OutputFormat) -> Result<image::RgbaImage, String> {
    if format != OutputFormat::Avif {
        return image::load_from_memory(bytes)
            .map(|i| i.to_rgba8())
            .map_err(|e| e.to_string());
    }
    avif_support::decode_avif_rgba(bytes)
}

/// Threads of this process now (Linux), or null elsewhere.
fn threads() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}
