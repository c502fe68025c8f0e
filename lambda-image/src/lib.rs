//! The thumbnail Lambda: an S3 event in; thumbnails, a DynamoDB item and an SNS message out.
//!
//! - [`engine`]: pure image work (bytes in, thumbnails out), no AWS.
//! - [`config`]: the function's environment.
//! - [`keys`]: where thumbnails go and how S3 event keys decode.
//! - [`store`]: S3, DynamoDB and SNS I/O.
//! - [`handler`]: the S3 event handler that ties them together.
//! - [`redact`]: keeps credentials and presigned URLs out of logs (the Lambda's and thumbctl's).
//! - [`runtime`]: the function's process (environment check, logging, the Runtime API loop),
//!   run by this crate's binary and by thumbctl's when Lambda starts it.

pub mod config;
pub mod engine;
pub mod handler;
pub mod keys;
pub mod redact;
pub mod runtime;
pub mod store;
