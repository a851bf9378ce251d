//! The static checks, case by case and under random transactions.

use super::*;
use solana_instruction::{AccountMeta, Instruction};
use solana_keypair::Keypair;
use solana_message::{Message, VersionedMessage};
use solana_signer::Signer;

pub struct Fixture {
    pub fee_payer: Keypair,
    pub payer: Keypair,
    pub mint: Pubkey,
    pub pay_to: Pubkey,
}

pub fn fixture() -> Fixture {
    Fixture {
        fee_payer: Keypair::new(),
        payer: Keypair::new(),
        mint: Pubkey::new_unique(),
        pay_to: Pubkey::new_unique(),
    }
}

pub use super::build::{compute_unit_limit as limit, compute_unit_price as price, memo};

pub fn transfer(
    f: &Fixture,
    mint: Pubkey,
    destination: Pubkey,
    authority: Pubkey,
    amount: u64,
) -> Instruction {
    let source = associated_token_account(&f.payer.pubkey(), &mint, &TOKEN_PROGRAM);
    super::build::transfer_checked(
        &TOKEN_PROGRAM,
        source,
        mint,
        destination,
        authority,
        amount,
        6,
    )
}

/// A transaction with the fee payer first, signed by `signers` (not the fee payer).
pub fn build(
    f: &Fixture,
    instructions: &[Instruction],
    signers: &[&Keypair],
) -> VersionedTransaction {
    let message = Message::new_with_blockhash(
        instructions,
        Some(&f.fee_payer.pubkey()),
        &solana_hash::Hash::new_from_array([7; 32]),
    );
    let required = usize::from(message.header.num_required_signatures);
    let bytes = VersionedMessage::Legacy(message.clone()).serialize();
    let mut signatures = vec![solana_signature::Signature::default(); required];
    for signer in signers {
        if let Some(i) = message
            .account_keys
            .iter()
            .position(|k| *k == signer.pubkey())
        {
            signatures[i] = signer.sign_message(&bytes);
        }
    }
    VersionedTransaction {
        signatures,
        message: VersionedMessage::Legacy(message),
    }
}

pub fn good(f: &Fixture, amount: u64) -> Vec<Instruction> {
    let destination = associated_token_account(&f.pay_to, &f.mint, &TOKEN_PROGRAM);
    vec![
        limit(20_000),
        price(1),
        transfer(f, f.mint, destination, f.payer.pubkey(), amount),
        memo("0123456789abcdef0123456789abcdef"),
    ]
}

fn policy(f: &Fixture) -> Policy {
    Policy {
        fee_payers: vec![f.fee_payer.pubkey()],
        max_compute_units: 400_000,
        max_compute_unit_price: 5_000_000,
        optional_programs: vec![MEMO_PROGRAM, LIGHTHOUSE_PROGRAM],
    }
}

fn check(
    f: &Fixture,
    tx: VersionedTransaction,
    amount: &str,
    memo: Option<&str>,
) -> Result<Inspected, Refused> {
    let fee_payer = f.fee_payer.pubkey().to_string();
    let asset = f.mint.to_string();
    let pay_to = f.pay_to.to_string();
    let wanted = Wanted {
        asset: &asset,
        pay_to: &pay_to,
        amount,
        fee_payer: Some(&fee_payer),
        memo,
    };
    // Through the wire format, as a payload arrives.
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(bincode::serialize(&tx).unwrap());
    inspect(decode(&encoded)?, &wanted, &policy(f))
}

fn reason(result: Result<Inspected, Refused>) -> Reason {
    match result {
        Ok(_) => panic!("accepted"),
        Err(refused) => refused.reason,
    }
}

#[test]
fn a_wallet_style_payment_passes() {
    let f = fixture();
    let tx = build(&f, &good(&f, 1_000), &[&f.payer]);
    let inspected = check(&f, tx, "1000", None).expect("valid");
    assert_eq!(inspected.payer, f.payer.pubkey());
    assert_eq!(inspected.amount, 1_000);
    assert_eq!(inspected.token_program, TOKEN_PROGRAM);
}

