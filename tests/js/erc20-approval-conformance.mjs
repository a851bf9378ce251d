// `erc20ApprovalGasSponsoring` conformance on a local anvil: Permit2 `exact` in a plain ERC-20
// (no EIP-2612, no EIP-3009: PlainTestToken, crates/x402-testkit/contracts/Permit2StandIns.sol)
// whose payers never approved Permit2. The official client (@x402/evm 2.27) signs the payment
// and the raw approve(Permit2) transaction; the official facilitator client calls us; the
// official TypeScript facilitator (@x402/evm with @x402/extensions' erc20 approval extension)
// verifies the same payments beside us.
// Usage: node tests/js/erc20-approval-conformance.mjs <facilitator url> <rpc url> <max funding wei>
// Each happy path asserts balances moved exactly once, the approval landed, what the payer was
// funded, and that a repeated settle answers the same hash and funds nothing more; each
// refusal asserts its reason and that nothing moved and nothing was sent. The facilitator runs
// with one funding per hour, so a second payer without gas is refused.
import { encodeFunctionData, keccak256, maxUint256 } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/http";
import { x402Facilitator } from "@x402/core/facilitator";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { ExactEvmScheme } from "@x402/evm/exact/facilitator";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { createErc20ApprovalGasSponsoringExtension } from "@x402/extensions";
import { PAY_TO, check, finish } from "./common.mjs";
import { KEY, OUR_SIGNER, PERMIT2, TOKEN, erc20, plainTokenChain } from "./erc20-approval-common.mjs";

const [url, rpcUrl, maxFundingText] = process.argv.slice(2);
const MAX_FUNDING = BigInt(maxFundingText);
const OTHER_TOKEN = "0x2612000000000000000000000000000000002612";
const OTHER = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc";
// anvil account 4 is the reference's signer.
const REFERENCE_KEY = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a";
const { chain, wallet, newPayer, tokenBalance, allowance, eth, nonce } = plainTokenChain(rpcUrl);

const client = key => registerExactEvmScheme(x402Client.fromConfig({ schemes: [], spendControls: false }), {
  signer: privateKeyToAccount(key), schemeOptions: { rpcUrl },
});
const ours = new HTTPFacilitatorClient({ url });
// The reference facilitator with the extension; the relay signer is the sequential one the
// reference's documentation describes (fund when short, send, wait, then settle).
const referenceSigner = (() => {
  const w = wallet(REFERENCE_KEY);
  return toFacilitatorEvmSigner({ ...w, address: w.account.address });
})();
const reference = new x402Facilitator()
  .register("eip155:84532", new ExactEvmScheme(referenceSigner))
  .registerExtension(createErc20ApprovalGasSponsoringExtension({
    ...referenceSigner,
    sendTransactions: async () => { throw new Error("the reference only verifies in this script"); },
  }));
const resource = { url: "http://127.0.0.1/resource", description: "erc20 approval conformance", mimeType: "application/json" };
const req = {
  scheme: "exact", network: "eip155:84532", amount: "10000", asset: TOKEN, payTo: PAY_TO, maxTimeoutSeconds: 60,
  extra: { name: "Plain Token", version: "1", assetTransferMethod: "permit2" },
};
const DECLARED = { [KEY]: { info: { description: "the facilitator broadcasts your approval and sponsors its gas", version: "1" } } };
const pay = key => client(key).createPaymentPayload({ x402Version: 2, resource, accepts: [req], extensions: DECLARED });

// ---- /supported ----
const supported = await ours.getSupported();
check("supported lists the erc20ApprovalGasSponsoring extension", (supported.extensions || []).includes(KEY), JSON.stringify(supported.extensions));

// ---- a payer with gas of their own: relayed, not funded ----
{
  const payer = await newPayer(1_000_000n, 10n ** 17n);
  const payload = await pay(payer.key);
  const info = payload.extensions?.[KEY]?.info;
  check("client signed an approve(Permit2) transaction", !!info?.signedTransaction && info.spender.toLowerCase() === PERMIT2.toLowerCase() && info.from === payer.address, JSON.stringify(payload.extensions));
  const mine = await ours.verify(payload, req);
  const theirs = await reference.verify(payload, req);
  check("approval verify valid (ours)", mine.isValid === true && mine.payer === payer.address, JSON.stringify(mine));
  check("approval verify valid (reference)", theirs.isValid === true, JSON.stringify(theirs));
  const [ethBefore, signerNonce, payToBefore] = [await eth(payer.address), await nonce(OUR_SIGNER), await tokenBalance(PAY_TO)];
  const settled = await ours.settle(payload, req);
  check("approval settle success", settled.success === true && /^0x[0-9a-f]{64}$/.test(settled.transaction) && settled.payer === payer.address, JSON.stringify(settled));
  check("the approval landed: Permit2 may spend the payer's tokens", (await allowance(payer.address)) === maxUint256);
  check("balances moved exactly once", 1_000_000n - (await tokenBalance(payer.address)) === 10000n && (await tokenBalance(PAY_TO)) - payToBefore === 10000n);
  check("a payer with gas is not funded: they paid their approval", (await eth(payer.address)) < ethBefore && (await nonce(OUR_SIGNER)) - signerNonce === 1);
  const again = await ours.settle(payload, req);
  check("repeated settle answers the same hash", again.success === true && again.transaction === settled.transaction, JSON.stringify(again));
  check("repeated settle sends nothing", (await nonce(OUR_SIGNER)) - signerNonce === 1 && 1_000_000n - (await tokenBalance(payer.address)) === 10000n);
}

