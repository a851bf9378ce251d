//! Per-signer transaction nonces: allocated, signed with and recorded in one database
//! transaction, so no allocated nonce is ever without a stored transaction.

use sqlx::Row;

use crate::*;

impl Ledger {
    /// Locks the signer's nonce row (creating it at `chain_floor` if missing) and returns
    /// the nonce to use: the ledger's, or the chain's pending nonce when that is ahead.
    async fn lock_nonce(
        &self,
        conn: &mut sqlx::AnyConnection,
        network: &str,
        signer: &str,
        chain_floor: Option<u64>,
    ) -> Result<(u64, Option<NonceMismatch>), RecordError> {
        // A write first: it takes the row lock (PostgreSQL) or the write lock (SQLite)
        // before anything is read, so concurrent allocators queue instead of failing.
        let row = sqlx::query(
            "INSERT INTO x402_signer_nonces (network, signer, next_nonce) VALUES ($1, $2, $3)
             ON CONFLICT (network, signer) DO UPDATE SET next_nonce = x402_signer_nonces.next_nonce
             RETURNING next_nonce",
        )
        .bind(network)
        .bind(signer)
        .bind(chain_floor.map_or(-1, to_db))
        .fetch_one(&mut *conn)
        .await
        .map_err(unavailable)?;
        let current: i64 = row.try_get("next_nonce").map_err(unavailable)?;
        if current < 0 {
            return Err(RecordError::NeedsChainNonce);
        }
        let current = current as u64;
        Ok(match chain_floor {
            Some(chain) if chain > current => (
                chain,
                Some(NonceMismatch {
                    ledger: current,
                    chain,
                }),
            ),
            _ => (current, None),
        })
    }