#[test]
fn the_transfer_authority_is_read_without_inspection() {
    let f = fixture();
    let tx = build(&f, &good(&f, 1_000), &[&f.payer]);
    assert_eq!(transfer_authority(&tx), Some(f.payer.pubkey()));
    // Amount, mint and destination are not looked at: a wrong payment still names its payer.
    let wrong = build(&f, &good(&f, 1), &[]);
    assert_eq!(transfer_authority(&wrong), Some(f.payer.pubkey()));
    // No TransferChecked in third place: nobody is named.
    let no_transfer = build(&f, &[limit(1), price(1), memo("x")], &[]);
    assert_eq!(transfer_authority(&no_transfer), None);
    let too_short = build(&f, &[limit(1)], &[]);
    assert_eq!(transfer_authority(&too_short), None);
}

#[test]
fn every_rule_has_its_reason() {
    let f = fixture();
    let destination = associated_token_account(&f.pay_to, &f.mint, &TOKEN_PROGRAM);
    let stranger = Keypair::new();
    // Amount short and over.
    assert_eq!(
        reason(check(
            &f,
            build(&f, &good(&f, 999), &[&f.payer]),
            "1000",
            None
        )),
        Reason::ExactSvmAmountMismatch
    );
    assert_eq!(
        reason(check(
            &f,
            build(&f, &good(&f, 1_001), &[&f.payer]),
            "1000",
            None
        )),
        Reason::ExactSvmAmountMismatch
    );
    // Wrong mint, wrong destination.
    let mut ix = good(&f, 1_000);
    ix[2] = transfer(
        &f,
        Pubkey::new_unique(),
        destination,
        f.payer.pubkey(),
        1_000,
    );
    assert_eq!(
        reason(check(&f, build(&f, &ix, &[&f.payer]), "1000", None)),
        Reason::ExactSvmMintMismatch
    );
    let mut ix = good(&f, 1_000);
    ix[2] = transfer(&f, f.mint, Pubkey::new_unique(), f.payer.pubkey(), 1_000);
    assert_eq!(
        reason(check(&f, build(&f, &ix, &[&f.payer]), "1000", None)),
        Reason::ExactSvmRecipientMismatch
    );
    // Compute price over the cap, limit over the cap, layout broken.
    let mut ix = good(&f, 1_000);
    ix[1] = price(5_000_001);
    assert_eq!(
        reason(check(&f, build(&f, &ix, &[&f.payer]), "1000", None)),
        Reason::ExactSvmComputePriceTooHigh
    );
    let mut ix = good(&f, 1_000);
    ix[0] = limit(400_001);
    assert_eq!(
        reason(check(&f, build(&f, &ix, &[&f.payer]), "1000", None)),
        Reason::ExactSvmComputeLimitTooHigh
    );
    let mut ix = good(&f, 1_000);
    ix.swap(0, 1);
    assert_eq!(
        reason(check(&f, build(&f, &ix, &[&f.payer]), "1000", None)),
        Reason::ExactSvmComputeLimit
    );
    let ix = good(&f, 1_000);
    assert_eq!(
        reason(check(&f, build(&f, &ix[..2], &[&f.payer]), "1000", None)),
        Reason::ExactSvmInstructionsLength
    );
    // An extra SOL transfer after the payment: a program outside the allow-list.
    let mut ix = good(&f, 1_000);
    let system = Pubkey::from_str_const("11111111111111111111111111111111");
    let mut data = vec![2, 0, 0, 0];
    data.extend_from_slice(&5_000u64.to_le_bytes());
    ix.push(Instruction::new_with_bytes(
        system,
        &data,
        vec![
            AccountMeta::new(f.payer.pubkey(), true),
            AccountMeta::new(stranger.pubkey(), false),
        ],
    ));
    assert_eq!(
        reason(check(&f, build(&f, &ix, &[&f.payer]), "1000", None)),
        Reason::ExactSvmUnknownFifthInstruction,
        "after the memo it is the fifth instruction"
    );
    // Without the memo the same transfer is the fourth: named by its position.
    ix.remove(3);
    assert_eq!(
        reason(check(&f, build(&f, &ix, &[&f.payer]), "1000", None)),
        Reason::ExactSvmUnknownFourthInstruction
    );
}

