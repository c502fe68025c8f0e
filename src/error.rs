//! One error type for every AWS call thumbctl makes.
//!
//! AWS errors are classified once, here, so that every resource module can ask the same
//! questions ("is it gone?", "does it already exist?", "may a retry help?") without each
//! matching its own service's error variants. The message a user sees always names the
//! action, the resource and the AWS error code, and ends with what to do next.

use std::fmt;

use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// What kind of failure an AWS error is, as far as thumbctl's decisions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The resource does not exist (deleting it is therefore done).
    NotFound,
    /// A create found the name already in use in this account (adopt it if we planned it).
    AlreadyExists,
    /// The name is held by another AWS account (S3 bucket names are global).
    TakenElsewhere,
    /// The caller lacks a permission.
    AccessDenied,
    /// No usable credentials, or credentials AWS rejected.
    Credentials,
    /// The endpoint could not be reached (network, wrong region, emulator not running).
    Unreachable,
    /// Throttling that outlasted the SDK's retries.
    Throttled,
    /// IAM has not propagated a new role yet; retrying shortly helps.
    Propagation,
    /// The resource is still busy with an earlier change (a fresh bucket, a function update
    /// in progress, a permission S3 cannot see yet); retrying shortly helps.
    Busy,
    /// The account itself is not allowed this yet, as brand-new accounts are not: CloudFront
    /// until AWS has verified the account, CodeBuild with a quota of 0 running builds, Lambda
    /// with too little concurrency to reserve any. No retry and no IAM permission helps; a
    /// support case, a quota increase or another way of working does.
    AccountLimit,
    /// Anything else.
    Other,
}

/// An AWS call that failed, with the resource it concerned.
#[derive(Debug, thiserror::Error)]
pub struct AwsError {
    pub action: &'static str,
    pub kind: &'static str,
    pub name: String,
    pub code: Option<String>,
    pub message: String,
    pub class: Class,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} `{}` failed", self.action, self.kind, self.name)?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = self.hint() {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl AwsError {
    /// Builds the error from any SDK operation error.
    pub fn from_sdk<E>(
        action: &'static str,
        kind: &'static str,
        name: impl Into<String>,
        err: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let full = DisplayErrorContext(&err).to_string();
        let message = match (err.message(), status) {
            (Some(m), _) => m.to_owned(),
            // AWS answered but the SDK found no message: show what was sent, if anything (a
            // proxy, an emulator or a mis-routed endpoint answers in its own format); the
            // SDK's own text would be a debug dump.
            (None, Some(_)) if err.code().is_none() => match raw_body(&err) {
                Some(body) => format!("the answer was not an AWS error the SDK could read: {body}"),
                // S3 answers a HEAD it refuses with a bare 403: say which permission it checks.
                None if status == Some(403) => {
                    "S3 refused without details, as it does for HEAD requests: for an object that \
                     means s3:GetObject is not allowed, for a bucket s3:ListBucket"
                        .into()
                }
                None => {
                    "the response carried no error details (S3 sends none for HEAD requests)".into()
                }
            },
            (None, _) => full.clone(),
        };
        let (code, class) = match err.code() {
            Some(code) => (Some(code.to_owned()), classify(Some(code), &full)),
            // A HEAD answer has no body, so S3's SlowDown arrives as a bare 503: say the
            // status, and treat 503/429 as the throttling they are.
            None => match status {
                Some(s @ (429 | 503)) => (Some(format!("HTTP {s}")), Class::Throttled),
                // A bare 403 is a refusal whatever the body says (S3 sends none for HEAD).
                Some(403) => (Some("HTTP 403".into()), Class::AccessDenied),
                Some(s) if s >= 400 => (Some(format!("HTTP {s}")), classify(None, &full)),
                _ => (None, classify(None, &full)),
            },
        };
        AwsError {
            action,
            kind,
            name: name.into(),
            code,
            message,
            class,
        }
    }

    /// No credentials could be loaded (before any call was made).
    pub fn no_credentials(message: String) -> Self {
        AwsError {
            action: "load",
            kind: "AWS credentials",
            name: "default chain".into(),
            code: None,
            message,
            class: Class::Credentials,
        }
    }

    /// An error thumbctl itself detects about a resource (no AWS code).
    pub fn local(
        action: &'static str,
        kind: &'static str,
        name: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        AwsError {
            action,
            kind,
            name: name.into(),
            code: None,
            message: message.into(),
            class: Class::Other,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.class == Class::NotFound
    }

    pub fn is_already_exists(&self) -> bool {
        self.class == Class::AlreadyExists
    }

    /// What the user should do about it, by class.
    pub fn hint(&self) -> Option<String> {
        Some(match self.class {
            Class::Credentials => "no valid AWS credentials: set AWS_PROFILE or pass --profile, run `aws configure` or `aws sso login`, \
                 or point --endpoint-url at a local emulator"
                .into(),
            Class::Unreachable => "the AWS endpoint could not be reached: check --region (e.g. eu-west-1), your network, \
                 or that the emulator behind --endpoint-url is running"
                .into(),
            Class::AccessDenied => format!(
                "your AWS identity may not {} {}: grant it that permission (see README, \"Permissions\") or use another --profile",
                self.action, self.kind
            ),
            Class::TakenElsewhere => format!(
                "the name `{}` belongs to another AWS account; bucket names are global. Remove the stack's state file's \
                 suffix or choose another --stack to get a fresh name",
                self.name
            ),
            Class::Throttled => "AWS kept throttling after retries: wait a minute and rerun the same command; \
                 it resumes where it stopped"
                .into(),
            Class::Propagation => "IAM had not propagated the new role yet: rerun the same command in a minute".into(),
            Class::Busy => "AWS was still applying an earlier change to it and did not finish within a minute: \
                 rerun the same command; it resumes where it stopped"
                .into(),
            Class::AlreadyExists => format!(
                "`{}` already exists but is not recorded in this stack's state: thumbctl will not adopt what it did not create; \
                 delete it yourself or use another --stack",
                self.name
            ),
            Class::AccountLimit => self.account_limit_hint(),
            Class::NotFound | Class::Other => return None,
        })
    }
}

