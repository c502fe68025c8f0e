//! Starting a CodeBuild build and following it to the end.
//!
//! The poller reads build records from a [`BuildSource`], so it runs the same against
//! CodeBuild and against the constructed records of the tests (moto never runs a build: it
//! answers SUCCEEDED at once). A terminal failure (FAILED, FAULT, TIMED_OUT, STOPPED) ends the
//! wait at the very next poll, with the failing phase and its messages.

use std::future::Future;
use std::time::Duration;

use aws_sdk_codebuild::types::{Build, StatusType};
use tokio::time::Instant;

use crate::context::Ctx;
use crate::error::{AwsError, aws};

pub const KIND: &str = "build";

/// Where build records come from: CodeBuild, or a test.
pub trait BuildSource {
    fn fetch(&mut self, id: &str) -> impl Future<Output = Result<Build, AwsError>> + Send;
}

/// CodeBuild itself, through `BatchGetBuilds`.
pub struct CodeBuild<'a>(pub &'a aws_sdk_codebuild::Client);

impl BuildSource for CodeBuild<'_> {
    async fn fetch(&mut self, id: &str) -> Result<Build, AwsError> {
        let out = self
            .0
            .batch_get_builds()
            .ids(id)
            .send()
            .await
            .map_err(aws("look up", KIND, id))?;
        out.builds()
            .iter()
            .find(|b| b.id() == Some(id))
            .cloned()
            .ok_or_else(|| {
                AwsError::local("look up", KIND, id, "CodeBuild does not know this build id")
            })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The build ended without success.
    #[error("{}", failure_text(.0))]
    Failed(Box<Failure>),
    #[error(
        "build {id} was still running after {limit:?} (--timeout); it was stopped.\n  hint: raise --timeout, or look at the build in the CodeBuild console"
    )]
    TimedOut { id: String, limit: Duration },
    #[error("interrupted: build {id} was stopped")]
    Interrupted { id: String },
    #[error("{0}")]
    Aws(#[from] AwsError),
}

/// What went wrong in a finished build, for the user.
#[derive(Debug, Clone)]
pub struct Failure {
    pub id: String,
    pub status: String,
    /// The phase that failed (or was current when the build ended).
    pub phase: String,
    /// That phase's context messages (`status_code: message`).
    pub messages: Vec<String>,
    /// Last lines of the build's CloudWatch log, filled in by the caller when it can.
    pub log_tail: Vec<String>,
    pub log_group: Option<String>,
    pub log_stream: Option<String>,
    /// What the caller learnt about the cause (e.g. that a retry did not help).
    pub note: Option<String>,
}

fn failure_text(f: &Failure) -> String {
    let mut s = format!("build {} ended {} in phase {}", f.id, f.status, f.phase);
    for m in &f.messages {
        s.push_str(&format!("\n  {m}"));
    }
    if !f.log_tail.is_empty() {
        s.push_str("\n  last lines of the build log:");
        for l in &f.log_tail {
            s.push_str(&format!("\n    | {l}"));
        }
    } else if let (Some(g), Some(st)) = (&f.log_group, &f.log_stream) {
        s.push_str(&format!("\n  build log: {g} / {st}"));
    }
    if let Some(n) = &f.note {
        s.push_str(&format!("\n  note: {n}"));
    }
    s.push_str("\n  hint: fix the cause shown above and rerun; `--force` is not needed, a failed build leaves no image");
    s
}

/// How the build is doing, for the progress line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub phase: String,
    pub elapsed: Duration,
}

pub struct FollowOptions {
    pub interval: Duration,
    pub timeout: Duration,
}

/// The terminal statuses other than success.
fn is_failure(s: &StatusType) -> bool {
    matches!(
        s,
        StatusType::Failed | StatusType::Fault | StatusType::TimedOut | StatusType::Stopped
    )
}