// ---- a payer without gas: funded (at most the ceiling), relayed, settled ----
{
  const payer = await newPayer(1_000_000n, 0n);
  const payload = await pay(payer.key);
  const mine = await ours.verify(payload, req);
  check("unfunded payer: verify valid", mine.isValid === true, JSON.stringify(mine));
  const signerBefore = await nonce(OUR_SIGNER);
  const settled = await ours.settle(payload, req);
  check("unfunded payer: settle success", settled.success === true && /^0x[0-9a-f]{64}$/.test(settled.transaction), JSON.stringify(settled));
  const block = await chain.getBlock({ blockTag: "latest", includeTransactions: true });
  const sentByUs = (await nonce(OUR_SIGNER)) - signerBefore;
  check("unfunded payer: one funding transfer and one settlement from our signer", sentByUs === 2, `${sentByUs}`);
  const fundings = [];
  for (let n = Number(block.number); n > Number(block.number) - 4 && n > 0; n--) {
    for (const tx of (await chain.getBlock({ blockNumber: BigInt(n), includeTransactions: true })).transactions) {
      if (tx.from.toLowerCase() === OUR_SIGNER.toLowerCase() && tx.to?.toLowerCase() === payer.address.toLowerCase()) fundings.push(tx.value);
    }
  }
  check("unfunded payer: funded once, within the ceiling", fundings.length === 1 && fundings[0] > 0n && fundings[0] <= MAX_FUNDING, JSON.stringify(fundings.map(String)));
  check("unfunded payer: balances moved exactly once", 1_000_000n - (await tokenBalance(payer.address)) === 10000n);
  const gasOf = async hash => (await chain.getTransactionReceipt({ hash })).gasUsed;
  const approvalGas = await gasOf(keccak256(payload.extensions[KEY].info.signedTransaction));
  console.log(`# gas: approval ${approvalGas}, funding 21000, settlement ${await gasOf(settled.transaction)}; funded ${fundings[0]} wei`);
  const again = await ours.settle(payload, req);
  check("unfunded payer: repeated settle answers the same hash, funds nothing more", again.transaction === settled.transaction && (await nonce(OUR_SIGNER)) - signerBefore === 2, JSON.stringify(again));
}

// ---- the hour's funding budget (1 here) is spent: a second payer without gas is refused ----
{
  const payer = await newPayer(1_000_000n, 0n);
  const payload = await pay(payer.key);
  const signerBefore = await nonce(OUR_SIGNER);
  const settled = await ours.settle(payload, req);
  check("funding budget spent: settle refused erc20_approval_tx_failed without a transaction", settled.success === false && settled.errorReason === "erc20_approval_tx_failed" && !settled.transaction && settled.payer === payer.address && /in the last hour/.test(settled.errorMessage ?? ""), JSON.stringify(settled));
  check("funding budget spent: nothing sent, nothing moved", (await nonce(OUR_SIGNER)) === signerBefore && (await eth(payer.address)) === 0n && (await tokenBalance(payer.address)) === 1_000_000n && (await allowance(payer.address)) === 0n);
}

