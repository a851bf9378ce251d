//! The static checks of an `exact` SVM payment: everything that can be decided from the
//! transaction bytes and the requirements alone, without a node. Pure, so that it can be
//! tested and fuzzed in isolation; the handler adds signature checks' outcome, the fee
//! payer's signature and a simulation on the node.
//!
//! Layout (the exact-SVM scheme's static path): a compute-unit limit, a compute-unit price,
//! one SPL Token or Token-2022 `TransferChecked`, then up to four optional instructions from
//! allow-listed programs (Memo, Lighthouse by default).

use std::str::FromStr;

use base64::Engine as _;
use solana_message::compiled_instruction::CompiledInstruction;
use solana_pubkey::Pubkey;
use solana_transaction::versioned::VersionedTransaction;
use x402_protocol::Reason;

/// SPL Token program.
pub const TOKEN_PROGRAM: Pubkey =
    Pubkey::from_str_const("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
/// Token-2022 program.
pub const TOKEN_2022_PROGRAM: Pubkey =
    Pubkey::from_str_const("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb");
/// Associated Token Account program.
pub const ATA_PROGRAM: Pubkey =
    Pubkey::from_str_const("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL");
/// Compute Budget program.
pub const COMPUTE_BUDGET_PROGRAM: Pubkey =
    Pubkey::from_str_const("ComputeBudget111111111111111111111111111111");
/// SPL Memo program.
pub const MEMO_PROGRAM: Pubkey =
    Pubkey::from_str_const("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr");
/// Lighthouse (wallet-injected assertions).
pub const LIGHTHOUSE_PROGRAM: Pubkey =
    Pubkey::from_str_const("L2TExMFKdjpN9kozasaurPirfHy9P8sbXoAN1qA3S95");

/// `TransferChecked` instruction tag in SPL Token and Token-2022.
const TRANSFER_CHECKED: u8 = 12;
/// Compute Budget instruction tags.
const SET_COMPUTE_UNIT_LIMIT: u8 = 2;
const SET_COMPUTE_UNIT_PRICE: u8 = 3;

/// The instructions of an `exact` payment, encoded the way [`inspect`] decodes them, so that
/// what is built (by tests, tools, clients) and what is checked share one definition.
pub mod build {
    use solana_instruction::{AccountMeta, Instruction};
    use solana_pubkey::Pubkey;

    use super::{
        COMPUTE_BUDGET_PROGRAM, MEMO_PROGRAM, SET_COMPUTE_UNIT_LIMIT, SET_COMPUTE_UNIT_PRICE,
        TRANSFER_CHECKED,
    };

    /// Compute Budget `SetComputeUnitLimit`.
    pub fn compute_unit_limit(units: u32) -> Instruction {
        let mut data = vec![SET_COMPUTE_UNIT_LIMIT];
        data.extend_from_slice(&units.to_le_bytes());
        Instruction::new_with_bytes(COMPUTE_BUDGET_PROGRAM, &data, vec![])
    }

    /// Compute Budget `SetComputeUnitPrice` (micro-lamports per unit).
    pub fn compute_unit_price(micro_lamports: u64) -> Instruction {
        let mut data = vec![SET_COMPUTE_UNIT_PRICE];
        data.extend_from_slice(&micro_lamports.to_le_bytes());
        Instruction::new_with_bytes(COMPUTE_BUDGET_PROGRAM, &data, vec![])
    }

    /// SPL Token / Token-2022 `TransferChecked` of `amount` with `decimals`.
    pub fn transfer_checked(
        token_program: &Pubkey,
        source: Pubkey,
        mint: Pubkey,
        destination: Pubkey,
        authority: Pubkey,
        amount: u64,
        decimals: u8,
    ) -> Instruction {
        let mut data = vec![TRANSFER_CHECKED];
        data.extend_from_slice(&amount.to_le_bytes());
        data.push(decimals);
        Instruction::new_with_bytes(
            *token_program,
            &data,
            vec![
                AccountMeta::new(source, false),
                AccountMeta::new_readonly(mint, false),
                AccountMeta::new(destination, false),
                AccountMeta::new_readonly(authority, true),
            ],
        )
    }

    /// A Memo program instruction carrying `text`.
    pub fn memo(text: &str) -> Instruction {
        Instruction::new_with_bytes(MEMO_PROGRAM, text.as_bytes(), vec![])
    }
}

/// What a sponsor accepts beyond the scheme's outcome (operator-configurable).
#[derive(Debug, Clone)]
pub struct Policy {
    /// The facilitator's fee payers.
    pub fee_payers: Vec<Pubkey>,
    /// Upper bound of `SetComputeUnitLimit`.
    pub max_compute_units: u32,
    /// Upper bound of `SetComputeUnitPrice`, in micro-lamports per compute unit.
    pub max_compute_unit_price: u64,
    /// Programs allowed for the optional instructions after the transfer.
    pub optional_programs: Vec<Pubkey>,
}

/// The requirements, as the inspection needs them.
#[derive(Debug, Clone)]
pub struct Wanted<'a> {
    /// Mint (`asset`).
    pub asset: &'a str,
    /// Merchant (`payTo`).
    pub pay_to: &'a str,
    /// Exact amount in the mint's smallest unit.
    pub amount: &'a str,
    /// `extra.feePayer`.
    pub fee_payer: Option<&'a str>,
    /// `extra.memo`, when the seller set one.
    pub memo: Option<&'a str>,
}