/// Describes a build that ended without success.
pub fn failure_of(build: &Build) -> Failure {
    let status = build
        .build_status()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|| "UNKNOWN".into());
    // The phase that failed; if none says so (e.g. STOPPED), the one the build was in.
    let failed = build
        .phases()
        .iter()
        .find(|p| p.phase_status().is_some_and(is_failure));
    let phase = failed
        .and_then(|p| p.phase_type().map(|t| t.as_str().to_owned()))
        .or_else(|| build.current_phase().map(str::to_owned))
        .unwrap_or_else(|| "UNKNOWN".into());
    let messages = failed
        .map(|p| {
            p.contexts()
                .iter()
                .filter(|c| c.message().is_some_and(|m| !m.is_empty()))
                .map(|c| match c.status_code() {
                    Some(code) if !code.is_empty() => {
                        format!("{code}: {}", c.message().unwrap_or_default())
                    }
                    _ => c.message().unwrap_or_default().to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    Failure {
        id: build.id().unwrap_or("?").to_owned(),
        status,
        phase,
        messages,
        log_tail: Vec::new(),
        log_group: build.logs().and_then(|l| l.group_name()).map(str::to_owned),
        log_stream: build
            .logs()
            .and_then(|l| l.stream_name())
            .map(str::to_owned),
        note: None,
    }
}

/// Whether a failed build was refused access before any of its own commands ran: in
/// PROVISIONING (CodeBuild creating the log stream as the service role) or DOWNLOAD_SOURCE (it
/// reading the source zip from S3 as that role). Right after `up` creates the role and its
/// inline policy, IAM may not have propagated them yet, and then exactly this happens; the
/// same build started a little later succeeds. An explicit deny (a service control policy, a
/// bucket policy) will not go away by waiting, so it does not count.
pub fn is_access_denied_before_build(phase: &str, messages: &[String]) -> bool {
    if !matches!(phase, "PROVISIONING" | "DOWNLOAD_SOURCE") {
        return false;
    }
    messages.iter().any(|m| {
        let m = m.to_ascii_lowercase();
        let denied = [
            "access_denied",
            "accessdenied",
            "access denied",
            "not authorized to perform",
        ]
        .iter()
        .any(|needle| m.contains(needle));
        denied && !m.contains("explicit deny")
    })
}

/// Polls `id` until it ends. Success returns the final record. A failed build returns at the
/// first poll that shows it. Past `opts.timeout`, or when `stop` resolves (Ctrl-C), it returns
/// `TimedOut`/`Interrupted` and the caller stops the build.
pub async fn follow<S: BuildSource>(
    source: &mut S,
    id: &str,
    opts: &FollowOptions,
    stop: impl Future<Output = ()>,
    mut on_progress: impl FnMut(&Progress),
) -> Result<Build, FollowError> {
    let started = Instant::now();
    let deadline = started + opts.timeout;
    tokio::pin!(stop);
    let mut last: Option<Progress> = None;
    loop {
        let build = tokio::select! {
            b = source.fetch(id) => b?,
            () = &mut stop => return Err(FollowError::Interrupted { id: id.to_owned() }),
        };
        match build.build_status() {
            Some(StatusType::Succeeded) => return Ok(build),
            Some(s) if is_failure(s) => {
                return Err(FollowError::Failed(Box::new(failure_of(&build))));
            }
            _ => {}
        }
        let now = Instant::now();
        let p = Progress {
            phase: build.current_phase().unwrap_or("SUBMITTED").to_owned(),
            elapsed: now - started,
        };
        if last.as_ref() != Some(&p) {
            on_progress(&p);
            last = Some(p);
        }
        if now >= deadline {
            return Err(FollowError::TimedOut {
                id: id.to_owned(),
                limit: opts.timeout,
            });
        }
        let wake = (now + opts.interval).min(deadline);
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = &mut stop => return Err(FollowError::Interrupted { id: id.to_owned() }),
        }
    }
}

/// The last `n` lines of a build's CloudWatch log; empty when there is none (yet).
pub async fn log_tail(ctx: &Ctx, group: &str, stream: &str, n: i32) -> Vec<String> {
    let out = ctx
        .logs
        .get_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .start_from_head(false)
        .limit(n)
        .send()
        .await;
    match out {
        Ok(o) => o
            .events()
            .iter()
            .filter_map(|e| e.message())
            .map(|m| m.trim_end().to_owned())
            .collect(),
        Err(e) => {
            tracing::debug!(group, stream, error = %e, "could not read the build log");
            Vec::new()
        }
    }
}

/// Starts a build of `project`. `source_version` is the S3 object version of the source zip:
/// it pins the build to exactly that upload when the bucket is versioned. The stack's buckets
/// are not, so S3 returns no version and the build reads whatever the key holds when it starts.
pub async fn start(
    ctx: &Ctx,
    project: &str,
    source_version: Option<&str>,
    tag: &str,
) -> Result<String, AwsError> {
    let env = aws_sdk_codebuild::types::EnvironmentVariable::builder()
        .name("IMAGE_TAG")
        .value(tag)
        .build()
        .map_err(|e| {
            AwsError::local("start a build of", "build-project", project, e.to_string())
        })?;
    let out = ctx
        .codebuild
        .start_build()
        .project_name(project)
        .set_source_version(source_version.map(str::to_owned))
        .environment_variables_override(env)
        .send()
        .await
        .map_err(aws("start a build of", "build-project", project))?;
    out.build_value()
        .and_then(|b| b.id())
        .map(str::to_owned)
        .ok_or_else(|| {
            AwsError::local(
                "start a build of",
                "build-project",
                project,
                "CodeBuild returned no build id",
            )
        })
}

/// Stops a build (after Ctrl-C or `--timeout`); a build that already ended is fine.
pub async fn stop(ctx: &Ctx, id: &str) -> Result<(), AwsError> {
    ctx.codebuild
        .stop_build()
        .id(id)
        .send()
        .await
        .map_err(aws("stop", KIND, id))?;
    Ok(())
}

/// The image digest the buildspec exported (`IMAGE_DIGEST`), if any.
pub fn exported_digest(build: &Build) -> Option<String> {
    build
        .exported_environment_variables()
        .iter()
        .find(|v| v.name() == Some("IMAGE_DIGEST"))
        .and_then(|v| v.value())
        .filter(|d| d.starts_with("sha256:"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::future::pending;

    use aws_sdk_codebuild::types::{BuildPhase, BuildPhaseType, LogsLocation, PhaseContext};

    use super::*;

    /// Plays constructed build records, one per poll; the last one repeats.
    struct Script {
        records: VecDeque<Build>,
        polls: usize,
    }

    impl BuildSource for Script {
        async fn fetch(&mut self, _id: &str) -> Result<Build, AwsError> {
            self.polls += 1;
            if self.records.len() > 1 {
                Ok(self.records.pop_front().expect("non-empty"))
            } else {
                self.records
                    .front()
                    .cloned()
                    .ok_or_else(|| AwsError::local("look up", KIND, "b", "no records"))
            }
        }
    }

    fn phase(t: BuildPhaseType, s: StatusType, msgs: &[(&str, &str)]) -> BuildPhase {
        let mut p = BuildPhase::builder().phase_type(t).phase_status(s);
        for (code, m) in msgs {
            p = p.contexts(
                PhaseContext::builder()
                    .status_code(*code)
                    .message(*m)
                    .build(),
            );
        }
        p.build()
    }

    fn record(status: StatusType, current: &str, phases: Vec<BuildPhase>) -> Build {
        Build::builder()
            .id("proj:1234")
            .build_status(status)
            .current_phase(current)
            .set_phases(Some(phases))
            .logs(
                LogsLocation::builder()
                    .group_name("/aws/codebuild/proj")
                    .stream_name("1234")
                    .build(),
            )
            .build()
    }

    fn in_progress(current: &str) -> Build {
        record(StatusType::InProgress, current, vec![])
    }

    fn opts() -> FollowOptions {
        FollowOptions {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(3600),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn in_progress_phases_are_reported_then_success_returns() {
        let mut s = Script {
            records: VecDeque::from([
                in_progress("SUBMITTED"),
                in_progress("PROVISIONING"),
                in_progress("PROVISIONING"),
                in_progress("BUILD"),
                record(StatusType::Succeeded, "COMPLETED", vec![]),
            ]),
            polls: 0,
        };
        let mut seen = Vec::new();
        let b = follow(&mut s, "proj:1234", &opts(), pending(), |p| {
            seen.push((p.phase.clone(), p.elapsed.as_secs()))
        })
        .await
        .expect("success");
        assert_eq!(b.build_status(), Some(&StatusType::Succeeded));
        assert_eq!(s.polls, 5);
        // One line per phase change, each with the elapsed time.
        assert_eq!(
            seen,
            [
                ("SUBMITTED".to_owned(), 0),
                ("PROVISIONING".to_owned(), 5),
                ("PROVISIONING".to_owned(), 10),
                ("BUILD".to_owned(), 15)
            ]
        );
    }

    async fn fails_at_once(status: StatusType, failing: BuildPhaseType, msg: (&str, &str)) {
        let finished = record(
            status.clone(),
            "COMPLETED",
            vec![
                phase(BuildPhaseType::Submitted, StatusType::Succeeded, &[]),
                phase(BuildPhaseType::Provisioning, StatusType::Succeeded, &[]),
                phase(failing.clone(), status.clone(), &[msg]),
                phase(BuildPhaseType::Finalizing, StatusType::Succeeded, &[]),
            ],
        );
        let mut s = Script {
            records: VecDeque::from([in_progress("PROVISIONING"), in_progress("BUILD"), finished]),
            polls: 0,
        };
        let start = Instant::now();
        let err = follow(&mut s, "proj:1234", &opts(), pending(), |_| {})
            .await
            .expect_err("a failed build is an error");
        // Stopped at the first poll that saw the failure, not at the timeout.
        assert_eq!(s.polls, 3);
        assert_eq!(Instant::now() - start, Duration::from_secs(10));
        let FollowError::Failed(f) = &err else {
            panic!("not a failure: {err}")
        };
        assert_eq!(f.status, status.as_str());
        assert_eq!(f.phase, failing.as_str());
        let expected = if msg.0.is_empty() {
            msg.1.to_owned()
        } else {
            format!("{}: {}", msg.0, msg.1)
        };
        assert_eq!(f.messages, [expected]);
        let text = err.to_string();
        assert!(text.contains(status.as_str()), "{text}");
        assert!(text.contains(msg.1), "{text}");
        assert!(text.contains("/aws/codebuild/proj"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn failed_build_stops_at_once_with_the_failing_phase() {
        fails_at_once(
            StatusType::Failed,
            BuildPhaseType::Build,
            (
                "COMMAND_EXECUTION_ERROR",
                "Error while executing command: docker build . Reason: exit status 101",
            ),
        )
        .await;
    }

    #[tokio::test(start_paused = true)]
    async fn fault_stops_at_once() {
        fails_at_once(
            StatusType::Fault,
            BuildPhaseType::Provisioning,
            (
                "BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE",
                "Unable to pull customer's container image",
            ),
        )
        .await;
    }

    #[tokio::test(start_paused = true)]
    async fn timed_out_stops_at_once() {
        fails_at_once(
            StatusType::TimedOut,
            BuildPhaseType::Build,
            ("BUILD_TIMED_OUT", "Build has timed out. "),
        )
        .await;
    }

    #[tokio::test(start_paused = true)]
    async fn stopped_stops_at_once() {
        fails_at_once(
            StatusType::Stopped,
            BuildPhaseType::PostBuild,
            ("", "Build was stopped by user"),
        )
        .await;
    }

    #[tokio::test(start_paused = true)]
    async fn stopped_without_a_failed_phase_names_the_current_one() {
        let mut s = Script {
            records: VecDeque::from([record(StatusType::Stopped, "BUILD", vec![])]),
            polls: 0,
        };
        let Err(FollowError::Failed(f)) = follow(&mut s, "x", &opts(), pending(), |_| {}).await
        else {
            panic!("expected a failure")
        };
        assert_eq!((f.status.as_str(), f.phase.as_str()), ("STOPPED", "BUILD"));
    }

    #[tokio::test(start_paused = true)]
    async fn our_timeout_is_bounded() {
        let mut s = Script {
            records: VecDeque::from([in_progress("BUILD")]),
            polls: 0,
        };
        let o = FollowOptions {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
        };
        let start = Instant::now();
        let err = follow(&mut s, "x", &o, pending(), |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, FollowError::TimedOut { .. }), "{err}");
        assert_eq!(Instant::now() - start, Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn stop_signal_interrupts_the_wait() {
        let mut s = Script {
            records: VecDeque::from([in_progress("BUILD")]),
            polls: 0,
        };
        let stop = tokio::time::sleep(Duration::from_secs(12));
        let err = follow(&mut s, "x", &opts(), stop, |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, FollowError::Interrupted { .. }), "{err}");
        assert_eq!(s.polls, 3);
    }

    /// Real phase contexts CodeBuild reported for a service role whose permissions were not
    /// (yet) in effect, as `failure_of` formats them (`status_code: message`).
    #[test]
    fn access_denied_before_the_build_is_recognised() {
        let log_stream = "ACCESS_DENIED: Service role arn:aws:iam::123456789012:role/demo-codebuild-abcd1234 does not allow AWS CodeBuild to create Amazon CloudWatch Logs log streams for build arn:aws:codebuild:eu-west-1:123456789012:build/demo-abcd1234:11c70fed-c53b-4468-856b-90ae2b7d0689. Error message: User: arn:aws:sts::123456789012:assumed-role/demo-codebuild-abcd1234/AWSCodeBuild-11c70fed-c53b-4468-856b-90ae2b7d0689 is not authorized to perform: logs:CreateLogStream on resource: arn:aws:logs:eu-west-1:123456789012:log-group:/aws/codebuild/demo-abcd1234:log-stream:11c70fed-c53b-4468-856b-90ae2b7d0689 because no identity-based policy allows the logs:CreateLogStream action";
        let s3_source = "CLIENT_ERROR: error while downloading key .thumbctl/build/source.zip, error: AccessDenied: User: arn:aws:sts::123456789012:assumed-role/demo-codebuild-abcd1234/AWSCodeBuild-c7feaf23-fe50-4b64-93a7-9ee725d0a450 is not authorized to perform: s3:GetObject on resource: \"arn:aws:s3:::demo-dst-abcd1234/.thumbctl/build/source.zip\" because no identity-based policy allows the s3:GetObject action\nstatus code: 403, request id: JTJFZ0RRWKYAXPSG, host id: iPEc= for primary source and source version arn:aws:s3:::demo-dst-abcd1234/.thumbctl/build/source.zip";
        let s3_terse = "CLIENT_ERROR: AccessDenied: Access Denied\n status code: 403, request id: BTFHJDCXTMWYAVWJ, host id: LNdK= for primary source and source version arn:aws:s3:::demo-dst-abcd1234/.thumbctl/build/source.zip";
        assert!(is_access_denied_before_build(
            "PROVISIONING",
            &[log_stream.into()]
        ));
        assert!(is_access_denied_before_build(
            "DOWNLOAD_SOURCE",
            &[s3_source.into()]
        ));
        assert!(is_access_denied_before_build(
            "DOWNLOAD_SOURCE",
            &["other: first".into(), s3_terse.into()]
        ));

        // Our own commands failing, even on a permission, is not a propagation delay: the
        // buildspec ran with the role already usable.
        let push = "COMMAND_EXECUTION_ERROR: Error while executing command: docker push \"$REPOSITORY_URI:$IMAGE_TAG\". Reason: exit status 1";
        assert!(!is_access_denied_before_build("BUILD", &[push.into()]));
        assert!(!is_access_denied_before_build(
            "BUILD",
            &[log_stream.into()]
        ));
        // Other early failures are not retried.
        assert!(!is_access_denied_before_build(
            "DOWNLOAD_SOURCE",
            &["YAML_FILE_ERROR: YAML file does not exist".into()]
        ));
        assert!(!is_access_denied_before_build(
            "PROVISIONING",
            &[
                "BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE: Unable to pull customer's container image"
                    .into()
            ]
        ));
        assert!(!is_access_denied_before_build("PROVISIONING", &[]));
        // An explicit deny stays a deny however long we wait.
        let scp = "CLIENT_ERROR: AccessDenied: User: arn:aws:sts::123456789012:assumed-role/demo-codebuild-abcd1234/AWSCodeBuild-1 is not authorized to perform: s3:GetObject on resource: \"arn:aws:s3:::demo-dst-abcd1234/.thumbctl/build/source.zip\" with an explicit deny in a service control policy";
        assert!(!is_access_denied_before_build(
            "DOWNLOAD_SOURCE",
            &[scp.into()]
        ));

        // Fed exactly what `failure_of` makes of a build record.
        let (code, message) = log_stream.split_once(": ").expect("code: message");
        let b = record(
            StatusType::Failed,
            "COMPLETED",
            vec![
                phase(BuildPhaseType::Submitted, StatusType::Succeeded, &[]),
                phase(BuildPhaseType::Queued, StatusType::Succeeded, &[]),
                phase(
                    BuildPhaseType::Provisioning,
                    StatusType::Failed,
                    &[(code, message)],
                ),
            ],
        );
        let f = failure_of(&b);
        assert!(
            is_access_denied_before_build(&f.phase, &f.messages),
            "{f:?}"
        );
    }

    #[test]
    fn exported_digest_is_read() {
        let b = Build::builder()
            .exported_environment_variables(
                aws_sdk_codebuild::types::ExportedEnvironmentVariable::builder()
                    .name("IMAGE_DIGEST")
                    .value("sha256:abc")
                    .build(),
            )
            .build();
        assert_eq!(exported_digest(&b).as_deref(), Some("sha256:abc"));
        assert_eq!(exported_digest(&Build::builder().build()), None);
    }
}
