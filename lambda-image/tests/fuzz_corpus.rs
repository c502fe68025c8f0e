//! Replays the fuzz seeds and every input the fuzzer saved (`fuzz/regressions/`) through the
//! same checks as the fuzz target, on the stable toolchain, so that a bug found once stays
//! fixed. The fuzzing itself is `scripts/fuzz.sh`.
//!
//! `fuzz/regressions/` also holds hand-made hostile inputs (`hostile-*`, written by
//! `scripts/fuzz_hostile.py`): bombs, truncations and lying headers. Each must be refused with
//! the error that says why, which for the bombs is the pixel limit, read from the header before
//! any pixel buffer exists: that error (not a clock) is what shows the engine did not try to
//! decode 4 gigapixels.

#[path = "../fuzz/one_input.rs"]
mod one_input;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use lambda_image::engine::{EngineError, ThumbOptions, ThumbSpec, make_thumbnails, probe};

fn inputs(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "md"))
        .collect();
    files.sort();
    files
}

fn file_name(p: &Path) -> &str {
    p.file_name().and_then(|n| n.to_str()).unwrap_or_default()
}

#[test]
fn seeds_and_saved_fuzz_inputs_hold_the_invariants() {
    let seeds = inputs("fuzz/seeds");
    assert!(seeds.len() >= 15, "the seed corpus is missing");
    let saved = inputs("fuzz/regressions");
    assert!(
        saved.len() >= HOSTILE.len(),
        "the hostile inputs are missing"
    );
    for path in seeds.iter().chain(&saved) {
        let data = std::fs::read(path).unwrap();
        // Names the input if the check below panics.
        eprintln!("input {}", path.display());
        one_input::check(&data);
    }
    // Every seed is a valid image of a supported format: if the engine refused one, the
    // fuzzer would be mutating an input that never reaches its decoder.
    let opts = ThumbOptions::default();
    for path in &seeds {
        let data = std::fs::read(path).unwrap();
        if !cfg!(feature = "heic") && file_name(path).ends_with(".heic") {
            // Without libheif a HEIC is a recognised, unsupported format.
            assert_eq!(
                make_thumbnails(&data, &opts).unwrap_err().reason(),
                "unsupported"
            );
            continue;
        }
        if let Err(e) = make_thumbnails(&data, &opts) {
            panic!("seed {} refused: {e}", path.display());
        }
        // And at sizes that decode at 1/8 and 1/4 (the seeds are 16-37 px), where progressive
        // JPEGs take the DC-only path and the DC-plus-first-AC path.
        for side in [2, 5] {
            let tiny = ThumbOptions {
                sizes: vec![ThumbSpec::square(side)],
                ..ThumbOptions::default()
            };
            if let Err(e) = make_thumbnails(&data, &tiny) {
                panic!("seed {} refused at {side}x{side}: {e}", path.display());
            }
        }
    }
}

/// How the engine must refuse one hostile input.
#[derive(Debug)]
enum Refusal {
    /// A zero-byte object.
    Empty,
    /// The header declares a canvas over the pixel limit: `probe` (headers only) already
    /// answers `TooManyPixels` with the declared size, and so does `make_thumbnails`.
    OverLimit { width: u64, height: u64 },
    /// The header itself is damaged: refused as corrupt before any pixel buffer.
    BadHeader,
    /// A small, plausible header (`probe` accepts it, so decoding allocates at most this
    /// canvas) in front of a damaged or missing body: decoding refuses it as corrupt.
    BadBody { width: u32, height: u32 },
}