/// A refusal: reason, detail, and the payer when it was known by then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Spec reason code.
    pub reason: Reason,
    /// Human detail.
    pub message: String,
    /// Transfer authority, once found.
    pub payer: Option<String>,
}

fn refuse(reason: Reason, message: impl Into<String>, payer: Option<&Pubkey>) -> Refused {
    Refused {
        reason,
        message: message.into(),
        payer: payer.map(ToString::to_string),
    }
}

/// What the inspection established.
#[derive(Debug, Clone)]
pub struct Inspected {
    /// The decoded transaction.
    pub transaction: VersionedTransaction,
    /// The fee payer (the first account), one of ours.
    pub fee_payer: Pubkey,
    /// The transfer authority: the payer.
    pub payer: Pubkey,
    /// The token program used.
    pub token_program: Pubkey,
    /// Destination token account.
    pub destination: Pubkey,
    /// Amount transferred.
    pub amount: u64,
}

/// Decodes a base64 payload transaction.
pub fn decode(payload_b64: &str) -> Result<VersionedTransaction, Refused> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload_b64.trim())
        .map_err(|_| {
            refuse(
                Reason::ExactSvmUndecodable,
                "transaction is not base64",
                None,
            )
        })?;
    if bytes.len() > 1232 {
        return Err(refuse(
            Reason::ExactSvmUndecodable,
            "transaction is larger than a Solana packet",
            None,
        ));
    }
    let transaction: VersionedTransaction = bincode::deserialize(&bytes).map_err(|_| {
        refuse(
            Reason::ExactSvmUndecodable,
            "bytes are not a Solana transaction",
            None,
        )
    })?;
    transaction.sanitize().map_err(|e| {
        refuse(
            Reason::ExactSvmUndecodable,
            format!("transaction is malformed: {e}"),
            None,
        )
    })?;
    Ok(transaction)
}

/// The associated token account of `owner` for `mint` under `token_program`.
pub fn associated_token_account(owner: &Pubkey, mint: &Pubkey, token_program: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(
        &[owner.as_ref(), token_program.as_ref(), mint.as_ref()],
        &ATA_PROGRAM,
    )
    .0
}

