//! Any bytes, as an uploaded object, through the engine: probe, then every thumbnail.
#![no_main]

#[path = "../one_input.rs"]
mod one_input;

libfuzzer_sys::fuzz_target!(|data: &[u8]| one_input::check(data));
