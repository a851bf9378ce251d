//! The ledger against both stores: the embedded SQLite file and the local PostgreSQL.

use super::*;

#[test]
fn a_ledger_location_names_host_or_file_and_never_the_password() {
    assert_eq!(
        location_of("postgres://facilitator:s3cret@db.internal:5432/x402?sslmode=require"),
        "PostgreSQL at db.internal:5432/x402"
    );
    assert_eq!(
        location_of("sqlite://x402-ledger.db?mode=rwc"),
        "SQLite file x402-ledger.db"
    );
    assert!(!location_of("postgresql://u:p@h/d").contains(":p"));
}

#[tokio::test]
async fn an_unreachable_ledger_is_named_in_the_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://x402:hunter2@127.0.0.1:{port}/ledger");
    let error = Ledger::connect(&url).await.err().expect("nothing listens");
    let text = error.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}/ledger")), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

/// Removes a test database with its WAL and shared-memory files (nothing left in /tmp).
fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(name);
    }
}

fn temp_sqlite() -> (String, std::path::PathBuf) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "x402-ledger-unit-{}-{}-{}.db",
        std::process::id(),
        now_millis(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    (format!("sqlite://{}?mode=rwc", path.display()), path)
}

fn new_entry(key: &str) -> NewEntry {
    NewEntry {
        network: "eip155:84532".into(),
        payment_key: key.into(),
        digest: format!("digest-{key}"),
        x402_version: 2,
        payer: "0xpayer".into(),
        signer: "0xsigner".into(),
        valid_before: 2_000_000_000,
        terms: Terms {
            scheme: "exact".into(),
            asset: "0xasset".into(),
            pay_to: "0xpayee".into(),
            amount: "1000".into(),
            resource: format!("https://api.example/{key}"),
        },
    }
}

/// Records `key`'s new entry at nonce 0 (the ledger's first for the signer).
async fn record_new(ledger: &Ledger, key: &str) -> Entry {
    let (claim, _) = ledger
        .record_signed(&new_entry(key), Some(0), 1, signed)
        .await
        .expect("recorded");
    let Claim::Recorded(entry) = claim else {
        panic!("not recorded")
    };
    entry
}

fn signed(nonce: u64) -> Result<SignedTransaction, String> {
    Ok(SignedTransaction {
        hash: format!("0xhash{nonce}"),
        raw: format!("0xraw{nonce}"),
        prelude: None,
    })
}

#[tokio::test]
async fn nonces_are_consecutive_and_duplicates_take_none() {
    let (url, path) = temp_sqlite();
    let ledger = Ledger::connect(&url).await.expect("ledger");
    let first = ledger.record_signed(&new_entry("a"), None, 1, signed).await;
    assert!(matches!(first, Err(RecordError::NeedsChainNonce)));
    let (claim, mismatch) = ledger
        .record_signed(&new_entry("a"), Some(7), 1, signed)
        .await
        .expect("recorded");
    assert!(mismatch.is_none());
    let Claim::Recorded(a) = claim else {
        panic!("not recorded")
    };
    assert_eq!(a.tx_nonce, 7);
    let (claim, _) = ledger
        .record_signed(&new_entry("a"), None, 1, signed)
        .await
        .expect("read back");
    let Claim::Existing(again) = claim else {
        panic!("recorded twice")
    };
    assert_eq!(again.tx_hash, "0xhash7");
    let (claim, _) = ledger
        .record_signed(&new_entry("b"), None, 2, signed)
        .await
        .expect("recorded");
    let Claim::Recorded(b) = claim else {
        panic!("not recorded")
    };
    assert_eq!(b.tx_nonce, 8, "the duplicate gave its nonce back");
    assert_eq!(
        ledger
            .next_nonce("eip155:84532", "0xsigner")
            .await
            .expect("read"),
        Some(10)
    );
    // The chain ahead of the ledger wins and is reported.
    let (claim, mismatch) = ledger
        .record_signed(&new_entry("c"), Some(15), 1, signed)
        .await
        .expect("recorded");
    assert_eq!(
        mismatch,
        Some(NonceMismatch {
            ledger: 10,
            chain: 15
        })
    );
    let Claim::Recorded(c) = claim else {
        panic!("not recorded")
    };
    assert_eq!(c.tx_nonce, 15);
    remove_sqlite(&path);
}

#[tokio::test]
async fn a_failed_signature_allocates_nothing() {
    let (url, path) = temp_sqlite();
    let ledger = Ledger::connect(&url).await.expect("ledger");
    let refused = ledger
        .record_signed(&new_entry("a"), Some(3), 1, |_| Err("no key".into()))
        .await;
    assert!(matches!(refused, Err(RecordError::Signing(_))));
    assert_eq!(
        ledger
            .next_nonce("eip155:84532", "0xsigner")
            .await
            .expect("read"),
        None
    );
    assert!(ledger
        .entry("eip155:84532", "a")
        .await
        .expect("read")
        .is_none());
    remove_sqlite(&path);
}

