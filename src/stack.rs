//! The stack's plan: every resource name, ARN and setting, derived from the stack name,
//! the stored suffix, the account and the region. Pure: no AWS calls, so it is unit-tested
//! and `up --dry-run` can print it.
//!
//! Every name is decided here, before anything is created. That is what lets `up` write its
//! intent into the state before each create call and lets a rerun adopt exactly what a crashed
//! run left behind.

use serde::{Deserialize, Serialize};

/// Tag keys on everything thumbctl creates. `status --orphans` finds lost resources by them.
pub const TAG_STACK: &str = "thumbctl:stack";
pub const TAG_MANAGED_BY: &str = "thumbctl:managed-by";
pub const MANAGED_BY: &str = "thumbctl";
/// IAM is global: the same stack name in two regions has two sets of roles in one namespace.
/// `--orphans` only touches roles whose region tag says they belong to the region it runs in.
pub const TAG_REGION: &str = "thumbctl:region";

/// Where `build-image` puts the packaged sources: in the destination bucket, which the
/// function never reads, so an upload there can never trigger a thumbnail run.
pub const BUILD_PREFIX: &str = ".thumbctl/build/";
pub const BUILD_SOURCE_KEY: &str = ".thumbctl/build/source.zip";
/// Where `reprocess --batch` writes its manifests and S3 Batch Operations its reports.
pub const BATCH_PREFIX: &str = ".thumbctl/batch/";
pub const LOG_RETENTION_DAYS: i32 = 14;
pub const PERMISSION_SID: &str = "thumbctl-s3-invoke";
pub const NOTIFICATION_ID: &str = "thumbctl-thumbnails";
pub const ROLE_POLICY_NAME: &str = "thumbctl";
/// The Sid of the one bucket-policy statement `up --cdn` owns; `destroy` removes only it.
pub const CDN_POLICY_SID: &str = "ThumbctlCloudFrontReadsThumbnails";
/// CloudFront's managed cache policy CachingOptimized: long TTLs, gzip and brotli in the
/// cache key, no cookies or query strings (thumbnail keys never change content).
pub const CACHING_OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";

/// How many images the repository keeps (its lifecycle policy expires older ones).
pub const KEEP_IMAGES: u32 = 5;

/// One lifecycle rule of a stack bucket, as thumbctl writes and compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleRule {
    pub id: &'static str,
    pub expire_days: Option<i32>,
    pub abort_incomplete_days: Option<i32>,
}

/// Longest stack name: `<stack>-codebuild-<8>` must fit IAM's 64-character role names with room.
pub const MAX_STACK_LEN: usize = 32;

/// Checks a stack name and says exactly what is wrong with it.
pub fn validate_stack_name(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("the stack name is empty".into());
    }
    if name.len() > MAX_STACK_LEN {
        return Err(format!(
            "`{name}` is {} characters; at most {MAX_STACK_LEN} are allowed",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "`{name}` contains `{bad}`; use lower-case letters, digits and hyphens only (e.g. `my-thumbs`)"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!("`{name}` must start with a lower-case letter"));
    }
    if name.ends_with('-') || name.contains("--") {
        return Err(format!(
            "`{name}` must not end with a hyphen or contain `--`"
        ));
    }
    Ok(name.to_owned())
}

/// A fresh random suffix: makes the globally unique S3 names unlikely to collide.
pub fn new_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The ARN partition a region belongs to (China and GovCloud have their own).
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The DNS suffix of AWS's endpoints in a region: the China regions answer under
/// `amazonaws.com.cn`, so a host built as `...amazonaws.com` there does not resolve.
pub fn dns_suffix_of(region: &str) -> &'static str {
    match partition_of(region) {
        "aws-cn" => "amazonaws.com.cn",
        _ => "amazonaws.com",
    }
}