/// The authority of the payment's transfer (the third instruction, when it is a
/// `TransferChecked`), without any other check: who the transaction says pays. Answers
/// given before inspection name it; [`inspect`] establishes it.
pub fn transfer_authority(transaction: &VersionedTransaction) -> Option<Pubkey> {
    let message = &transaction.message;
    let keys = message.static_account_keys();
    let transfer = message.instructions().get(2)?;
    let program = keys.get(usize::from(transfer.program_id_index))?;
    if (*program != TOKEN_PROGRAM && *program != TOKEN_2022_PROGRAM)
        || transfer.data.first() != Some(&TRANSFER_CHECKED)
    {
        return None;
    }
    let authority = transfer.accounts.get(3)?;
    keys.get(usize::from(*authority)).copied()
}

/// The transfer the third instruction makes.
struct Transfer {
    token_program: Pubkey,
    destination: Pubkey,
    authority: Pubkey,
    amount: u64,
}

/// Runs every static check; the first failure is the answer.
pub fn inspect(
    transaction: VersionedTransaction,
    wanted: &Wanted<'_>,
    policy: &Policy,
) -> Result<Inspected, Refused> {
    let fee_payer = check_envelope(&transaction, wanted, policy)?;
    let message = &transaction.message;
    let keys = message.static_account_keys();
    let instructions = message.instructions();
    check_compute_budget(instructions, keys, policy)?;
    let transfer = check_transfer(&instructions[2], keys, wanted, policy)?;
    let payer = Some(&transfer.authority);
    check_optional(&instructions[3..], keys, wanted, policy, payer)?;
    check_signatures(&transaction, &transfer.authority)?;
    Ok(Inspected {
        transaction,
        fee_payer,
        payer: transfer.authority,
        token_program: transfer.token_program,
        destination: transfer.destination,
        amount: transfer.amount,
    })
}

/// The fee payer (ours, first, in no instruction), no lookup tables, at most two
/// signers, three to seven instructions.
fn check_envelope(
    transaction: &VersionedTransaction,
    wanted: &Wanted<'_>,
    policy: &Policy,
) -> Result<Pubkey, Refused> {
    let Some(named) = wanted.fee_payer else {
        let message =
            "requirements extra.feePayer is missing (the facilitator's fee payer from /supported)";
        return Err(refuse(Reason::ExactSvmMissingFeePayer, message, None));
    };
    let fee_payer = Pubkey::from_str(named)
        .ok()
        .filter(|f| policy.fee_payers.contains(f))
        .ok_or_else(|| {
            refuse(
                Reason::ExactSvmFeePayerNotManaged,
                "extra.feePayer is not a fee payer of this facilitator",
                None,
            )
        })?;
    let message = &transaction.message;
    let keys = message.static_account_keys();
    if keys.first() != Some(&fee_payer) {
        return Err(refuse(
            Reason::ExactSvmFeePayerMismatch,
            "the transaction's fee payer is not extra.feePayer",
            None,
        ));
    }
    if message
        .address_table_lookups()
        .is_some_and(|lookups| !lookups.is_empty())
    {
        return Err(refuse(
            Reason::ExactSvmAltNotAvailable,
            "address lookup tables are not accepted",
            None,
        ));
    }
    if message.header().num_required_signatures > 2 {
        return Err(refuse(
            Reason::ExactSvmExcessiveSigners,
            "the transaction requires more signers than the payer and the fee payer",
            None,
        ));
    }
    let instructions = message.instructions();
    if !(3..=7).contains(&instructions.len()) {
        return Err(refuse(
            Reason::ExactSvmInstructionsLength,
            format!("{} instructions; 3 to 7 expected", instructions.len()),
            None,
        ));
    }
    // The fee payer signs for fees only: it may be in no instruction at all.
    for instruction in instructions {
        if instruction.program_id_index == 0 || instruction.accounts.contains(&0) {
            return Err(refuse(
                Reason::ExactSvmFeePayerTransferringFunds,
                "the fee payer appears in an instruction's accounts",
                None,
            ));
        }
    }
    Ok(fee_payer)
}

