//! Reaping processes whose handles were dropped, without blocking the
//! thread that dropped them.

use tracing::Instrument;

use crate::pidfd::PidFd;

/// `SIGKILL`s the process and reaps it: in a task on the current tokio
/// runtime when there is one (the wait is an await on the pidfd), else
/// with a blocking `waitid`, which returns as soon as the kill lands.
pub(crate) fn kill_and_reap(process: PidFd) {
    if process.reaped() {
        return;
    }
    let _ = process.signal(libc::SIGKILL);
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            let span = tracing::debug_span!("reap", pid = process.pid().as_raw_nonzero().get());
            handle.spawn(
                async move {
                    let _ = process.wait().await;
                }
                .instrument(span),
            );
        }
        Err(_) => process.kill_and_reap_blocking(),
    }
}
