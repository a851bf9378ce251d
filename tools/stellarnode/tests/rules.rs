//! The node's own rules, through its JSON-RPC: a transfer simulated, signed by its source
//! and applied by the Soroban host moves the asset once; the queue refuses what
//! stellar-core refuses. Ledgers close when the test says so ([`StellarNode::close_ledger`]).

use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};
use stellar_xdr::{
    DecoratedSignature, HostFunction, Int128Parts, InvokeContractArgs, InvokeHostFunctionOp,
    Limits, Memo, MuxedAccount, Operation, OperationBody, Preconditions, ReadXdr, ScAddress,
    ScSymbol, ScVal, SequenceNumber, Signature, SignatureHint, SorobanAuthorizationEntry,
    SorobanTransactionData, TimeBounds, TimePoint, Transaction, TransactionEnvelope,
    TransactionExt, TransactionResult, TransactionResultResult, TransactionV1Envelope, Uint256,
    WriteXdr,
};
use x402_stellarnode::{Genesis, GenesisAccount, StellarNode, TESTNET_PASSPHRASE};

struct Key(SigningKey);

impl Key {
    fn new(seed: u8) -> Key {
        Key(SigningKey::from_bytes(&[seed; 32]))
    }
    fn public(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }
    fn address(&self) -> String {
        format!("{}", stellar_strkey::ed25519::PublicKey(self.public()))
    }
    fn sc(&self) -> ScAddress {
        self.address().parse().expect("an address")
    }
}

async fn node(keys: &[&Key]) -> StellarNode {
    let accounts = keys
        .iter()
        .map(|k| GenesisAccount {
            public_key: k.address(),
            xlm: 1_000_000_000,
            balances: [("USDC".to_owned(), 1_000_000)].into_iter().collect(),
        })
        .collect();
    let genesis = Genesis {
        passphrase: TESTNET_PASSPHRASE.into(),
        // Ledgers close when the test closes them.
        ledger_interval_ms: 3_600_000,
        assets: vec!["USDC".into()],
        accounts,
    };
    StellarNode::start(&genesis).await.expect("node starts")
}

async fn call(node: &StellarNode, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let answer: Value = reqwest::Client::new()
        .post(&node.url)
        .json(&body)
        .send()
        .await
        .expect("node answers")
        .json()
        .await
        .expect("json");
    answer["result"].clone()
}

/// `from` moving `amount` USDC to `to`, authorized by the transaction's source (`from`).
fn transfer(node: &StellarNode, from: &Key, to: &Key, amount: i128) -> InvokeHostFunctionOp {
    let contract: ScAddress = node
        .contract("USDC")
        .expect("USDC")
        .parse()
        .expect("contract");
    InvokeHostFunctionOp {
        host_function: HostFunction::InvokeContract(InvokeContractArgs {
            contract_address: contract,
            function_name: ScSymbol("transfer".try_into().expect("symbol")),
            args: vec![
                ScVal::Address(from.sc()),
                ScVal::Address(to.sc()),
                ScVal::I128(Int128Parts {
                    hi: 0,
                    lo: amount as u64,
                }),
            ]
            .try_into()
            .expect("args"),
        }),
        auth: Default::default(),
    }
}

struct Tx {
    source: [u8; 32],
    seq: i64,
    fee: u32,
    max_time: u64,
    op: InvokeHostFunctionOp,
    data: Option<SorobanTransactionData>,
}

fn tx(t: &Tx) -> Transaction {
    Transaction {
        source_account: MuxedAccount::Ed25519(Uint256(t.source)),
        fee: t.fee,
        seq_num: SequenceNumber(t.seq),
        cond: match t.max_time {
            0 => Preconditions::None,
            max => Preconditions::Time(TimeBounds {
                min_time: TimePoint(0),
                max_time: TimePoint(max),
            }),
        },
        memo: Memo::None,
        operations: vec![Operation {
            source_account: None,
            body: OperationBody::InvokeHostFunction(t.op.clone()),
        }]
        .try_into()
        .expect("one op"),
        ext: t
            .data
            .clone()
            .map_or(TransactionExt::V0, TransactionExt::V1),
    }
}

