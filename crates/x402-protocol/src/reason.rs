//! Reason codes for refused verifications and settlements.
//!
//! Codes from the x402 specifications and the official SDKs are used verbatim so
//! that official clients recognise them. Codes for the facilitator's own trouble
//! (RPC down, no gas, a flag off) are ours, snake_case and stable; they are listed in
//! `docs/reason-codes.md` and are never blamed on the payer.

use std::fmt;

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal, $class:ident; )*) => {
        /// A stable reason code carried in `invalidReason` / `errorReason`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $( $(#[$doc])* $variant, )*
        }

        impl Reason {
            /// Every reason, for documentation tests and metrics pre-registration.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant),*];

            /// The wire text of the code.
            pub fn as_str(self) -> &'static str {
                match self { $( Reason::$variant => $text, )* }
            }

            /// Who is at fault, which decides retry and breaker behaviour.
            pub fn class(self) -> ReasonClass {
                match self { $( Reason::$variant => ReasonClass::$class, )* }
            }

            /// Looks a code up by its wire text.
            pub fn from_code(code: &str) -> Option<Reason> {
                match code { $( $text => Some(Reason::$variant), )* _ => None }
            }
        }
    };
}

/// Whose problem a refusal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonClass {
    /// The payment or request is wrong; retrying the same thing will not help.
    Payer,
    /// The facilitator could not do its job right now; the same request may succeed later.
    /// Never cached by the ledger and never counted against the payer.
    Facilitator,
    /// The payment went on chain and failed there (revert): final, not the payer's input error.
    Chain,
    /// Broadcast happened and the outcome is not known yet; retry with the same payload.
    Pending,
}

