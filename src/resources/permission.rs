//! The function's resource policy statement that lets S3 invoke it, for our bucket and
//! account only (SourceArn + SourceAccount stop a look-alike bucket elsewhere from invoking it).

use std::collections::BTreeMap;

use super::{Found, function};
use crate::context::Ctx;
use crate::error::{AwsError, OrNotFound, aws};
use crate::retry::{self, Patience};
use crate::stack::{PERMISSION_SID, Plan};
use crate::state::Entry;

pub const KIND: &str = "permission";

pub fn extra(function: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("function".to_owned(), function.to_owned())])
}

fn function_of(e: &Entry) -> Result<&str, AwsError> {
    e.extra.get("function").map(String::as_str).ok_or_else(|| {
        AwsError::local(
            "read",
            KIND,
            &e.name,
            "the state entry does not say which function it belongs to",
        )
    })
}

pub async fn ensure(ctx: &Ctx, plan: &Plan) -> Result<Found, AwsError> {
    let function = plan.function();
    // While the function is Pending or updating, Lambda refuses with the same code it uses
    // for "statement exists": `error` tells them apart by the message (`Class::Busy` is
    // waited out, `Class::AlreadyExists` is done), and any other conflict is an error: only
    // a statement Lambda said exists is recorded.
    let added = retry::until_settled(
        Patience::SETTLE,
        retry::busy(function::UPDATING),
        || async {
            ctx.lambda
                .add_permission()
                .function_name(&function)
                .statement_id(PERMISSION_SID)
                .action("lambda:InvokeFunction")
                .principal("s3.amazonaws.com")
                .source_arn(plan.bucket_arn(&plan.source_bucket()))
                .source_account(&plan.account)
                .send()
                .await
                .map_err(aws("add", KIND, PERMISSION_SID))
        },
    )
    .await;
    match added {
        Ok(_) => {}
        // The statement id is already there: an earlier run added it, or the SDK retried an
        // AddPermission whose answer was lost.
        Err(e) if e.is_already_exists() => {}
        Err(e) => return Err(e),
    }
    Ok(Found {
        arn: None,
        extra: extra(&function),
    })
}

pub async fn find(ctx: &Ctx, e: &Entry) -> Result<Option<Found>, AwsError> {
    let function = function_of(e)?;
    let Some(out) = ctx
        .lambda
        .get_policy()
        .function_name(function)
        .send()
        .await
        .map_err(aws("look up", KIND, &e.name))
        .or_not_found()?
    else {
        return Ok(None);
    };
    let policy: serde_json::Value = out
        .policy()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default();
    let present = policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["Sid"] == e.name.as_str());
    Ok(present.then(|| Found {
        arn: None,
        extra: extra(function),
    }))
}

pub async fn delete(ctx: &Ctx, e: &Entry) -> Result<(), AwsError> {
    let function = function_of(e)?;
    ctx.lambda
        .remove_permission()
        .function_name(function)
        .statement_id(&e.name)
        .send()
        .await
        .map_err(aws("delete", KIND, &e.name))
        .or_not_found()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_name_the_function_they_belong_to() {
        let mut e = Entry {
            kind: KIND.into(),
            name: PERMISSION_SID.into(),
            arn: None,
            region: "eu-west-1".into(),
            status: crate::state::Status::Created,
            extra: extra("demo-fn-abcd1234"),
        };
        assert_eq!(
            e.extra,
            BTreeMap::from([("function".to_owned(), "demo-fn-abcd1234".to_owned())])
        );
        assert_eq!(function_of(&e).ok(), Some("demo-fn-abcd1234"));
        e.extra.clear();
        let err = function_of(&e).expect_err("no function");
        assert!(
            err.to_string().contains("does not say which function"),
            "{err}"
        );
    }
}
