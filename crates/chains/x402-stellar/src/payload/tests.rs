use super::*;
use stellar_xdr::{
    AccountId, ContractId, Hash, Int128Parts, Memo, MuxedAccount, Operation, Preconditions,
    PublicKey, ScSymbol, ScVec, SequenceNumber, SorobanAddressCredentials,
    SorobanAuthorizedFunction, SorobanAuthorizedInvocation, Transaction, TransactionExt, Uint256,
    WriteXdr,
};

const ASSET: [u8; 32] = [7; 32];
const PAYER: [u8; 32] = [1; 32];
const MERCHANT: [u8; 32] = [2; 32];
const OURS: [u8; 32] = [3; 32];

fn account(key: [u8; 32]) -> ScAddress {
    ScAddress::Account(AccountId(PublicKey::PublicKeyTypeEd25519(Uint256(key))))
}

fn g(key: [u8; 32]) -> String {
    address(&account(key))
}

fn asset() -> String {
    address(&ScAddress::Contract(ContractId(Hash(ASSET))))
}

fn call(from: [u8; 32], amount: i128) -> InvokeContractArgs {
    InvokeContractArgs {
        contract_address: ScAddress::Contract(ContractId(Hash(ASSET))),
        function_name: ScSymbol("transfer".try_into().unwrap()),
        args: vec![
            ScVal::Address(account(from)),
            ScVal::Address(account(MERCHANT)),
            ScVal::I128(Int128Parts {
                hi: (amount >> 64) as i64,
                lo: amount as u64,
            }),
        ]
        .try_into()
        .unwrap(),
    }
}

fn entry(signer: [u8; 32], signed: bool, call: &InvokeContractArgs) -> SorobanAuthorizationEntry {
    let signature = match signed {
        true => ScVal::Vec(Some(ScVec(vec![ScVal::U32(1)].try_into().unwrap()))),
        false => ScVal::Void,
    };
    SorobanAuthorizationEntry {
        credentials: SorobanCredentials::Address(SorobanAddressCredentials {
            address: account(signer),
            nonce: 42,
            signature_expiration_ledger: 100,
            signature,
        }),
        root_invocation: SorobanAuthorizedInvocation {
            function: SorobanAuthorizedFunction::ContractFn(call.clone()),
            sub_invocations: Default::default(),
        },
    }
}

fn envelope(
    source: [u8; 32],
    call: InvokeContractArgs,
    auth: Vec<SorobanAuthorizationEntry>,
) -> TransactionV1Envelope {
    let op = Operation {
        source_account: None,
        body: OperationBody::InvokeHostFunction(InvokeHostFunctionOp {
            host_function: HostFunction::InvokeContract(call),
            auth: auth.try_into().unwrap(),
        }),
    };
    TransactionV1Envelope {
        tx: Transaction {
            source_account: MuxedAccount::Ed25519(Uint256(source)),
            fee: 100,
            seq_num: SequenceNumber(1),
            cond: Preconditions::None,
            memo: Memo::None,
            operations: vec![op].try_into().unwrap(),
            ext: TransactionExt::V0,
        },
        signatures: Default::default(),
    }
}

fn good() -> TransactionV1Envelope {
    let call = call(PAYER, 1_000);
    let auth = vec![entry(PAYER, true, &call)];
    envelope([0; 32], call, auth)
}

fn judged(envelope: &TransactionV1Envelope, amount: i128) -> Result<Transfer, Refused> {
    let ours = vec![g(OURS)];
    let (asset, pay_to) = (asset(), g(MERCHANT));
    inspect(
        envelope,
        &Wanted {
            asset: &asset,
            pay_to: &pay_to,
            amount,
            ours: &ours,
        },
    )
}

fn reason(envelope: &TransactionV1Envelope) -> Reason {
    judged(envelope, 1_000).expect_err("refused").reason
}

