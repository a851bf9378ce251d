// What the two erc20ApprovalGasSponsoring scripts share: the plain token stand-in
// (PlainTestToken: no EIP-2612, no EIP-3009), Permit2, our signer, and readers of the chain.
import { createWalletClient, http, publicActions } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { PAYER_KEY, chainClient } from "./common.mjs";

export const TOKEN = "0x2020000000000000000000000000000000002020";
export const PERMIT2 = "0x000000000022D473030F116dDEE9F6B43aC78BA3";
// anvil account 0 is our signer.
export const OUR_SIGNER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
export const KEY = "erc20ApprovalGasSponsoring";
export const erc20 = [
  { type: "function", name: "balanceOf", stateMutability: "view", inputs: [{ name: "a", type: "address" }], outputs: [{ type: "uint256" }] },
  { type: "function", name: "allowance", stateMutability: "view", inputs: [{ name: "o", type: "address" }, { name: "s", type: "address" }], outputs: [{ type: "uint256" }] },
  { type: "function", name: "approve", stateMutability: "nonpayable", inputs: [{ name: "s", type: "address" }, { name: "v", type: "uint256" }], outputs: [{ type: "bool" }] },
  { type: "function", name: "mint", stateMutability: "nonpayable", inputs: [{ name: "to", type: "address" }, { name: "v", type: "uint256" }], outputs: [] },
];

/** The chain at `rpcUrl` and what the scripts read and do on it. */
export function plainTokenChain(rpcUrl) {
  const chain = chainClient(rpcUrl);
  const wallet = key => createWalletClient({ account: privateKeyToAccount(key), chain: chain.chain, transport: http(rpcUrl) }).extend(publicActions);
  /** A new payer holding `tokens` of the plain token and `wei` of gas, who never approved Permit2. */
  async function newPayer(tokens, wei) {
    const key = generatePrivateKey();
    const address = privateKeyToAccount(key).address;
    const hash = await wallet(PAYER_KEY).writeContract({ address: TOKEN, abi: erc20, functionName: "mint", args: [address, tokens] });
    await chain.waitForTransactionReceipt({ hash });
    if (wei > 0n) {
      const funded = await wallet(PAYER_KEY).sendTransaction({ to: address, value: wei });
      await chain.waitForTransactionReceipt({ hash: funded });
    }
    return { key, address };
  }
  return {
    chain,
    wallet,
    newPayer,
    tokenBalance: who => chain.readContract({ address: TOKEN, abi: erc20, functionName: "balanceOf", args: [who] }),
    allowance: who => chain.readContract({ address: TOKEN, abi: erc20, functionName: "allowance", args: [who, PERMIT2] }),
    eth: who => chain.getBalance({ address: who }),
    nonce: who => chain.getTransactionCount({ address: who }),
  };
}
