//! What a Permit2 payer signs and what the proxies are called with, for each scheme's
//! witness: `Witness(address to,uint256 validAfter)` for `exact`,
//! `Witness(address to,address facilitator,uint256 validAfter)` for `upto`. The EIP-712 type
//! names must be the proxies' own, so each witness lives in a module of its own.

use super::eip2612::Eip2612Permit;
use super::*;

/// `exact`'s witness and proxy.
mod exact_witness {
    alloy::sol! {
        struct TokenPermissions { address token; uint256 amount; }
        struct Witness { address to; uint256 validAfter; }
        struct PermitWitnessTransferFrom { TokenPermissions permitted; address spender; uint256 nonce; uint256 deadline; Witness witness; }
        struct PermitTransferFrom { TokenPermissions permitted; uint256 nonce; uint256 deadline; }
        struct ProxyEip2612Permit { uint256 value; uint256 deadline; bytes32 r; bytes32 s; uint8 v; }
        function settle(PermitTransferFrom permit, address owner, Witness witness, bytes signature) external;
        function settleWithPermit(ProxyEip2612Permit permit2612, PermitTransferFrom permit, address owner, Witness witness, bytes signature) external;
    }
}

/// `upto`'s witness and proxy (settle takes the amount).
mod upto_witness {
    alloy::sol! {
        struct TokenPermissions { address token; uint256 amount; }
        struct Witness { address to; address facilitator; uint256 validAfter; }
        struct PermitWitnessTransferFrom { TokenPermissions permitted; address spender; uint256 nonce; uint256 deadline; Witness witness; }
        struct PermitTransferFrom { TokenPermissions permitted; uint256 nonce; uint256 deadline; }
        struct ProxyEip2612Permit { uint256 value; uint256 deadline; bytes32 r; bytes32 s; uint8 v; }
        function settle(PermitTransferFrom permit, uint256 amount, address owner, Witness witness, bytes signature) external;
        function settleWithPermit(ProxyEip2612Permit permit2612, PermitTransferFrom permit, uint256 amount, address owner, Witness witness, bytes signature) external;
    }
}

sol! {
    function nonceBitmap(address owner, uint256 wordPosition) external view returns (uint256);
}

/// The EIP-2612 permit as a proxy's `settleWithPermit` takes it: `(value, deadline, r, s, v)`.
type PermitParts = (U256, U256, B256, B256, u8);

impl EvmChain {
    /// The digest, the EOA recovery (a contract wallet is left to the probe) and the call
    /// that settles `amount`.
    pub(super) fn permit2_signed_call(
        &self,
        permit: Permit2Payment,
        payer: String,
        (scheme, amount): (Permit2Scheme, U256),
        eip2612: Option<Eip2612Permit>,
    ) -> Result<Permit2Local, Verdict> {
        let domain = eip712_domain! {
            name: "Permit2",
            chain_id: self.numeric_chain_id,
            verifying_contract: PERMIT2,
        };
        // Permit2 deploys nothing: a wrapped signature is checked by its inner one.
        let inner_signature = match erc6492_parts(&permit.signature) {
            Ok(Some((_, _, inner))) => inner,
            Ok(None) => permit.signature.clone(),
            Err(refused) => {
                return Err(Verdict {
                    payer: Some(payer),
                    ..refused
                })
            }
        };
        let parts = eip2612.as_ref().map(Eip2612Permit::proxy_parts);
        let signature = Bytes::from(inner_signature.clone());
        let (digest, calldata) = match scheme {
            Permit2Scheme::Exact => exact_call(&permit, &domain, parts, signature),
            Permit2Scheme::Upto => upto_call(&permit, &domain, amount, parts, signature),
        };
        let eoa_valid = recover_signer(&digest, &inner_signature) == Some(permit.from);
        Ok(Permit2Local {
            permit,
            payer,
            digest,
            inner_signature,
            eoa_valid,
            scheme,
            amount,
            calldata,
            approval: None,
        })
    }
}