/// The compute-unit limit and price, first and second, within the sponsor's caps.
fn check_compute_budget(
    instructions: &[CompiledInstruction],
    keys: &[Pubkey],
    policy: &Policy,
) -> Result<(), Refused> {
    let program_of = |index: u8| keys.get(usize::from(index)).copied();
    let limit = &instructions[0];
    if program_of(limit.program_id_index) != Some(COMPUTE_BUDGET_PROGRAM)
        || limit.data.len() != 5
        || limit.data[0] != SET_COMPUTE_UNIT_LIMIT
    {
        return Err(refuse(
            Reason::ExactSvmComputeLimit,
            "the first instruction must set the compute-unit limit",
            None,
        ));
    }
    let units = u32::from_le_bytes([limit.data[1], limit.data[2], limit.data[3], limit.data[4]]);
    if units > policy.max_compute_units {
        return Err(refuse(
            Reason::ExactSvmComputeLimitTooHigh,
            format!(
                "compute-unit limit {units} is above {}",
                policy.max_compute_units
            ),
            None,
        ));
    }
    let price = &instructions[1];
    if program_of(price.program_id_index) != Some(COMPUTE_BUDGET_PROGRAM)
        || price.data.len() != 9
        || price.data[0] != SET_COMPUTE_UNIT_PRICE
    {
        return Err(refuse(
            Reason::ExactSvmComputePrice,
            "the second instruction must set the compute-unit price",
            None,
        ));
    }
    let mut price_bytes = [0u8; 8];
    price_bytes.copy_from_slice(&price.data[1..9]);
    let micro_lamports = u64::from_le_bytes(price_bytes);
    if micro_lamports > policy.max_compute_unit_price {
        return Err(refuse(
            Reason::ExactSvmComputePriceTooHigh,
            format!(
                "compute-unit price {micro_lamports} micro-lamports is above {}",
                policy.max_compute_unit_price
            ),
            None,
        ));
    }
    Ok(())
}

/// The third instruction: a `TransferChecked` of exactly the amount of `asset` to
/// `payTo`'s token account, by an authority that is not one of our fee payers.
fn check_transfer(
    transfer: &CompiledInstruction,
    keys: &[Pubkey],
    wanted: &Wanted<'_>,
    policy: &Policy,
) -> Result<Transfer, Refused> {
    let token_program = keys
        .get(usize::from(transfer.program_id_index))
        .copied()
        .filter(|p| *p == TOKEN_PROGRAM || *p == TOKEN_2022_PROGRAM)
        .ok_or_else(|| {
            refuse(
                Reason::ExactSvmNoTransfer,
                "the third instruction is not an SPL Token or Token-2022 instruction",
                None,
            )
        })?;
    if transfer.data.len() != 10
        || transfer.data[0] != TRANSFER_CHECKED
        || transfer.accounts.len() < 4
    {
        return Err(refuse(
            Reason::ExactSvmNoTransfer,
            "the third instruction is not TransferChecked",
            None,
        ));
    }
    let account = |i: usize| keys.get(usize::from(transfer.accounts[i])).copied();
    let (Some(source), Some(mint), Some(destination), Some(authority)) =
        (account(0), account(1), account(2), account(3))
    else {
        return Err(refuse(
            Reason::ExactSvmNoTransfer,
            "TransferChecked names accounts the transaction does not have",
            None,
        ));
    };
    let payer = Some(&authority);
    if policy.fee_payers.contains(&authority) || policy.fee_payers.contains(&source) {
        return Err(refuse(
            Reason::ExactSvmFeePayerTransferringFunds,
            "a facilitator fee payer is the transfer's authority or source",
            payer,
        ));
    }
    if Pubkey::from_str(wanted.asset).ok() != Some(mint) {
        return Err(refuse(
            Reason::ExactSvmMintMismatch,
            format!("transfer mint {mint} is not asset {}", wanted.asset),
            payer,
        ));
    }
    let pay_to = Pubkey::from_str(wanted.pay_to).map_err(|_| {
        refuse(
            Reason::InvalidPaymentRequirements,
            "payTo is not a Solana address",
            payer,
        )
    })?;
    let expected = associated_token_account(&pay_to, &mint, &token_program);
    if destination != expected {
        return Err(refuse(
            Reason::ExactSvmRecipientMismatch,
            format!("destination {destination} is not payTo's token account {expected}"),
            payer,
        ));
    }
    let mut amount_bytes = [0u8; 8];
    amount_bytes.copy_from_slice(&transfer.data[1..9]);
    let amount = u64::from_le_bytes(amount_bytes);
    if wanted.amount.parse::<u64>().ok() != Some(amount) {
        return Err(refuse(
            Reason::ExactSvmAmountMismatch,
            format!("transfer amount {amount} is not {}", wanted.amount),
            payer,
        ));
    }
    Ok(Transfer {
        token_program,
        destination,
        authority,
        amount,
    })
}