reasons! {
    // ---- general (x402 v2 specification, section 9) ----
    /// Payer's token balance is too low (spec name).
    InsufficientFunds = "insufficient_funds", Payer;
    /// The network is not served by this facilitator.
    InvalidNetwork = "invalid_network", Payer;
    /// The scheme payload is malformed.
    InvalidPayload = "invalid_payload", Payer;
    /// The payment requirements are malformed or inconsistent.
    InvalidPaymentRequirements = "invalid_payment_requirements", Payer;
    /// The scheme is not valid for this request.
    InvalidScheme = "invalid_scheme", Payer;
    /// The scheme is not served on this network.
    UnsupportedScheme = "unsupported_scheme", Payer;
    /// The protocol version is unknown.
    InvalidX402Version = "invalid_x402_version", Payer;
    /// The transaction failed on chain.
    InvalidTransactionState = "invalid_transaction_state", Chain;
    /// Something unexpected went wrong while verifying.
    UnexpectedVerifyError = "unexpected_verify_error", Facilitator;
    /// Something unexpected went wrong while settling.
    UnexpectedSettleError = "unexpected_settle_error", Facilitator;

    // ---- exact on EVM (names shared by the official TypeScript and Go SDKs) ----
    /// Payload or requirements scheme is not `exact`.
    ExactEvmScheme = "invalid_exact_evm_scheme", Payer;
    /// The payload was made for another network than the requirements name.
    ExactEvmNetworkMismatch = "invalid_exact_evm_network_mismatch", Payer;
    /// `extra.name` / `extra.version` missing from the requirements.
    ExactEvmMissingEip712Domain = "invalid_exact_evm_missing_eip712_domain", Payer;
    /// `authorization.to` is not `payTo`.
    ExactEvmRecipientMismatch = "invalid_exact_evm_recipient_mismatch", Payer;
    /// The EIP-712 signature does not recover to `authorization.from`.
    ExactEvmSignature = "invalid_exact_evm_signature", Payer;
    /// `validBefore` is in the past (or too close to now to settle).
    ExactEvmValidBefore = "invalid_exact_evm_payload_authorization_valid_before", Payer;
    /// `validAfter` is in the future.
    ExactEvmValidAfter = "invalid_exact_evm_payload_authorization_valid_after", Payer;
    /// The signature carries the ERC-6492 suffix but its wrapping does not decode.
    ExactEvmFailedToParseSignature = "invalid_exact_evm_failed_to_parse_signature", Payer;
    /// v1: `authorization.value` does not match the required amount.
    ExactEvmAuthorizationValue = "invalid_exact_evm_authorization_value", Payer;
    /// v2: `authorization.value` is not exactly `amount` (the 2.27 reference's v2 name).
    ExactEvmAuthorizationValueMismatch = "invalid_exact_evm_payload_authorization_value_mismatch", Payer;
    /// A smart-wallet signature for a wallet that is neither deployed nor deployable.
    ExactEvmUndeployedSmartWallet = "invalid_exact_evm_payload_undeployed_smart_wallet", Payer;
    /// The authorization nonce was already used on chain.
    ExactEvmNonceAlreadyUsed = "invalid_exact_evm_nonce_already_used", Payer;
    /// The payer's balance is below the amount.
    ExactEvmInsufficientBalance = "invalid_exact_evm_insufficient_balance", Payer;
    /// The simulated transfer reverts.
    ExactEvmSimulationFailed = "invalid_exact_evm_transaction_simulation_failed", Payer;
    /// `extra.name` is not the token's name, and the simulated transfer reverts.
    ExactEvmTokenNameMismatch = "invalid_exact_evm_token_name_mismatch", Payer;
    /// `extra.version` is not the token's version, and the simulated transfer reverts.
    ExactEvmTokenVersionMismatch = "invalid_exact_evm_token_version_mismatch", Payer;
    /// The asset does not implement EIP-3009.
    ExactEvmEip3009NotSupported = "invalid_exact_evm_eip3009_not_supported", Payer;
    /// The settlement transaction reverted on chain.
    ExactEvmTransactionFailed = "invalid_exact_evm_transaction_failed", Chain;
    /// The settlement did not revert, but its receipt holds no `Transfer` of the authorized
    /// amount from the payer to the payee by the asset.
    ExactEvmTransferEventMismatch = "invalid_exact_evm_transfer_event_mismatch", Chain;
    /// A counterfactual wallet's ERC-6492 factory is outside the facilitator's allowlist.
    Eip6492FactoryNotAllowed = "eip6492_factory_not_allowed", Payer;
    /// The asset has no code on the network (a Permit2 payment's token).
    AssetNotDeployedContract = "asset_not_deployed_contract", Payer;
    /// The payload's transfer method is not served here (Permit2 in v1, or turned off).
    UnsupportedPayloadType = "unsupported_payload_type", Payer;

    // ---- exact on EVM with Permit2 (names of the official SDKs, @x402/evm 2.27) ----
    /// The permit's spender is not the x402 exact Permit2 proxy.
    Permit2InvalidSpender = "invalid_permit2_spender", Payer;
    /// The witness's `to` is not `payTo`.
    Permit2RecipientMismatch = "invalid_permit2_recipient_mismatch", Payer;
    /// The permit's deadline has passed (or passes within a block).
    Permit2DeadlineExpired = "permit2_deadline_expired", Payer;
    /// The witness's `validAfter` is in the future.
    Permit2NotYetValid = "permit2_not_yet_valid", Payer;
    /// The permitted amount is not the required amount.
    Permit2AmountMismatch = "permit2_amount_mismatch", Payer;
    /// The permitted token is not the asset.
    Permit2TokenMismatch = "permit2_token_mismatch", Payer;
    /// The signature is not the payer's over this permit (ecrecover, or EIP-1271 for a
    /// wallet with code, as Permit2 decides).
    Permit2InvalidSignature = "invalid_permit2_signature", Payer;
    /// The payer has not approved Permit2 for the amount and sent no EIP-2612 permit.
    Permit2AllowanceRequired = "permit2_allowance_required", Payer;
    /// The simulated proxy call reverts for another reason.
    Permit2SimulationFailed = "permit2_simulation_failed", Payer;
    /// The payer's balance is below the amount.
    Permit2InsufficientBalance = "permit2_insufficient_balance", Payer;
    /// The x402 exact Permit2 proxy has no code on this network: the facilitator's
    /// deployment, not the payer's doing.
    Permit2ProxyNotDeployed = "permit2_proxy_not_deployed", Facilitator;
    /// The proxy refused a zero amount.
    Permit2InvalidAmount = "permit2_invalid_amount", Payer;
    /// The proxy refused the zero address as destination.
    Permit2InvalidDestination = "permit2_invalid_destination", Payer;
    /// The proxy refused the zero address as owner.
    Permit2InvalidOwner = "permit2_invalid_owner", Payer;
    /// The proxy refused a payment before the witness's `validAfter`.
    Permit2PaymentTooEarly = "permit2_payment_too_early", Payer;
    /// The permit's nonce is already spent in Permit2.
    Permit2InvalidNonce = "permit2_invalid_nonce", Payer;
    /// The EIP-2612 permit's amount is not the permitted amount (the proxy refuses it).
    Permit2Eip2612AmountMismatch = "permit2_2612_amount_mismatch", Payer;

    // ---- upto on EVM (names of @x402/evm 2.27) ----
    /// Payload or requirements scheme is not `upto`.
    UptoEvmScheme = "invalid_upto_evm_scheme", Payer;
    /// The payload was made for another network than the requirements name.
    UptoEvmNetworkMismatch = "invalid_upto_evm_network_mismatch", Payer;
    /// The amount to settle is above the authorized maximum.
    UptoSettlementExceedsAmount = "invalid_upto_evm_payload_settlement_exceeds_amount", Payer;
    /// The upto proxy refused an amount above the permitted one.
    UptoAmountExceedsPermitted = "upto_amount_exceeds_permitted", Payer;
    /// The upto proxy refused a sender other than the witness's facilitator.
    UptoUnauthorizedFacilitator = "upto_unauthorized_facilitator", Payer;
    /// The witness names a facilitator that is not one of ours.
    UptoFacilitatorMismatch = "upto_facilitator_mismatch", Payer;
    /// The upto settlement transaction reverted on chain.
    UptoTransactionFailed = "invalid_upto_evm_transaction_failed", Chain;

    // ---- the eip2612GasSponsoring extension (names of @x402/evm 2.27) ----
    /// The extension's `info` is malformed.
    Eip2612InvalidFormat = "invalid_eip2612_extension_format", Payer;
    /// The EIP-2612 permit is not the payer's.
    Eip2612FromMismatch = "eip2612_from_mismatch", Payer;
    /// The EIP-2612 permit is for another token.
    Eip2612AssetMismatch = "eip2612_asset_mismatch", Payer;
    /// The EIP-2612 permit's spender is not Permit2.
    Eip2612SpenderNotPermit2 = "eip2612_spender_not_permit2", Payer;
    /// The EIP-2612 permit's deadline has passed.
    Eip2612DeadlineExpired = "eip2612_deadline_expired", Payer;

    // ---- the erc20ApprovalGasSponsoring extension (names of @x402/evm 2.27) ----
    /// The extension's `info` is malformed.
    Erc20ApprovalInvalidFormat = "invalid_erc20_approval_extension_format", Payer;
    /// The extension's `from` is not the payer.
    Erc20ApprovalFromMismatch = "erc20_approval_from_mismatch", Payer;
    /// The extension's `asset` is not the payment's token.
    Erc20ApprovalAssetMismatch = "erc20_approval_asset_mismatch", Payer;
    /// The extension's `spender` is not Permit2.
    Erc20ApprovalSpenderNotPermit2 = "erc20_approval_spender_not_permit2", Payer;
    /// The signed transaction does not call the payment's token.
    Erc20ApprovalTxWrongTarget = "erc20_approval_tx_wrong_target", Payer;
    /// The signed transaction's calldata is not an `approve` call.
    Erc20ApprovalTxWrongSelector = "erc20_approval_tx_wrong_selector", Payer;
    /// The signed `approve` names another spender than Permit2.
    Erc20ApprovalTxWrongSpender = "erc20_approval_tx_wrong_spender", Payer;
    /// The signed `approve` call's arguments do not decode, or approve less than is paid.
    Erc20ApprovalTxInvalidCalldata = "erc20_approval_tx_invalid_calldata", Payer;
    /// The signed transaction is signed by another account than the payer.
    Erc20ApprovalTxSignerMismatch = "erc20_approval_tx_signer_mismatch", Payer;
    /// No signer can be recovered from the signed transaction, or it is for another chain.
    Erc20ApprovalTxInvalidSignature = "erc20_approval_tx_invalid_signature", Payer;
    /// The signed transaction does not decode (or is of a type this extension does not take).
    Erc20ApprovalTxParseFailed = "erc20_approval_tx_parse_failed", Payer;
    /// The approval cannot land as signed (stale nonce, fee below the base fee, gas above
    /// what the facilitator funds), or it reverted on chain.
    Erc20ApprovalTxFailed = "erc20_approval_tx_failed", Payer;
    /// The node refused the payer's signed approval.
    Erc20ApprovalBroadcastFailed = "erc20_approval_broadcast_failed", Payer;

    // ---- exact on SVM (names of the official TypeScript SDK, @x402/svm) ----
    /// The payload's transaction is not a decodable, well-formed Solana transaction.
    ExactSvmUndecodable = "invalid_exact_svm_payload_transaction_could_not_be_decoded", Payer;
    /// The payload's or the requirements' scheme is not `exact`.
    ExactSvmUnsupportedScheme = "invalid_exact_svm_unsupported_scheme", Payer;
    /// The payload was made for another network than the requirements name.
    ExactSvmNetworkMismatch = "invalid_exact_svm_network_mismatch", Payer;
    /// `extra.feePayer` is not one of this facilitator's fee payers.
    ExactSvmFeePayerNotManaged = "invalid_exact_svm_fee_payer_not_managed_by_facilitator", Payer;
    /// The requirements name no `extra.feePayer`.
    ExactSvmMissingFeePayer = "invalid_exact_svm_payload_missing_fee_payer", Payer;
    /// The transaction's fee payer is not `extra.feePayer`.
    ExactSvmFeePayerMismatch = "invalid_exact_svm_fee_payer_mismatch", Payer;
    /// The transaction needs signatures beyond the client's and the fee payer's.
    ExactSvmExcessiveSigners = "invalid_exact_svm_payload_excessive_signers", Payer;
    /// Wrong number of instructions.
    ExactSvmInstructionsLength = "invalid_exact_svm_payload_transaction_instructions_length", Payer;
    /// The first instruction is not a compute-unit limit.
    ExactSvmComputeLimit = "invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction", Payer;
    /// The compute-unit limit is above the facilitator's cap.
    ExactSvmComputeLimitTooHigh = "invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction_too_high", Payer;
    /// The second instruction is not a compute-unit price.
    ExactSvmComputePrice = "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction", Payer;
    /// The compute-unit price is above the facilitator's cap.
    ExactSvmComputePriceTooHigh = "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction_too_high", Payer;
    /// The third instruction is not an SPL Token / Token-2022 `TransferChecked`.
    ExactSvmNoTransfer = "invalid_exact_svm_payload_no_transfer_instruction", Payer;
    /// The fee payer would move funds or appears in an instruction (a drain attempt).
    ExactSvmFeePayerTransferringFunds = "invalid_exact_svm_payload_transaction_fee_payer_transferring_funds", Payer;
    /// The transfer's mint is not `asset`.
    ExactSvmMintMismatch = "invalid_exact_svm_payload_mint_mismatch", Payer;
    /// The transfer's destination is not the associated token account of `payTo`.
    ExactSvmRecipientMismatch = "invalid_exact_svm_payload_recipient_mismatch", Payer;
    /// The transfer's amount is not the required amount.
    ExactSvmAmountMismatch = "invalid_exact_svm_payload_amount_mismatch", Payer;
    /// The fourth instruction (the first after the transfer) is from a program outside the
    /// allow-list; the next three have their own names, as the reference names them.
    ExactSvmUnknownFourthInstruction = "invalid_exact_svm_payload_unknown_fourth_instruction", Payer;
    /// The fifth instruction is from a program outside the allow-list.
    ExactSvmUnknownFifthInstruction = "invalid_exact_svm_payload_unknown_fifth_instruction", Payer;
    /// The sixth instruction is from a program outside the allow-list.
    ExactSvmUnknownSixthInstruction = "invalid_exact_svm_payload_unknown_sixth_instruction", Payer;
    /// The seventh instruction is from a program outside the allow-list.
    ExactSvmUnknownSeventhInstruction = "invalid_exact_svm_payload_unknown_seventh_instruction", Payer;
    /// An instruction past the seventh from a program outside the allow-list.
    ExactSvmUnknownOptionalInstruction = "invalid_exact_svm_payload_unknown_optional_instruction", Payer;
    /// `extra.memo` is set and the one Memo instruction carries other data.
    ExactSvmMemoMismatch = "invalid_exact_svm_payload_memo_mismatch", Payer;
    /// `extra.memo` is set and the transaction has not exactly one Memo instruction.
    ExactSvmMemoCount = "invalid_exact_svm_payload_memo_count", Payer;
    /// A required signature is missing or does not verify.
    ExactSvmSignatureInvalid = "invalid_exact_svm_payload_signature_invalid", Payer;
    /// Address lookup tables cannot be resolved here; refused rather than checked blind.
    ExactSvmAltNotAvailable = "invalid_exact_svm_smart_wallet_alt_resolution_not_available", Payer;
    /// The simulation of the fully signed transaction failed (includes expired blockhashes).
    ExactSvmSimulationFailed = "invalid_exact_svm_transaction_simulation_failed", Payer;
    /// The transaction failed on chain.
    ExactSvmTransactionFailed = "invalid_exact_svm_transaction_failed", Chain;

    // ---- exact on NEAR (the three spec-named codes verbatim; the rest ours, in the
    // `invalid_exact_<family>_` pattern of the official SDKs) ----
    /// The delegate action's `max_block_height` is at or below the final head (spec code).
    NearDelegateActionExpired = "delegate_action_expired", Payer;
    /// `max_block_height` lies further ahead than `maxTimeoutSeconds` allows (spec code).
    NearDelegateActionWindowTooLong = "delegate_action_timeout_window_exceeds_maxTimeout", Payer;
    /// The delegate nonce is not above the access key's nonce: used already (spec code).
    NearDelegateActionNonceReused = "delegate_action_nonce_reused", Payer;
    /// `signedDelegateAction` is missing, not base64, or not a Borsh NEP-366 `SignedDelegateAction`.
    ExactNearUndecodable = "invalid_exact_near_payload_undecodable", Payer;
    /// The signature does not verify over the NEP-461 hash with the delegate's public key.
    ExactNearSignatureInvalid = "invalid_exact_near_payload_signature_invalid", Payer;
    /// A key type other than ed25519 or secp256k1 (ML-DSA is refused deterministically).
    ExactNearUnsupportedKeyType = "invalid_exact_near_payload_unsupported_key_type", Payer;
    /// The delegate action holds other than exactly one action.
    ExactNearActionCount = "invalid_exact_near_payload_action_count", Payer;
    /// The one action is not a `FunctionCall` of `ft_transfer`.
    ExactNearNotFtTransfer = "invalid_exact_near_payload_not_ft_transfer", Payer;
    /// `ft_transfer`'s arguments are not the NEP-141 JSON object.
    ExactNearArgsInvalid = "invalid_exact_near_payload_ft_transfer_args", Payer;
    /// The delegate's receiver is not the required token contract.
    ExactNearAssetMismatch = "invalid_exact_near_payload_asset_mismatch", Payer;
    /// `ft_transfer`'s `receiver_id` is not `payTo`.
    ExactNearRecipientMismatch = "invalid_exact_near_payload_recipient_mismatch", Payer;
    /// `ft_transfer`'s `amount` is not the required amount exactly.
    ExactNearAmountMismatch = "invalid_exact_near_payload_amount_mismatch", Payer;
    /// The attached deposit is not exactly 1 yoctoNEAR.
    ExactNearDepositNotOneYocto = "invalid_exact_near_payload_deposit_not_one_yocto", Payer;
    /// The call asks for more gas than this facilitator sponsors.
    ExactNearGasAboveCap = "invalid_exact_near_payload_gas_above_cap", Payer;
    /// The payer is this facilitator's relayer (a drain attempt).
    ExactNearSenderIsRelayer = "invalid_exact_near_payload_sender_is_relayer", Payer;
    /// `extra.relayerId` names an account this facilitator does not manage.
    ExactNearRelayerNotManaged = "invalid_exact_near_relayer_not_managed", Payer;
    /// The sender has no such key, or it is not a full-access key.
    ExactNearAccessKeyInvalid = "invalid_exact_near_access_key", Payer;
    /// The token contract has no code deployed.
    ExactNearAssetNotContract = "invalid_exact_near_asset_not_a_contract", Payer;
    /// `payTo` is not registered with the token (NEP-145 `storage_balance_of` is null):
    /// the facilitator never pays storage for strangers.
    ExactNearRecipientNotRegistered = "invalid_exact_near_recipient_not_registered", Payer;
    /// The relayer transaction or the inner `ft_transfer` receipt failed on chain.
    ExactNearTransactionFailed = "invalid_exact_near_transaction_failed", Chain;

    // ---- exact on Stellar (the official SDK's codes verbatim; `signature_expired` ours) ----
    /// `payload.transaction` is missing, not base64, not a v1 envelope, or a field of the
    /// call is not the type `transfer` takes.
    ExactStellarMalformed = "invalid_exact_stellar_payload_malformed", Payer;
    /// Not exactly one `invokeHostFunction` operation invoking a contract.
    ExactStellarWrongOperation = "invalid_exact_stellar_payload_wrong_operation", Payer;
    /// The transaction's or operation's source is this facilitator's account.
    ExactStellarUnsafeSource = "invalid_exact_stellar_payload_unsafe_tx_or_op_source", Payer;
    /// The invoked contract is not `asset`.
    ExactStellarWrongAsset = "invalid_exact_stellar_payload_wrong_asset", Payer;
    /// The call is not `transfer(from, to, amount)`.
    ExactStellarWrongFunction = "invalid_exact_stellar_payload_wrong_function_name", Payer;
    /// `from` is this facilitator's account (a drain attempt).
    ExactStellarFacilitatorIsPayer = "invalid_exact_stellar_payload_facilitator_is_payer", Payer;
    /// `to` is not `payTo`.
    ExactStellarWrongRecipient = "invalid_exact_stellar_payload_wrong_recipient", Payer;
    /// `amount` is not the required amount exactly.
    ExactStellarWrongAmount = "invalid_exact_stellar_payload_wrong_amount", Payer;
    /// The operation carries no authorization entry.
    ExactStellarNoAuthEntries = "invalid_exact_stellar_payload_no_auth_entries", Payer;
    /// An entry uses other than address credentials.
    ExactStellarUnsupportedCredential = "invalid_exact_stellar_payload_unsupported_credential_type", Payer;
    /// An entry authorizes for this facilitator's account.
    ExactStellarFacilitatorInAuth = "invalid_exact_stellar_payload_facilitator_in_auth", Payer;
    /// An entry authorizes calls beyond the transfer.
    ExactStellarHasSubinvocations = "invalid_exact_stellar_payload_has_subinvocations", Payer;
    /// The payer's entry is not signed.
    ExactStellarMissingPayerSignature = "invalid_exact_stellar_payload_missing_payer_signature", Payer;
    /// Another entry still needs a signature.
    ExactStellarPendingSignatures = "invalid_exact_stellar_payload_unexpected_pending_signatures", Payer;
    /// The authorization expires later than `maxTimeoutSeconds` allows.
    ExactStellarExpirationTooFar = "invalid_exact_stellar_signature_expiration_too_far", Payer;
    /// The authorization expired at or before the current ledger (ours).
    ExactStellarSignatureExpired = "invalid_exact_stellar_signature_expired", Payer;
    /// The simulation of the settlement transaction failed (a bad or replayed signature,
    /// another network's signature, too little balance).
    ExactStellarSimulationFailed = "invalid_exact_stellar_payload_simulation_failed", Payer;
    /// The settlement would cost more than this facilitator's fee cap.
    ExactStellarFeeExceedsMaximum = "invalid_exact_stellar_payload_fee_exceeds_maximum", Payer;
    /// The simulation emits a contract event that is not a transfer.
    ExactStellarEventNotTransfer = "invalid_exact_stellar_payload_event_not_transfer", Payer;
    /// A transfer event comes from another contract than `asset`.
    ExactStellarEventWrongAsset = "invalid_exact_stellar_payload_event_wrong_asset", Payer;
    /// The simulation emits no transfer event.
    ExactStellarNoTransferEvents = "invalid_exact_stellar_payload_no_transfer_events", Payer;
    /// The simulation emits more than one transfer event.
    ExactStellarMultipleTransfers = "invalid_exact_stellar_payload_multiple_transfers", Payer;
    /// The simulated transfer is from another account than `from`.
    ExactStellarEventWrongFrom = "invalid_exact_stellar_payload_event_wrong_from", Payer;
    /// The simulated transfer pays another account than `payTo`.
    ExactStellarEventWrongTo = "invalid_exact_stellar_payload_event_wrong_to", Payer;
    /// The simulated transfer moves another amount.
    ExactStellarEventWrongAmount = "invalid_exact_stellar_payload_event_wrong_amount", Payer;
    /// The settlement transaction failed on chain.
    ExactStellarTransactionFailed = "settle_exact_stellar_transaction_failed", Chain;

    // ---- this facilitator's own codes (docs/reason-codes.md) ----
    /// Broadcast, not yet confirmed; retry the identical request to learn the outcome.
    SettlementPending = "settlement_pending", Pending;
    /// The chain's RPC could not be reached or answered with an error.
    RpcUnavailable = "rpc_unavailable", Facilitator;
    /// The facilitator's signer cannot pay the gas for the settlement.
    FacilitatorInsufficientGas = "facilitator_insufficient_gas", Facilitator;
    /// The settlement ledger could not be written; nothing was broadcast.
    LedgerUnavailable = "ledger_unavailable", Facilitator;
    /// A runtime feature flag refuses this request (for example `v2_settle_enabled=false`).
    FeatureDisabled = "feature_disabled", Facilitator;
    /// The request's protocol version is switched off by `X402_VERSION_SUPPORT`.
    UnsupportedVersion = "unsupported_version", Facilitator;
    /// The facilitator is shutting down and accepts no new settlements.
    ShuttingDown = "shutting_down", Facilitator;
    /// A `payment-identifier` id was reused with a different payload.
    PaymentIdentifierConflict = "payment_identifier_conflict", Payer;
    /// The payment is already being settled by another request; retry shortly.
    SettlementInProgress = "settlement_in_progress", Pending;
    /// A transaction already settled for one request, sent again under another request
    /// (another resource, another version): one payment pays for one request (the official
    /// `@x402/svm` code).
    DuplicateSettlement = "duplicate_settlement", Payer;
}

