//! Benchmark worker for `shared/bench/thumbs/compare.py` (protocol in its README):
//!
//! `bench_worker --corpus DIR --files a,b --out DIR --sizes 256,1024 --reps N --warmup N --json FILE`
//!
//! Each timed run does the whole job like the peers: read the file, decode, orient, resize to fit
//! SxS, encode JPEG q80, write `<stem>_<S>.jpg`. Single-threaded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use lambda_image::engine::{OutputFormat, ThumbOptions, ThumbSpec, make_thumbnails};

struct Args {
    corpus: PathBuf,
    files: Vec<String>,
    out: PathBuf,
    sizes: Vec<u32>,
    reps: usize,
    warmup: usize,
    json: Option<PathBuf>,
    label: String,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        corpus: PathBuf::new(),
        files: Vec::new(),
        out: PathBuf::from("."),
        sizes: vec![256, 1024],
        reps: 7,
        warmup: 1,
        json: None,
        label: String::new(),
    };
    let mut files_arg: Option<String> = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--corpus" => a.corpus = PathBuf::from(val()?),
            "--files" => files_arg = Some(val()?),
            "--out" => a.out = PathBuf::from(val()?),
            "--sizes" => {
                a.sizes = val()?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().map_err(|e| format!("size {s}: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--reps" => a.reps = val()?.parse().map_err(|e| format!("--reps: {e}"))?,
            "--warmup" => a.warmup = val()?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--json" => a.json = Some(PathBuf::from(val()?)),
            "--label" => a.label = val()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    a.files = match files_arg.as_deref() {
        Some("none") => Vec::new(),
        Some(list) if !list.is_empty() => list
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        _ => {
            let mut names: Vec<String> = std::fs::read_dir(&a.corpus)
                .map_err(|e| format!("{}: {e}", a.corpus.display()))?
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .collect();
            names.sort();
            names
        }
    };
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    Ok(a)
}

fn cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One full job; returns (w, h, bytes written).
fn job(src: &Path, dst: &Path, opts: &ThumbOptions) -> Result<(u32, u32, usize), String> {
    let bytes = std::fs::read(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let t = make_thumbnails(&bytes, opts).map_err(|e| format!("{}: {e}", src.display()))?;
    let th = t.thumbnails.into_iter().next().ok_or("no thumbnail")?;
    std::fs::write(dst, &th.bytes).map_err(|e| format!("{}: {e}", dst.display()))?;
    Ok((th.width, th.height, th.bytes.len()))
}

fn run() -> Result<(), String> {
    let a = parse_args()?;
    let mut sink: Box<dyn Write> = match &a.json {
        Some(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("{}: {e}", p.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    for &size in &a.sizes {
        let opts = ThumbOptions {
            sizes: vec![ThumbSpec::square(size)],
            format: OutputFormat::Jpeg,
            quality: 80,
            ..ThumbOptions::default()
        };
        for name in &a.files {
            let src = a.corpus.join(name);
            let stem = Path::new(name)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or(name);
            let dst = a.out.join(format!("{stem}_{size}.jpg"));
            for _ in 0..a.warmup {
                job(&src, &dst, &opts)?;
            }
            let (mut wall, mut cpu) = (Vec::new(), Vec::new());
            let mut dims = (0, 0, 0);
            for _ in 0..a.reps {
                let (c0, t0) = (cpu_ms(), Instant::now());
                dims = job(&src, &dst, &opts)?;
                wall.push(t0.elapsed().as_secs_f64() * 1e3);
                cpu.push(cpu_ms() - c0);
            }
            let min = wall.iter().copied().fold(f64::INFINITY, f64::min);
            let max = wall.iter().copied().fold(0.0, f64::max);
            let rec = serde_json::json!({
                "peer": "lambda-image",
                "label": a.label,
                "lib_version": concat!("lambda-image ", env!("CARGO_PKG_VERSION"), " (libjpeg-turbo 3, libwebp, png, fast_image_resize)"),
                "threads": 1,
                "file": name,
                "size": size,
                "reps": a.reps,
                "warmup": a.warmup,
                "median_ms": (median(&mut wall) * 1000.0).round() / 1000.0,
                "min_ms": (min * 1000.0).round() / 1000.0,
                "max_ms": (max * 1000.0).round() / 1000.0,
                "cpu_median_ms": (median(&mut cpu) * 1000.0).round() / 1000.0,
                "out_w": dims.0,
                "out_h": dims.1,
                "out_bytes": dims.2,
            });
            writeln!(sink, "{rec}").map_err(|e| e.to_string())?;
            sink.flush().map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_worker: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
