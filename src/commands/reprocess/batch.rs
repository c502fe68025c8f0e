//! `reprocess --batch`: for millions of originals, one machine sending one event at a time is
//! the wrong tool. thumbctl writes the list (a CSV manifest in the destination bucket, under
//! `.thumbctl/batch/`), and an S3 Batch Operations job invokes the function for each line,
//! with retries and a completion report of the failures, while thumbctl shows its progress.
//!
//! The job runs as the stack's batch role (created on first use, recorded in the state like
//! every resource, removed by `destroy`): it may read the manifest, write the report and
//! invoke this function, nothing else.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3control::types::{
    JobManifest, JobManifestFieldName, JobManifestFormat, JobManifestLocation, JobManifestSpec,
    JobOperation, JobReport, JobReportFormat, JobReportScope, JobStatus, LambdaInvokeOperation,
};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde_json::json;

use super::{Original, ReprocessArgs, missing};
use crate::cli::{GlobalArgs, OutputMode};
use crate::commands::{Deployed, print_json};
use crate::context::Ctx;
use crate::engine::{self, Cancel};
use crate::error::{AwsError, Class, aws};
use crate::resources::built;

const KIND: &str = "batch job";
use crate::progress::Progress;
use crate::retry::{self, Patience};
use crate::stack::{BATCH_PREFIX, Plan};
use crate::state::StateStore;
use lambda_image::config::Config;

/// Keys in a Batch Operations CSV manifest must be URL-encoded (S3 User Guide, "Specifying a
/// manifest": `Examplebucket,object%20key%20with%20spaces`), and Batch Operations hands the
/// function the key field as written. Everything but unreserved characters and `/` is
/// encoded: `%20` for a space and `%2B` for a `+` are read alike by both decoders AWS's
/// examples use (with and without `+` as a space), so the function gets the key back either
/// way; a literal `+` would not be.
const MANIFEST_KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// One line of the manifest: `bucket,key`.
pub fn manifest_line(bucket: &str, key: &str) -> String {
    format!("{bucket},{}\n", utf8_percent_encode(key, MANIFEST_KEY))
}

/// Everything the CreateJob request says, as thumbctl decides it (tested without AWS: the
/// emulator has no S3 Control job API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRequest {
    pub account_id: String,
    pub function_arn: String,
    /// 1.0, the schema whose event the S3 User Guide documents ("Invoke AWS Lambda function":
    /// the bucket by ARN, the key URL-encoded as in the manifest). 2.0 adds only what thumbctl
    /// does not use (user arguments, directory buckets; the API reference names the bucket by
    /// name as its difference) and no AWS document says how it encodes the key.
    pub invocation_schema_version: String,
    pub manifest_arn: String,
    pub manifest_etag: String,
    pub report_bucket_arn: String,
    pub report_prefix: String,
    pub role_arn: String,
    pub priority: i32,
    pub client_request_token: String,
    pub description: String,
}

impl JobRequest {
    pub fn new(plan: &Plan, run: &str, manifest_etag: &str) -> JobRequest {
        let dst = plan.bucket_arn(&plan.dest_bucket());
        JobRequest {
            account_id: plan.account.clone(),
            function_arn: plan.function_arn(),
            invocation_schema_version: "1.0".into(),
            manifest_arn: format!("{dst}/{}", manifest_key(run)),
            manifest_etag: manifest_etag.trim_matches('"').to_owned(),
            report_bucket_arn: dst,
            report_prefix: format!("{BATCH_PREFIX}{run}"),
            role_arn: plan.role_arn(&plan.batch_role()),
            priority: 10,
            // The same run (manifest) asked twice is one job: CreateJob is idempotent by token.
            client_request_token: format!("thumbctl-{}-{run}", plan.stack),
            description: format!("thumbctl {}: reprocess originals", plan.stack),
        }
    }

