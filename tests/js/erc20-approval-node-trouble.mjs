// `erc20ApprovalGasSponsoring` when our node fails, on a local anvil behind the tests' fault
// proxy (crates/x402-facilitator/tests/support/fault_proxy.rs): the official client (@x402/evm
// 2.27) signs the payment and the approve(Permit2) transaction against the real node; the
// official facilitator client calls us, whose RPC goes through the proxy.
// Usage: node tests/js/erc20-approval-node-trouble.mjs <facilitator url> <rpc url> <mode> <file>
//   no-simulate         the node has no eth_simulateV1: refused rpc_unavailable (our trouble,
//                       never the payer's), nothing sent, nothing moved
//   cut-after-approval  the node fails once the approval is sent: the answer carries the
//                       approval's hash, no settlement is sent; the payment is kept in <file>
//   resume              the node is back: the same payment (from <file>) settles, once
import { readFileSync, writeFileSync } from "node:fs";
import { keccak256, maxUint256 } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/http";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { PAY_TO, check, finish } from "./common.mjs";
import { KEY, OUR_SIGNER, TOKEN, plainTokenChain } from "./erc20-approval-common.mjs";

const [url, rpcUrl, mode, file] = process.argv.slice(2);
const { wallet, newPayer, tokenBalance, allowance, nonce } = plainTokenChain(rpcUrl);
const ours = new HTTPFacilitatorClient({ url });
const req = {
  scheme: "exact", network: "eip155:84532", amount: "10000", asset: TOKEN, payTo: PAY_TO, maxTimeoutSeconds: 60,
  extra: { name: "Plain Token", version: "1", assetTransferMethod: "permit2" },
};
const resource = { url: "http://127.0.0.1/resource", description: "erc20 approval, node trouble", mimeType: "application/json" };
const DECLARED = { [KEY]: { info: { description: "the facilitator broadcasts your approval", version: "1" } } };

/** A payer with 1,000,000 of the plain token and gas of their own, and their signed payment. */
async function payment() {
  const { key, address } = await newPayer(1_000_000n, 10n ** 16n);
  const client = registerExactEvmScheme(x402Client.fromConfig({ schemes: [], spendControls: false }), { signer: privateKeyToAccount(key), schemeOptions: { rpcUrl } });
  const payload = await client.createPaymentPayload({ x402Version: 2, resource, accepts: [req], extensions: DECLARED });
  return { address, payload };
}

if (mode === "no-simulate") {
  const { address, payload } = await payment();
  const [signerBefore, payerBefore] = [await nonce(OUR_SIGNER), await nonce(address)];
  const verified = await ours.verify(payload, req);
  check("no eth_simulateV1: verify refused rpc_unavailable, naming the payer", verified.isValid === false && verified.invalidReason === "rpc_unavailable" && verified.payer === address, JSON.stringify(verified));
  const settled = await ours.settle(payload, req);
  check("no eth_simulateV1: settle refused rpc_unavailable without a transaction", settled.success === false && settled.errorReason === "rpc_unavailable" && !settled.transaction, JSON.stringify(settled));
  check("no eth_simulateV1: nothing sent, nothing moved", (await nonce(OUR_SIGNER)) === signerBefore && (await nonce(address)) === payerBefore && (await allowance(address)) === 0n && (await tokenBalance(address)) === 1_000_000n);
} else if (mode === "cut-after-approval") {
  const { address, payload } = await payment();
  const approvalHash = keccak256(payload.extensions[KEY].info.signedTransaction);
  const signerBefore = await nonce(OUR_SIGNER);
  const settled = await ours.settle(payload, req);
  check("node lost after the approval: not a success, our trouble", settled.success === false && ["rpc_unavailable", "settlement_pending"].includes(settled.errorReason), JSON.stringify(settled));
  check("node lost after the approval: the answer carries the approval's hash", settled.transaction === approvalHash, JSON.stringify(settled));
  check("node lost after the approval: no settlement sent, no token moved", (await nonce(OUR_SIGNER)) === signerBefore && (await tokenBalance(address)) === 1_000_000n);
  writeFileSync(file, JSON.stringify({ address, payload }));
} else if (mode === "resume") {
  const { address, payload } = JSON.parse(readFileSync(file, "utf8"));
  check("the approval landed while the node was away", (await allowance(address)) === maxUint256);
  const payToBefore = await tokenBalance(PAY_TO);
  const settled = await ours.settle(payload, req);
  check("node back: the same payment settles", settled.success === true && /^0x[0-9a-f]{64}$/.test(settled.transaction) && settled.payer === address, JSON.stringify(settled));
  check("node back: balances moved exactly once", 1_000_000n - (await tokenBalance(address)) === 10000n && (await tokenBalance(PAY_TO)) - payToBefore === 10000n);
  const again = await ours.settle(payload, req);
  check("node back: a repeated settle answers the same hash, moves nothing", again.transaction === settled.transaction && 1_000_000n - (await tokenBalance(address)) === 10000n, JSON.stringify(again));
} else {
  throw new Error(`unknown mode ${mode}`);
}
finish();