#[test]
fn a_signed_transfer_of_the_exact_amount_passes_and_names_its_nonce() {
    let transfer = judged(&good(), 1_000).expect("passes");
    assert_eq!(transfer.from, g(PAYER));
    assert_eq!(transfer.to, g(MERCHANT));
    assert_eq!((transfer.nonce, transfer.expiration_ledger), (42, 100));
    let encoded = TransactionEnvelope::Tx(good())
        .to_xdr_base64(Limits::none())
        .unwrap();
    assert_eq!(decode(&encoded).expect("decodes"), good());
}

#[test]
fn amounts_recipients_and_calls_other_than_the_requirement_are_refused() {
    let short = judged(&good(), 1_001).expect_err("refused");
    assert_eq!(short.reason, Reason::ExactStellarWrongAmount);
    assert_eq!(short.payer, Some(g(PAYER)));
    let mut burn = call(PAYER, 1_000);
    burn.function_name = ScSymbol("burn".try_into().unwrap());
    let auth = vec![entry(PAYER, true, &burn)];
    assert_eq!(
        reason(&envelope([0; 32], burn, auth)),
        Reason::ExactStellarWrongFunction
    );
    let mut elsewhere = call(PAYER, 1_000);
    elsewhere.contract_address = account(MERCHANT);
    let auth = vec![entry(PAYER, true, &elsewhere)];
    let other = envelope([0; 32], elsewhere, auth);
    assert_eq!(reason(&other), Reason::ExactStellarWrongAsset);
}

#[test]
fn the_facilitator_as_source_payer_or_signer_is_refused() {
    let call = call(PAYER, 1_000);
    let as_source = envelope(OURS, call.clone(), vec![entry(PAYER, true, &call)]);
    assert_eq!(reason(&as_source), Reason::ExactStellarUnsafeSource);
    let ours = self::call(OURS, 1_000);
    let as_payer = envelope([0; 32], ours.clone(), vec![entry(OURS, true, &ours)]);
    assert_eq!(reason(&as_payer), Reason::ExactStellarFacilitatorIsPayer);
    let in_auth = envelope(
        [0; 32],
        call.clone(),
        vec![entry(PAYER, true, &call), entry(OURS, true, &call)],
    );
    assert_eq!(reason(&in_auth), Reason::ExactStellarFacilitatorInAuth);
}

#[test]
fn unsigned_missing_and_foreign_authorizations_are_refused() {
    let call = call(PAYER, 1_000);
    let none = envelope([0; 32], call.clone(), vec![]);
    assert_eq!(reason(&none), Reason::ExactStellarNoAuthEntries);
    let unsigned = envelope([0; 32], call.clone(), vec![entry(PAYER, false, &call)]);
    assert_eq!(reason(&unsigned), Reason::ExactStellarMissingPayerSignature);
    let pending = envelope(
        [0; 32],
        call.clone(),
        vec![entry(PAYER, true, &call), entry(MERCHANT, false, &call)],
    );
    assert_eq!(reason(&pending), Reason::ExactStellarPendingSignatures);
    let mut nested = entry(PAYER, true, &call);
    nested.root_invocation.sub_invocations =
        vec![nested.root_invocation.clone()].try_into().unwrap();
    let nested = envelope([0; 32], call.clone(), vec![nested]);
    assert_eq!(reason(&nested), Reason::ExactStellarHasSubinvocations);
    let mut source = entry(PAYER, true, &call);
    source.credentials = SorobanCredentials::SourceAccount;
    let source = envelope([0; 32], call, vec![source]);
    assert_eq!(reason(&source), Reason::ExactStellarUnsupportedCredential);
}

#[test]
fn garbage_too_large_or_other_envelopes_are_malformed() {
    for text in [
        "",
        "AAAA",
        "not base64!",
        &"A".repeat(MAX_PAYLOAD_BYTES * 2),
    ] {
        assert_eq!(
            decode(text).expect_err("refused").reason,
            Reason::ExactStellarMalformed
        );
    }
    let two = {
        let mut e = good();
        let op = e.tx.operations[0].clone();
        e.tx.operations = vec![op.clone(), op].try_into().unwrap();
        e
    };
    assert_eq!(reason(&two), Reason::ExactStellarWrongOperation);
}