    /// Allocates `count` consecutive nonces for `entry.signer`, calls `sign` with the first,
    /// and records the signed transaction, all in one database transaction. When the
    /// payment is already recorded nothing is allocated and the existing entry comes back.
    ///
    /// `chain_floor` is the chain's pending nonce when the caller read it: the ledger never
    /// hands out a nonce below it. Without it, a signer the ledger has not seen yet gives
    /// [`RecordError::NeedsChainNonce`].
    pub async fn record_signed(
        &self,
        entry: &NewEntry,
        chain_floor: Option<u64>,
        count: u64,
        sign: impl FnOnce(u64) -> Result<SignedTransaction, String>,
    ) -> Result<(Claim, Option<NonceMismatch>), RecordError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let (nonce, mismatch) = self
            .lock_nonce(&mut tx, &entry.network, &entry.signer, chain_floor)
            .await?;
        let signed = sign(nonce).map_err(RecordError::Signing)?;
        let recorded = Entry::submitted(entry, nonce, signed, now_millis());
        if !insert_entry(&mut tx, &recorded).await? {
            // Someone recorded this payment first: give the nonce back and read theirs.
            tx.rollback().await.map_err(unavailable)?;
            return Ok((Claim::Existing(self.existing(entry).await?), None));
        }
        self.advance_nonce(&mut tx, &entry.network, &entry.signer, nonce + count)
            .await?;
        tx.commit().await.map_err(unavailable)?;
        Ok((Claim::Recorded(recorded), mismatch))
    }

    /// Records a signed transaction that needs no account nonce from the ledger (SVM:
    /// a recent blockhash orders it); the existing entry when the payment is known.
    pub async fn record(
        &self,
        entry: &NewEntry,
        signed: &SignedTransaction,
    ) -> Result<Claim, LedgerError> {
        let recorded = Entry::submitted(entry, 0, signed.clone(), now_millis());
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        if insert_entry(&mut conn, &recorded).await? {
            Ok(Claim::Recorded(recorded))
        } else {
            Ok(Claim::Existing(self.existing(entry).await?))
        }
    }

    /// The entry someone else recorded for `entry`'s payment.
    async fn existing(&self, entry: &NewEntry) -> Result<Entry, LedgerError> {
        self.entry(&entry.network, &entry.payment_key)
            .await?
            .ok_or_else(|| LedgerError::Unavailable("entry vanished".into()))
    }

    async fn advance_nonce(
        &self,
        conn: &mut sqlx::AnyConnection,
        network: &str,
        signer: &str,
        next: u64,
    ) -> Result<(), LedgerError> {
        sqlx::query(
            "UPDATE x402_signer_nonces SET next_nonce = $3 WHERE network = $1 AND signer = $2",
        )
        .bind(network)
        .bind(signer)
        .bind(to_db(next))
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// Replaces the transaction of a still-open entry whose current transaction can never
    /// land (its account nonce went to another transaction): allocates a fresh nonce, signs
    /// and stores the new transaction, keeping every earlier hash. Only one caller wins:
    /// `None` when the entry moved on (another instance replaced or finished it).
    pub async fn replace_transaction(
        &self,
        entry: &Entry,
        chain_floor: Option<u64>,
        count: u64,
        sign: impl FnOnce(u64) -> Result<SignedTransaction, String>,
    ) -> Result<Option<(Entry, Option<NonceMismatch>)>, RecordError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let (nonce, mismatch) = self
            .lock_nonce(&mut tx, &entry.network, &entry.signer, chain_floor)
            .await?;
        let signed = sign(nonce).map_err(RecordError::Signing)?;
        let now = now_millis();
        let updated = sqlx::query(
            "UPDATE x402_settlements SET tx_nonce = $4, tx_hash = $5, raw_tx = $6, prelude_tx = $7,
                 tx_hashes = tx_hashes || ' ' || $5, updated_at = $8
             WHERE network = $1 AND payment_key = $2 AND tx_hash = $3 AND state = 'submitted'",
        )
        .bind(&entry.network)
        .bind(&entry.payment_key)
        .bind(&entry.tx_hash)
        .bind(to_db(nonce))
        .bind(&signed.hash)
        .bind(&signed.raw)
        .bind(signed.prelude.as_deref())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        if updated.rows_affected() == 0 {
            tx.rollback().await.map_err(unavailable)?;
            return Ok(None);
        }
        self.advance_nonce(&mut tx, &entry.network, &entry.signer, nonce + count)
            .await?;
        tx.commit().await.map_err(unavailable)?;
        let mut hashes = entry.tx_hashes.clone();
        hashes.push(signed.hash.clone());
        Ok(Some((
            Entry {
                tx_nonce: nonce,
                tx_hash: signed.hash,
                raw_tx: signed.raw,
                prelude_tx: signed.prelude,
                tx_hashes: hashes,
                updated_at: now,
                ..entry.clone()
            },
            mismatch,
        )))
    }

    /// Lowers the signer's next nonce to the chain's pending nonce when the ledger is ahead
    /// while none of the signer's settlements is open: then no recorded transaction can
    /// fill the gap (the chain was reset, or the ledger belongs to another chain's history),
    /// and every new transaction would wait forever behind it.
    pub async fn lower_idle_nonce(
        &self,
        network: &str,
        signer: &str,
        chain_pending: u64,
    ) -> Result<Option<NonceMismatch>, LedgerError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let current = match self.lock_nonce(&mut tx, network, signer, None).await {
            Ok((current, _)) => current,
            Err(RecordError::NeedsChainNonce) => return Ok(None),
            Err(RecordError::Ledger(e)) => return Err(e),
            Err(other) => return Err(LedgerError::Unavailable(other.to_string())),
        };
        if current <= chain_pending {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM x402_settlements WHERE network = $1 AND signer = $2 AND state = 'submitted'",
        )
        .bind(network)
        .bind(signer)
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        let open: i64 = row.try_get("n").map_err(unavailable)?;
        if open > 0 {
            return Ok(None);
        }
        self.advance_nonce(&mut tx, network, signer, chain_pending)
            .await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(Some(NonceMismatch {
            ledger: current,
            chain: chain_pending,
        }))
    }

    /// The ledger's next nonce for a signer (tests and health output).
    pub async fn next_nonce(
        &self,
        network: &str,
        signer: &str,
    ) -> Result<Option<u64>, LedgerError> {
        let row = sqlx::query(
            "SELECT next_nonce FROM x402_signer_nonces WHERE network = $1 AND signer = $2",
        )
        .bind(network)
        .bind(signer)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        match row {
            None => Ok(None),
            Some(row) => {
                let next: i64 = row.try_get("next_nonce").map_err(unavailable)?;
                Ok((next >= 0).then_some(next as u64))
            }
        }
    }
}