impl AwsError {
    /// What to do when the account is not allowed this yet, by service.
    fn account_limit_hint(&self) -> String {
        match self.code.as_deref() {
            // "more than 1 builds" and up: the quota is there, other builds hold it.
            Some("AccountLimitExceededException") if !self.message.contains("more than 0 ") => {
                "the account's CodeBuild builds already fill its quota of concurrently running builds: \
                 rerun when they have finished, or request a higher quota (Service Quotas, AWS CodeBuild)"
                    .into()
            }
            Some("AccountLimitExceededException") => {
                "CodeBuild will not start builds in this account: its quota of concurrently running builds is \
                 too low (brand-new accounts start at 0). Request a higher \"Concurrently running builds for \
                 Linux/Medium environment\" (Service Quotas, AWS CodeBuild) or open a support case; meanwhile \
                 run `thumbctl up` on a Linux machine (x86_64 or arm64), where it ships itself as the function \
                 and builds nothing, or build there with `thumbctl up --local`, or pass --image-uri"
                    .into()
            }
            Some("InvalidParameterValueException") => {
                "the account's Lambda concurrency leaves no room for this reservation: Lambda keeps the \
                 minimum it names unreserved, and brand-new accounts often have only 10 in all. Request a \
                 higher \"Concurrent executions\" quota (Service Quotas, AWS Lambda), or choose a smaller \
                 --max-concurrency, or rerun with --max-concurrency none (no reservation: the function \
                 shares the account's pool)"
                    .into()
            }
            _ => "CloudFront will not create anything in this AWS account until AWS has verified it \
                 (brand-new accounts are not): open a support case at \
                 https://console.aws.amazon.com/support/home#/ quoting this message, then rerun `thumbctl up`, \
                 which finishes the stack (with --cdn the function waits for the distribution, whose id it is \
                 given). Or `thumbctl destroy` and make the stack again without --cdn: it then never calls \
                 CloudFront, and links are presigned"
                .into(),
        }
    }
}

