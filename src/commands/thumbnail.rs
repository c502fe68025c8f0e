//! `thumbctl thumbnail FILE... --out DIR`: the function's engine on local files, to preview
//! exactly what the deployed function will make.
//!
//! The files are named as the function names its thumbnails: the content id in the name comes
//! from the file's MD5, which is the ETag S3 gives an object uploaded in one part (`upload`
//! does so up to its multipart threshold), so a preview has the key its upload will get.

use std::path::Path;

use anyhow::Context;
use lambda_image::engine::{OutputFormat, ThumbOptions, ThumbSpec, make_thumbnails};
use lambda_image::keys::{ContentId, thumbnail_key};
use md5::Digest;
use serde_json::json;

use super::print_json;
use crate::cli::{GlobalArgs, OutputMode, ThumbnailArgs};

pub fn run(global: &GlobalArgs, args: ThumbnailArgs) -> anyhow::Result<()> {
    let sizes = args
        .sizes
        .iter()
        .map(|s| {
            s.parse::<ThumbSpec>()
                .map_err(|e| crate::UsageError(format!("--sizes {s}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let format: OutputFormat = args
        .format
        .parse()
        .map_err(|e| crate::UsageError(format!("--format: {e}")))?;
    let opts = ThumbOptions {
        sizes,
        format,
        quality: args.quality,
        keep_copyright: args.keep_copyright,
        ..ThumbOptions::default()
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut report = Vec::new();
    let mut failed = 0;
    for file in &args.files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let etag: String = md5::Md5::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let id = ContentId::from_etag(&etag).context("an MD5 digest is never empty")?;
        match make_thumbnails(&bytes, &opts) {
            Ok(made) => {
                let mut outs = Vec::new();
                for t in &made.thumbnails {
                    let rel = thumbnail_key(&t.spec, &name, &id, &opts);
                    let path = args.out.join(&rel);
                    write(&path, &t.bytes)?;
                    outs.push(json!({"size": t.spec.to_string(), "file": path, "width": t.width, "height": t.height, "bytes": t.bytes.len()}));
                    if global.output == OutputMode::Text {
                        println!(
                            "{}  {}x{}  {} bytes  {}",
                            file.display(),
                            t.width,
                            t.height,
                            t.bytes.len(),
                            path.display()
                        );
                    }
                }
                report.push(json!({"file": file, "status": "ok", "width": made.source.width, "height": made.source.height,
                                   "content_type": made.source.content_type, "thumbnails": outs}));
            }
            Err(e) => {
                failed += 1;
                if global.output == OutputMode::Text {
                    println!("{}  failed: {e}", file.display());
                }
                report.push(json!({"file": file, "status": "failed", "error": e.reason(), "detail": e.to_string()}));
            }
        }
    }
    if global.output == OutputMode::Json {
        print_json(&json!({"out": args.out, "results": report}))?;
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} file(s) could not be thumbnailed (the function would record them as failed)",
            args.files.len()
        );
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}