#[tokio::test]
async fn replacement_keeps_every_hash_and_only_one_caller_wins() {
    let (url, path) = temp_sqlite();
    let ledger = Ledger::connect(&url).await.expect("ledger");
    let a = record_new(&ledger, "a").await;
    let (replaced, _) = ledger
        .replace_transaction(&a, Some(5), 1, signed)
        .await
        .expect("store up")
        .expect("replaced");
    assert_eq!(
        replaced.tx_hashes,
        vec!["0xhash0".to_owned(), "0xhash5".to_owned()]
    );
    // A second replacement from the stale view loses.
    assert!(ledger
        .replace_transaction(&a, None, 1, signed)
        .await
        .expect("store up")
        .is_none());
    let stored = ledger
        .entry("eip155:84532", "a")
        .await
        .expect("read")
        .expect("entry");
    assert_eq!(stored.tx_hashes, replaced.tx_hashes);
    assert!(!ledger
        .finish(&a, EntryState::Confirmed, "{}")
        .await
        .expect("up"));
    assert!(ledger
        .finish(&replaced, EntryState::Confirmed, "{}")
        .await
        .expect("up"));
    assert_eq!(
        ledger
            .count_by_state("eip155:84532", EntryState::Confirmed)
            .await
            .expect("up"),
        1
    );
    remove_sqlite(&path);
}

#[tokio::test]
async fn payment_ids_bind_once() {
    let (url, path) = temp_sqlite();
    let ledger = Ledger::connect(&url).await.expect("ledger");
    assert_eq!(
        ledger.bind_payment_id("id-1", "d1").await.expect("up"),
        "d1"
    );
    assert_eq!(
        ledger.bind_payment_id("id-1", "d1").await.expect("up"),
        "d1"
    );
    assert_eq!(
        ledger.bind_payment_id("id-1", "d2").await.expect("up"),
        "d1"
    );
    ledger.release_payment_id("id-1", "d1").await.expect("up");
    assert_eq!(
        ledger.bind_payment_id("id-1", "d2").await.expect("up"),
        "d2"
    );
    remove_sqlite(&path);
}

#[tokio::test]
async fn unsupported_urls_are_named() {
    let refused = Ledger::connect("mysql://root@localhost/x").await;
    assert!(matches!(refused, Err(LedgerError::UnsupportedUrl(s)) if s == "mysql"));
}

#[tokio::test]
async fn an_entry_keeps_its_terms_and_is_found_by_its_digest() {
    let (url, path) = temp_sqlite();
    let ledger = Ledger::connect(&url).await.expect("ledger");
    let recorded = record_new(&ledger, "a").await;
    assert_eq!(recorded.terms, Some(new_entry("a").terms));
    let found = ledger
        .entry_by_digest("digest-a")
        .await
        .expect("up")
        .expect("found by digest");
    assert_eq!(found, recorded);
    // The replacement keeps what the payment pays.
    let (replaced, _) = ledger
        .replace_transaction(&recorded, None, 1, signed)
        .await
        .expect("up")
        .expect("replaced");
    let found = ledger.entry_by_digest("digest-a").await.expect("up");
    assert_eq!(
        found.map(|e| (e.tx_hash, e.terms)),
        Some((replaced.tx_hash, recorded.terms))
    );
    assert_eq!(ledger.entry_by_digest("digest-b").await.expect("up"), None);
    remove_sqlite(&path);
}

fn listing(key: &str, kind: &str, pay_to: &str) -> Listing {
    Listing {
        key: key.into(),
        resource: key.into(),
        kind: kind.into(),
        x402_version: 2,
        accepts: "[]".into(),
        extension: "{}".into(),
        description: Some(format!("about {key}")),
        mime_type: None,
        network: "eip155:84532".into(),
        scheme: "exact".into(),
        pay_to: pay_to.into(),
        digest: format!("r2:{key}"),
    }
}

