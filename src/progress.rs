//! Progress of long steps: one spinner per running step on a terminal, plain lines otherwise
//! (CI logs, pipes). Always on stderr, so `--output json` keeps stdout to one document.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    mode: Mode,
    labels: Mutex<HashMap<String, String>>,
    running: Mutex<HashMap<String, (Instant, Option<ProgressBar>)>>,
}

enum Mode {
    Quiet,
    Plain,
    Bars(MultiProgress),
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            Mode::Plain
        };
        Progress {
            mode,
            labels: Mutex::default(),
            running: Mutex::default(),
        }
    }

    pub fn add(&self, id: &str, label: &str) {
        lock(&self.labels).insert(id.to_owned(), label.to_owned());
    }

    fn label(&self, id: &str) -> String {
        lock(&self.labels)
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    }

    pub fn start(&self, id: &str) {
        let bar = match &self.mode {
            Mode::Bars(multi) => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(self.label(id));
                bar.enable_steady_tick(Duration::from_millis(100));
                Some(bar)
            }
            _ => None,
        };
        lock(&self.running).insert(id.to_owned(), (Instant::now(), bar));
    }

    fn end(&self, id: &str, line: String) {
        let entry = lock(&self.running).remove(id);
        let secs = entry
            .as_ref()
            .map(|(t, _)| t.elapsed().as_secs_f64())
            .unwrap_or_default();
        let line = format!("{line} ({secs:.1}s)");
        match (&self.mode, entry) {
            (Mode::Quiet, _) => {}
            (Mode::Bars(_), Some((_, Some(bar)))) => bar.finish_with_message(line),
            _ => eprintln!("{line}"),
        }
    }

    pub fn finish(&self, id: &str, verb: &str) {
        self.end(id, format!("  {verb:>8}  {}", self.label(id)));
    }

    pub fn fail(&self, id: &str, error: &str) {
        let first = error.lines().next().unwrap_or(error);
        self.end(
            id,
            format!("  {:>8}  {}: {first}", "FAILED", self.label(id)),
        );
    }

    /// What a long-running step is doing now (e.g. waiting for CloudFront): its spinner
    /// says so on a terminal, a line says so otherwise. Callers say each change once.
    pub fn update(&self, id: &str, what: &str) {
        let line = format!("{}: {what}", self.label(id));
        match &self.mode {
            Mode::Quiet => {}
            Mode::Bars(_) => {
                if let Some((_, Some(bar))) = lock(&self.running).get(id) {
                    bar.set_message(line);
                }
            }
            Mode::Plain => eprintln!("  {:>8}  {line}", "..."),
        }
    }

    /// A line of narration ("Creating stack ...").
    pub fn note(&self, line: &str) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Bars(multi) => {
                let _ = multi.println(line);
            }
            Mode::Plain => eprintln!("{line}"),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
