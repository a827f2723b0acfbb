//! Following the change feed for one topic: what the replicas' followers
//! (plugins, licences, the access policy) share.

use std::time::Duration;

use callboard_store::Feed;

/// Waits until an event of `topic` comes after `*seq`, or `period` passes
/// (whichever is first), moving `*seq` past every event read. A feed that
/// cannot be read is retried each second until the period ends (logged).
pub async fn wait_for(feed: &dyn Feed, seq: &mut i64, topic: &'static str, period: Duration) {
    callboard_store::metrics::feed_position(topic, *seq);
    let deadline = tokio::time::Instant::now() + period;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return;
        }
        feed.wait(*seq, left).await;
        match feed.read_after(*seq, 256).await {
            Ok(events) if events.is_empty() => {}
            Ok(events) => {
                let relevant = events.iter().any(|e| e.topic == topic);
                *seq = events.last().map_or(*seq, |e| e.seq);
                callboard_store::metrics::feed_position(topic, *seq);
                if relevant {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(topic, "reading the change feed: {e}");
                tokio::time::sleep(Duration::from_secs(1).min(left)).await;
            }
        }
    }
}
