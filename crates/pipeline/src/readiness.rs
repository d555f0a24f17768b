use flowline_kinesis::consumer::ConsumerStatus;
use flowline_runtime::Context;
use tokio::sync::watch;

/// Makes the consumer a readiness component named `leases`: ready while it talks to the
/// lease table and Kinesis and holds or is acquiring leases (DESIGN.md section 5).
pub fn watch_consumer<T>(ctx: &Context<T>, mut status: watch::Receiver<ConsumerStatus>) {
    let handle = ctx.readiness().register("leases");
    let shutdown = ctx.shutdown_token();
    ctx.spawn("consumer readiness", async move {
        loop {
            {
                let s = status.borrow_and_update();
                match s.not_ready_reason() {
                    None => handle.ready(),
                    Some(reason) => handle.not_ready(reason),
                }
            }
            tokio::select! {
                changed = status.changed() => if changed.is_err() { return Ok(()) },
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
    });
}
