//! A role's inline least-privilege policy, kept as its own resource so the function can be
//! created as soon as the role exists, while the policy is written alongside.

use std::collections::BTreeMap;

use super::Found;
use crate::context::Ctx;
use crate::error::{AwsError, OrNotFound, aws};
use crate::stack::ROLE_POLICY_NAME;
use crate::state::Entry;

pub const KIND: &str = "role-policy";

pub fn extra(role: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("role".to_owned(), role.to_owned())])
}

fn role_of(e: &Entry) -> Result<&str, AwsError> {
    e.extra.get("role").map(String::as_str).ok_or_else(|| {
        AwsError::local(
            "read",
            KIND,
            &e.name,
            "the state entry does not say which role it belongs to",
        )
    })
}

pub async fn ensure(
    ctx: &Ctx,
    role: &str,
    document: &serde_json::Value,
) -> Result<Found, AwsError> {
    ctx.iam
        .put_role_policy()
        .role_name(role)
        .policy_name(ROLE_POLICY_NAME)
        .policy_document(document.to_string())
        .send()
        .await
        .map_err(aws("put policy on", "role", role))?;
    Ok(Found {
        arn: None,
        extra: extra(role),
    })
}

pub async fn find(ctx: &Ctx, e: &Entry) -> Result<Option<Found>, AwsError> {
    let role = role_of(e)?;
    let out = ctx
        .iam
        .get_role_policy()
        .role_name(role)
        .policy_name(&e.name)
        .send()
        .await
        .map_err(aws("look up", KIND, &e.name))
        .or_not_found()?;
    Ok(out.map(|_| Found {
        arn: None,
        extra: extra(role),
    }))
}

pub async fn delete(ctx: &Ctx, e: &Entry) -> Result<(), AwsError> {
    let role = role_of(e)?;
    ctx.iam
        .delete_role_policy()
        .role_name(role)
        .policy_name(&e.name)
        .send()
        .await
        .map_err(aws("delete", KIND, &e.name))
        .or_not_found()?;
    Ok(())
}

/// Whether the policy on the role still says what thumbctl wrote (IAM returns the document
/// URL-encoded; compared as JSON, so spacing and key order do not count).
pub async fn drift(
    ctx: &Ctx,
    e: &Entry,
    want: &serde_json::Value,
) -> Result<Vec<String>, AwsError> {
    let role = role_of(e)?;
    let out = ctx
        .iam
        .get_role_policy()
        .role_name(role)
        .policy_name(&e.name)
        .send()
        .await
        .map_err(aws("look up", KIND, &e.name))?;
    let text = percent_encoding::percent_decode_str(out.policy_document())
        .decode_utf8_lossy()
        .into_owned();
    let have: Option<serde_json::Value> = serde_json::from_str(&text).ok();
    Ok(if have.as_ref() == Some(want) {
        Vec::new()
    } else {
        vec![format!(
            "the policy on role {role} is not the one thumbctl wrote"
        )]
    })
}