/// What the function is configured with; stored in the state so reruns can tell what changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub sizes: Vec<String>,
    pub format: String,
    pub quality: u8,
    pub memory_mb: i32,
    pub timeout_s: i32,
    pub image_uri: Option<String>,
    #[serde(default)]
    pub notify_emails: Vec<String>,
    #[serde(default)]
    pub notify_urls: Vec<String>,
    /// How thumbctl made `image_uri`; absent when it was given (`--image-uri`) or recorded by
    /// an older thumbctl. A plain `up` ships itself again only over an image it shipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_source: Option<ImageSource>,
    /// The image's architecture, when thumbctl knows it; the function is created with it and
    /// switched to it on a rerun. Absent: x86_64 at creation, and reruns leave it be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<crate::image::Arch>,
    /// Reserved concurrency of the function; `None`: unreserved (the account's pool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<i32>,
    /// Lifecycle expiration of originals (source bucket) and thumbnails, in days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_originals_days: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_thumbnails_days: Option<i32>,
    /// An existing bucket of the user's used as the source: never emptied, deleted or
    /// reconfigured; only our notification is merged into it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted_source_bucket: Option<String>,
    /// The customer managed KMS key (key or alias ARN) the adopted source bucket encrypts
    /// with by default: the function's role may decrypt with it. Read from the bucket on
    /// every `up`, never given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_kms_key: Option<String>,
    /// Only keys under this prefix trigger the function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_prefix: Option<String>,
    /// `reprocess --batch` was used: the stack has a role for S3 Batch Operations.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch_operations: bool,
    /// `up --cdn`: a CloudFront distribution serves the thumbnails. Recorded so that a
    /// plain rerun of `up` keeps it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cdn: bool,
    /// `up --keep-copyright`: thumbnails carry the original's EXIF Artist and Copyright.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_copyright: bool,
    /// The id CloudFront gave the `--cdn` distribution: the function invalidates there what
    /// it deletes. Not chosen and not recorded here (the state's `cdn` entry is its one
    /// record): whoever makes a plan from a state fills it in ([`Settings::with_cdn_id`]).
    #[serde(skip)]
    pub cdn_distribution_id: Option<String>,
}

/// Where the function's image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageSource {
    /// The thumbctl binary that ran `up`, with what it needs to start.
    #[serde(rename = "self")]
    ThisBinary,
    /// lambda-image compiled on the machine that ran `up --local` or `build-image --local`.
    #[serde(rename = "local")]
    Local,
    /// lambda-image built by the stack's CodeBuild project.
    #[serde(rename = "codebuild")]
    CodeBuild,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            sizes: vec!["128".into(), "256".into(), "512".into()],
            format: "jpeg".into(),
            quality: 80,
            memory_mb: 1024,
            timeout_s: 60,
            image_uri: None,
            notify_emails: Vec::new(),
            notify_urls: Vec::new(),
            image_source: None,
            architecture: None,
            max_concurrency: None,
            expire_originals_days: None,
            expire_thumbnails_days: None,
            adopted_source_bucket: None,
            source_kms_key: None,
            source_prefix: None,
            batch_operations: false,
            cdn: false,
            keep_copyright: false,
            cdn_distribution_id: None,
        }
    }
}

impl Settings {
    /// These settings with the distribution id a state's `cdn` entry records (`None` without
    /// a CDN, or before the distribution exists).
    pub fn with_cdn_id(mut self, recorded: Option<&String>) -> Settings {
        self.cdn_distribution_id = recorded.filter(|_| self.cdn).cloned();
        self
    }
}

/// Every name and ARN of one stack.
#[derive(Debug, Clone)]
pub struct Plan {
    pub stack: String,
    pub suffix: String,
    pub account: String,
    pub region: String,
    pub settings: Settings,
}