/// Refusals of brand-new accounts, each reported by users many times:
/// - CloudFront's 403 `AccessDenied` "Your account must be verified before you can add new
///   CloudFront resources. To verify your account, please contact AWS Support [...]"
///   (aws-samples/aws-cdk-examples#279, hashicorp/terraform-provider-aws#36663), which is not
///   a missing IAM permission;
/// - CodeBuild's `AccountLimitExceededException` "Cannot have more than 0 builds in queue for
///   the account" on StartBuild (aws-ia/terraform-aws-control_tower_account_factory#100);
/// - Lambda's `InvalidParameterValueException` "Specified ReservedConcurrentExecutions for
///   function decreases account's UnreservedConcurrentExecution below its minimum value of
///   [10]." on PutFunctionConcurrency (aws-samples/alarm-context-tool#2).
fn is_account_limit(code: &str, full: &str) -> bool {
    match code {
        "AccessDenied" => full.contains("account must be verified"),
        "AccountLimitExceededException" => true,
        "InvalidParameterValueException" => full.contains("UnreservedConcurrentExecution"),
        _ => false,
    }
}

const NOT_FOUND: &[&str] = &[
    "NoSuchBucket",
    "NotFound",
    "NoSuchEntity",
    "NoSuchKey",
    "ResourceNotFoundException",
    "RepositoryNotFoundException",
    "NotFoundException",
    "NoSuchConfiguration",
    "NoSuchBucketPolicy",
    // SQS (its JSON protocol and its older query protocol name it differently).
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
    "NoSuchLifecycleConfiguration",
    "LifecyclePolicyNotFoundException",
    // CloudFront.
    "NoSuchDistribution",
    "NoSuchOriginAccessControl",
];
const ALREADY_EXISTS: &[&str] = &[
    "BucketAlreadyOwnedByYou",
    "EntityAlreadyExists",
    "RepositoryAlreadyExistsException",
    "ResourceAlreadyExistsException",
    "ResourceInUseException",
    // CloudFront: a reused CallerReference, an origin access control name in use.
    "DistributionAlreadyExists",
    "OriginAccessControlAlreadyExists",
];
const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "AuthorizationErrorException",
];
const CREDENTIALS: &[&str] = &[
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
];
const THROTTLED: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
];

/// Answers AWS documents as "try again shortly", which moto never sends:
/// - Lambda's `ResourceConflictException` "An update is in progress for resource" while a
///   function's last update is InProgress, and "The function is currently in the following
///   state: Pending" (remotion-dev/remotion#1186; also "The resource arn:... is currently in
///   the following state: 'Pending'. StateReasonCode: 'Creating'",
///   aws/serverless-application-model#2356) while it is being created. The same code also
///   says "the statement id already exists" or "Function already exist" (see
///   [`is_already_there`]), and names other states (Failed) that no wait cures;
/// - S3's `OperationAborted` ("A conflicting conditional operation is currently in progress")
///   on settings calls right after `CreateBucket`;
/// - S3's `InvalidArgument` "Unable to validate the following destination configurations"
///   until the function policy that lets S3 invoke the function has propagated;
/// - CloudFront's `DistributionNotDisabled` while a disable is still deploying (minutes),
///   `OriginAccessControlInUse` while the distribution that used it is still being deleted,
///   and `PreconditionFailed` when the ETag read a moment ago is stale (read it again).
fn is_busy(code: &str, full: &str) -> bool {
    match code {
        "DistributionNotDisabled" | "OriginAccessControlInUse" | "PreconditionFailed" => true,
        "ResourceConflictException" => {
            full.contains("in progress")
                || (full.contains("currently in the following state") && full.contains("Pending"))
        }
        "OperationAborted" => true,
        "InvalidArgument" => full.contains("Unable to validate the following destination"),
        _ => false,
    }
}

/// Lambda's `ResourceConflictException` for a name or statement id in use: "The statement id
/// (thumbctl-s3-invoke) provided already exists. [...]", "Function already exist: NAME". Only
/// these mean the thing is there; the code alone does not (a Pending function answers it too).
fn is_already_there(code: &str, full: &str) -> bool {
    code == "ResourceConflictException" && full.contains("already exist")
}