    async fn send(&self, ctx: &Ctx) -> Result<String, AwsError> {
        let name = &self.description;
        let req = ctx
            .s3control
            .create_job()
            .account_id(&self.account_id)
            .operation(
                JobOperation::builder()
                    .lambda_invoke(
                        LambdaInvokeOperation::builder()
                            .function_arn(&self.function_arn)
                            .invocation_schema_version(&self.invocation_schema_version)
                            .build(),
                    )
                    .build(),
            )
            .manifest(
                JobManifest::builder()
                    .spec(built(
                        JobManifestSpec::builder()
                            .format(JobManifestFormat::S3BatchOperationsCsv20180820)
                            .fields(JobManifestFieldName::Bucket)
                            .fields(JobManifestFieldName::Key)
                            .build(),
                        KIND,
                        name,
                    )?)
                    .location(built(
                        JobManifestLocation::builder()
                            .object_arn(&self.manifest_arn)
                            .e_tag(&self.manifest_etag)
                            .build(),
                        KIND,
                        name,
                    )?)
                    .build(),
            )
            .report(
                JobReport::builder()
                    .bucket(&self.report_bucket_arn)
                    .prefix(&self.report_prefix)
                    .format(JobReportFormat::ReportCsv20180820)
                    .enabled(true)
                    .report_scope(JobReportScope::FailedTasksOnly)
                    .build(),
            )
            .priority(self.priority)
            .role_arn(&self.role_arn)
            .confirmation_required(false)
            .client_request_token(&self.client_request_token)
            .description(&self.description);
        let out = req.send().await.map_err(aws("create", "batch job", name))?;
        out.job_id
            .ok_or_else(|| AwsError::local("create", "batch job", name, "S3 returned no job id"))
    }
}

pub fn manifest_key(run: &str) -> String {
    format!("{BATCH_PREFIX}{run}/manifest.csv")
}

pub async fn run(
    global: &GlobalArgs,
    ctx: &Ctx,
    d: &Deployed,
    config: &Config,
    prefix: &str,
    args: &ReprocessArgs,
) -> anyhow::Result<()> {
    // The role is a resource of the stack: recorded, idempotent, removed by destroy.
    let store = StateStore::open(&global.state_dir, &global.stack, "reprocess --batch")?;
    let state = store.snapshot().context("the stack's state vanished")?;
    let mut plan = Plan {
        stack: state.stack.clone(),
        suffix: state.suffix.clone(),
        account: state.account.clone(),
        region: state.region.clone(),
        settings: state.settings.clone(),
    };
    // `20261202T060000Z`: sorts by time and is safe in a key and a client token.
    let run: String = crate::now_rfc3339()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();

    // The manifest goes to a file first, page by page: memory stays flat for any bucket.
    let file = scratch_file(&global.state_dir)?;
    let (lines, current) = write_manifest(ctx, d, config, prefix, args.only_missing, &file).await?;
    if !global.quiet {
        eprintln!(
            "Manifest: {lines} original(s){}",
            if args.only_missing {
                format!(" ({current} already current, left out)")
            } else {
                String::new()
            }
        );
    }
    if lines == 0 || args.dry_run {
        let _ = std::fs::remove_file(&file);
        return finish(global, None, lines, None);
    }

    if !plan.settings.batch_operations {
        plan.settings.batch_operations = true;
        store.update(|s| s.settings.batch_operations = true)?;
    }
    let progress = Progress::new(global.quiet);
    let cancel = Cancel::default();
    engine::up_only(
        ctx,
        &plan,
        &store,
        &["batch-role-policy"],
        &cancel,
        &progress,
    )
    .await
    .context("creating the stack's batch role")?;

    let key = manifest_key(&run);
    let body = ByteStream::from_path(&file)
        .await
        .context("reading the manifest back")?;
    let put = ctx
        .s3
        .put_object()
        .bucket(&d.dest_bucket)
        .key(&key)
        .content_type("text/csv")
        .body(body)
        .send()
        .await
        .map_err(aws("upload the manifest to", "bucket", &d.dest_bucket))?;
    let _ = std::fs::remove_file(&file);
    let request = JobRequest::new(&plan, &run, put.e_tag().unwrap_or_default());
    // A role made a moment ago may not be assumable by S3 yet.
    let job = retry::until_settled(
        Patience::IAM,
        |e| {
            (e.class == Class::Propagation
                || (e.class == Class::AccessDenied && e.message.contains("assume")))
            .then_some("IAM to propagate the batch role")
        },
        || request.send(ctx),
    )
    .await
    .map_err(|e| {
        // An emulator without the S3 Control job API answers 404 or NotImplemented.
        if e.code.as_deref().is_some_and(|c| c.contains("NotImplemented") || c == "HTTP 404")
            || e.message.contains("not yet been implemented")
        {
            anyhow::anyhow!(
                "{e}\n  note: the manifest is in s3://{}/{key}; this endpoint has no S3 Batch Operations (local emulators do not): use `thumbctl reprocess` without --batch",
                d.dest_bucket
            )
        } else {
            anyhow::Error::new(e)
        }
    })?;
    if !global.quiet {
        eprintln!(
            "Batch job {job} created; following its progress (Ctrl-C stops following, not the job)."
        );
    }
    let done = follow(ctx, &plan.account, &job, global.quiet).await?;
    finish(global, Some(&job), lines, Some(done))
}

