//! S3 buckets: private (Block Public Access), encrypted by default, TLS-only, tagged.

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint,
    CreateBucketConfiguration, Delete, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter, ObjectIdentifier, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging,
};

use super::{Found, built};
use crate::context::Ctx;
use crate::error::{AwsError, Class, OrNotFound, aws};
use crate::retry::{self, Patience};
use crate::stack::Plan;

pub const KIND: &str = "bucket";

pub async fn ensure(ctx: &Ctx, plan: &Plan, name: &str) -> Result<Found, AwsError> {
    if plan.source_adopted() && name == plan.source_bucket() {
        return check_adoptable(ctx, plan, name).await;
    }
    let mut req = ctx.s3.create_bucket().bucket(name);
    // us-east-1 is the one region that refuses an explicit LocationConstraint.
    if plan.region != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(plan.region.as_str()))
                .build(),
        );
    }
    match req.send().await.map_err(aws("create", KIND, name)) {
        Ok(_) => {}
        Err(e) if e.is_already_exists() => {}
        Err(e) => return Err(e),
    }
    // Right after CreateBucket, S3 may still answer the settings calls with OperationAborted
    // or even NoSuchBucket; both pass within seconds.
    retry::until_settled(
        Patience::SETTLE,
        |e| match e.class {
            Class::Busy => Some("the new bucket to settle"),
            Class::NotFound => Some("S3 to see the new bucket"),
            _ => None,
        },
        || configure(ctx, plan, name),
    )
    .await?;
    Ok(Found::arn(plan.bucket_arn(name)))
}

/// A bucket the user brings: it must exist, be theirs (this account) and be in the stack's
/// region (S3 refuses a notification to a function in another region). Nothing on it changes.
async fn check_adoptable(ctx: &Ctx, plan: &Plan, name: &str) -> Result<Found, AwsError> {
    let head = ctx
        .s3
        .head_bucket()
        .bucket(name)
        .expected_bucket_owner(&plan.account)
        .send()
        .await
        .map_err(aws("adopt", KIND, name));
    match head {
        Ok(out) => {
            if let Some(region) = out.bucket_region()
                && region != plan.region
            {
                return Err(AwsError::local(
                    "adopt",
                    KIND,
                    name,
                    format!(
                        "it is in {region}, the stack in {}: S3 can only notify a function in the \
                         bucket's region. Run the stack in {region} (--region {region}) or use \
                         another bucket",
                        plan.region
                    ),
                ));
            }
        }
        Err(e) if e.is_not_found() => {
            return Err(AwsError::local(
                "adopt",
                KIND,
                name,
                "no such bucket: --source-bucket takes a bucket you already own; create it first \
                 or drop the option to let thumbctl make one",
            ));
        }
        Err(e) if e.class == Class::AccessDenied => {
            return Err(AwsError::local(
                "adopt",
                KIND,
                name,
                format!(
                    "it is not a bucket of account {} that you may read (S3 said {}): \
                     --source-bucket only adopts a bucket of the stack's own account",
                    plan.account,
                    e.code.as_deref().unwrap_or("403")
                ),
            ));
        }
        Err(e) => return Err(e),
    }
    Ok(Found {
        arn: Some(plan.bucket_arn(name)),
        extra: adopted_extra(),
    })
}