fn classify(code: Option<&str>, full: &str) -> Class {
    if let Some(code) = code {
        if NOT_FOUND.contains(&code) {
            return Class::NotFound;
        }
        if ALREADY_EXISTS.contains(&code) || is_already_there(code, full) {
            return Class::AlreadyExists;
        }
        if is_account_limit(code, full) {
            return Class::AccountLimit;
        }
        if code == "BucketAlreadyExists" {
            return Class::TakenElsewhere;
        }
        if ACCESS_DENIED.contains(&code) {
            return Class::AccessDenied;
        }
        if CREDENTIALS.contains(&code) {
            return Class::Credentials;
        }
        if THROTTLED.contains(&code) {
            return Class::Throttled;
        }
        if is_busy(code, full) {
            return Class::Busy;
        }
        // Lambda and CodeBuild reject a role created seconds ago until IAM has propagated it.
        // Likewise a destination the role was granted a moment ago: "The provided execution
        // role does not have permissions to call SendMessage on SQS".
        if (code == "InvalidParameterValueException"
            && (full.contains("cannot be assumed")
                || full.contains("does not have permissions to call")))
            || (code == "InvalidInputException" && full.contains("AssumeRole"))
        {
            return Class::Propagation;
        }
        return Class::Other;
    }
    // Without a code the failure happened before AWS answered: credentials or transport.
    let lower = full.to_ascii_lowercase();
    if lower.contains("credential") {
        Class::Credentials
    } else if lower.contains("dispatch failure")
        || lower.contains("io error")
        || lower.contains("timeout")
        || lower.contains("dns")
    {
        Class::Unreachable
    } else {
        Class::Other
    }
}

/// The start of an error answer's body, on one line, when it has one.
fn raw_body<E>(err: &SdkError<E, HttpResponse>) -> Option<String> {
    let bytes = err.raw_response()?.body().bytes()?;
    let text = String::from_utf8_lossy(bytes);
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return None;
    }
    Some(line.chars().take(400).collect())
}

/// `Ok(None)` for a not-found error, so deletes and existence checks read naturally.
pub trait OrNotFound<T> {
    fn or_not_found(self) -> Result<Option<T>, AwsError>;
}

