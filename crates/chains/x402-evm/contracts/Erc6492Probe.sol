// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

/// @notice Deployless verification of a payment signed by a not-yet-deployed (ERC-6492) wallet.
/// Never deployed: its creation code is the `data` of an `eth_call` without `to`, so everything
/// below happens inside one simulated call and nothing is written to the chain. It deploys the
/// wallet through the factory the signature names, asks the wallet about the signature
/// (EIP-1271), simulates the token transfer and returns
/// `abi.encode(bool deployed, bool signatureValid, bool transferOk, uint256 transferGas)`.
contract Erc6492Probe {
    constructor(
        address wallet,
        address factory,
        bytes memory factoryCalldata,
        bytes32 digest,
        bytes memory signature,
        address token,
        bytes memory transferCalldata
    ) {
        bool deployed = wallet.code.length > 0;
        if (!deployed) {
            (bool called,) = factory.call(factoryCalldata);
            deployed = called && wallet.code.length > 0;
        }
        bool signatureValid;
        if (deployed) {
            (bool ok, bytes memory answer) =
                wallet.staticcall(abi.encodeWithSelector(bytes4(0x1626ba7e), digest, signature));
            signatureValid = ok && answer.length >= 32 && abi.decode(answer, (bytes4)) == bytes4(0x1626ba7e);
        }
        bool transferOk;
        uint256 transferGas;
        if (signatureValid) {
            uint256 before = gasleft();
            (transferOk,) = token.call(transferCalldata);
            transferGas = before - gasleft();
        }
        bytes memory result = abi.encode(deployed, signatureValid, transferOk, transferGas);
        assembly {
            return(add(result, 32), mload(result))
        }
    }
}