/// The customer managed KMS key an adopted bucket encrypts new objects with by default, as
/// an ARN (a key's, or an alias's when the bucket names an alias), or `None`.
///
/// Reading an object encrypted with a KMS key needs `kms:Decrypt` on that key besides
/// `s3:GetObject` (S3 User Guide, "Using server-side encryption with AWS KMS keys"); without it
/// S3 answers 403 AccessDenied "The ciphertext refers to a customer master key that does not
/// exist, ...", and every upload would end in the failure queue. A bucket without a key id
/// (SSE-S3, or SSE-KMS with the AWS managed key `aws/s3`, whose key policy lets every
/// principal of the account use it through S3) needs nothing more. A bucket that is gone or
/// in another region is `None` here: adopting it says so with the reason.
pub async fn source_kms_key(ctx: &Ctx, plan: &Plan) -> Result<Option<String>, AwsError> {
    let name = plan.source_bucket();
    let out = ctx
        .s3
        .get_bucket_encryption()
        .bucket(&name)
        .expected_bucket_owner(&plan.account)
        .send()
        .await
        .map_err(aws("read the default encryption of", KIND, &name));
    let out = match out {
        Ok(o) => o,
        Err(e) if e.code.as_deref() == Some("ServerSideEncryptionConfigurationNotFoundError") => {
            return Ok(None);
        }
        // Gone, or in another region (S3 redirects): adopting it stops with the reason.
        Err(e)
            if e.is_not_found()
                || matches!(
                    e.code.as_deref(),
                    Some("PermanentRedirect" | "AuthorizationHeaderMalformed" | "HTTP 301")
                ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let key = out
        .server_side_encryption_configuration()
        .map(|c| c.rules())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r.apply_server_side_encryption_by_default())
        .filter(|d| {
            matches!(
                d.sse_algorithm(),
                ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse
            )
        })
        .find_map(|d| d.kms_master_key_id())
        .map(str::trim)
        .filter(|k| !k.is_empty());
    Ok(key.map(|k| kms_key_arn(plan, k)))
}

/// S3 takes the key as a key id, key ARN, alias name or alias ARN; IAM needs an ARN.
fn kms_key_arn(plan: &Plan, key: &str) -> String {
    if key.starts_with("arn:") {
        key.to_owned()
    } else {
        // `alias/name` or a bare key id, in the bucket's (the stack's) region and account.
        let resource = if key.starts_with("alias/") {
            key.to_owned()
        } else {
            format!("key/{key}")
        };
        format!(
            "arn:{}:kms:{}:{}:{resource}",
            plan.partition(),
            plan.region,
            plan.account
        )
    }
}

/// Marks an entry as the user's own bucket: `destroy` forgets it instead of deleting it.
/// Recorded from the moment it is planned, so even a crash mid-`up` cannot make it deletable.
pub fn adopted_extra() -> std::collections::BTreeMap<String, String> {
    [("adopted".to_owned(), "true".to_owned())].into()
}

pub fn is_adopted(e: &crate::state::Entry) -> bool {
    e.extra.get("adopted").is_some_and(|v| v == "true")
}

/// The lifecycle rules thumbctl wants, as S3 types.
fn lifecycle(plan: &Plan, name: &str) -> Result<BucketLifecycleConfiguration, AwsError> {
    let mut rules = Vec::new();
    for r in plan.lifecycle_rules(name) {
        let mut b = LifecycleRule::builder()
            .id(r.id)
            .status(ExpirationStatus::Enabled)
            // An empty prefix filter: the whole bucket.
            .filter(LifecycleRuleFilter::builder().prefix("").build());
        if let Some(days) = r.abort_incomplete_days {
            b = b.abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder()
                    .days_after_initiation(days)
                    .build(),
            );
        }
        if let Some(days) = r.expire_days {
            b = b.expiration(LifecycleExpiration::builder().days(days).build());
        }
        rules.push(built(b.build(), KIND, name)?);
    }
    built(
        BucketLifecycleConfiguration::builder()
            .set_rules(Some(rules))
            .build(),
        KIND,
        name,
    )
}

/// The bucket's lifecycle rules as thumbctl reads them back (for `status` and drift).
pub async fn rules(ctx: &Ctx, name: &str) -> Result<Vec<crate::stack::LifecycleRule>, AwsError> {
    let out = ctx
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(name)
        .send()
        .await
        .map_err(aws("read lifecycle rules of", KIND, name))
        .or_not_found()?;
    let known = |id: &str| -> &'static str {
        match id {
            "thumbctl-abort-incomplete-uploads" => "thumbctl-abort-incomplete-uploads",
            "thumbctl-expire" => "thumbctl-expire",
            _ => "other",
        }
    };
    Ok(out
        .map(|o| {
            o.rules()
                .iter()
                .filter(|r| r.status() == &ExpirationStatus::Enabled)
                .map(|r| crate::stack::LifecycleRule {
                    id: known(r.id().unwrap_or_default()),
                    expire_days: r.expiration().and_then(|e| e.days()),
                    abort_incomplete_days: r
                        .abort_incomplete_multipart_upload()
                        .and_then(|a| a.days_after_initiation()),
                })
                .collect()
        })
        .unwrap_or_default())
}

/// What differs between the bucket and what thumbctl set on it (protections, rules).
pub async fn drift(ctx: &Ctx, plan: &Plan, name: &str) -> Result<Vec<String>, AwsError> {
    if plan.source_adopted() && name == plan.source_bucket() {
        return Ok(Vec::new());
    }
    let mut diffs = Vec::new();
    let bpa = ctx
        .s3
        .get_public_access_block()
        .bucket(name)
        .send()
        .await
        .map_err(aws("read public access block of", KIND, name));
    let all_blocked = match bpa {
        Ok(o) => o.public_access_block_configuration().is_some_and(|c| {
            c.block_public_acls() == Some(true)
                && c.ignore_public_acls() == Some(true)
                && c.block_public_policy() == Some(true)
                && c.restrict_public_buckets() == Some(true)
        }),
        Err(e) if e.code.as_deref() == Some("NoSuchPublicAccessBlockConfiguration") => false,
        Err(e) => return Err(e),
    };
    if !all_blocked {
        diffs.push("Block Public Access is not fully on".to_owned());
    }
    let want = plan.lifecycle_rules(name);
    let have = rules(ctx, name).await?;
    if want != have {
        diffs.push(format!(
            "lifecycle rules are {}, thumbctl set {}",
            describe_rules(&have),
            describe_rules(&want)
        ));
    }
    Ok(diffs)
}