// ---- refusals: each with its reason, nothing sent, nothing moved ----
async function signApproval(key, overrides = {}) {
  const w = wallet(key);
  const fees = await chain.estimateFeesPerGas();
  return w.account.signTransaction({
    chainId: 84532, type: "eip1559", to: TOKEN, nonce: await nonce(w.account.address), gas: 70000n,
    maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
    data: encodeFunctionData({ abi: erc20, functionName: "approve", args: [PERMIT2, maxUint256] }), ...overrides,
  });
}
const approveOther = encodeFunctionData({ abi: erc20, functionName: "approve", args: [OTHER, maxUint256] });
const stranger = generatePrivateKey();
const cases = [
  ["approve names another spender", "erc20_approval_tx_wrong_spender", p => signApproval(p.key, { data: approveOther })],
  ["the transaction calls another token", "erc20_approval_tx_wrong_target", p => signApproval(p.key, { to: OTHER_TOKEN })],
  ["signed by another key", "erc20_approval_tx_signer_mismatch", async p => signApproval(stranger, { nonce: await nonce(p.address) })],
  ["signed for another chain", "erc20_approval_tx_invalid_signature", p => signApproval(p.key, { chainId: 1 })],
  ["a nonce that is not the payer's next", "erc20_approval_tx_failed", async p => signApproval(p.key, { nonce: (await nonce(p.address)) + 1 })],
  ["a fee that needs more funding than the ceiling", "erc20_approval_tx_failed", p => signApproval(p.key, { maxFeePerGas: MAX_FUNDING, maxPriorityFeePerGas: 1n })],
  ["native value sent with the approval", "erc20_approval_tx_invalid_calldata", p => signApproval(p.key, { value: 1n })],
  ["bytes that are no transaction", "erc20_approval_tx_parse_failed", async () => "0x02deadbeef"],
];
for (const [name, reason, makeTx] of cases) {
  const payer = await newPayer(1_000_000n, 0n);
  const payload = await pay(payer.key);
  payload.extensions[KEY].info.signedTransaction = await makeTx(payer);
  const signerBefore = await nonce(OUR_SIGNER);
  const mine = await ours.verify(payload, req);
  const settled = await ours.settle(payload, req);
  check(`${name}: ${reason}`, mine.isValid === false && mine.invalidReason === reason && mine.payer === payer.address && settled.success === false && settled.errorReason === reason && !settled.transaction, JSON.stringify([mine, settled]));
  check(`${name}: nothing sent, nothing moved`, (await nonce(OUR_SIGNER)) === signerBefore && (await eth(payer.address)) === 0n && (await tokenBalance(payer.address)) === 1_000_000n && (await allowance(payer.address)) === 0n);
}
const transferData = encodeFunctionData({
  abi: [{ type: "function", name: "transfer", stateMutability: "nonpayable", inputs: [{ name: "to", type: "address" }, { name: "v", type: "uint256" }], outputs: [{ type: "bool" }] }],
  functionName: "transfer", args: [OTHER, 1n],
});
const approveOne = encodeFunctionData({ abi: erc20, functionName: "approve", args: [PERMIT2, 1n] });
// Changes of the extension's info (the reference reads it the same way): ours and the reference's reason.
const infoCases = [
  ["info.from not the payer", "erc20_approval_from_mismatch", async info => { info.from = OTHER; }],
  ["info.asset another token", "erc20_approval_asset_mismatch", async info => { info.asset = OTHER_TOKEN; }],
  ["info.spender not Permit2", "erc20_approval_spender_not_permit2", async info => { info.spender = OTHER; }],
  ["info.version not a version", "invalid_erc20_approval_extension_format", async info => { info.version = "one"; }],
  ["the transaction calls transfer()", "erc20_approval_tx_wrong_selector", async (info, p) => { info.signedTransaction = await signApproval(p.key, { data: transferData }); }],
];
for (const [name, reason, change] of infoCases) {
  const payer = await newPayer(1_000_000n, 0n);
  const payload = await pay(payer.key);
  await change(payload.extensions[KEY].info, payer);
  const [mine, theirs] = [await ours.verify(payload, req), await reference.verify(payload, req)];
  check(`${name}: ${reason} (ours and reference)`, mine.isValid === false && mine.invalidReason === reason && theirs.invalidReason === reason, JSON.stringify([mine, theirs]));
}
{
  // Ours only: an approval of less than the payment would leave the settlement to revert.
  const payer = await newPayer(1_000_000n, 0n);
  const payload = await pay(payer.key);
  payload.extensions[KEY].info.signedTransaction = await signApproval(payer.key, { data: approveOne });
  payload.extensions[KEY].info.amount = "1";
  const mine = await ours.verify(payload, req);
  check("approve(Permit2, 1) for a payment of 10000: erc20_approval_tx_invalid_calldata", mine.isValid === false && mine.invalidReason === "erc20_approval_tx_invalid_calldata", JSON.stringify(mine));
}

// ---- a hostile payer replaces the approval after verify: refused at settle, no gas spent ----
{
  const payer = await newPayer(1_000_000n, 10n ** 16n);
  const payload = await pay(payer.key);
  check("hostile payer: verify valid", (await ours.verify(payload, req)).isValid === true);
  const replaced = await wallet(payer.key).sendTransaction({ to: payer.address, value: 0n });
  await chain.waitForTransactionReceipt({ hash: replaced });
  const signerBefore = await nonce(OUR_SIGNER);
  const settled = await ours.settle(payload, req);
  check("hostile payer: settle refused erc20_approval_tx_failed without a transaction", settled.success === false && settled.errorReason === "erc20_approval_tx_failed" && !settled.transaction, JSON.stringify(settled));
  check("hostile payer: our signer sent nothing, nothing moved", (await nonce(OUR_SIGNER)) === signerBefore && (await tokenBalance(payer.address)) === 1_000_000n);
}

finish();