impl Plan {
    fn base(&self) -> String {
        format!("{}-{}", self.stack, self.suffix)
    }
    pub fn source_bucket(&self) -> String {
        match &self.settings.adopted_source_bucket {
            Some(b) => b.clone(),
            None => format!("{}-src-{}", self.stack, self.suffix),
        }
    }
    /// Whether the source bucket is the user's own (adopted), not one this stack made.
    pub fn source_adopted(&self) -> bool {
        self.settings.adopted_source_bucket.is_some()
    }
    pub fn dest_bucket(&self) -> String {
        format!("{}-dst-{}", self.stack, self.suffix)
    }
    pub fn lambda_role(&self) -> String {
        format!("{}-lambda-{}", self.stack, self.suffix)
    }
    pub fn codebuild_role(&self) -> String {
        format!("{}-codebuild-{}", self.stack, self.suffix)
    }
    pub fn batch_role(&self) -> String {
        format!("{}-batch-{}", self.stack, self.suffix)
    }
    pub fn repository(&self) -> String {
        self.base()
    }
    pub fn project(&self) -> String {
        self.base()
    }
    pub fn table(&self) -> String {
        self.base()
    }
    pub fn topic(&self) -> String {
        self.base()
    }
    pub fn function(&self) -> String {
        self.base()
    }
    /// The queue of events Lambda gave up on (the function's on-failure destination).
    pub fn failure_queue(&self) -> String {
        format!("{}-failed", self.base())
    }
    pub fn queue_arn(&self) -> String {
        format!(
            "arn:{}:sqs:{}:{}:{}",
            self.partition(),
            self.region,
            self.account,
            self.failure_queue()
        )
    }
    pub fn function_log_group(&self) -> String {
        format!("/aws/lambda/{}", self.function())
    }
    pub fn build_log_group(&self) -> String {
        format!("/aws/codebuild/{}", self.project())
    }

