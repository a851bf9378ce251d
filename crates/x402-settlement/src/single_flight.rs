//! One settlement per payment at a time in this process. A request for a payment another
//! request is settling waits for it, then answers from the ledger, instead of asking the node
//! and writing the outcome once more: concurrent duplicates cost one read each, not a status
//! poll and a write each (which, on the embedded SQLite ledger, could exhaust its few
//! connections under load). Instances sharing a ledger still meet in the ledger itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Mutex as TurnLock, OwnedMutexGuard};

/// The payments being settled now, each with the lock its requests take turns on.
#[derive(Default)]
pub(crate) struct InFlight {
    keys: Mutex<HashMap<String, Arc<TurnLock<()>>>>,
}

/// One request's turn on a payment; the next request's begins when it is dropped.
pub(crate) struct Turn<'a> {
    guard: Option<OwnedMutexGuard<()>>,
    key: String,
    owner: &'a InFlight,
}

impl InFlight {
    /// This request's turn on `key`, after at most `patience`; `None` when the request
    /// before it is still settling.
    pub(crate) async fn enter(&self, key: &str, patience: Duration) -> Option<Turn<'_>> {
        let lock = {
            let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            keys.entry(key.to_owned()).or_default().clone()
        };
        let guard = tokio::time::timeout(patience, lock.lock_owned()).await.ok();
        let turn = Turn {
            guard,
            key: key.to_owned(),
            owner: self,
        };
        // A request that gave up still leaves through `Drop`, which tidies the map.
        turn.guard.is_some().then_some(turn)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut keys = self.owner.keys.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map holds the lock: nobody is settling or waiting for this payment.
        if keys
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            keys.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_request_waits_for_the_first_and_the_map_empties() {
        let flights = InFlight::default();
        let first = flights
            .enter("k", Duration::from_secs(1))
            .await
            .expect("first");
        assert!(
            flights
                .enter("k", Duration::from_millis(20))
                .await
                .is_none(),
            "the second waits while the first settles"
        );
        assert!(flights
            .enter("other", Duration::from_millis(20))
            .await
            .is_some());
        drop(first);
        let second = flights.enter("k", Duration::from_millis(20)).await;
        assert!(second.is_some(), "its turn once the first is done");
        drop(second);
        assert!(flights.keys.lock().unwrap().is_empty());
    }
}
