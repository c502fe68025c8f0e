//! Replays the fuzz seeds and every input the fuzzer saved (`fuzz/regressions/`) through the
//! same checks as the fuzz target, on the stable toolchain, so that a bug found once stays
//! fixed. The fuzzing itself is `scripts/fuzz.sh`.

#[path = "../fuzz/one_input.rs"]
mod one_input;

use std::path::Path;

fn inputs(dir: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "md"))
        .collect();
    files.sort();
    files
}

#[test]
fn seeds_and_saved_fuzz_inputs_hold_the_invariants() {
    let seeds = inputs("fuzz/seeds");
    assert!(seeds.len() >= 15, "the seed corpus is missing");
    for path in seeds.iter().chain(&inputs("fuzz/regressions")) {
        let data = std::fs::read(path).unwrap();
        // Names the input if the check below panics.
        eprintln!("input {}", path.display());
        one_input::check(&data);
    }
    // Every seed is a valid image of a supported format: if the engine refused one, the
    // fuzzer would be mutating an input that never reaches its decoder.
    let opts = lambda_image::engine::ThumbOptions::default();
    for path in &seeds {
        let data = std::fs::read(path).unwrap();
        if let Err(e) = lambda_image::engine::make_thumbnails(&data, &opts) {
            panic!("seed {} refused: {e}", path.display());
        }
    }
}
