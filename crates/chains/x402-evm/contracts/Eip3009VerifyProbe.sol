// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

/// @notice Deployless aggregate of a verification's chain reads. Never deployed: its creation
/// code is the `data` of one `eth_call` without `to`, so the node executes one call instead of
/// several. It reads the payer's balance, the authorization's state and the token's `name()`
/// and `version()` (raw answers: decoded off chain, where a malformed one cannot make this
/// call fail), then simulates the transfer, and returns
/// `abi.encode(bool balanceRead, uint256 balance, bool stateRead, bool used, bool transferOk, bytes revertData, bytes nameAnswer, bytes versionAnswer)`.
contract Eip3009VerifyProbe {
    constructor(address token, address from, bytes32 nonce, bytes memory transferCalldata) {
        bool balanceRead;
        uint256 balance;
        {
            (bool called, bytes memory answer) =
                token.staticcall(abi.encodeWithSignature("balanceOf(address)", from));
            balanceRead = called && answer.length >= 32;
            balance = balanceRead ? abi.decode(answer, (uint256)) : 0;
        }
        bool stateRead;
        bool used;
        {
            (bool called, bytes memory answer) =
                token.staticcall(abi.encodeWithSignature("authorizationState(address,bytes32)", from, nonce));
            stateRead = called && answer.length >= 32;
            used = stateRead ? abi.decode(answer, (uint256)) != 0 : false;
        }
        bytes memory nameAnswer = answerOf(token, "name()");
        bytes memory versionAnswer = answerOf(token, "version()");
        (bool transferOk, bytes memory revertData) = token.call(transferCalldata);

        bytes memory result =
            abi.encode(balanceRead, balance, stateRead, used, transferOk, revertData, nameAnswer, versionAnswer);
        assembly {
            return(add(result, 32), mload(result))
        }
    }

    /// The raw answer of a view without arguments; empty when it fails.
    function answerOf(address token, string memory signature) internal view returns (bytes memory) {
        (bool called, bytes memory answer) = token.staticcall(abi.encodeWithSignature(signature));
        return called ? answer : bytes("");
    }
}
