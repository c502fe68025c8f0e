//! The destination bucket's policy statement that lets CloudFront read thumbnails for this
//! stack's distribution only (`up --cdn`).
//!
//! A bucket has one policy document; thumbctl's TLS-only statement (see `bucket`) and
//! anything a user added live in it too. So this kind owns one statement, by its Sid: `ensure`
//! replaces that statement and keeps the others, `delete` takes it out and leaves the rest
//! (deleting the policy only when nothing else is left in it). Block Public Access stays on:
//! a grant to a service principal conditioned on one distribution's ARN is not public.

use serde_json::Value;

use super::Found;
use crate::context::Ctx;
use crate::error::{AwsError, OrNotFound, aws};
use crate::stack::{CDN_POLICY_SID, Plan};
use crate::state::Entry;

pub const KIND: &str = "bucket-policy";

/// What a step records: the Sid of the statement this entry owns.
pub fn extra() -> std::collections::BTreeMap<String, String> {
    [("sid".to_owned(), CDN_POLICY_SID.to_owned())].into()
}

/// The bucket's policy document; `None` when it has none (or the bucket is gone).
async fn read(ctx: &Ctx, bucket: &str) -> Result<Option<Value>, AwsError> {
    let out = ctx
        .s3
        .get_bucket_policy()
        .bucket(bucket)
        .send()
        .await
        .map_err(aws("read policy of", KIND, bucket))
        .or_not_found()?;
    let Some(text) = out.and_then(|o| o.policy) else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        AwsError::local(
            "read policy of",
            KIND,
            bucket,
            format!("S3 returned a policy that is not JSON ({e})"),
        )
    })
}

/// The document's statements other than the one with `sid`.
fn others(doc: Option<&Value>, sid: &str) -> Vec<Value> {
    let statements = match doc.and_then(|d| d.get("Statement")) {
        Some(Value::Array(list)) => list.clone(),
        // IAM allows a single statement object instead of a list.
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    };
    statements
        .into_iter()
        .filter(|s| s.get("Sid").and_then(Value::as_str) != Some(sid))
        .collect()
}

fn has(doc: Option<&Value>, sid: &str) -> bool {
    match doc.and_then(|d| d.get("Statement")) {
        Some(Value::Array(list)) => list
            .iter()
            .any(|s| s.get("Sid").and_then(Value::as_str) == Some(sid)),
        Some(one @ Value::Object(_)) => one.get("Sid").and_then(Value::as_str) == Some(sid),
        _ => false,
    }
}

async fn put(ctx: &Ctx, bucket: &str, statements: Vec<Value>) -> Result<(), AwsError> {
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
    ctx.s3
        .put_bucket_policy()
        .bucket(bucket)
        .policy(doc.to_string())
        .send()
        .await
        .map_err(aws("put policy on", KIND, bucket))?;
    Ok(())
}

/// Puts the CloudFront statement for `distribution_arn` into the bucket's policy.
pub async fn ensure(
    ctx: &Ctx,
    plan: &Plan,
    bucket: &str,
    distribution_arn: &str,
) -> Result<Found, AwsError> {
    let doc = read(ctx, bucket).await?;
    let mut statements = others(doc.as_ref(), CDN_POLICY_SID);
    statements.push(plan.cdn_read_statement(distribution_arn));
    put(ctx, bucket, statements).await?;
    Ok(Found::default())
}

/// Exists while the statement does: `bucket` rewrites the whole policy when it repairs the
/// bucket's settings, and `up` then finds this missing and puts it back.
pub async fn find(ctx: &Ctx, e: &Entry) -> Result<Option<Found>, AwsError> {
    let sid = e.extra.get("sid").map_or(CDN_POLICY_SID, String::as_str);
    let doc = read(ctx, &e.name).await?;
    Ok(has(doc.as_ref(), sid).then(Found::default))
}

pub async fn delete(ctx: &Ctx, e: &Entry) -> Result<(), AwsError> {
    let sid = e.extra.get("sid").map_or(CDN_POLICY_SID, String::as_str);
    let Some(doc) = read(ctx, &e.name).await? else {
        return Ok(());
    };
    if !has(Some(&doc), sid) {
        return Ok(());
    }
    let rest = others(Some(&doc), sid);
    if rest.is_empty() {
        ctx.s3
            .delete_bucket_policy()
            .bucket(&e.name)
            .send()
            .await
            .map_err(aws("delete policy of", KIND, &e.name))
            .or_not_found()?;
        return Ok(());
    }
    put(ctx, &e.name, rest).await.or_not_found()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_statement_is_replaced_or_removed() {
        let doc = serde_json::json!({"Statement": [
            {"Sid": "DenyInsecureTransport", "Effect": "Deny"},
            {"Sid": CDN_POLICY_SID, "Effect": "Allow"},
        ]});
        assert!(has(Some(&doc), CDN_POLICY_SID));
        let rest = others(Some(&doc), CDN_POLICY_SID);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0]["Sid"], "DenyInsecureTransport");
        let single = serde_json::json!({"Statement": {"Sid": "Theirs"}});
        assert_eq!(others(Some(&single), CDN_POLICY_SID).len(), 1);
        assert!(!has(Some(&single), CDN_POLICY_SID));
        assert!(others(None, CDN_POLICY_SID).is_empty());
    }
}