impl Reason {
    /// Whether retrying the identical request later may give another answer.
    pub fn is_retryable(self) -> bool {
        matches!(
            self.class(),
            ReasonClass::Facilitator | ReasonClass::Pending
        )
    }
}

impl Reason {
    /// Whether a failed settlement with this reason is evidence of the facilitator's own
    /// trouble (a revert the payer did not cause, a node, gas or ledger failure, an unknown
    /// outcome) and so counts toward the v2 settle breaker and
    /// `x402_settlement_failures_total`. Derived from the class, so a new chain's reasons
    /// are counted without a hand-kept list; flag and lifecycle refusals and a settlement
    /// still running elsewhere are not failures.
    pub fn is_facilitator_failure(self) -> bool {
        match self {
            Reason::FeatureDisabled
            | Reason::UnsupportedVersion
            | Reason::ShuttingDown
            | Reason::SettlementInProgress => false,
            other => other.class() != ReasonClass::Payer,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case_and_round_trip() {
        let mut seen = HashSet::new();
        for reason in Reason::ALL {
            let code = reason.as_str();
            assert!(seen.insert(code), "duplicate {code}");
            // The NEAR spec spells one code with a capital (`maxTimeout`, the field's
            // name); it is kept verbatim so official clients recognise it.
            let spec_spelling = *reason == Reason::NearDelegateActionWindowTooLong;
            assert!(
                spec_spelling
                    || code
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{code}"
            );
            assert_eq!(Reason::from_code(code), Some(*reason));
        }
    }

    #[test]
    fn facilitator_trouble_is_retryable_and_payer_faults_are_not() {
        assert!(Reason::RpcUnavailable.is_retryable());
        assert!(Reason::SettlementPending.is_retryable());
        assert!(!Reason::ExactEvmSignature.is_retryable());
        assert!(!Reason::ExactEvmTransactionFailed.is_retryable());
    }

    #[test]
    fn every_reason_is_classified_for_the_breaker() {
        for reason in Reason::ALL {
            let counted = reason.is_facilitator_failure();
            match reason.class() {
                ReasonClass::Payer => assert!(!counted, "{reason} is the payer's"),
                ReasonClass::Chain => assert!(counted, "{reason} is an on-chain failure"),
                ReasonClass::Pending | ReasonClass::Facilitator => {}
            }
        }
        assert!(Reason::ExactSvmTransactionFailed.is_facilitator_failure());
        assert!(Reason::ExactEvmTransactionFailed.is_facilitator_failure());
        assert!(Reason::RpcUnavailable.is_facilitator_failure());
        assert!(Reason::SettlementPending.is_facilitator_failure());
        assert!(!Reason::FeatureDisabled.is_facilitator_failure());
        assert!(!Reason::SettlementInProgress.is_facilitator_failure());
        assert!(!Reason::DuplicateSettlement.is_facilitator_failure());
    }
}