/// The reference's code for a disallowed instruction after the transfer, named by its
/// position (the fourth to the seventh instruction), generic past those.
fn unknown_instruction_reason(position_after_transfer: usize) -> Reason {
    match position_after_transfer {
        0 => Reason::ExactSvmUnknownFourthInstruction,
        1 => Reason::ExactSvmUnknownFifthInstruction,
        2 => Reason::ExactSvmUnknownSixthInstruction,
        3 => Reason::ExactSvmUnknownSeventhInstruction,
        _ => Reason::ExactSvmUnknownOptionalInstruction,
    }
}

/// The instructions after the transfer: allow-listed programs only, and the memo the
/// seller asked for, when they did.
fn check_optional(
    optional: &[CompiledInstruction],
    keys: &[Pubkey],
    wanted: &Wanted<'_>,
    policy: &Policy,
    payer: Option<&Pubkey>,
) -> Result<(), Refused> {
    let mut memos = Vec::new();
    for (position, instruction) in optional.iter().enumerate() {
        let program = keys.get(usize::from(instruction.program_id_index)).copied();
        match program {
            Some(p) if policy.optional_programs.contains(&p) => {
                if p == MEMO_PROGRAM {
                    memos.push(instruction.data.clone());
                }
            }
            _ => {
                return Err(refuse(
                    unknown_instruction_reason(position),
                    format!(
                        "instruction of program {} is not allowed after the transfer",
                        program.map(|p| p.to_string()).unwrap_or_default()
                    ),
                    payer,
                ))
            }
        }
    }
    if let Some(memo) = wanted.memo {
        // The reference's two names: not exactly one Memo, then one with other data.
        if memos.len() != 1 {
            let message = format!(
                "extra.memo needs exactly one Memo instruction, not {}",
                memos.len()
            );
            return Err(refuse(Reason::ExactSvmMemoCount, message, payer));
        }
        if memos[0] != memo.as_bytes() {
            return Err(refuse(
                Reason::ExactSvmMemoMismatch,
                "extra.memo must be the one Memo instruction's data",
                payer,
            ));
        }
    }
    Ok(())
}

/// Every required signature but the fee payer's is present and valid, the authority's
/// among them.
fn check_signatures(transaction: &VersionedTransaction, authority: &Pubkey) -> Result<(), Refused> {
    let message = &transaction.message;
    let keys = message.static_account_keys();
    let payer = Some(authority);
    let message_bytes = message.serialize();
    let required = usize::from(message.header().num_required_signatures);
    if transaction.signatures.len() != required {
        return Err(refuse(
            Reason::ExactSvmSignatureInvalid,
            "signature count does not match the message header",
            payer,
        ));
    }
    for (i, signature) in transaction.signatures.iter().enumerate().skip(1) {
        if !signature.verify(keys[i].as_ref(), &message_bytes) {
            return Err(refuse(
                Reason::ExactSvmSignatureInvalid,
                format!("signature of {} does not verify", keys[i]),
                payer,
            ));
        }
    }
    if !(1..required).any(|i| keys[i] == *authority) {
        return Err(refuse(
            Reason::ExactSvmSignatureInvalid,
            "the transfer authority has not signed",
            payer,
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