/// Every `hostile-*` file in `fuzz/regressions/` and what the engine must answer.
const HOSTILE: &[(&str, Refusal)] = &[
    ("hostile-empty", Refusal::Empty),
    (
        "hostile-gif-huge-screen-65535x65535.gif",
        Refusal::OverLimit {
            width: 65535,
            height: 65535,
        },
    ),
    (
        "hostile-jpeg-bomb-65500x65500.jpg",
        Refusal::OverLimit {
            width: 65500,
            height: 65500,
        },
    ),
    (
        "hostile-heic-bomb-20000x20000.heic",
        Refusal::OverLimit {
            width: 20000,
            height: 20000,
        },
    ),
    (
        "hostile-heic-truncated.heic",
        Refusal::BadBody {
            width: 64,
            height: 48,
        },
    ),
    ("hostile-jpeg-magic-random.jpg", Refusal::BadHeader),
    // The seed is 24x16 stored with EXIF orientation 6: displayed 16x24.
    (
        "hostile-jpeg-truncated.jpg",
        Refusal::BadBody {
            width: 16,
            height: 24,
        },
    ),
    (
        "hostile-png-bomb-20000x20000.png",
        Refusal::OverLimit {
            width: 20000,
            height: 20000,
        },
    ),
    ("hostile-tiff-bogus-ifd-offset.tif", Refusal::BadHeader),
    (
        "hostile-webp-bomb-16384x16384.webp",
        Refusal::OverLimit {
            width: 16384,
            height: 16384,
        },
    ),
    (
        "hostile-webp-lying-riff-size.webp",
        Refusal::BadBody {
            width: 24,
            height: 16,
        },
    ),
];

/// The limits the function runs with, and the fuzz target's smaller ones.
fn option_sets() -> Vec<ThumbOptions> {
    let fuzz = ThumbOptions {
        sizes: vec![ThumbSpec::square(64)],
        max_pixels: 1_000_000,
        max_bytes: 1 << 20,
        ..ThumbOptions::default()
    };
    vec![ThumbOptions::default(), fuzz]
}

fn check_refusal(name: &str, data: &[u8], want: &Refusal, opts: &ThumbOptions) {
    let probed = probe(data, opts);
    let made = make_thumbnails(data, opts).map(|t| t.source);
    if !cfg!(feature = "heic") && name.ends_with(".heic") {
        // Without libheif nothing of a HEIC is read: refused by its brand alone.
        let unsupported = Err(EngineError::Unsupported("image/heic".into()));
        assert_eq!(probed, unsupported, "{name}");
        assert_eq!(made, unsupported, "{name}");
        return;
    }
    let ctx = format!(
        "{name} (max_pixels {}): probe {probed:?}, make_thumbnails {made:?}",
        opts.max_pixels
    );
    match want {
        Refusal::Empty => {
            assert_eq!(probed, Err(EngineError::Empty), "{ctx}");
            assert_eq!(made, Err(EngineError::Empty), "{ctx}");
        }
        Refusal::OverLimit { width, height } => {
            let limit = EngineError::TooManyPixels {
                width: *width,
                height: *height,
                max: opts.max_pixels,
            };
            assert_eq!(probed.as_ref(), Err(&limit), "{ctx}");
            assert_eq!(made.as_ref(), Err(&limit), "{ctx}");
            assert_eq!(limit.reason(), "too many pixels");
        }
        Refusal::BadHeader => {
            assert!(matches!(probed, Err(EngineError::Corrupt(_))), "{ctx}");
            assert!(matches!(made, Err(EngineError::Corrupt(_))), "{ctx}");
        }
        Refusal::BadBody { width, height } => {
            let p = probed.as_ref().unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!((p.width, p.height), (*width, *height), "{ctx}");
            assert!(matches!(made, Err(EngineError::Corrupt(_))), "{ctx}");
        }
    }
}

#[test]
fn hostile_inputs_are_refused_with_the_error_that_says_why() {
    let on_disk: BTreeSet<String> = inputs("fuzz/regressions")
        .iter()
        .map(|p| file_name(p).to_owned())
        .filter(|n| n.starts_with("hostile-"))
        .collect();
    let known: BTreeSet<String> = HOSTILE.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(
        on_disk, known,
        "fuzz/regressions/hostile-* and HOSTILE disagree: rerun scripts/fuzz_hostile.py, or say here what a new file must answer"
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    for (name, want) in HOSTILE {
        let data = std::fs::read(dir.join(name)).unwrap();
        for opts in option_sets() {
            check_refusal(name, &data, want, &opts);
        }
    }
}
