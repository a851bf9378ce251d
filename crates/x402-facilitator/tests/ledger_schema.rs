//! The ledger's versioned schema against both real stores: a ledger written by release
//! 0.1 (before versions were recorded) opens, migrates and keeps its settlements; a
//! ledger migrated by a newer release than this one is refused with both versions named.
//! Rows from before version 2 have no terms and are still found by their digest.

mod support;

use support::*;
use x402_ledger::sqlx::{self, Connection};
use x402_ledger::{EntryState, Ledger, SCHEMA_VERSION};

/// The 0.1 schema with one confirmed settlement and one signer nonce.
const LEDGER_0_1: &str = include_str!("fixtures/ledger-0.1.sql");
const KEY: &str =
    "0x036cbd53842c5426634e7929541ec2318f3dcf7e/0x70997970c51812dc3a010c7d01b50e0d17dc79c8/0x01";
const SIGNER: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

/// Runs the fixture's statements on `url` with a plain connection (no migration).
async fn write_0_1(url: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("store");
    let body: String = LEDGER_0_1
        .lines()
        .filter(|l| !l.starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    for statement in body.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
        sqlx::query(statement)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

/// Records `version` as the store's schema version, as a newer release would.
async fn mark_version(url: &str, version: i64) {
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("store");
    sqlx::query("UPDATE x402_schema_version SET version = $1 WHERE id = 1")
        .bind(version)
        .execute(&mut conn)
        .await
        .expect("version");
}

async fn a_0_1_ledger_migrates_and_a_newer_one_is_refused(url: &str) {
    write_0_1(url).await;
    let ledger = Ledger::connect(url).await.expect("a 0.1 ledger opens");
    assert_eq!(ledger.schema_version().await.unwrap(), SCHEMA_VERSION);
    let entry = ledger
        .entry("eip155:84532", KEY)
        .await
        .unwrap()
        .expect("the settlement written by 0.1 is still there");
    assert_eq!(entry.state, EntryState::Confirmed);
    assert_eq!(entry.tx_hash, "0xabc");
    // Version 2 added what a settlement pays: a 0.1 row has none, and says so.
    assert_eq!(entry.terms, None);
    let by_digest = ledger.entry_by_digest("r2:aa:bb").await.unwrap();
    assert_eq!(by_digest.as_ref(), Some(&entry), "found by its digest");
    assert_eq!(
        ledger.next_nonce("eip155:84532", SIGNER).await.unwrap(),
        Some(8)
    );
    drop(ledger);
    // Opening again migrates nothing and loses nothing.
    let again = Ledger::connect(url).await.expect("opens again");
    assert_eq!(again.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert!(again.entry("eip155:84532", KEY).await.unwrap().is_some());
    drop(again);

    let newer = SCHEMA_VERSION + 1;
    mark_version(url, newer).await;
    let refused = Ledger::connect(url)
        .await
        .err()
        .expect("a newer schema is refused");
    let text = refused.to_string();
    assert!(
        text.contains(&format!("version {newer}"))
            && text.contains(&format!("version {SCHEMA_VERSION}")),
        "{text}"
    );
}

#[tokio::test]
async fn sqlite_ledger_of_release_0_1_migrates_and_a_newer_schema_is_refused() {
    let dir = std::env::temp_dir().join(format!("x402-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/ledger.db?mode=rwc", dir.display());
    a_0_1_ledger_migrates_and_a_newer_one_is_refused(&url).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn postgres_ledger_of_release_0_1_migrates_and_a_newer_schema_is_refused() {
    let (url, name) = fresh_postgres("schema").await;
    a_0_1_ledger_migrates_and_a_newer_one_is_refused(&url).await;
    drop_postgres(&name).await;
}
