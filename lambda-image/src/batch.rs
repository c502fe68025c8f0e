//! S3 Batch Operations `LambdaInvoke`: the request the function gets for each task batch and the
//! response Batch Operations expects back.
//!
//! References: "Invoke AWS Lambda function" in the Amazon S3 User Guide
//! (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-invoke-lambda.html>, sections
//! "Example request and response" and "Response and result codes"), "Invoke a Lambda function
//! with Amazon S3 batch events" in the Lambda Developer Guide
//! (<https://docs.aws.amazon.com/lambda/latest/dg/services-s3-batch.html>), and
//! `LambdaInvokeOperation.InvocationSchemaVersion` in the S3 Control API reference.
//!
//! Schema `1.0` names the bucket by ARN (`s3BucketArn`), schema `2.0` by name (`s3Bucket`) and
//! adds `job.userArguments`; both are accepted. `s3Key` is the key field of the manifest line
//! as written, and that is URL-encoded: a CSV manifest must URL-encode its keys (User Guide,
//! "Specifying a manifest"), and "keys from S3 Batch Operations are URL encoded", to be
//! decoded by the function ("Invoke AWS Lambda function"). That page documents schema 1.0's
//! event, which `reprocess --batch` asks for; for 2.0 AWS names only the bucket and the user
//! arguments as differences, so its key is read the same way.
//!
//! The key is decoded like an S3 event key ([`crate::keys::decode_event_key`], `+` is a
//! space), as AWS Lambda Powertools (`S3BatchOperationTask.s3_key`) and the AWS SDK code
//! examples' Batch Operations function do; the User Guide's example keeps a `+`. The two read
//! a key differently only when it holds a literal `+`, which thumbctl's manifest never writes
//! (`%2B`, and `%20` for a space).
//!
//! The response echoes `invocationSchemaVersion` and `invocationId`, says
//! `treatMissingKeysAs: PermanentFailure`, and has one result per task. `TemporaryFailure` makes
//! Batch Operations redrive the task; the invocation itself must then still succeed (an
//! invocation error would fail every task of it).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::keys::decode_event_key;

/// The request of a `LambdaInvoke` job (schema 1.0 or 2.0).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchEvent {
    pub invocation_schema_version: String,
    pub invocation_id: String,
    #[serde(default)]
    pub job: BatchJob,
    pub tasks: Vec<BatchTask>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchJob {
    #[serde(default)]
    pub id: Option<String>,
    /// Schema 2.0 only; not used by this function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_arguments: Option<HashMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchTask {
    pub task_id: String,
    /// URL-encoded, as the manifest line writes it.
    pub s3_key: String,
    /// Ignored: the function always works on the current object, which is what its thumbnails
    /// must show.
    #[serde(default)]
    pub s3_version_id: Option<String>,
    /// Schema 1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_bucket_arn: Option<String>,
    /// Schema 2.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_bucket: Option<String>,
}

impl BatchTask {
    /// The bucket name: `s3Bucket`, else the part of `s3BucketArn` after its last `:` (bucket
    /// names have no `:`; this also reads the regional form some AWS examples show,
    /// `arn:aws:s3:us-east-1:123456789012:bucket`).
    pub fn bucket(&self) -> Option<&str> {
        self.s3_bucket
            .as_deref()
            .or_else(|| self.s3_bucket_arn.as_deref()?.rsplit(':').next())
            .filter(|b| !b.is_empty())
    }

    /// The decoded object key.
    pub fn key(&self) -> String {
        decode_event_key(&self.s3_key)
    }
}

/// A task's result, as Batch Operations reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResultCode {
    Succeeded,
    /// Batch Operations redrives the task.
    TemporaryFailure,
    /// The task is reported failed with `resultString` in the completion report.
    PermanentFailure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResult {
    pub task_id: String,
    pub result_code: ResultCode,
    pub result_string: String,
}

/// The response to a [`BatchEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub invocation_schema_version: String,
    pub treat_missing_keys_as: ResultCode,
    pub invocation_id: String,
    pub results: Vec<BatchResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_schemas_parse_and_name_the_bucket() {
        let v1: BatchEvent = serde_json::from_value(serde_json::json!({
            "invocationSchemaVersion": "1.0",
            "invocationId": "inv",
            "job": {"id": "job-1"},
            "tasks": [{"taskId": "t1", "s3Key": "a+b%2Bc%C3%A9.jpg", "s3VersionId": null,
                       "s3BucketArn": "arn:aws:s3:::src-bucket"}]
        }))
        .unwrap();
        assert_eq!(v1.tasks[0].bucket(), Some("src-bucket"));
        assert_eq!(v1.tasks[0].key(), "a b+cé.jpg");
        let v2: BatchEvent = serde_json::from_value(serde_json::json!({
            "invocationSchemaVersion": "2.0",
            "invocationId": "inv",
            "job": {"id": "job-1", "userArguments": {"k": "v"}},
            "tasks": [{"taskId": "t1", "s3Key": "x.jpg", "s3VersionId": "3", "s3Bucket": "b2"}]
        }))
        .unwrap();
        assert_eq!(v2.tasks[0].bucket(), Some("b2"));
        let regional = BatchTask {
            task_id: "t".into(),
            s3_key: "k".into(),
            s3_version_id: None,
            s3_bucket_arn: Some("arn:aws:s3:us-east-1:0123456788:awsexamplebucket1".into()),
            s3_bucket: None,
        };
        assert_eq!(regional.bucket(), Some("awsexamplebucket1"));
        let none = BatchTask {
            s3_bucket_arn: None,
            ..regional
        };
        assert_eq!(none.bucket(), None);
    }

    #[test]
    fn keys_with_plus_percent_space_and_unicode_come_back_from_either_schema() {
        // The manifest line thumbctl writes for `d/a+b% c ü.png` is `src,d/a%2Bb%25%20c%20%C3%BC.png`;
        // Batch Operations passes its key field as `s3Key`.
        for event in [
            serde_json::json!({
                "invocationSchemaVersion": "1.0", "invocationId": "inv", "job": {"id": "j"},
                "tasks": [{"taskId": "t", "s3Key": "d/a%2Bb%25%20c%20%C3%BC.png",
                           "s3VersionId": null, "s3BucketArn": "arn:aws:s3:::src"}]
            }),
            serde_json::json!({
                "invocationSchemaVersion": "2.0", "invocationId": "inv",
                "job": {"id": "j", "userArguments": {}},
                "tasks": [{"taskId": "t", "s3Key": "d/a%2Bb%25%20c%20%C3%BC.png",
                           "s3VersionId": null, "s3Bucket": "src"}]
            }),
        ] {
            let e: BatchEvent = serde_json::from_value(event).unwrap();
            assert_eq!(e.tasks[0].key(), "d/a+b% c ü.png");
            assert_eq!(e.tasks[0].bucket(), Some("src"));
        }
    }

    #[test]
    fn response_has_the_field_names_batch_operations_reads() {
        let r = BatchResponse {
            invocation_schema_version: "2.0".into(),
            treat_missing_keys_as: ResultCode::PermanentFailure,
            invocation_id: "inv".into(),
            results: vec![BatchResult {
                task_id: "t1".into(),
                result_code: ResultCode::TemporaryFailure,
                result_string: "slow".into(),
            }],
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({
                "invocationSchemaVersion": "2.0",
                "treatMissingKeysAs": "PermanentFailure",
                "invocationId": "inv",
                "results": [{"taskId": "t1", "resultCode": "TemporaryFailure", "resultString": "slow"}]
            })
        );
    }
}