    pub fn partition(&self) -> &'static str {
        partition_of(&self.region)
    }
    pub fn bucket_arn(&self, bucket: &str) -> String {
        format!("arn:{}:s3:::{bucket}", self.partition())
    }
    pub fn role_arn(&self, role: &str) -> String {
        format!("arn:{}:iam::{}:role/{role}", self.partition(), self.account)
    }
    pub fn table_arn(&self) -> String {
        format!(
            "arn:{}:dynamodb:{}:{}:table/{}",
            self.partition(),
            self.region,
            self.account,
            self.table()
        )
    }
    pub fn topic_arn(&self) -> String {
        format!(
            "arn:{}:sns:{}:{}:{}",
            self.partition(),
            self.region,
            self.account,
            self.topic()
        )
    }
    pub fn repository_arn(&self) -> String {
        format!(
            "arn:{}:ecr:{}:{}:repository/{}",
            self.partition(),
            self.region,
            self.account,
            self.repository()
        )
    }
    pub fn log_group_arn(&self, group: &str) -> String {
        format!(
            "arn:{}:logs:{}:{}:log-group:{group}",
            self.partition(),
            self.region,
            self.account
        )
    }
    pub fn function_arn(&self) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{}",
            self.partition(),
            self.region,
            self.account,
            self.function()
        )
    }
    pub fn project_arn(&self) -> String {
        format!(
            "arn:{}:codebuild:{}:{}:project/{}",
            self.partition(),
            self.region,
            self.account,
            self.project()
        )
    }

    /// The tags every resource carries, as (key, value) pairs.
    pub fn tags(&self) -> Vec<(String, String)> {
        vec![
            (TAG_STACK.into(), self.stack.clone()),
            (TAG_MANAGED_BY.into(), MANAGED_BY.into()),
            (TAG_REGION.into(), self.region.clone()),
        ]
    }

    /// The function's environment: the contract with `lambda-image`'s `Config::from_env`.
    pub fn function_environment(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("SOURCE_BUCKET".into(), self.source_bucket()),
            ("DEST_BUCKET".into(), self.dest_bucket()),
            ("TABLE_NAME".into(), self.table()),
            ("TOPIC_ARN".into(), self.topic_arn()),
            ("THUMB_SIZES".into(), self.settings.sizes.join(",")),
            ("THUMB_FORMAT".into(), self.settings.format.clone()),
            ("THUMB_QUALITY".into(), self.settings.quality.to_string()),
        ];
        // Only when on: the function's default is off, and a stack that never used the option
        // keeps exactly the environment it had.
        if self.settings.keep_copyright {
            env.push(("THUMB_KEEP_COPYRIGHT".into(), "true".into()));
        }
        if let Some(id) = self.cdn_distribution_id() {
            env.push(("CDN_DISTRIBUTION_ID".into(), id.to_owned()));
        }
        env
    }

    /// The CDN's distribution id, when the stack has one and it exists.
    fn cdn_distribution_id(&self) -> Option<&str> {
        self.settings
            .cdn_distribution_id
            .as_deref()
            .filter(|_| self.settings.cdn)
    }

    /// The Lambda execution role's policy: exactly the ARNs of this stack.
    pub fn lambda_policy(&self) -> serde_json::Value {
        let log = self.log_group_arn(&self.function_log_group());
        let mut policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                // GetObject also allows HeadObject: a removal is followed only once a HEAD
                // finds the source gone (not re-uploaded meanwhile).
                {"Sid": "ReadSources", "Effect": "Allow", "Action": ["s3:GetObject"],
                 "Resource": [format!("{}/*", self.bucket_arn(&self.source_bucket()))]},
                // Without ListBucket, S3 answers 403 instead of 404 for a key that is gone, and
                // the function would retry a deleted upload as if S3 had failed.
                {"Sid": "SeeMissingSources", "Effect": "Allow", "Action": ["s3:ListBucket"],
                 "Resource": [self.bucket_arn(&self.source_bucket())]},
                // DeleteObject: a removed source takes its thumbnails along, and a re-run with
                // other sizes or format deletes the thumbnails it no longer makes.
                {"Sid": "WriteThumbnails", "Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"],
                 "Resource": [format!("{}/*", self.bucket_arn(&self.dest_bucket()))]},
                {"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                 "Resource": [log.clone(), format!("{log}:*")]},
                {"Sid": "Metadata", "Effect": "Allow",
                 // DeleteItem: the item goes with its original (ObjectRemoved and
                 // LifecycleExpiration events).
                 "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
                 "Resource": [self.table_arn()]},
                {"Sid": "Announce", "Effect": "Allow", "Action": ["sns:Publish"], "Resource": [self.topic_arn()]},
                // Lambda delivers the on-failure record of an async invocation as the function's
                // role, and checks this permission when the destination is configured.
                {"Sid": "RecordFailures", "Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": [self.queue_arn()]}
            ]
        });
        if let Some(st) = self.decrypt_sources_statement()
            && let Some(list) = policy["Statement"].as_array_mut()
        {
            list.push(st);
        }
        // `up --cdn`: what the function deletes must also leave CloudFront's cache, where it
        // would stay public for up to a year. Only on this distribution.
        if let (Some(id), Some(statements)) = (
            self.cdn_distribution_id(),
            policy["Statement"].as_array_mut(),
        ) {
            statements.push(serde_json::json!(
                {"Sid": "ForgetDeletedThumbnails", "Effect": "Allow",
                 "Action": ["cloudfront:CreateInvalidation"],
                 "Resource": [self.distribution_arn(id)]}
            ));
        }
        policy
    }

    /// An adopted bucket encrypted with a customer managed KMS key: S3 decrypts an object for
    /// GetObject only if the caller may `kms:Decrypt` with its key. A key named by alias is
    /// granted through the alias (IAM authorises on the key's ARN, which the alias hides).
    pub fn decrypt_sources_statement(&self) -> Option<serde_json::Value> {
        let key = self.settings.source_kms_key.as_deref()?;
        Some(match key.split_once(":alias/") {
            Some((prefix, alias)) => serde_json::json!({
                "Sid": "DecryptSources", "Effect": "Allow", "Action": ["kms:Decrypt"],
                "Resource": [format!("{prefix}:key/*")],
                "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": [format!("alias/{alias}")]}}
            }),
            None => serde_json::json!({
                "Sid": "DecryptSources", "Effect": "Allow", "Action": ["kms:Decrypt"],
                "Resource": [key]
            }),
        })
    }

    /// The lifecycle rules of one of the stack's buckets: unfinished multipart uploads are
    /// invisible in listings but billed, so they go after a day; objects expire only when
    /// the user asked (`up --expire-days`).
    pub fn lifecycle_rules(&self, bucket: &str) -> Vec<LifecycleRule> {
        let mut rules = vec![LifecycleRule {
            id: "thumbctl-abort-incomplete-uploads",
            expire_days: None,
            abort_incomplete_days: Some(1),
        }];
        let expire = if bucket == self.dest_bucket() {
            self.settings.expire_thumbnails_days
        } else {
            self.settings.expire_originals_days
        };
        if let Some(days) = expire {
            rules.push(LifecycleRule {
                id: "thumbctl-expire",
                expire_days: Some(days),
                abort_incomplete_days: None,
            });
        }
        rules
    }

    /// The repository keeps the last few images: each `up` of a changed thumbctl or
    /// `build-image` pushes one, and an image nobody runs is only a storage bill. Untagged
    /// images (replaced tags, the build cache's old manifests) go after a day.
    pub fn repository_lifecycle_policy(&self) -> serde_json::Value {
        serde_json::json!({
            "rules": [
                {"rulePriority": 1, "description": "untagged images after a day",
                 "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                               "countUnit": "days", "countNumber": 1},
                 "action": {"type": "expire"}},
                {"rulePriority": 2, "description": format!("keep the last {KEEP_IMAGES} images"),
                 "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                               "countNumber": KEEP_IMAGES},
                 "action": {"type": "expire"}}
            ]
        })
    }

    /// The S3 Batch Operations role's policy: read the manifests, write the reports, invoke
    /// this function.
    pub fn batch_policy(&self) -> serde_json::Value {
        let batch = format!("{}/{BATCH_PREFIX}*", self.bucket_arn(&self.dest_bucket()));
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Manifests", "Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                 "Resource": [batch.clone()]},
                {"Sid": "Reports", "Effect": "Allow", "Action": ["s3:PutObject"], "Resource": [batch]},
                {"Sid": "Invoke", "Effect": "Allow", "Action": ["lambda:InvokeFunction"],
                 "Resource": [self.function_arn()]}
            ]
        })
    }

    /// The CodeBuild service role's policy. `ecr:GetAuthorizationToken` has no resource-level
    /// permissions in AWS, so it is the one `"*"`.
    pub fn codebuild_policy(&self) -> serde_json::Value {
        let log = self.log_group_arn(&self.build_log_group());
        let dst = self.bucket_arn(&self.dest_bucket());
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "EcrLogin", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
                {"Sid": "EcrPush", "Effect": "Allow",
                 "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                            "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload",
                            "ecr:PutImage", "ecr:DescribeImages"],
                 "Resource": [self.repository_arn()]},
                {"Sid": "BuildSource", "Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                 "Resource": [format!("{dst}/{BUILD_PREFIX}*")]},
                {"Sid": "BuildBucket", "Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:GetBucketAcl"],
                 "Resource": [dst]},
                {"Sid": "Logs", "Effect": "Allow",
                 "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                 "Resource": [log.clone(), format!("{log}:*")]}
            ]
        })
    }

    /// The repository's policy: Lambda may pull images for this stack's function only. A
    /// container function needs this to start; without it Lambda tries to add it itself at
    /// CreateFunction, which needs the caller to hold `ecr:SetRepositoryPolicy` anyway, and
    /// leaves the function Failed (ImageAccessDenied) if that is not possible.
    pub fn repository_policy(&self) -> serde_json::Value {
        let f = self.function_arn();
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "LambdaPullsThisStacksFunction", "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Condition": {"StringLike": {"aws:sourceArn": [f.clone(), format!("{f}:*")]}}
            }]
        })
    }

    /// Denies every request to the bucket that does not use TLS.
    pub fn bucket_policy(&self, bucket: &str) -> serde_json::Value {
        let arn = self.bucket_arn(bucket);
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [arn.clone(), format!("{arn}/*")],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}
            }]
        })
    }

    /// The name of the CDN's origin access control and of its distribution (in its comment):
    /// OAC names are unique per account, so the suffix keeps two stacks of one name apart.
    pub fn cdn(&self) -> String {
        format!("{}-cdn", self.base())
    }
    /// What makes CreateDistribution idempotent: a retried create with the same reference is
    /// answered DistributionAlreadyExists instead of making a second (billed) distribution.
    pub fn cdn_caller_reference(&self) -> String {
        format!("thumbctl-{}", self.cdn())
    }
    /// The distribution's comment (CloudFront allows 128 characters; this is at most ~90).
    /// Distributions have no name, so this is also how one is found again without its id.
    pub fn cdn_comment(&self) -> String {
        format!(
            "thumbctl stack {}: thumbnails of {} ({})",
            self.stack,
            self.dest_bucket(),
            self.cdn()
        )
    }
    /// The destination bucket's regional REST endpoint: the origin that origin access control
    /// signs for (a website endpoint cannot be signed for, and the global endpoint redirects
    /// outside us-east-1 for a day after a bucket is created).
    pub fn dest_origin_domain(&self) -> String {
        format!(
            "{}.s3.{}.{}",
            self.dest_bucket(),
            self.region,
            dns_suffix_of(&self.region)
        )
    }
    /// CloudFront is global: its ARNs have no region, only the partition and account.
    pub fn distribution_arn(&self, id: &str) -> String {
        format!(
            "arn:{}:cloudfront::{}:distribution/{id}",
            self.partition(),
            self.account
        )
    }
    /// The statement `up --cdn` adds to the destination bucket's policy: CloudFront may read
    /// thumbnails, only on behalf of this stack's distribution (without the SourceArn
    /// condition any distribution of any account could read them through its own OAC).
    pub fn cdn_read_statement(&self, distribution_arn: &str) -> serde_json::Value {
        serde_json::json!({
            "Sid": CDN_POLICY_SID, "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": format!("{}/*", self.bucket_arn(&self.dest_bucket())),
            "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}}
        })
    }

    pub fn trust_policy(service: &str) -> serde_json::Value {
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
        })
    }

    /// The host of this account's private ECR registry in the stack's region (its DNS suffix
    /// follows the partition).
    pub fn ecr_registry(&self) -> String {
        format!(
            "{}.dkr.ecr.{}.{}",
            self.account,
            self.region,
            dns_suffix_of(&self.region)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            stack: "demo".into(),
            suffix: "abcd1234".into(),
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            settings: Settings::default(),
        }
    }

    #[test]
    fn stack_names() {
        assert!(validate_stack_name("thumbctl").is_ok());
        assert!(validate_stack_name("my-thumbs-2").is_ok());
        for bad in [
            "",
            "Upper",
            "9lives",
            "trailing-",
            "a--b",
            "under_score",
            "dot.ted",
            &"x".repeat(33),
        ] {
            assert!(
                validate_stack_name(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn names_fit_aws_limits() {
        let mut p = plan();
        p.stack = "a".repeat(MAX_STACK_LEN);
        assert!(p.source_bucket().len() <= 63);
        assert!(p.codebuild_role().len() <= 64);
        assert!(p.function().len() <= 64);
        assert_eq!(new_suffix().len(), 8);
    }

    #[test]
    fn policies_have_no_wildcards_but_ecr_login() {
        let p = plan();
        for policy in [p.lambda_policy(), p.codebuild_policy()] {
            for st in policy["Statement"].as_array().into_iter().flatten() {
                let actions: Vec<&str> = match &st["Action"] {
                    serde_json::Value::String(s) => vec![s.as_str()],
                    v => v
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str())
                        .collect(),
                };
                assert!(
                    actions.iter().all(|a| !a.contains('*')),
                    "wildcard action in {st}"
                );
                if st["Resource"] == "*" {
                    assert_eq!(actions, ["ecr:GetAuthorizationToken"]);
                }
            }
        }
        assert!(p.table_arn().ends_with(":table/demo-abcd1234"));
        assert!(
            p.topic_arn()
                .starts_with("arn:aws:sns:eu-west-1:123456789012:")
        );
    }

    #[test]
    fn an_encrypted_source_is_decryptable_by_the_function_only_with_its_key() {
        let mut p = plan();
        let sids = |p: &Plan| -> Vec<String> {
            p.lambda_policy()["Statement"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["Sid"].as_str().map(str::to_owned))
                .collect()
        };
        assert!(!sids(&p).contains(&"DecryptSources".to_owned()));
        let key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        p.settings.source_kms_key = Some(key.into());
        let policy = p.lambda_policy();
        let st = policy["Statement"]
            .as_array()
            .and_then(|l| l.iter().find(|s| s["Sid"] == "DecryptSources"))
            .cloned();
        assert_eq!(
            st,
            Some(
                serde_json::json!({"Sid": "DecryptSources", "Effect": "Allow",
                "Action": ["kms:Decrypt"], "Resource": [key]})
            )
        );
        p.settings.source_kms_key = Some("arn:aws:kms:eu-west-1:123456789012:alias/photos".into());
        assert_eq!(
            p.decrypt_sources_statement(),
            Some(
                serde_json::json!({"Sid": "DecryptSources", "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": ["arn:aws:kms:eu-west-1:123456789012:key/*"],
                "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/photos"]}}})
            )
        );
    }

    #[test]
    fn with_a_cdn_the_function_may_invalidate_exactly_its_distribution() {
        let cdn_statements = |p: &Plan| -> Vec<serde_json::Value> {
            p.lambda_policy()["Statement"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s.to_string().contains("cloudfront"))
                .cloned()
                .collect()
        };
        let env_id = |p: &Plan| {
            p.function_environment()
                .into_iter()
                .find(|(k, _)| k == "CDN_DISTRIBUTION_ID")
                .map(|(_, v)| v)
        };
        let mut p = plan();
        assert!(cdn_statements(&p).is_empty() && env_id(&p).is_none());
        // An id without --cdn (never recorded so) changes nothing.
        p.settings = p.settings.with_cdn_id(Some(&"E1".to_owned()));
        assert!(cdn_statements(&p).is_empty() && env_id(&p).is_none());
        p.settings.cdn = true;
        assert!(env_id(&p).is_none(), "--cdn before the distribution exists");
        p.settings = p.settings.with_cdn_id(Some(&"E1".to_owned()));
        assert_eq!(env_id(&p).as_deref(), Some("E1"));
        assert_eq!(
            cdn_statements(&p),
            [
                serde_json::json!({"Sid": "ForgetDeletedThumbnails", "Effect": "Allow",
                "Action": ["cloudfront:CreateInvalidation"],
                "Resource": ["arn:aws:cloudfront::123456789012:distribution/E1"]})
            ]
        );
    }

    #[test]
    fn ecr_registry_follows_the_partition() {
        let mut p = plan();
        assert_eq!(
            p.ecr_registry(),
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
        );
        p.region = "cn-northwest-1".into();
        assert_eq!(
            p.ecr_registry(),
            "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn"
        );
        p.region = "us-gov-west-1".into();
        assert_eq!(
            p.ecr_registry(),
            "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com"
        );
    }
}