/// The digest the payer signed and the proxy call that settles, in `module`'s types (the
/// two proxies differ only in the witness and in `upto`'s `amount` argument).
macro_rules! proxy_call {
    ($module:ident, $permit:expr, $domain:expr, $parts:expr, $signature:expr, $witness:expr $(, $amount:expr)?) => {{
        use $module::*;
        let permit = $permit;
        let permitted = TokenPermissions {
            token: permit.token,
            amount: permit.amount,
        };
        let witness = $witness;
        let digest = PermitWitnessTransferFrom {
            permitted: permitted.clone(),
            spender: permit.spender,
            nonce: permit.nonce,
            deadline: permit.deadline,
            witness: witness.clone(),
        }
        .eip712_signing_hash($domain);
        let transfer = PermitTransferFrom {
            permitted,
            nonce: permit.nonce,
            deadline: permit.deadline,
        };
        let (owner, signature) = (permit.from, $signature);
        let calldata = match $parts {
            None => settleCall {
                permit: transfer,
                $(amount: $amount,)?
                owner,
                witness,
                signature,
            }
            .abi_encode(),
            Some((value, deadline, r, s, v)) => settleWithPermitCall {
                permit2612: ProxyEip2612Permit { value, deadline, r, s, v },
                permit: transfer,
                $(amount: $amount,)?
                owner,
                witness,
                signature,
            }
            .abi_encode(),
        };
        (digest, Bytes::from(calldata))
    }};
}

fn exact_call(
    permit: &Permit2Payment,
    domain: &alloy::sol_types::Eip712Domain,
    parts: Option<PermitParts>,
    signature: Bytes,
) -> (B256, Bytes) {
    let witness = exact_witness::Witness {
        to: permit.to,
        validAfter: permit.valid_after,
    };
    proxy_call!(exact_witness, permit, domain, parts, signature, witness)
}

fn upto_call(
    permit: &Permit2Payment,
    domain: &alloy::sol_types::Eip712Domain,
    amount: U256,
    parts: Option<PermitParts>,
    signature: Bytes,
) -> (B256, Bytes) {
    let witness = upto_witness::Witness {
        to: permit.to,
        facilitator: permit.facilitator.unwrap_or_default(),
        validAfter: permit.valid_after,
    };
    proxy_call!(
        upto_witness,
        permit,
        domain,
        parts,
        signature,
        witness,
        amount
    )
}

/// What a recorded proxy call moves, read back from its signed bytes: `(token, owner, to,
/// amount, permit nonce)`. `None` when `to` is no x402 proxy or the input is no settle call.
pub(crate) fn recorded_terms(
    to: Address,
    input: &[u8],
) -> Option<(Address, Address, Address, U256, U256)> {
    if to == EXACT_PROXY {
        use exact_witness::*;
        let (permit, owner, witness) = match settleCall::abi_decode(input) {
            Ok(c) => (c.permit, c.owner, c.witness),
            Err(_) => {
                let c = settleWithPermitCall::abi_decode(input).ok()?;
                (c.permit, c.owner, c.witness)
            }
        };
        let amount = permit.permitted.amount;
        return Some((
            permit.permitted.token,
            owner,
            witness.to,
            amount,
            permit.nonce,
        ));
    }
    if to == UPTO_PROXY {
        use upto_witness::*;
        let (permit, amount, owner, witness) = match settleCall::abi_decode(input) {
            Ok(c) => (c.permit, c.amount, c.owner, c.witness),
            Err(_) => {
                let c = settleWithPermitCall::abi_decode(input).ok()?;
                (c.permit, c.amount, c.owner, c.witness)
            }
        };
        return Some((
            permit.permitted.token,
            owner,
            witness.to,
            amount,
            permit.nonce,
        ));
    }
    None
}

/// `nonceBitmap(owner, nonce >> 8)` and the bit of `nonce` in its answer: how Permit2
/// records an unordered nonce as spent.
pub(crate) fn nonce_word_query(owner: Address, nonce: U256) -> (Bytes, U256) {
    let call = nonceBitmapCall {
        owner,
        wordPosition: nonce >> 8,
    };
    let bit = U256::from(1) << (nonce & U256::from(0xff)).to::<usize>();
    (call.abi_encode().into(), bit)
}