/// Writes `bucket,key` lines for the originals under the prefix; returns (lines, skipped as current).
async fn write_manifest(
    ctx: &Ctx,
    d: &Deployed,
    config: &Config,
    prefix: &str,
    only_missing: bool,
    path: &std::path::Path,
) -> anyhow::Result<(u64, u64)> {
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path)
            .with_context(|| format!("creating the manifest file {}", path.display()))?,
    );
    let mut pages = ctx
        .s3
        .list_objects_v2()
        .bucket(&d.source_bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    let (mut lines, mut current) = (0u64, 0u64);
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("list objects in", "bucket", &d.source_bucket))?;
        let originals = Original::of_page(&page);
        let total = originals.len() as u64;
        let todo = if only_missing {
            missing(ctx, &d.table, config, originals).await?
        } else {
            originals
        };
        current += total - todo.len() as u64;
        for o in &todo {
            out.write_all(manifest_line(&d.source_bucket, &o.key).as_bytes())
                .context("writing the manifest")?;
            lines += 1;
        }
    }
    out.flush().context("writing the manifest")?;
    Ok((lines, current))
}

/// A scratch file next to the state (the user's own directory, not a shared /tmp).
fn scratch_file(dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.join(format!(".manifest-{}.csv", std::process::id())))
}

/// What the job ended as.
#[derive(Debug, Clone, Serialize)]
struct JobEnd {
    status: String,
    total: i64,
    succeeded: i64,
    failed: i64,
    reason: Option<String>,
}

