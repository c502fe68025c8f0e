//! What one fuzz input must satisfy. Shared by the fuzz target (nightly, libFuzzer) and by
//! `lambda-image/tests/fuzz_corpus.rs` (stable, in CI), which replays the seeds and every
//! input the fuzzer ever saved, so that a found bug stays fixed.

use lambda_image::engine::{OutputFormat, ThumbOptions, ThumbSpec, make_thumbnails, probe};

/// The options are derived from the input's length, not from its bytes, so that seed images
/// are fed unchanged and every output format and box shape still gets its share of inputs.
fn options(len: usize) -> ThumbOptions {
    let format = [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp][len % 3];
    let side = 1 + (len / 3 % 300) as u32;
    if len % 4 == 1 {
        // Tiny boxes only: the seeds' small images (16-37 px) then decode at 1/8 or 1/4,
        // which sends progressive JPEGs through the DC-only decoder or its 1/4 mode.
        return ThumbOptions {
            sizes: vec![ThumbSpec::square(1 + (len / 4 % 6) as u32)],
            format,
            max_pixels: 1_000_000,
            max_bytes: 1 << 20,
            ..ThumbOptions::default()
        };
    }
    ThumbOptions {
        sizes: vec![
            ThumbSpec::square(side),
            ThumbSpec {
                width: 64,
                height: 17,
                crop: lambda_image::engine::Crop::Fit,
            },
            "48x48!attention".parse().unwrap_or(ThumbSpec::square(48)),
        ],
        format,
        quality: 1 + (len % 100) as u8,
        // Small, so that a few bytes declaring a large canvas (legal up to the limit, and then
        // decoded in full) cost milliseconds, not seconds: a first run with 16 MP fell from
        // 1 365 to 45 executions a second once the corpus found such inputs. The limit itself
        // is part of what is exercised.
        max_pixels: 1_000_000,
        max_bytes: 1 << 20,
        // Half the inputs also carry their attribution into the thumbnails.
        keep_copyright: len.is_multiple_of(2),
    }
}

/// Panics (which the fuzzer reports as a crash) when an invariant does not hold. Errors are
/// fine: most inputs are not images.
pub fn check(data: &[u8]) {
    let opts = options(data.len());
    let probed = probe(data, &opts);
    let made = make_thumbnails(data, &opts);
    match (&probed, &made) {
        (Err(_), Ok(t)) => panic!(
            "probe refused what make_thumbnails accepted: {:?}",
            t.source
        ),
        (Ok(p), Ok(t)) => assert_eq!(p, &t.source, "probe and decode disagree"),
        _ => {}
    }
    let Ok(t) = made else { return };
    assert_eq!(t.thumbnails.len(), opts.sizes.len());
    for th in &t.thumbnails {
        // `target`, not `fit`: a crop (`48x48!attention` above) is exactly its box.
        let (w, h) = th.spec.target(t.source.width, t.source.height);
        assert_eq!((th.width, th.height), (w, h), "thumbnail size");
        assert!(w >= 1 && h >= 1 && w <= th.spec.width && h <= th.spec.height);
        assert!(!th.bytes.is_empty(), "empty encoding");
        assert_eq!(th.content_type, opts.format.content_type());
    }
}
