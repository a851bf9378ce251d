//! Reading ledger entries and writing their final outcome.

use sqlx::Row;

use crate::*;

impl Ledger {
    /// One entry.
    pub async fn entry(
        &self,
        network: &str,
        payment_key: &str,
    ) -> Result<Option<Entry>, LedgerError> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM x402_settlements WHERE network = $1 AND payment_key = $2"
        );
        let row = sqlx::query(&sql)
            .bind(network)
            .bind(payment_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|r| entry_from_row(&r).map_err(unavailable))
            .transpose()
    }

    /// The entry recorded for the request with this digest (the oldest, should two networks
    /// ever hold one): what a caller asking after its settlement is answered from.
    pub async fn entry_by_digest(&self, digest: &str) -> Result<Option<Entry>, LedgerError> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM x402_settlements WHERE digest = $1
             ORDER BY created_at LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(digest)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|r| entry_from_row(&r).map_err(unavailable))
            .transpose()
    }

    /// Records the final outcome of the entry's current transaction. `false` when the entry
    /// already moved on (finished elsewhere, or its transaction was replaced).
    pub async fn finish(
        &self,
        entry: &Entry,
        state: EntryState,
        outcome: &str,
    ) -> Result<bool, LedgerError> {
        let done = sqlx::query(
            "UPDATE x402_settlements SET state = $4, outcome = $5, updated_at = $6
             WHERE network = $1 AND payment_key = $2 AND tx_hash = $3 AND state = 'submitted'",
        )
        .bind(&entry.network)
        .bind(&entry.payment_key)
        .bind(&entry.tx_hash)
        .bind(state.as_str())
        .bind(outcome)
        .bind(now_millis())
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    /// Entries of `network` still open whose last change is older than `min_age`, oldest
    /// first (the reconciler's work list).
    pub async fn open_entries(
        &self,
        network: &str,
        min_age: Duration,
        limit: u32,
    ) -> Result<Vec<Entry>, LedgerError> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM x402_settlements
             WHERE network = $1 AND state = 'submitted' AND updated_at <= $2
             ORDER BY tx_nonce LIMIT $3"
        );
        let cutoff = now_millis() - min_age.as_millis() as i64;
        let rows = sqlx::query(&sql)
            .bind(network)
            .bind(cutoff)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| entry_from_row(r).map_err(unavailable))
            .collect()
    }

    /// Counts a network's entries of `scheme` created at or after `since_millis`: how the
    /// EVM relay bounds the gas funding it gives strangers across payments and instances.
    pub async fn count_scheme_since(
        &self,
        network: &str,
        scheme: &str,
        since_millis: i64,
    ) -> Result<u64, LedgerError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM x402_settlements
             WHERE network = $1 AND scheme = $2 AND created_at >= $3",
        )
        .bind(network)
        .bind(scheme)
        .bind(since_millis)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        let n: i64 = row.try_get("n").map_err(unavailable)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Counts entries per state for a network (tests and health output).
    pub async fn count_by_state(
        &self,
        network: &str,
        state: EntryState,
    ) -> Result<u64, LedgerError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM x402_settlements WHERE network = $1 AND state = $2",
        )
        .bind(network)
        .bind(state.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        let n: i64 = row.try_get("n").map_err(unavailable)?;
        Ok(n as u64)
    }
}
