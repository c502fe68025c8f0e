//! Colour management against an independent reference: LittleCMS, through Pillow's ImageCms.
//!
//! `colour_reference.py` tags a photo-like image with Display P3 (PNG and WebP), Adobe RGB
//! (JPEG) and a CMYK profile (Adobe-inverted CMYK JPEG) and writes LittleCMS's sRGB
//! conversion of each. The engine's thumbnail at full size must be within a mean CIEDE2000
//! of 1 of it (about the smallest difference a person can see side by side). The same
//! pixels with the profile ignored must be far from it, or the case would prove nothing.
//!
//! Needs the repository's `.venv` with Pillow (scripts/moto.sh installs it) and Debian's
//! libgs-common for the Adobe RGB and CMYK profiles (scripts/prereqs.sh installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

use lambda_image::engine::{OutputFormat, ThumbOptions, ThumbSpec, make_thumbnails};

fn python() -> PathBuf {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        py.exists(),
        "{} not found: run scripts/test.sh (it installs moto and Pillow into .venv)",
        py.display()
    );
    py
}

fn references() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("colour-reference");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/colour_reference.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(&dir)
        .output()
        .expect("run colour_reference.py");
    assert!(
        out.status.success(),
        "colour_reference.py failed (Pillow in .venv? libgs-common installed?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn rgb(path: &Path) -> image::RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_rgb8()
}

fn mean_delta_e2000(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: f64 = a
        .pixels()
        .zip(b.pixels())
        .map(|(p, q)| {
            f64::from(empfindung::cie00::diff(
                lab::Lab::from_rgb(&p.0),
                lab::Lab::from_rgb(&q.0),
            ))
        })
        .sum();
    total / f64::from(a.width() * a.height())
}

/// The engine's output at the source's own size (a box larger than the image: never
/// upscaled, so no resampling), losslessly encoded.
fn ours(source: &Path) -> image::RgbImage {
    let bytes = std::fs::read(source).expect("read source");
    let opts = ThumbOptions {
        sizes: vec![ThumbSpec::square(4096)],
        format: OutputFormat::Png,
        ..ThumbOptions::default()
    };
    let t = make_thumbnails(&bytes, &opts).expect("thumbnails");
    image::load_from_memory(&t.thumbnails[0].bytes)
        .expect("decode our PNG")
        .into_rgb8()
}

#[test]
fn profiles_are_converted_to_srgb_like_littlecms_does() {
    let dir = references();
    let mut report = Vec::new();
    for source in ["p3.png", "p3.webp", "adobergb.jpg", "cmyk.jpg"] {
        let stem = source.replace('.', "_");
        let reference = rgb(&dir.join(format!("{stem}.ref.png")));
        let ignored = rgb(&dir.join(format!("{stem}.raw.png")));
        let ours = ours(&dir.join(source));
        let de = mean_delta_e2000(&ours, &reference);
        let de_ignored = mean_delta_e2000(&ignored, &reference);
        report.push(format!(
            "{source}: mean ΔE2000 {de:.3} (profile ignored: {de_ignored:.2})"
        ));
        assert!(
            de_ignored > 2.0,
            "{source}: ignoring the profile is only {de_ignored:.2} off: the case proves nothing"
        );
        assert!(de <= 1.0, "{}", report.join("\n"));
    }
    println!("{}", report.join("\n"));
}