/// Polls DescribeJob until the job ends (or Ctrl-C), showing its tasks' progress.
async fn follow(ctx: &Ctx, account: &str, job: &str, quiet: bool) -> anyhow::Result<JobEnd> {
    let bar = super::bar(quiet);
    bar.set_message(format!("batch job {job}"));
    let mut interrupted = Box::pin(tokio::signal::ctrl_c());
    loop {
        let out = ctx
            .s3control
            .describe_job()
            .account_id(account)
            .job_id(job)
            .send()
            .await
            .map_err(aws("follow", "batch job", job))?;
        let j = out.job().context("S3 returned no job description")?;
        let p = j.progress_summary();
        let total = p.and_then(|p| p.total_number_of_tasks()).unwrap_or(0);
        let ok = p.and_then(|p| p.number_of_tasks_succeeded()).unwrap_or(0);
        let failed = p.and_then(|p| p.number_of_tasks_failed()).unwrap_or(0);
        bar.set_length(total.max(0) as u64);
        bar.set_position((ok + failed).max(0) as u64);
        let status = j.status().cloned().unwrap_or(JobStatus::New);
        if matches!(
            status,
            JobStatus::Complete | JobStatus::Failed | JobStatus::Cancelled
        ) {
            bar.finish_and_clear();
            return Ok(JobEnd {
                status: status.as_str().to_owned(),
                total,
                succeeded: ok,
                failed,
                reason: j
                    .failure_reasons()
                    .first()
                    .and_then(|r| r.failure_reason())
                    .map(str::to_owned),
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = &mut interrupted => {
                bar.finish_and_clear();
                anyhow::bail!(
                    "stopped following batch job {job}; it keeps running in S3. See it with: aws s3control describe-job --account-id {account} --job-id {job}"
                );
            }
        }
    }
}

fn finish(
    global: &GlobalArgs,
    job: Option<&str>,
    lines: u64,
    end: Option<JobEnd>,
) -> anyhow::Result<()> {
    if global.output == OutputMode::Json {
        print_json(&json!({"job_id": job, "manifest_lines": lines, "result": end}))?;
    } else if let Some(end) = &end {
        println!(
            "Batch job {}: {} — {} of {} tasks succeeded, {} failed{}",
            job.unwrap_or("?"),
            end.status,
            end.succeeded,
            end.total,
            end.failed,
            end.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
    } else {
        println!("Nothing to send: {lines} original(s) in the manifest.");
    }
    match end {
        Some(e) if e.status != "Complete" || e.failed > 0 => anyhow::bail!(
            "the batch job did not process everything; its report of failed tasks is in the destination bucket under {BATCH_PREFIX}"
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::Settings;

    #[test]
    fn manifest_lines_url_encode_keys() {
        assert_eq!(manifest_line("b", "photos/cat.jpg"), "b,photos/cat.jpg\n");
        assert_eq!(manifest_line("b", "my cat,1.jpg"), "b,my%20cat%2C1.jpg\n");
        assert_eq!(manifest_line("b", "ü+é.png"), "b,%C3%BC%2B%C3%A9.png\n");
        assert_eq!(manifest_line("b", "a+b% c.jpg"), "b,a%2Bb%25%20c.jpg\n");
        // The function's own decoder gives every key back from its manifest line, and so does
        // a decoder that keeps `+` (the User Guide's example function): no literal `+` or
        // space is ever written.
        for key in [
            "my cat,1.jpg",
            "ü+é.png",
            "100% (1).jpg",
            "a+b %2B ü/ö.png",
            "x++ y",
        ] {
            let line = manifest_line("b", key);
            let encoded = line
                .trim_end()
                .split_once(',')
                .map(|(_, k)| k)
                .unwrap_or("");
            assert!(!encoded.contains(['+', ' ']), "{encoded}");
            assert_eq!(lambda_image::keys::decode_event_key(encoded), key);
            assert_eq!(
                percent_encoding::percent_decode_str(encoded).decode_utf8_lossy(),
                key
            );
        }
    }

    #[test]
    fn the_job_invokes_this_function_as_the_batch_role() {
        let plan = Plan {
            stack: "t".into(),
            suffix: "s".into(),
            account: "123456789012".into(),
            region: "cn-north-1".into(),
            settings: Settings::default(),
        };
        let r = JobRequest::new(&plan, "20261202T060000Z", "\"abc\"");
        assert_eq!(
            r.function_arn,
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:t-s"
        );
        assert_eq!(r.role_arn, "arn:aws-cn:iam::123456789012:role/t-batch-s");
        assert_eq!(
            r.manifest_arn,
            "arn:aws-cn:s3:::t-dst-s/.thumbctl/batch/20261202T060000Z/manifest.csv"
        );
        assert_eq!(r.manifest_etag, "abc");
        assert_eq!(r.report_prefix, ".thumbctl/batch/20261202T060000Z");
        assert_eq!(r.invocation_schema_version, "1.0");
        // The role's policy allows exactly what the job does.
        let policy = plan.batch_policy().to_string();
        assert!(policy.contains(&r.function_arn));
        assert!(policy.contains("arn:aws-cn:s3:::t-dst-s/.thumbctl/batch/*"));
    }
}
