//! What a payload is: the function has one entry point for every event kind it is sent
//! ([`crate::handler::Handler::handle_invocation`]), so that one function serves the bucket
//! notification, `reprocess --batch` and `reprocess --failed`.
//!
//! `reprocess --failed` replays the original S3 event: Lambda's on-failure destination wraps it
//! (`requestContext`, `requestPayload`, `responseContext`, `responsePayload`) and thumbctl sends
//! `requestPayload` on its own. Such a wrapper reaching the function is a mistake of the
//! sender, and is refused with a message that says so rather than being guessed at.

use aws_lambda_events::event::s3::S3Event;
use serde_json::Value;

use crate::batch::BatchEvent;

/// A payload the function understands.
#[derive(Debug, Clone)]
pub enum Invocation {
    /// An S3 event notification (`Records[].eventSource == "aws:s3"`).
    S3(S3Event),
    /// An S3 Batch Operations `LambdaInvoke` request (`invocationSchemaVersion` and `tasks`).
    Batch(BatchEvent),
    /// The `s3:TestEvent` S3 sends when a notification is configured: nothing to do.
    S3Test,
}

/// A payload that is none of the [`Invocation`]s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported event: {0}; expected an S3 event notification (Records[].eventSource \"aws:s3\") or an S3 Batch Operations request (invocationSchemaVersion and tasks)"
)]
pub struct UnsupportedEvent(pub String);

/// Some records failed for a transient reason; Lambda should retry the event. Defined here,
/// with the other ways an invocation fails, so that the handler depends on this module and
/// not the reverse.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{failed} of {total} records failed transiently (Lambda will retry); first: {first}")]
pub struct HandlerError {
    pub failed: usize,
    pub total: usize,
    pub first: String,
}

/// Why an invocation failed as a whole.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InvokeError {
    #[error(transparent)]
    Unsupported(#[from] UnsupportedEvent),
    /// Lambda should retry the (S3) event.
    #[error(transparent)]
    Transient(#[from] HandlerError),
}

impl InvokeError {
    /// The `errorType` reported to the Runtime API.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Unsupported(_) => "UnsupportedEvent",
            Self::Transient(_) => "TransientFailure",
        }
    }
}

/// Names a few top-level fields, never values (a payload may be large or hold anything).
fn describe(v: &Value) -> String {
    match v {
        Value::Object(m) if m.is_empty() => "an empty object".into(),
        Value::Object(m) => {
            let names: Vec<&str> = m.keys().take(6).map(String::as_str).collect();
            let more = if m.len() > names.len() { ", ..." } else { "" };
            format!("an object with fields {}{more}", names.join(", "))
        }
        Value::Array(_) => "an array".into(),
        Value::String(_) => "a string".into(),
        Value::Number(_) => "a number".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Null => "null".into(),
    }
}

/// Tells the kinds apart by their distinguishing fields, then parses.
pub fn classify(payload: Value) -> Result<Invocation, UnsupportedEvent> {
    let Value::Object(m) = &payload else {
        return Err(UnsupportedEvent(describe(&payload)));
    };
    if m.contains_key("invocationSchemaVersion") && m.contains_key("tasks") {
        return serde_json::from_value(payload)
            .map(Invocation::Batch)
            .map_err(|e| {
                UnsupportedEvent(format!(
                    "a Batch Operations request that does not parse ({e})"
                ))
            });
    }
    if let Some(records) = m.get("Records").and_then(Value::as_array) {
        let sources: Vec<&str> = records
            .iter()
            .map(|r| {
                r.get("eventSource")
                    .and_then(Value::as_str)
                    .unwrap_or("none")
            })
            .filter(|s| *s != "aws:s3")
            .collect();
        if let Some(other) = sources.first() {
            return Err(UnsupportedEvent(format!(
                "records with eventSource {other:?}"
            )));
        }
        return serde_json::from_value(payload)
            .map(Invocation::S3)
            .map_err(|e| UnsupportedEvent(format!("an S3 event that does not parse ({e})")));
    }
    if m.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Invocation::S3Test);
    }
    if m.contains_key("requestPayload") && m.contains_key("requestContext") {
        return Err(UnsupportedEvent(
            "a Lambda on-failure destination record; send its requestPayload instead".into(),
        ));
    }
    Err(UnsupportedEvent(describe(&payload)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_are_told_apart() {
        let s3 = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "eventTime": "2024-01-01T00:00:00.000Z", "userIdentity": {"principalId": "p"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"}, "responseElements": {},
            "s3": {"bucket": {"name": "b"}, "object": {"key": "k", "sequencer": "00A1"}}}]});
        assert!(matches!(classify(s3.clone()), Ok(Invocation::S3(e)) if e.records.len() == 1));
        let batch = json!({"invocationSchemaVersion": "1.0", "invocationId": "i",
            "job": {"id": "j"}, "tasks": []});
        assert!(matches!(classify(batch), Ok(Invocation::Batch(_))));
        let test = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"});
        assert!(matches!(classify(test), Ok(Invocation::S3Test)));

        let sqs = json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]});
        let e = classify(sqs).unwrap_err().to_string();
        assert!(
            e.contains("aws:sqs") && e.contains("expected an S3 event"),
            "{e}"
        );
        let wrapped = json!({"version": "1.0", "requestContext": {"condition": "RetriesExhausted"},
            "requestPayload": s3, "responseContext": {}, "responsePayload": {}});
        let e = classify(wrapped).unwrap_err().to_string();
        assert!(e.contains("on-failure destination record"), "{e}");
        let e = classify(json!({"hello": "secret-value"}))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fields hello") && !e.contains("secret-value"),
            "{e}"
        );
        assert!(classify(json!([1, 2])).is_err());
        let bad_batch = json!({"invocationSchemaVersion": "1.0", "tasks": "no"});
        assert!(
            classify(bad_batch)
                .unwrap_err()
                .to_string()
                .contains("does not parse")
        );
    }
}
