//! Subscriptions of e-mail addresses or HTTPS endpoints to the topic (`--notify-email/-url`).

use super::Found;
use crate::context::Ctx;
use crate::error::{AwsError, OrNotFound, aws};
use crate::state::Entry;

pub const KIND: &str = "subscription";

pub async fn ensure(
    ctx: &Ctx,
    topic_arn: &str,
    protocol: &str,
    endpoint: &str,
) -> Result<Found, AwsError> {
    // Without ReturnSubscriptionArn an unconfirmed subscription answers "pending confirmation",
    // which could not be unsubscribed later.
    let out = ctx
        .sns
        .subscribe()
        .topic_arn(topic_arn)
        .protocol(protocol)
        .endpoint(endpoint)
        .return_subscription_arn(true)
        .send()
        .await
        .map_err(aws("subscribe", KIND, endpoint))?;
    Ok(Found {
        arn: out.subscription_arn,
        ..Found::default()
    })
}

pub async fn find(ctx: &Ctx, e: &Entry) -> Result<Option<Found>, AwsError> {
    let Some(arn) = e.arn.as_deref() else {
        return Ok(None);
    };
    let out = ctx
        .sns
        .get_subscription_attributes()
        .subscription_arn(arn)
        .send()
        .await
        .map_err(aws("look up", KIND, &e.name))
        .or_not_found()?;
    Ok(out.map(|_| Found::arn(arn)))
}

pub async fn delete(ctx: &Ctx, e: &Entry) -> Result<(), AwsError> {
    let Some(arn) = e.arn.as_deref() else {
        return Ok(());
    };
    match ctx
        .sns
        .unsubscribe()
        .subscription_arn(arn)
        .send()
        .await
        .map_err(aws("delete", KIND, &e.name))
        .or_not_found()
    {
        Ok(_) => Ok(()),
        // SNS refuses to unsubscribe an address that never confirmed; such a subscription
        // goes with its topic (deleted right after this step) or expires after three days,
        // so it is done as far as thumbctl is concerned.
        Err(err) if is_pending_refusal(&err) => {
            tracing::info!(subscription = %e.name, "unconfirmed; it is removed with the topic");
            Ok(())
        }
        Err(err) => Err(err),
    }
}

/// SNS's refusal of an unconfirmed subscription, as users and tools meet it (code
/// `InvalidParameter` in SNS's query protocol, `InvalidParameterException` in the SDKs):
/// "Invalid parameter: SubscriptionArn Reason: Cannot unsubscribe a subscription that is
/// pending confirmation" for the ARN `ReturnSubscriptionArn` gives (go-to-k/cdkd#1301, and
/// terraform-provider-aws matches the same text), and, for the placeholder an older Subscribe
/// returned instead of an ARN, "Invalid parameter: SubscriptionArn Reason: pending
/// confirmation does not start with arn" (hashicorp/terraform#2776). Either way there is
/// nothing SNS lets us remove.
fn is_pending_refusal(e: &AwsError) -> bool {
    matches!(
        e.code.as_deref(),
        Some("InvalidParameter" | "InvalidParameterException")
    ) && e.message.contains("pending confirmation")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_pending_refusal_counts_as_done() {
        let mut e = AwsError::local(
            "delete",
            KIND,
            "a@example.com",
            "Invalid parameter: SubscriptionArn Reason: Cannot unsubscribe a subscription that is pending confirmation",
        );
        assert!(!is_pending_refusal(&e));
        e.code = Some("InvalidParameter".into());
        assert!(is_pending_refusal(&e));
        e.code = Some("InvalidParameterException".into());
        assert!(is_pending_refusal(&e));
        e.message = "Invalid parameter: SubscriptionArn Reason: pending confirmation does not start with arn".into();
        assert!(is_pending_refusal(&e));
        e.message = "Invalid parameter: SubscriptionArn Reason: An ARN must have at least 6 elements, not 1".into();
        assert!(!is_pending_refusal(&e));
    }
}