#[test]
fn who_signs_and_who_pays_have_their_reasons() {
    let f = fixture();
    let destination = associated_token_account(&f.pay_to, &f.mint, &TOKEN_PROGRAM);
    let stranger = Keypair::new();
    // The fee payer as the transfer authority, or anywhere in the accounts (drains).
    let mut ix = good(&f, 1_000);
    ix[2] = transfer(&f, f.mint, destination, f.fee_payer.pubkey(), 1_000);
    assert_eq!(
        reason(check(&f, build(&f, &ix, &[&f.payer]), "1000", None)),
        Reason::ExactSvmFeePayerTransferringFunds
    );
    let mut ix = good(&f, 1_000);
    ix[3] = Instruction::new_with_bytes(
        MEMO_PROGRAM,
        b"x",
        vec![AccountMeta::new(f.fee_payer.pubkey(), true)],
    );
    assert_eq!(
        reason(check(&f, build(&f, &ix, &[&f.payer]), "1000", None)),
        Reason::ExactSvmFeePayerTransferringFunds
    );
    // Signed by someone else; the payer's signature missing.
    assert_eq!(
        reason(check(
            &f,
            build(&f, &good(&f, 1_000), &[&stranger]),
            "1000",
            None
        )),
        Reason::ExactSvmSignatureInvalid
    );
    // A third signer.
    let mut ix = good(&f, 1_000);
    ix[3] = Instruction::new_with_bytes(
        MEMO_PROGRAM,
        b"x",
        vec![AccountMeta::new_readonly(stranger.pubkey(), true)],
    );
    assert_eq!(
        reason(check(
            &f,
            build(&f, &ix, &[&f.payer, &stranger]),
            "1000",
            None
        )),
        Reason::ExactSvmExcessiveSigners
    );
    // The seller's memo: one with other data is a mismatch, none is a count.
    let tx = build(&f, &good(&f, 1_000), &[&f.payer]);
    assert_eq!(
        reason(check(&f, tx, "1000", Some("invoice-42"))),
        Reason::ExactSvmMemoMismatch
    );
    let mut ix = good(&f, 1_000);
    ix.truncate(3);
    assert_eq!(
        reason(check(
            &f,
            build(&f, &ix, &[&f.payer]),
            "1000",
            Some("invoice-42")
        )),
        Reason::ExactSvmMemoCount
    );
    let mut ix = good(&f, 1_000);
    ix[3] = memo("invoice-42");
    assert!(check(&f, build(&f, &ix, &[&f.payer]), "1000", Some("invoice-42")).is_ok());
}

#[test]
fn fee_payer_must_be_ours_and_first() {
    let f = fixture();
    let other = fixture();
    let tx = build(&other, &good(&f, 1_000), &[&f.payer]);
    assert_eq!(
        reason(check(&f, tx, "1000", None)),
        Reason::ExactSvmFeePayerMismatch
    );
    let wanted = Wanted {
        asset: "x",
        pay_to: "y",
        amount: "1",
        fee_payer: Some("11111111111111111111111111111111"),
        memo: None,
    };
    let tx = build(&f, &good(&f, 1_000), &[&f.payer]);
    assert_eq!(
        reason(inspect(tx.clone(), &wanted, &policy(&f))),
        Reason::ExactSvmFeePayerNotManaged
    );
    let unnamed = Wanted {
        fee_payer: None,
        ..wanted
    };
    assert_eq!(
        reason(inspect(tx, &unnamed, &policy(&f))),
        Reason::ExactSvmMissingFeePayer
    );
}

#[test]
fn garbage_is_refused_not_crashed() {
    for input in ["", "%%%", "AAAA", "////////////", &"A".repeat(4000)] {
        assert_eq!(
            decode(input).err().map(|r| r.reason),
            Some(Reason::ExactSvmUndecodable),
            "{input}"
        );
    }
}

proptest::proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1400)) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let _ = decode(&encoded);
    }
}
