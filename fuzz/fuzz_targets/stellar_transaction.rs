//! The `transaction` of a Stellar `exact` payload: decoding and every check that needs no
//! node never panic, and whatever passes is one `transfer` on the wanted asset of exactly the
//! wanted amount to the wanted recipient, from an account that is not the facilitator's,
//! authorized only by signed address credentials of other accounts, with no sub-invocation.
//!
//! The first byte picks the mode. Raw mode feeds the rest as the XDR's bytes. Built mode
//! reads the rest as the parts of a transaction (sources, contract, function, arguments,
//! authorization entries) so the fuzzer reaches the deep checks; then it may flip one byte
//! of the encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stellar_xdr::{
    AccountId, ContractId, Hash, HostFunction, Int128Parts, InvokeContractArgs,
    InvokeHostFunctionOp, Limits, Memo, MuxedAccount, Operation, OperationBody, Preconditions,
    PublicKey, ScAddress, ScSymbol, ScVal, ScVec, SequenceNumber, SorobanAddressCredentials,
    SorobanAuthorizationEntry, SorobanAuthorizedFunction, SorobanAuthorizedInvocation,
    SorobanCredentials, Transaction, TransactionEnvelope, TransactionExt, TransactionV1Envelope,
    Uint256, WriteXdr,
};
use x402_stellar::payload::{decode, inspect, Wanted};

#[path = "../common/reader.rs"]
mod reader;
use reader::Reader;

const ASSET: [u8; 32] = [7; 32];
const AMOUNT: i128 = 1_000;
const KEYS: [[u8; 32]; 4] = [[1; 32], [2; 32], [3; 32], [0; 32]];
const MERCHANT: [u8; 32] = [2; 32];
const OURS: [u8; 32] = [3; 32];

fn account(key: [u8; 32]) -> ScAddress {
    ScAddress::Account(AccountId(PublicKey::PublicKeyTypeEd25519(Uint256(key))))
}

fn key(r: &mut Reader<'_>) -> [u8; 32] {
    KEYS[usize::from(r.byte()) % KEYS.len()]
}

fn arg(r: &mut Reader<'_>) -> ScVal {
    match r.byte() % 5 {
        0 => ScVal::Void,
        1 => ScVal::I128(Int128Parts {
            hi: i64::from(r.byte()),
            lo: u64::from(r.byte()),
        }),
        2 => ScVal::I128(Int128Parts {
            hi: 0,
            lo: AMOUNT as u64 + u64::from(r.byte() % 3),
        }),
        3 => ScVal::Address(ScAddress::Contract(ContractId(Hash(ASSET)))),
        _ => ScVal::Address(account(key(r))),
    }
}

fn call(r: &mut Reader<'_>) -> InvokeContractArgs {
    let contract = match r.chance(6) {
        true => account(key(r)),
        false => ScAddress::Contract(ContractId(Hash(if r.chance(6) { [9; 32] } else { ASSET }))),
    };
    let name = r.pick(&["transfer", "transfer", "burn", ""]);
    let count = match r.byte() % 5 {
        0 => usize::from(r.byte() % 5),
        _ => 3,
    };
    let args: Vec<ScVal> = (0..count).map(|_| arg(r)).collect();
    InvokeContractArgs {
        contract_address: contract,
        function_name: ScSymbol(name.try_into().unwrap_or_default()),
        args: args.try_into().unwrap_or_default(),
    }
}

fn entry(r: &mut Reader<'_>, call: &InvokeContractArgs) -> SorobanAuthorizationEntry {
    let signature = match r.chance(4) {
        true => ScVal::Void,
        false => ScVal::Vec(Some(ScVec(
            vec![ScVal::U32(1)].try_into().unwrap_or_default(),
        ))),
    };
    let credentials = match r.byte() % 6 {
        0 => SorobanCredentials::SourceAccount,
        _ => SorobanCredentials::Address(SorobanAddressCredentials {
            address: account(key(r)),
            nonce: i64::from(r.byte()),
            signature_expiration_ledger: u32::from(r.byte()),
            signature,
        }),
    };
    let mut invocation = SorobanAuthorizedInvocation {
        function: SorobanAuthorizedFunction::ContractFn(call.clone()),
        sub_invocations: Default::default(),
    };
    if r.chance(6) {
        invocation.sub_invocations = vec![invocation.clone()].try_into().unwrap_or_default();
    }
    SorobanAuthorizationEntry {
        credentials,
        root_invocation: invocation,
    }
}

fn built(r: &mut Reader<'_>) -> String {
    let call = call(r);
    let auth: Vec<_> = (0..usize::from(r.byte() % 3))
        .map(|_| entry(r, &call))
        .collect();
    let op = Operation {
        source_account: r.chance(5).then(|| MuxedAccount::Ed25519(Uint256(key(r)))),
        body: OperationBody::InvokeHostFunction(InvokeHostFunctionOp {
            host_function: HostFunction::InvokeContract(call),
            auth: auth.try_into().unwrap_or_default(),
        }),
    };
    let ops = match r.byte() % 6 {
        0 => vec![],
        1 => vec![op.clone(), op],
        _ => vec![op],
    };
    let tx = Transaction {
        source_account: MuxedAccount::Ed25519(Uint256(key(r))),
        fee: 100,
        seq_num: SequenceNumber(1),
        cond: Preconditions::None,
        memo: Memo::None,
        operations: ops.try_into().unwrap_or_default(),
        ext: TransactionExt::V0,
    };
    let envelope = TransactionEnvelope::Tx(TransactionV1Envelope {
        tx,
        signatures: Default::default(),
    });
    let mut bytes = envelope.to_xdr(Limits::none()).unwrap_or_default();
    if r.chance(3) && !bytes.is_empty() {
        let at = usize::from(r.byte()) * 7 % bytes.len();
        bytes[at] ^= r.byte() | 1;
    }
    base64(&bytes)
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader(data);
    let encoded = match r.byte() % 2 {
        0 => base64(r.0),
        _ => built(&mut r),
    };
    let Ok(envelope) = decode(&encoded) else {
        return;
    };
    let ours = [format!("{}", account(OURS))];
    let (asset, pay_to) = (
        format!("{}", ScAddress::Contract(ContractId(Hash(ASSET)))),
        format!("{}", account(MERCHANT)),
    );
    let wanted = Wanted {
        asset: &asset,
        pay_to: &pay_to,
        amount: AMOUNT,
        ours: &ours,
    };
    let Ok(passed) = inspect(&envelope, &wanted) else {
        return;
    };
    // Whatever passes is one exact transfer, from someone else than us, signed by the payer.
    assert_eq!(passed.amount, AMOUNT);
    assert_eq!(passed.to, pay_to);
    assert!(!ours.contains(&passed.from));
    let [operation] = envelope.tx.operations.as_slice() else {
        panic!("passed with {} operations", envelope.tx.operations.len());
    };
    let OperationBody::InvokeHostFunction(op) = &operation.body else {
        panic!("passed with another operation");
    };
    let HostFunction::InvokeContract(call) = &op.host_function else {
        panic!("passed with another host function");
    };
    assert_eq!(call.function_name.0.as_slice(), b"transfer");
    assert_eq!(format!("{}", call.contract_address), asset);
    assert!(!op.auth.is_empty());
    for entry in op.auth.iter() {
        let SorobanCredentials::Address(credentials) = &entry.credentials else {
            panic!("passed with other credentials");
        };
        assert!(!ours.contains(&format!("{}", credentials.address)));
        assert_ne!(credentials.signature, ScVal::Void);
        assert!(entry.root_invocation.sub_invocations.is_empty());
    }
});
