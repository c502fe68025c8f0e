//! Crash points for the crash-resume tests (cargo feature `failpoints`), configured through
//! the `FAILPOINTS` environment variable, e.g. `FAILPOINTS=up:created:table=return`.
//!
//! A module of its own, below both the engine and the resources: the engine marks the points
//! between a step's call and its record, and a resource marks the points inside its own
//! multi-call sequences (the CDN's disable-then-delete), without either reaching the other.

/// Exits the process as if killed when the crash point `name` is switched on.
pub(crate) fn crash_point(name: &str) {
    #[cfg(feature = "failpoints")]
    fail::fail_point!(name, |_| {
        eprintln!("thumbctl: crash point {name} reached; exiting as if killed");
        std::process::exit(86)
    });
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}
