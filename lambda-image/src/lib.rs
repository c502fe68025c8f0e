//! The thumbnail Lambda: an S3 event in; thumbnails, a DynamoDB item and an SNS message out.
//!
//! - [`engine`]: pure image work (bytes in, thumbnails out), no AWS.
//! - [`config`]: the function's environment.
//! - [`keys`]: where thumbnails go and how S3 event keys decode.
//! - [`store`]: S3, DynamoDB and SNS I/O.
//! - [`handler`]: the event handler that ties them together; [`is_current`] is its rule for
//!   "already done with these settings", shared with thumbctl's `reprocess --only-missing`.
//! - [`batch`]: the S3 Batch Operations request and response.
//! - [`invocation`]: which kind of event a payload is.
//! - [`redact`]: keeps credentials and presigned URLs out of logs (the Lambda's and thumbctl's).
//! - [`tls`]: the root certificates the function trusts (the environment's, else compiled in).
//! - [`runtime`]: the function's process (environment check, logging, the Runtime API loop),
//!   run by this crate's binary and by thumbctl's when Lambda starts it.

pub mod batch;
pub mod config;
pub mod engine;
pub mod handler;
pub mod invocation;
pub mod keys;
pub mod redact;
pub mod runtime;
pub mod store;
pub mod tls;

pub use handler::is_current;
