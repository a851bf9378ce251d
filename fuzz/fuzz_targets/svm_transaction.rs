//! The transaction of an SVM `exact` payload, the largest thing a payer hands the
//! facilitator to sign: decoding and every static check never panic, whatever the bytes.
//!
//! The first byte picks the mode. Raw mode feeds the rest as transaction bytes. Built mode
//! reads the rest as the parts of an `exact` payment (compute limit and price, token
//! program, amount, accounts, memo, extra instructions, signers) and builds it with the
//! same encoders the checks decode, so the fuzzer reaches the deep checks instead of
//! stopping at the decoder; then it flips one byte of the encoding.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_message::{Message, VersionedMessage};
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;
use x402_svm::inspect::{
    self, build, Policy, Wanted, MEMO_PROGRAM, TOKEN_2022_PROGRAM, TOKEN_PROGRAM,
};

#[path = "../common/reader.rs"]
mod reader;
use reader::Reader;

/// An address the transaction names: one of `known`, or one made of a repeated byte.
trait ReadKey {
    fn key(&mut self, known: &[Pubkey]) -> Pubkey;
}

impl ReadKey for Reader<'_> {
    fn key(&mut self, known: &[Pubkey]) -> Pubkey {
        let pick = self.byte();
        match known.get(usize::from(pick) % (known.len() + 1)) {
            Some(key) => *key,
            None => Pubkey::new_from_array([pick; 32]),
        }
    }
}

struct World {
    fee_payer: Keypair,
    payer: Keypair,
    mint: Pubkey,
    pay_to: Pubkey,
}

fn world() -> World {
    World {
        fee_payer: Keypair::new_from_array([1; 32]),
        payer: Keypair::new_from_array([2; 32]),
        mint: Pubkey::new_from_array([3; 32]),
        pay_to: Pubkey::new_from_array([4; 32]),
    }
}

fn built(world: &World, input: &mut Reader<'_>) -> Vec<u8> {
    let known = [
        world.fee_payer.pubkey(),
        world.payer.pubkey(),
        world.mint,
        world.pay_to,
        TOKEN_PROGRAM,
        TOKEN_2022_PROGRAM,
        MEMO_PROGRAM,
    ];
    let token_program = if input.chance(2) {
        TOKEN_PROGRAM
    } else {
        TOKEN_2022_PROGRAM
    };
    let mint = input.key(&known);
    let destination = inspect::associated_token_account(&world.pay_to, &mint, &token_program);
    let source = inspect::associated_token_account(&world.payer.pubkey(), &mint, &token_program);
    let mut instructions = vec![
        build::compute_unit_limit(input.u64() as u32),
        build::compute_unit_price(input.u64()),
        build::transfer_checked(
            &token_program,
            if input.chance(4) {
                input.key(&known)
            } else {
                source
            },
            mint,
            if input.chance(4) {
                input.key(&known)
            } else {
                destination
            },
            input.key(&known),
            input.u64(),
            input.byte(),
        ),
    ];
    for _ in 0..input.byte() % 5 {
        let length = usize::from(input.byte() % 40);
        let text: String = (0..length)
            .map(|_| char::from(b'a' + input.byte() % 26))
            .collect();
        instructions.push(build::memo(&text));
    }
    if input.chance(3) {
        let other = usize::from(input.byte()) % instructions.len();
        instructions.swap(0, other);
    }
    let message = Message::new_with_blockhash(
        &instructions,
        Some(&input.key(&known)),
        &Hash::new_from_array([input.byte(); 32]),
    );
    let bytes = VersionedMessage::Legacy(message.clone()).serialize();
    let required = usize::from(message.header.num_required_signatures);
    let mut signatures = vec![Signature::default(); required];
    for signer in [&world.payer, &world.fee_payer] {
        if input.chance(2) {
            if let Some(i) = message
                .account_keys
                .iter()
                .position(|k| *k == signer.pubkey())
            {
                if i < required {
                    signatures[i] = signer.sign_message(&bytes);
                }
            }
        }
    }
    let transaction = VersionedTransaction {
        signatures,
        message: VersionedMessage::Legacy(message),
    };
    let mut encoded = bincode::serialize(&transaction).unwrap_or_default();
    if !encoded.is_empty() && input.chance(2) {
        let at = usize::from(input.byte()) * 7 % encoded.len();
        encoded[at] ^= input.byte() | 1;
    }
    encoded
}

fuzz_target!(|data: &[u8]| {
    let world = world();
    let mut input = Reader(data);
    let bytes = match input.byte() % 2 {
        0 => input.0.to_vec(),
        _ => built(&world, &mut input),
    };
    let payload = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let Ok(transaction) = inspect::decode(&payload) else {
        return;
    };
    let claimed = inspect::transfer_authority(&transaction);
    let fee_payer = world.fee_payer.pubkey().to_string();
    let asset = world.mint.to_string();
    let pay_to = world.pay_to.to_string();
    let wanted = Wanted {
        asset: &asset,
        pay_to: &pay_to,
        amount: "1000",
        fee_payer: Some(&fee_payer),
        memo: None,
    };
    let policy = Policy {
        fee_payers: vec![world.fee_payer.pubkey()],
        max_compute_units: 400_000,
        max_compute_unit_price: 5_000_000,
        optional_programs: vec![MEMO_PROGRAM],
    };
    if let Ok(inspected) = inspect::inspect(transaction, &wanted, &policy) {
        // What passed is the payment asked for, paid by whom the transaction names.
        assert_eq!(inspected.amount, 1000);
        assert_eq!(inspected.fee_payer, world.fee_payer.pubkey());
        assert_eq!(Some(inspected.payer), claimed);
        assert_ne!(inspected.payer, world.fee_payer.pubkey());
    }
});
