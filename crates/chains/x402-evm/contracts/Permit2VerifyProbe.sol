// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

/// @notice Deployless aggregate of a Permit2 verification's chain reads. Never deployed: its
/// creation code is the `data` of one `eth_call` without `to`. It reads the payer's balance and
/// allowance to Permit2, whether the permit's nonce is spent in Permit2's bitmap, whether the
/// x402 proxy has code, and, for a payer with code, the wallet's EIP-1271 answer (as Permit2
/// itself decides: ecrecover for accounts without code, EIP-1271 for the others); then it
/// simulates the proxy call that settles the payment (skipped when `settleCalldata` is empty),
/// and returns `abi.encode(bool balanceRead, uint256 balance, bool allowanceRead,
/// uint256 allowance, bool nonceUsed, bool proxyDeployed, bool payerHasCode,
/// bool walletAccepts, bool settleOk, bytes revertData)`.
contract Permit2VerifyProbe {
    address constant PERMIT2 = 0x000000000022D473030F116dDEE9F6B43aC78BA3;

    constructor(
        address token,
        address owner,
        address proxy,
        uint256 nonce,
        bytes32 digest,
        bytes memory signature,
        bytes memory settleCalldata
    ) {
        (bool balanceRead, uint256 balance) = word(token, abi.encodeWithSignature("balanceOf(address)", owner));
        (bool allowanceRead, uint256 allowance) =
            word(token, abi.encodeWithSignature("allowance(address,address)", owner, PERMIT2));
        (, uint256 bitmap) = word(PERMIT2, abi.encodeWithSignature("nonceBitmap(address,uint256)", owner, nonce >> 8));
        bool nonceUsed = bitmap & (uint256(1) << (nonce & 0xff)) != 0;
        bool payerHasCode = owner.code.length > 0;
        bool walletAccepts;
        if (payerHasCode) {
            (bool called, bytes memory answer) =
                owner.staticcall(abi.encodeWithSignature("isValidSignature(bytes32,bytes)", digest, signature));
            walletAccepts = called && answer.length >= 32 && bytes4(answer) == 0x1626ba7e;
        }
        bool proxyDeployed = proxy.code.length > 0;
        bool settleOk;
        bytes memory revertData;
        if (settleCalldata.length > 0 && proxyDeployed) {
            (settleOk, revertData) = proxy.call(settleCalldata);
        }
        bytes memory result = abi.encode(
            balanceRead,
            balance,
            allowanceRead,
            allowance,
            nonceUsed,
            proxyDeployed,
            payerHasCode,
            walletAccepts,
            settleOk,
            revertData
        );
        assembly {
            return(add(result, 32), mload(result))
        }
    }

    /// A view's answer as one word; `false` when the call fails or answers less.
    function word(address target, bytes memory data) internal view returns (bool, uint256) {
        (bool called, bytes memory answer) = target.staticcall(data);
        if (!called || answer.length < 32) return (false, 0);
        return (true, abi.decode(answer, (uint256)));
    }
}
