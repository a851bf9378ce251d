// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

/// @notice Deployless aggregate of a verification's chain reads. Never deployed: its creation
/// code is the `data` of one `eth_call` without `to`, so the node executes one call instead of
/// three. It reads the payer's balance and the authorization's state, then simulates the
/// transfer, and returns
/// `abi.encode(bool balanceRead, uint256 balance, bool stateRead, bool used, bool transferOk, bytes revertData)`.
contract Eip3009VerifyProbe {
    constructor(address token, address from, bytes32 nonce, bytes memory transferCalldata) {
        (bool balanceCalled, bytes memory balanceAnswer) =
            token.staticcall(abi.encodeWithSignature("balanceOf(address)", from));
        bool balanceRead = balanceCalled && balanceAnswer.length >= 32;
        uint256 balance = balanceRead ? abi.decode(balanceAnswer, (uint256)) : 0;

        (bool stateCalled, bytes memory stateAnswer) =
            token.staticcall(abi.encodeWithSignature("authorizationState(address,bytes32)", from, nonce));
        bool stateRead = stateCalled && stateAnswer.length >= 32;
        bool used = stateRead ? abi.decode(stateAnswer, (uint256)) != 0 : false;

        (bool transferOk, bytes memory revertData) = token.call(transferCalldata);

        bytes memory result = abi.encode(balanceRead, balance, stateRead, used, transferOk, revertData);
        assembly {
            return(add(result, 32), mload(result))
        }
    }
}