fn envelope(tx: Transaction, signer: Option<&Key>) -> String {
    use sha2::Digest;
    let network: [u8; 32] = sha2::Sha256::digest(TESTNET_PASSPHRASE).into();
    let signatures = match signer {
        None => vec![],
        Some(key) => {
            let hash = tx.hash(network).expect("hash");
            let p = key.public();
            vec![DecoratedSignature {
                hint: SignatureHint([p[28], p[29], p[30], p[31]]),
                signature: Signature(
                    key.0
                        .sign(&hash)
                        .to_bytes()
                        .to_vec()
                        .try_into()
                        .expect("64 bytes"),
                ),
            }]
        }
    };
    TransactionEnvelope::Tx(TransactionV1Envelope {
        tx,
        signatures: signatures.try_into().expect("one"),
    })
    .to_xdr_base64(Limits::none())
    .expect("xdr")
}

/// The transfer with the simulation's auth and resources, at the source's next sequence.
async fn assembled(node: &StellarNode, from: &Key, to: &Key, amount: i128) -> Tx {
    let mut op = transfer(node, from, to, amount);
    let probe = Tx {
        source: from.public(),
        seq: 0,
        fee: 100,
        max_time: 0,
        op: op.clone(),
        data: None,
    };
    let simulated = call(
        node,
        "simulateTransaction",
        json!({"transaction": envelope(tx(&probe), None)}),
    )
    .await;
    assert!(simulated.get("error").is_none(), "{simulated}");
    let auth: Vec<SorobanAuthorizationEntry> = simulated["results"][0]["auth"]
        .as_array()
        .expect("auth")
        .iter()
        .map(|a| {
            SorobanAuthorizationEntry::from_xdr_base64(a.as_str().expect("b64"), Limits::none())
                .expect("entry")
        })
        .collect();
    op.auth = auth.try_into().expect("auth");
    let data = SorobanTransactionData::from_xdr_base64(
        simulated["transactionData"].as_str().expect("data"),
        Limits::none(),
    )
    .expect("data");
    let fee = 100 + u32::try_from(data.resource_fee).expect("fee");
    let seq = node.sequence_number(&from.address()).expect("account") + 1;
    Tx {
        source: from.public(),
        seq,
        fee,
        max_time: 0,
        op,
        data: Some(data),
    }
}

async fn send(node: &StellarNode, envelope: String) -> (String, Option<TransactionResultResult>) {
    let answer = call(node, "sendTransaction", json!({"transaction": envelope})).await;
    let code = answer["errorResultXdr"].as_str().map(|r| {
        TransactionResult::from_xdr_base64(r, Limits::none())
            .expect("result")
            .result
    });
    (
        answer["status"].as_str().unwrap_or_default().to_owned(),
        code,
    )
}

#[tokio::test]
async fn a_transfer_signed_by_its_source_applies_once_when_the_ledger_closes() {
    let (alice, bob) = (Key::new(1), Key::new(2));
    let node = node(&[&alice, &bob]).await;
    let t = assembled(&node, &alice, &bob, 250).await;
    let signed = envelope(tx(&t), Some(&alice));
    assert_eq!(send(&node, signed.clone()).await.0, "PENDING");
    assert_eq!(send(&node, signed.clone()).await.0, "DUPLICATE");
    assert_eq!(
        node.balance("USDC", &bob.address()),
        Some(1_000_000),
        "not before the close"
    );
    node.close_ledger();
    assert_eq!(node.balance("USDC", &bob.address()), Some(1_000_250));
    assert_eq!(node.balance("USDC", &alice.address()), Some(999_750));
    assert_eq!(node.sequence_number(&alice.address()), Some(t.seq));
    assert_eq!(
        node.xlm(&alice.address()),
        Some(1_000_000_000 - i64::from(t.fee))
    );
    let hash = hex(&tx(&t).hash(network_id()).expect("hash"));
    let found = call(&node, "getTransaction", json!({"hash": hash})).await;
    assert_eq!(found["status"], "SUCCESS", "{found}");
    assert_eq!(send(&node, signed).await.0, "DUPLICATE");
    node.close_ledger();
    assert_eq!(
        node.balance("USDC", &bob.address()),
        Some(1_000_250),
        "applied once"
    );
    assert_eq!(node.applied(), 1);
}

