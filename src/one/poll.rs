//! Waiting for OpenNebula to finish something asynchronous: a probe is asked first, then every
//! interval until it answers or the timeout passes. The first probe runs before any sleep, so a
//! backend that is already done (the fake) costs no time.

use std::future::Future;

use tokio::time::{Instant, sleep};

use super::{Result, Wait};

/// `Some(value)` once `probe` returns it; `None` if the timeout passed first. Errors from the
/// probe end the wait at once.
pub(crate) async fn until<T, F, Fut>(wait: Wait, mut probe: F) -> Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + wait.timeout;
    loop {
        if let Some(value) = probe().await? {
            return Ok(Some(value));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        sleep(wait.interval.min(deadline - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::one::Code;

    fn short() -> Wait {
        Wait { timeout: Duration::from_millis(30), interval: Duration::from_millis(5) }
    }

    #[tokio::test]
    async fn answers_when_the_probe_does_and_gives_up_after_the_timeout() {
        let mut asked = 0;
        let found = until(short(), || {
            asked += 1;
            let n = asked;
            async move { Ok((n == 3).then_some(n)) }
        })
        .await
        .unwrap();
        assert_eq!(found, Some(3));

        let started = Instant::now();
        let never = until(short(), || async { Ok(None::<()>) }).await.unwrap();
        assert_eq!(never, None);
        assert!(started.elapsed() >= Duration::from_millis(30));

        let failed =
            until(short(), || async { Err::<Option<()>, _>(Code::Internal.error("one.vn.info", "vnet 1", "x")) }).await;
        assert!(failed.is_err());
    }
}