/// Lifecycle rules in a few words, for `status`.
pub fn describe_rules(rules: &[crate::stack::LifecycleRule]) -> String {
    if rules.is_empty() {
        return "none".to_owned();
    }
    rules
        .iter()
        .map(|r| match (r.expire_days, r.abort_incomplete_days) {
            (Some(d), _) if r.id == "other" => format!("a rule of yours expiring after {d} d"),
            (Some(d), _) => format!("objects expire after {d} d"),
            (None, Some(d)) => format!("unfinished uploads aborted after {d} d"),
            (None, None) => "a rule of yours".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Objects and bytes in the bucket (current versions), counting at most `cap` objects so
/// that `status` stays quick on a big bucket; `true` when it stopped at the cap.
pub async fn contents(ctx: &Ctx, name: &str, cap: u64) -> Result<(u64, u64, bool), AwsError> {
    let mut pages = ctx
        .s3
        .list_objects_v2()
        .bucket(name)
        .into_paginator()
        .send();
    let (mut objects, mut bytes) = (0u64, 0u64);
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("list objects in", KIND, name))?;
        for o in page.contents() {
            objects += 1;
            bytes += o.size().unwrap_or(0).max(0) as u64;
        }
        if objects >= cap {
            return Ok((objects, bytes, true));
        }
    }
    Ok((objects, bytes, false))
}

/// The settings are idempotent puts, independent of each other, so they go out together.
async fn configure(ctx: &Ctx, plan: &Plan, name: &str) -> Result<(), AwsError> {
    let bpa = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(built(
            ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::Aes256)
                .build(),
            KIND,
            name,
        )?)
        .bucket_key_enabled(true)
        .build();
    let sse = built(
        ServerSideEncryptionConfiguration::builder()
            .rules(rule)
            .build(),
        KIND,
        name,
    )?;
    let mut tags = Vec::new();
    for (k, v) in plan.tags() {
        tags.push(built(Tag::builder().key(k).value(v).build(), KIND, name)?);
    }
    let tagging = built(
        Tagging::builder().set_tag_set(Some(tags)).build(),
        KIND,
        name,
    )?;
    let policy = async {
        if ctx.tls_only_policy() {
            let policy = plan.bucket_policy(name).to_string();
            ctx.s3
                .put_bucket_policy()
                .bucket(name)
                .policy(policy)
                .send()
                .await
                .map(|_| ())
        } else {
            tracing::info!(
                bucket = name,
                "plain-HTTP endpoint: TLS-only bucket policy left out"
            );
            Ok(())
        }
    };
    let lifecycle = lifecycle(plan, name)?;
    let (a, b, c, d, e) = tokio::join!(
        ctx.s3
            .put_public_access_block()
            .bucket(name)
            .public_access_block_configuration(bpa)
            .send(),
        ctx.s3
            .put_bucket_encryption()
            .bucket(name)
            .server_side_encryption_configuration(sse)
            .send(),
        policy,
        ctx.s3
            .put_bucket_tagging()
            .bucket(name)
            .tagging(tagging)
            .send(),
        ctx.s3
            .put_bucket_lifecycle_configuration()
            .bucket(name)
            .lifecycle_configuration(lifecycle)
            .send(),
    );
    a.map_err(aws("block public access on", KIND, name))?;
    b.map_err(aws("enable default encryption on", KIND, name))?;
    c.map_err(aws("put TLS-only policy on", KIND, name))?;
    d.map_err(aws("tag", KIND, name))?;
    e.map_err(aws("put lifecycle rules on", KIND, name))?;
    Ok(())
}

pub async fn find(ctx: &Ctx, name: &str) -> Result<Option<Found>, AwsError> {
    let found = ctx
        .s3
        .head_bucket()
        .bucket(name)
        .send()
        .await
        .map_err(aws("look up", KIND, name))
        .or_not_found()?;
    Ok(found.map(|_| Found::arn(bucket_arn(ctx, name))))
}