#[tokio::test]
async fn the_catalog_keeps_one_row_a_resource_and_pages_and_filters_it() {
    let (url, path) = temp_sqlite();
    let ledger = Ledger::connect(&url).await.expect("ledger");
    for (key, kind, pay_to) in [
        ("https://a.example/one", "http", "0xAbCd"),
        ("https://a.example/two", "http", "0xabcd"),
        ("https://b.example/mcp\ntool", "mcp", "SoLanaPayee"),
    ] {
        ledger
            .list_resource(&listing(key, kind, pay_to))
            .await
            .unwrap();
    }
    let mut again = listing("https://a.example/one", "http", "0xAbCd");
    again.description = Some("changed".into());
    ledger.list_resource(&again).await.unwrap();

    let all = ListingFilter::default();
    let (page, total) = ledger.listings(&all, 2, 0).await.unwrap();
    assert_eq!(
        total, 3,
        "the second listing of one resource replaced the first"
    );
    assert_eq!(page.len(), 2);
    assert_eq!(
        page[0].listing, again,
        "the last settled first, as it was listed last"
    );
    assert!(page[0].updated_at >= page[0].created_at);
    let (rest, _) = ledger.listings(&all, 2, 2).await.unwrap();
    assert_eq!(rest.len(), 1);
    let (beyond, total) = ledger.listings(&all, 2, u64::MAX).await.unwrap();
    assert!(beyond.is_empty());
    assert_eq!(total, 3);

    let by = |kind: Option<&str>, pay_to: Option<&str>| ListingFilter {
        kind: kind.map(Into::into),
        pay_to: pay_to.map(Into::into),
        ..ListingFilter::default()
    };
    let count = |filter: ListingFilter| {
        let ledger = &ledger;
        async move { ledger.listings(&filter, 10, 0).await.unwrap().1 }
    };
    assert_eq!(count(by(Some("mcp"), None)).await, 1);
    assert_eq!(
        count(by(Some("http"), Some("0xABCD"))).await,
        2,
        "0x addresses match in any case"
    );
    assert_eq!(
        count(by(None, Some("solanapayee"))).await,
        0,
        "others match exactly"
    );
    assert_eq!(count(by(None, Some("SoLanaPayee"))).await, 1);
    assert_eq!(
        count(by(Some("http' OR '1'='1"), None)).await,
        0,
        "values are bound, not spliced"
    );
    remove_sqlite(&path);
}

fn stored_key(id: &str, hash: &str, source: &str) -> StoredKey {
    StoredKey {
        id: id.into(),
        key_hash: hash.into(),
        policy: "{}".into(),
        source: source.into(),
        updated_at: 0,
    }
}

#[tokio::test]
async fn keys_are_kept_by_hash_the_file_owns_its_own_and_uses_count_per_minute() {
    let (url, path) = temp_sqlite();
    let ledger = Ledger::connect(&url).await.expect("ledger");
    ledger
        .put_api_key(&stored_key("shop", "aa", "admin"))
        .await
        .unwrap();
    let same_key = ledger
        .put_api_key(&stored_key("other", "aa", "admin"))
        .await;
    assert!(
        matches!(same_key, Err(KeyError::DuplicateKey)),
        "{same_key:?}"
    );
    let file = [
        stored_key("f1", "b1", "file"),
        stored_key("f2", "b2", "file"),
    ];
    ledger.replace_file_keys(&file).await.unwrap();
    let revoked = ledger.replace_file_keys(&file[..1]).await.unwrap();
    assert_eq!(revoked, 1);
    let ids: Vec<String> = ledger
        .api_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids, ["f1", "shop"], "the admin key stays, f2 is gone");
    assert!(ledger.delete_api_key("shop").await.unwrap());
    assert!(!ledger.delete_api_key("shop").await.unwrap());

    assert_eq!(ledger.count_key_use("f1", 60).await.unwrap(), 1);
    assert_eq!(ledger.count_key_use("f1", 60).await.unwrap(), 2);
    assert_eq!(ledger.count_key_use("f2", 60).await.unwrap(), 1, "per key");
    assert_eq!(
        ledger.count_key_use("f1", 120).await.unwrap(),
        1,
        "a new minute"
    );
    remove_sqlite(&path);
}

#[tokio::test]
async fn entries_of_a_scheme_are_counted_by_network_and_creation_time() {
    let (url, path) = temp_sqlite();
    let ledger = Ledger::connect(&url).await.expect("ledger");
    let before = now_millis();
    record_new(&ledger, "a").await;
    let mut funding = new_entry("funding");
    funding.terms.scheme = "erc20ApprovalGasSponsoring".into();
    ledger
        .record_signed(&funding, Some(0), 1, signed)
        .await
        .expect("recorded");
    let count = |network: &'static str, scheme: &'static str, since: i64| {
        let ledger = &ledger;
        async move {
            ledger
                .count_scheme_since(network, scheme, since)
                .await
                .unwrap()
        }
    };
    assert_eq!(count("eip155:84532", "exact", before).await, 1);
    assert_eq!(
        count("eip155:84532", "erc20ApprovalGasSponsoring", before).await,
        1
    );
    assert_eq!(
        count("eip155:8453", "erc20ApprovalGasSponsoring", before).await,
        0
    );
    let later = now_millis() + 1;
    assert_eq!(
        count("eip155:84532", "erc20ApprovalGasSponsoring", later).await,
        0
    );
    remove_sqlite(&path);
}
