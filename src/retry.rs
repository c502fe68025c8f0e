//! Waiting out AWS's eventual consistency.
//!
//! The SDK's own retries cover throttling, 5xx answers and dropped connections. They do not
//! cover answers that are *correct* but early: a role IAM has not propagated, a bucket S3 is
//! still setting up, a function Lambda is still updating, a permission S3 cannot see yet.
//! AWS documents each of these as "retry later", and moto never sends any of them, so the
//! waiting is done here, in one place, bounded, and always saying what it waits for.

use std::future::Future;
use std::time::Duration;

use crate::error::{AwsError, Class};

/// How long to keep retrying one kind of "not yet" answer.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub attempts: u32,
}

impl Patience {
    /// IAM propagation: AWS says "seconds, sometimes longer"; about 90 s in all.
    pub const IAM: Patience = Patience {
        first_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(10),
        attempts: 12,
    };
    /// A resource busy with an earlier change (fresh bucket, function update, permission that
    /// S3 cannot validate yet): usually a second or two, allow about a minute.
    pub const SETTLE: Patience = Patience {
        first_delay: Duration::from_millis(250),
        max_delay: Duration::from_secs(5),
        attempts: 16,
    };
}

/// The common case: retry what AWS calls busy, naming what is awaited.
pub fn busy(what: &'static str) -> impl Fn(&AwsError) -> Option<&'static str> {
    move |e| (e.class == Class::Busy).then_some(what)
}

/// Runs `f` until it succeeds or fails with an error `wait_for` does not recognise; while it
/// does, logs what is awaited (the text `wait_for` returns) and backs off. After the last
/// attempt the last error is returned as it is, so the user sees AWS's own answer.
pub async fn until_settled<T, F, Fut>(
    patience: Patience,
    wait_for: impl Fn(&AwsError) -> Option<&'static str>,
    mut f: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AwsError>>,
{
    let mut delay = patience.first_delay;
    let mut attempt = 1;
    loop {
        match f().await {
            Err(e) if attempt < patience.attempts => {
                let Some(what) = wait_for(&e) else {
                    return Err(e);
                };
                tracing::info!(
                    resource = %e.name,
                    code = e.code.as_deref().unwrap_or(""),
                    attempt,
                    "waiting for {what}; retrying in {delay:?}"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(patience.max_delay);
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn busy() -> AwsError {
        AwsError::local("put", "bucket", "b", "busy")
    }

    const FAST: Patience = Patience {
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
        attempts: 4,
    };

    #[tokio::test]
    async fn retries_what_it_recognises_then_gives_the_last_error() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = until_settled(
            FAST,
            |_| Some("the bucket"),
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(busy())
            },
        )
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn other_errors_and_success_return_at_once() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = until_settled(
            FAST,
            |_| None,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(busy())
            },
        )
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let n = AtomicU32::new(0);
        let r = until_settled(
            FAST,
            |_| Some("x"),
            || async {
                if n.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(busy())
                } else {
                    Ok(7)
                }
            },
        )
        .await;
        assert_eq!(r.ok(), Some(7));
    }
}