#[tokio::test]
async fn the_queue_refuses_what_stellar_core_refuses() {
    let (alice, bob, stranger) = (Key::new(1), Key::new(2), Key::new(3));
    let node = node(&[&alice, &bob]).await;
    let t = assembled(&node, &alice, &bob, 10).await;
    let refusal = |code| (String::from("ERROR"), Some(code));
    let ahead = Tx {
        seq: t.seq + 1,
        ..assembled(&node, &alice, &bob, 10).await
    };
    assert_eq!(
        send(&node, envelope(tx(&ahead), Some(&alice))).await,
        refusal(TransactionResultResult::TxBadSeq)
    );
    assert_eq!(
        send(&node, envelope(tx(&t), None)).await,
        refusal(TransactionResultResult::TxBadAuth)
    );
    assert_eq!(
        send(&node, envelope(tx(&t), Some(&bob))).await,
        refusal(TransactionResultResult::TxBadAuth)
    );
    let cheap = Tx {
        fee: 100,
        ..assembled(&node, &alice, &bob, 10).await
    };
    assert_eq!(
        send(&node, envelope(tx(&cheap), Some(&alice))).await,
        refusal(TransactionResultResult::TxInsufficientFee)
    );
    let late = Tx {
        max_time: 1,
        ..assembled(&node, &alice, &bob, 10).await
    };
    assert_eq!(
        send(&node, envelope(tx(&late), Some(&alice))).await,
        refusal(TransactionResultResult::TxTooLate)
    );
    let nobody = Tx {
        source: stranger.public(),
        ..assembled(&node, &alice, &bob, 10).await
    };
    assert_eq!(
        send(&node, envelope(tx(&nobody), Some(&stranger))).await,
        refusal(TransactionResultResult::TxNoAccount)
    );
    // One queued transaction per source account: a second waits for the next ledger, and
    // once the first took the sequence number, the second's is used.
    assert_eq!(
        send(&node, envelope(tx(&t), Some(&alice))).await.0,
        "PENDING"
    );
    let second = Tx {
        op: transfer(&node, &alice, &bob, 11),
        ..assembled(&node, &alice, &bob, 11).await
    };
    assert_eq!(
        send(&node, envelope(tx(&second), Some(&alice))).await.0,
        "TRY_AGAIN_LATER"
    );
    node.close_ledger();
    assert_eq!(
        send(&node, envelope(tx(&second), Some(&alice))).await,
        refusal(TransactionResultResult::TxBadSeq)
    );
    assert_eq!(node.applied(), 1);
    assert_eq!(node.balance("USDC", &bob.address()), Some(1_000_010));
}

#[tokio::test]
async fn a_simulation_with_an_authorization_it_cannot_verify_fails_with_the_host_error() {
    let (alice, bob) = (Key::new(1), Key::new(2));
    let node = node(&[&alice, &bob]).await;
    // Bob's transaction moving Alice's funds: recording mode asks for Alice's signature
    // (an address credential), which nobody gave.
    let mut op = transfer(&node, &alice, &bob, 5);
    let probe = Tx {
        source: bob.public(),
        seq: 0,
        fee: 100,
        max_time: 0,
        op: op.clone(),
        data: None,
    };
    let recorded = call(
        &node,
        "simulateTransaction",
        json!({"transaction": envelope(tx(&probe), None)}),
    )
    .await;
    let entry = SorobanAuthorizationEntry::from_xdr_base64(
        recorded["results"][0]["auth"][0]
            .as_str()
            .expect("an entry to sign"),
        Limits::none(),
    )
    .expect("entry");
    op.auth = vec![entry].try_into().expect("auth");
    let enforced = Tx { op, ..probe };
    let failed = call(
        &node,
        "simulateTransaction",
        json!({"transaction": envelope(tx(&enforced), None)}),
    )
    .await;
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(error.contains("Auth"), "{failed}");
    assert!(failed.get("transactionData").is_none(), "{failed}");
}

fn network_id() -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(TESTNET_PASSPHRASE).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
