//! SIGTERM and SIGINT drain in-flight checks and end the process with exit code 0.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

pub fn spawn_shutdown_on_signal(shutdown: CancellationToken) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            () = shutdown.cancelled() => return,
        }
        shutdown.cancel();
    });
    Ok(())
}
