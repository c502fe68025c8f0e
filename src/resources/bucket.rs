//! S3 buckets: private (Block Public Access), encrypted by default, TLS-only, tagged.

use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Delete, ObjectIdentifier,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
};

use super::{Found, built};
use crate::context::Ctx;
use crate::error::{AwsError, Class, OrNotFound, aws};
use crate::retry::{self, Patience};
use crate::stack::Plan;

pub const KIND: &str = "bucket";

pub async fn ensure(ctx: &Ctx, plan: &Plan, name: &str) -> Result<Found, AwsError> {
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
    let (a, b, c, d) = tokio::join!(
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
    );
    a.map_err(aws("block public access on", KIND, name))?;
    b.map_err(aws("enable default encryption on", KIND, name))?;
    c.map_err(aws("put TLS-only policy on", KIND, name))?;
    d.map_err(aws("tag", KIND, name))?;
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

pub async fn empty(ctx: &Ctx, name: &str) -> Result<(), AwsError> {
    let mut key_marker: Option<String> = None;
    let mut version_marker: Option<String> = None;
    loop {
        let page = ctx
            .s3
            .list_object_versions()
            .bucket(name)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
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
        if page.is_truncated() == Some(true) {
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
        } else {
            break;
        }
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