/// A bucket's ARN without a plan: `find` works from the state alone.
fn bucket_arn(ctx: &Ctx, name: &str) -> String {
    format!(
        "arn:{}:s3:::{name}",
        crate::stack::partition_of(&ctx.region)
    )
}

/// Empties the bucket completely (every version, delete marker and unfinished multipart
/// upload, page by page), then deletes it.
pub async fn delete(ctx: &Ctx, name: &str) -> Result<(), AwsError> {
    if empty(ctx, name).await.or_not_found()?.is_none() {
        return Ok(());
    }
    ctx.s3
        .delete_bucket()
        .bucket(name)
        .send()
        .await
        .map_err(aws("delete", KIND, name))
        .or_not_found()?;
    Ok(())
}

/// Each round lists from the start again instead of following the listing's markers: what
/// was deleted is gone, so the first page is always the next work, and a marker naming a key
/// just deleted is never sent (moto then answers an empty page, leaving the rest behind).
pub async fn empty(ctx: &Ctx, name: &str) -> Result<(), AwsError> {
    let mut previous_first: Option<ObjectIdentifier> = None;
    loop {
        let page = ctx
            .s3
            .list_object_versions()
            .bucket(name)
            .send()
            .await
            .map_err(aws("list objects in", KIND, name))?;
        let mut ids = Vec::new();
        for v in page.versions() {
            if let Some(key) = v.key() {
                ids.push(built(
                    ObjectIdentifier::builder()
                        .key(key)
                        .set_version_id(v.version_id().map(str::to_owned))
                        .build(),
                    KIND,
                    name,
                )?);
            }
        }
        for m in page.delete_markers() {
            if let Some(key) = m.key() {
                ids.push(built(
                    ObjectIdentifier::builder()
                        .key(key)
                        .set_version_id(m.version_id().map(str::to_owned))
                        .build(),
                    KIND,
                    name,
                )?);
            }
        }
        // A page holds at most 1000 versions plus markers; delete_objects takes 1000 at once.
        for chunk in ids.chunks(1000) {
            let del = built(
                Delete::builder()
                    .set_objects(Some(chunk.to_vec()))
                    .quiet(true)
                    .build(),
                KIND,
                name,
            )?;
            let out = ctx
                .s3
                .delete_objects()
                .bucket(name)
                .delete(del)
                .send()
                .await
                .map_err(aws("delete objects in", KIND, name))?;
            if let Some(err) = out.errors().first() {
                return Err(AwsError::local(
                    "delete objects in",
                    KIND,
                    name,
                    format!(
                        "{} object(s) could not be deleted, e.g. `{}`: {}",
                        out.errors().len(),
                        err.key().unwrap_or("?"),
                        err.message().unwrap_or("no message")
                    ),
                ));
            }
        }
        if ids.is_empty() || page.is_truncated() != Some(true) {
            break;
        }
        // The same first entry twice: a delete that reported success did not happen, and
        // listing again would go round for ever.
        if previous_first.as_ref() == ids.first() {
            return Err(AwsError::local(
                "empty",
                KIND,
                name,
                format!(
                    "`{}` is still listed after it was deleted; rerun `thumbctl destroy`",
                    ids.first().map(|i| i.key()).unwrap_or("?")
                ),
            ));
        }
        previous_first = ids.first().cloned();
    }
    // Unfinished multipart uploads are invisible to object listings but still billed.
    loop {
        let page = ctx
            .s3
            .list_multipart_uploads()
            .bucket(name)
            .send()
            .await
            .map_err(aws("list uploads in", KIND, name))?;
        let uploads = page.uploads();
        if uploads.is_empty() {
            break;
        }
        for u in uploads {
            if let (Some(key), Some(id)) = (u.key(), u.upload_id()) {
                ctx.s3
                    .abort_multipart_upload()
                    .bucket(name)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await
                    .map_err(aws("abort upload in", KIND, name))
                    .or_not_found()?;
            }
        }
        if page.is_truncated() != Some(true) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_keys_become_arns() {
        let plan = Plan {
            stack: "demo".into(),
            suffix: "abcd1234".into(),
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            settings: crate::stack::Settings::default(),
        };
        assert_eq!(
            kms_key_arn(&plan, "1234abcd-12ab-34cd-56ef-1234567890ab"),
            "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        );
        assert_eq!(
            kms_key_arn(&plan, "alias/photos"),
            "arn:aws:kms:eu-west-1:123456789012:alias/photos"
        );
        let other = "arn:aws:kms:eu-west-1:210987654321:key/k";
        assert_eq!(kms_key_arn(&plan, other), other);
    }
}