impl<T> OrNotFound<T> for Result<T, AwsError> {
    fn or_not_found(self) -> Result<Option<T>, AwsError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Shorthand used by every resource module: `call.await.map_err(aws("create", "bucket", name))`.
pub fn aws<'a, E>(
    action: &'static str,
    kind: &'static str,
    name: &'a str,
) -> impl FnOnce(SdkError<E, HttpResponse>) -> AwsError + 'a
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| AwsError::from_sdk(action, kind, name, e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    #[test]
    fn codes_classify() {
        assert_eq!(classify(Some("NoSuchBucket"), ""), Class::NotFound);
        assert_eq!(
            classify(Some("BucketAlreadyExists"), ""),
            Class::TakenElsewhere
        );
        assert_eq!(
            classify(Some("EntityAlreadyExists"), ""),
            Class::AlreadyExists
        );
        assert_eq!(
            classify(
                Some("InvalidParameterValueException"),
                "The role defined for the function cannot be assumed by Lambda."
            ),
            Class::Propagation
        );
        assert_eq!(
            classify(Some("InvalidParameterValueException"), "bad memory"),
            Class::Other
        );
        assert_eq!(
            classify(
                Some("ResourceConflictException"),
                "The operation cannot be performed at this time. An update is in progress for resource: arn:aws:lambda:eu-west-1:1:function:f"
            ),
            Class::Busy
        );
        assert_eq!(
            classify(
                Some("ResourceConflictException"),
                "The statement id (thumbctl-s3-invoke) provided already exists. Please provide a new statement id, or remove the existing statement."
            ),
            Class::AlreadyExists
        );
        assert_eq!(
            classify(
                Some("ResourceConflictException"),
                "Function already exist: thumbctl-fn"
            ),
            Class::AlreadyExists
        );
        // A function still being created: busy, not "exists" (remotion-dev/remotion#1186,
        // aws/serverless-application-model#2356).
        assert_eq!(
            classify(
                Some("ResourceConflictException"),
                "The operation cannot be performed at this time. The function is currently in the following state: Pending"
            ),
            Class::Busy
        );
        assert_eq!(
            classify(
                Some("ResourceConflictException"),
                "The operation cannot be performed at this time. The resource arn:aws:lambda:us-east-1:1:function:f is currently in the following state: 'Pending'. StateReasonCode: 'Creating'"
            ),
            Class::Busy
        );
        // A Failed function stays Failed: neither busy nor there.
        assert_eq!(
            classify(
                Some("ResourceConflictException"),
                "The operation cannot be performed at this time. The function is currently in the following state: Failed"
            ),
            Class::Other
        );
        assert_eq!(classify(Some("OperationAborted"), ""), Class::Busy);
        assert_eq!(classify(Some("NoSuchDistribution"), ""), Class::NotFound);
        assert_eq!(
            classify(Some("NoSuchOriginAccessControl"), ""),
            Class::NotFound
        );
        assert_eq!(
            classify(Some("DistributionAlreadyExists"), ""),
            Class::AlreadyExists
        );
        assert_eq!(classify(Some("DistributionNotDisabled"), ""), Class::Busy);
        assert_eq!(classify(Some("OriginAccessControlInUse"), ""), Class::Busy);
        assert_eq!(classify(Some("PreconditionFailed"), ""), Class::Busy);
        assert_eq!(
            classify(
                Some("InvalidArgument"),
                "Unable to validate the following destination configurations"
            ),
            Class::Busy
        );
        assert_eq!(
            classify(
                Some("AccessDenied"),
                "Your account must be verified before you can add new CloudFront resources. To verify your account, please contact AWS Support (https://console.aws.amazon.com/support/home#/) and include this error message."
            ),
            Class::AccountLimit
        );
        assert_eq!(
            classify(
                Some("AccessDenied"),
                "User: arn:aws:iam::1:user/u is not authorized to perform: cloudfront:CreateDistribution"
            ),
            Class::AccessDenied
        );
        assert_eq!(
            classify(
                Some("AccountLimitExceededException"),
                "Cannot have more than 0 builds in queue for the account"
            ),
            Class::AccountLimit
        );
        assert_eq!(
            classify(
                Some("InvalidParameterValueException"),
                "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [10]."
            ),
            Class::AccountLimit
        );
        assert_eq!(
            classify(None, "dispatch failure: io error: connection refused"),
            Class::Unreachable
        );
        assert_eq!(
            classify(None, "failed to load credentials: no providers in chain"),
            Class::Credentials
        );
        // CodeBuild names a role it cannot assume yet; other codes naming AssumeRole are not
        // propagation.
        assert_eq!(
            classify(
                Some("InvalidInputException"),
                "CodeBuild is not authorized to perform: sts:AssumeRole on service role"
            ),
            Class::Propagation
        );
        assert_eq!(
            classify(Some("InvalidInputException"), "Invalid image"),
            Class::Other
        );
        assert_eq!(
            classify(Some("ValidationException"), "sts:AssumeRole is not allowed"),
            Class::Other
        );
        for transport in [
            "io error: broken pipe",
            "dispatch failure",
            "operation timeout",
            "dns error",
        ] {
            assert_eq!(classify(None, transport), Class::Unreachable, "{transport}");
        }
        assert_eq!(classify(None, "something else"), Class::Other);
    }

    /// An answer of `status` with `body`, and the code and message the SDK read from it.
    fn answered(
        status: u16,
        body: &'static str,
        code: Option<&str>,
        message: Option<&str>,
    ) -> AwsError {
        let mut meta = ErrorMetadata::builder();
        if let Some(c) = code {
            meta = meta.code(c);
        }
        if let Some(m) = message {
            meta = meta.message(m);
        }
        let status = status.try_into().expect("a valid status");
        let err = SdkError::service_error(
            GetCallerIdentityError::generic(meta.build()),
            HttpResponse::new(status, SdkBody::from(body)),
        );
        AwsError::from_sdk("head", "object", "b/k", err)
    }

    #[test]
    fn answers_without_a_code_are_told_by_their_status_and_body() {
        // S3's HEAD: no body, so no code; the status says what it was.
        let e = answered(503, "", None, None);
        assert_eq!(
            (e.code.as_deref(), e.class),
            (Some("HTTP 503"), Class::Throttled)
        );
        let e = answered(429, "", None, None);
        assert_eq!(e.class, Class::Throttled);
        let e = answered(403, "", None, None);
        assert_eq!(
            (e.code.as_deref(), e.class),
            (Some("HTTP 403"), Class::AccessDenied)
        );
        assert!(e.message.contains("s3:GetObject"), "{}", e.message);
        let e = answered(404, "", None, None);
        assert_eq!(e.code.as_deref(), Some("HTTP 404"));
        assert_eq!(
            e.message,
            "the response carried no error details (S3 sends none for HEAD requests)"
        );
        // An answer in another format (a proxy, a mis-routed endpoint): its body is shown.
        let e = answered(502, "<html>\n  Bad   gateway</html>", None, None);
        assert_eq!(
            e.message,
            "the answer was not an AWS error the SDK could read: <html> Bad gateway</html>"
        );
        // A bare 403 is a refusal whatever its body says.
        let e = answered(403, "<html>denied</html>", None, None);
        assert_eq!(e.class, Class::AccessDenied);
        assert!(e.message.ends_with("<html>denied</html>"), "{}", e.message);
        // Below 400 there is no error status to name.
        let e = answered(301, "", None, None);
        assert_eq!(e.code, None);
    }

    #[test]
    fn answers_with_a_code_are_classified_by_it() {
        let e = answered(404, "", Some("NoSuchKey"), Some("The key does not exist"));
        assert_eq!(e.code.as_deref(), Some("NoSuchKey"));
        assert_eq!(e.message, "The key does not exist");
        assert!(e.is_not_found() && !e.is_already_exists());
        // A code without a message: the SDK's own account of it, not the body.
        let e = answered(400, "<Error/>", Some("Teapot"), None);
        assert_eq!(e.class, Class::Other);
        assert!(
            !e.message.starts_with("the answer was not"),
            "{}",
            e.message
        );
        let e = answered(409, "", Some("EntityAlreadyExists"), Some("Role exists"));
        assert!(e.is_already_exists() && !e.is_not_found());
    }

    #[test]
    fn not_found_reads_as_none() {
        let gone = AwsError {
            class: Class::NotFound,
            ..AwsError::local("delete", "queue", "q", "gone")
        };
        assert_eq!(Err::<u8, _>(gone).or_not_found().ok(), Some(None));
        assert_eq!(Ok::<u8, AwsError>(7).or_not_found().ok(), Some(Some(7)));
        let other = AwsError::local("delete", "queue", "q", "refused");
        assert!(Err::<u8, _>(other).or_not_found().is_err());
    }

    #[test]
    fn messages_name_action_resource_code_and_what_to_do() {
        let e = AwsError {
            code: Some("AccessDenied".into()),
            class: Class::AccessDenied,
            ..AwsError::local("create", "bucket", "demo-src", "not allowed")
        };
        assert_eq!(
            e.to_string(),
            "create bucket `demo-src` failed (AccessDenied): not allowed\n  hint: your AWS identity may \
             not create bucket: grant it that permission (see README, \"Permissions\") or use another --profile"
        );
        let e = AwsError::local("read", "state file", "s.json", "bad JSON");
        assert_eq!(e.to_string(), "read state file `s.json` failed: bad JSON");
        assert_eq!(e.hint(), None);
        let creds = AwsError::no_credentials("none".into());
        assert!(creds.hint().is_some_and(|h| h.contains("AWS_PROFILE")));
        let limit = |code: &str, message: &str| {
            AwsError {
                code: Some(code.into()),
                class: Class::AccountLimit,
                ..AwsError::local("start", "build", "b", message)
            }
            .hint()
            .expect("a hint")
        };
        let queued = limit(
            "AccountLimitExceededException",
            "Cannot have more than 0 builds in queue for the account",
        );
        assert!(queued.contains("brand-new accounts start at 0"), "{queued}");
        let full = limit(
            "AccountLimitExceededException",
            "Cannot have more than 1 builds in queue for the account",
        );
        assert!(full.contains("already fill its quota"), "{full}");
        let lambda = limit(
            "InvalidParameterValueException",
            "decreases account's UnreservedConcurrentExecution",
        );
        assert!(lambda.contains("--max-concurrency"), "{lambda}");
        let cdn = limit("AccessDenied", "Your account must be verified");
        assert!(cdn.contains("CloudFront"), "{cdn}");
    }
}
