// Permit2 `exact` conformance on a local anvil, side by side with the official TypeScript
// facilitator (@x402/evm 2.27 ExactEvmScheme in this process, its own signer).
// Usage: node tests/js/permit2-conformance.mjs <facilitator url> <rpc url>
// The chain carries the real Permit2 bytecode, our STAND-IN of the x402 exact Permit2 proxy at
// its canonical address and an EIP-2612 token without EIP-3009 (crates/x402-testkit/src/permit2.rs).
// Payments are signed by the official client. Each happy path asserts the balances moved
// exactly once and that a repeated settle answers the same hash; each negative case asserts
// our reason, the reference's reason (the same unless stated), and that nothing moved.
import fs from "node:fs";
import { createWalletClient, http, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/http";
import { x402Facilitator } from "@x402/core/facilitator";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { ExactEvmScheme } from "@x402/evm/exact/facilitator";
import { UptoEvmScheme as UptoClient } from "@x402/evm/upto/client";
import { UptoEvmScheme as UptoReference } from "@x402/evm/upto/facilitator";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { PAYER, PAYER_KEY, PAY_TO, chainClient, check, finish } from "./common.mjs";

const [url, rpcUrl] = process.argv.slice(2);
const TOKEN = "0x2612000000000000000000000000000000002612";
const PERMIT2 = "0x000000000022D473030F116dDEE9F6B43aC78BA3";
const UPTO_PROXY = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002";
// anvil account 3: funded with the token, never approves Permit2 itself.
const FRESH_KEY = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
// anvil account 4: the reference facilitator's signer.
const REFERENCE_KEY = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a";
const OTHER = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc";

const chain = chainClient(rpcUrl);
const erc20 = [
  { type: "function", name: "balanceOf", stateMutability: "view", inputs: [{ name: "a", type: "address" }], outputs: [{ type: "uint256" }] },
  { type: "function", name: "allowance", stateMutability: "view", inputs: [{ name: "o", type: "address" }, { name: "s", type: "address" }], outputs: [{ type: "uint256" }] },
  { type: "function", name: "approve", stateMutability: "nonpayable", inputs: [{ name: "s", type: "address" }, { name: "v", type: "uint256" }], outputs: [{ type: "bool" }] },
  { type: "function", name: "mint", stateMutability: "nonpayable", inputs: [{ name: "to", type: "address" }, { name: "v", type: "uint256" }], outputs: [] },
];
const wallet = key => createWalletClient({ account: privateKeyToAccount(key), chain: chain.chain, transport: http(rpcUrl) }).extend(publicActions);
async function send(key, functionName, args) {
  const hash = await wallet(key).writeContract({ address: TOKEN, abi: erc20, functionName, args });
  return chain.waitForTransactionReceipt({ hash });
}
const balance = who => chain.readContract({ address: TOKEN, abi: erc20, functionName: "balanceOf", args: [who] });
const fresh = privateKeyToAccount(FRESH_KEY).address;
await send(PAYER_KEY, "mint", [PAYER, 1_000_000n]);
await send(PAYER_KEY, "mint", [fresh, 1_000_000n]);
await send(PAYER_KEY, "approve", [PERMIT2, 2n ** 256n - 1n]);
// The reference diagnoses a failed simulation through Multicall3, which every public chain
// has at its canonical address: placed here from the creation code viem ships.
{
  const source = fs.readFileSync(new URL("./node_modules/viem/_esm/constants/contracts.js", import.meta.url), "utf8");
  const creation = source.match(/multicall3Bytecode = '(0x[0-9a-f]+)'/)[1];
  const runtime = await chain.request({ method: "eth_call", params: [{ data: creation }, "latest"] });
  await chain.request({ method: "anvil_setCode", params: ["0xcA11bde05977b3631167028862bE2a173976CA11", runtime] });
}

// The official client (any asset: the test token is not in its default table) and facilitators.
const client = key => registerExactEvmScheme(x402Client.fromConfig({ schemes: [], spendControls: false }), {
  signer: privateKeyToAccount(key), schemeOptions: { rpcUrl },
});
const ours = new HTTPFacilitatorClient({ url });
const referenceSigner = (() => {
  const w = wallet(REFERENCE_KEY);
  return toFacilitatorEvmSigner({ ...w, address: w.account.address });
})();
const reference = new x402Facilitator()
  .register("eip155:84532", new ExactEvmScheme(referenceSigner))
  .register("eip155:84532", new UptoReference(referenceSigner));
const uptoClient = key => x402Client.fromConfig({
  schemes: [{ network: "eip155:*", client: new UptoClient(privateKeyToAccount(key), { rpcUrl }) }], spendControls: false,
});
const resource = { url: "http://127.0.0.1/resource", description: "permit2 conformance", mimeType: "application/json" };

function requirements(overrides = {}) {
  return {
    scheme: "exact", network: "eip155:84532", amount: "10000", asset: TOKEN, payTo: PAY_TO, maxTimeoutSeconds: 60,
    extra: { name: "Permit Token", version: "1", assetTransferMethod: "permit2" }, ...overrides,
  };
}
const SPONSORING = { eip2612GasSponsoring: { info: { description: "the facilitator sends your EIP-2612 permit for Permit2" } } };
async function pay(key, req = requirements(), extensions = undefined) {
  return client(key).createPaymentPayload({ x402Version: 2, resource, accepts: [req], ...(extensions ? { extensions } : {}) });
}
async function balances(payer) {
  return { payer: await balance(payer), payTo: await balance(PAY_TO) };
}
async function gasOf(hash) {
  return (await chain.getTransactionReceipt({ hash })).gasUsed;
}
const gas = {};

// ---- /supported ----
const supported = await ours.getSupported();
check("supported lists v2 exact on eip155:84532", supported.kinds.some(k => k.x402Version === 2 && k.scheme === "exact" && k.network === "eip155:84532"));
check("supported lists the eip2612GasSponsoring extension", (supported.extensions || []).includes("eip2612GasSponsoring"), JSON.stringify(supported.extensions));

// ---- Permit2 approved on chain: verify and settle, ours and the reference's ----
{
  const req = requirements();
  const payload = await pay(PAYER_KEY, req);
  check("client signed a Permit2 payload", !!payload.payload.permit2Authorization && payload.payload.permit2Authorization.spender.toLowerCase() === "0x402085c248eea27d92e8b30b2c58ed07f9e20001", JSON.stringify(payload.payload));
  const [mine, theirs] = [await ours.verify(payload, req), await reference.verify(payload, req)];
  check("permit2 verify valid (ours)", mine.isValid === true && mine.payer === PAYER, JSON.stringify(mine));
  check("permit2 verify valid (reference)", theirs.isValid === true, JSON.stringify(theirs));
  const before = await balances(PAYER);
  const settled = await ours.settle(payload, req);
  check("permit2 settle success", settled.success === true && /^0x[0-9a-f]{64}$/.test(settled.transaction) && settled.payer === PAYER && settled.network === "eip155:84532", JSON.stringify(settled));
  const after = await balances(PAYER);
  check("permit2 balances moved exactly once", before.payer - after.payer === 10000n && after.payTo - before.payTo === 10000n, `${before.payer - after.payer}`);
  const again = await ours.settle(payload, req);
  check("permit2 repeated settle answers the same hash", again.success === true && again.transaction === settled.transaction, JSON.stringify(again));
  check("permit2 repeated settle moves nothing", (await balance(PAYER)) === after.payer);
  const elsewhere = await ours.settle({ ...payload, resource: { ...resource, url: "http://127.0.0.1/other" } }, req);
  check("the same permit for another resource: permit2_invalid_nonce, nothing sent", elsewhere.success === false && elsewhere.errorReason === "permit2_invalid_nonce" && !elsewhere.transaction, JSON.stringify(elsewhere));
  const [replay, refReplay] = [await ours.verify(payload, req), await reference.verify(payload, req)];
  check("permit2 verify after settle: nonce spent (ours)", replay.isValid === false && replay.invalidReason === "permit2_invalid_nonce", JSON.stringify(replay));
  // On purpose: the reference diagnoses a spent nonce as a failed simulation only.
  check("permit2 verify after settle: reference says simulation failed", refReplay.isValid === false && refReplay.invalidReason === "permit2_simulation_failed", JSON.stringify(refReplay));
  const other = await pay(PAYER_KEY, req);
  const refSettled = await reference.settle(other, req);
  check("reference settles a Permit2 payment on the same chain", refSettled.success === true, JSON.stringify(refSettled));
  gas.permit2Reference = refSettled.success ? await gasOf(refSettled.transaction) : 0n;
  // Gas is compared in the same storage state: our first settlement was the first to pay
  // payTo in this token (a zero balance written), the reference's was not.
  const third = await ours.settle(await pay(PAYER_KEY, req), req);
  check("a second permit2 settlement succeeds", third.success === true, JSON.stringify(third));
  gas.permit2 = third.success ? await gasOf(third.transaction) : 0n;
}

// ---- EIP-2612 gas sponsoring: a payer who never approved Permit2 ----
{
  const req = requirements({ amount: "7000" });
  const plain = await pay(FRESH_KEY, req);
  const before = await balances(fresh);
  const [mine, theirs] = [await ours.verify(plain, req), await reference.verify(plain, req)];
  check("no approval, no permit: permit2_allowance_required (ours)", mine.isValid === false && mine.invalidReason === "permit2_allowance_required", JSON.stringify(mine));
  check("no approval, no permit: permit2_allowance_required (reference)", theirs.isValid === false && theirs.invalidReason === "permit2_allowance_required", JSON.stringify(theirs));
  const refused = await ours.settle(plain, req);
  check("no approval, no permit: settle refused without a transaction", refused.success === false && refused.errorReason === "permit2_allowance_required" && !refused.transaction, JSON.stringify(refused));

  const payload = await pay(FRESH_KEY, req, SPONSORING);
  const info = payload.extensions?.eip2612GasSponsoring?.info;
  check("client signed an EIP-2612 permit for Permit2", !!info && info.spender.toLowerCase() === PERMIT2.toLowerCase() && info.amount === "7000", JSON.stringify(payload.extensions));
  for (const [name, field, value, reason] of [
    ["a permit for another token", "asset", OTHER, "eip2612_asset_mismatch"],
    ["a permit for another spender", "spender", UPTO_PROXY, "eip2612_spender_not_permit2"],
    ["a permit from someone else", "from", OTHER, "eip2612_from_mismatch"],
    ["a permit for another amount", "amount", "7001", "permit2_2612_amount_mismatch"],
    ["a malformed permit", "signature", "0x1234", "invalid_eip2612_extension_format"],
  ]) {
    const tampered = structuredClone(payload);
    tampered.extensions.eip2612GasSponsoring.info[field] = value;
    const [m, t, s] = [await ours.verify(tampered, req), await reference.verify(tampered, req), await ours.settle(tampered, req)];
    check(`${name}: ${reason} (ours)`, m.isValid === false && m.invalidReason === reason && s.success === false && s.errorReason === reason && !s.transaction, JSON.stringify([m, s]));
    // On purpose: the reference leaves a wrong amount to the proxy and a short signature to
    // the token; its diagnosis of the failed simulation then names the allowance the permit
    // would have set. We refuse both before any call, with the reason that names the permit.
    const refExpected = ["permit2_2612_amount_mismatch", "invalid_eip2612_extension_format"].includes(reason) ? "permit2_allowance_required" : reason;
    check(`${name}: reference says ${refExpected}`, t.isValid === false && t.invalidReason === refExpected, JSON.stringify(t));
  }
  check("refused permits moved nothing", (await balance(fresh)) === before.payer);
  const [mine2, theirs2] = [await ours.verify(payload, req), await reference.verify(payload, req)];
  check("eip2612 verify valid (ours)", mine2.isValid === true && mine2.payer === fresh, JSON.stringify(mine2));
  check("eip2612 verify valid (reference)", theirs2.isValid === true, JSON.stringify(theirs2));
  const settled = await ours.settle(payload, req);
  check("eip2612 settle success", settled.success === true && /^0x[0-9a-f]{64}$/.test(settled.transaction), JSON.stringify(settled));
  const after = await balances(fresh);
  check("eip2612 balances moved exactly once", before.payer - after.payer === 7000n && after.payTo - before.payTo === 7000n, `${before.payer - after.payer}`);
  const again = await ours.settle(payload, req);
  check("eip2612 repeated settle answers the same hash", again.success === true && again.transaction === settled.transaction, JSON.stringify(again));
  const refPayload = await pay(FRESH_KEY, req, SPONSORING);
  const refSettled = await reference.settle(refPayload, req);
  check("reference settles an EIP-2612 sponsored payment", refSettled.success === true, JSON.stringify(refSettled));
  gas.permit2Eip2612Reference = refSettled.success ? await gasOf(refSettled.transaction) : 0n;
  // Same storage state as the reference's (the payer's EIP-2612 nonce was zero for our first).
  const third = await ours.settle(await pay(FRESH_KEY, req, SPONSORING), req);
  check("a second eip2612 settlement succeeds", third.success === true, JSON.stringify(third));
  gas.permit2Eip2612 = third.success ? await gasOf(third.transaction) : 0n;
}

// ---- negative cases signed by the official client: our reason, the reference's, nothing moved ----
const negatives = [
  ["wrong spender", async () => { const req = requirements(); const p = await pay(PAYER_KEY, req); p.payload.permit2Authorization.spender = UPTO_PROXY; return [p, req]; }, "invalid_permit2_spender"],
  ["expired deadline", async () => { const req = requirements({ maxTimeoutSeconds: 2 }); return [await pay(PAYER_KEY, req), req]; }, "permit2_deadline_expired"],
  ["witness to is not payTo", async () => { const p = await pay(PAYER_KEY, requirements({ payTo: OTHER })); p.accepted = requirements(); return [p, requirements()]; }, "invalid_permit2_recipient_mismatch"],
  ["amount short", async () => { const p = await pay(PAYER_KEY, requirements({ amount: "9999" })); p.accepted = requirements(); return [p, requirements()]; }, "permit2_amount_mismatch"],
  ["signed by another key", async () => { const req = requirements(); const p = await pay(PAYER_KEY, req); const q = await pay(FRESH_KEY, req); p.payload.signature = q.payload.signature; return [p, req]; }, "invalid_permit2_signature"],
  ["an asset without code", async () => { const req = requirements({ asset: "0x00000000000000000000000000000000000002aa" }); return [await pay(PAYER_KEY, req), req]; }, "asset_not_deployed_contract"],
  ["not yet valid", async () => { const req = requirements(); const p = await pay(PAYER_KEY, req); p.payload.permit2Authorization.witness.validAfter = String(Math.floor(Date.now() / 1000) + 3600); return [p, req]; }, "permit2_not_yet_valid"],
];
for (const [name, make, reason] of negatives) {
  const [payload, req] = await make();
  const before = await balances(PAYER);
  const [mine, theirs, settled] = [await ours.verify(payload, req), await reference.verify(payload, req), await ours.settle(payload, req)];
  check(`${name}: ${reason} (ours)`, mine.isValid === false && mine.invalidReason === reason && mine.payer === PAYER, JSON.stringify(mine));
  check(`${name}: ${reason} (reference)`, theirs.isValid === false && theirs.invalidReason === reason, JSON.stringify(theirs));
  check(`${name}: settle refused without a transaction`, settled.success === false && settled.errorReason === reason && !settled.transaction, JSON.stringify(settled));
  const after = await balances(PAYER);
  check(`${name}: nothing moved`, after.payer === before.payer && after.payTo === before.payTo);
}

// ---- v1 carries no Permit2 ----
{
  const req = requirements();
  const payload = await pay(PAYER_KEY, req);
  const v1Req = { scheme: "exact", network: "base-sepolia", maxAmountRequired: "10000", resource: resource.url, description: "", mimeType: "application/json", payTo: PAY_TO, maxTimeoutSeconds: 60, asset: TOKEN, extra: req.extra };
  const body = { x402Version: 1, paymentPayload: { x402Version: 1, scheme: "exact", network: "base-sepolia", payload: payload.payload }, paymentRequirements: v1Req };
  const res = await fetch(`${url}/verify`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const answer = await res.json();
  check("v1 Permit2 payload: unsupported_payload_type", res.status === 200 && answer.isValid === false && answer.invalidReason === "unsupported_payload_type", JSON.stringify(answer));
}

// ---- a token whose transferFrom moves less than asked: the receipt's Transfer is checked ----
{
  const artifact = JSON.parse(fs.readFileSync(new URL("../../crates/x402-testkit/contracts/Permit2StandIns.json", import.meta.url)));
  const setCode = code => chain.request({ method: "anvil_setCode", params: [TOKEN, code] });
  const req = requirements({ amount: "5000" });
  const payload = await pay(PAYER_KEY, req);
  await setCode(artifact.contracts.ShortChangingPermitToken.deployedBytecode);
  const settled = await ours.settle(payload, req);
  await setCode(artifact.contracts.TestPermitToken.deployedBytecode);
  check("short-changing token: invalid_exact_evm_transfer_event_mismatch with the hash", settled.success === false && settled.errorReason === "invalid_exact_evm_transfer_event_mismatch" && /^0x[0-9a-f]{64}$/.test(settled.transaction), JSON.stringify(settled));
}

// ---- upto: authorize at most, settle what the resource server names, once ----
{
  const kind = supported.kinds.find(k => k.x402Version === 2 && k.scheme === "upto" && k.network === "eip155:84532");
  check("supported lists v2 upto with extra.facilitatorAddress", !!kind && /^0x[0-9a-fA-F]{40}$/.test(kind?.extra?.facilitatorAddress ?? ""), JSON.stringify(kind));
  const facilitatorAddress = kind?.extra?.facilitatorAddress;
  const uptoReq = (amount = "10000", extra = {}) => ({
    scheme: "upto", network: "eip155:84532", amount, asset: TOKEN, payTo: PAY_TO, maxTimeoutSeconds: 60,
    extra: { name: "Permit Token", version: "1", facilitatorAddress, ...extra },
  });
  const payUpto = (req, key = PAYER_KEY) => uptoClient(key).createPaymentPayload({ x402Version: 2, resource, accepts: [req] });
  const max = uptoReq();
  const payload = await payUpto(max);
  check("upto client signed for the upto proxy and our facilitator", payload.payload.permit2Authorization?.spender?.toLowerCase() === UPTO_PROXY.toLowerCase() && payload.payload.permit2Authorization.witness.facilitator === facilitatorAddress, JSON.stringify(payload.payload));
  const verified = await ours.verify(payload, max);
  check("upto verify valid at the maximum", verified.isValid === true && verified.payer === PAYER, JSON.stringify(verified));
  const before = await balances(PAYER);
  const above = await ours.settle(payload, uptoReq("10001"));
  check("upto settle above the maximum: invalid_upto_evm_payload_settlement_exceeds_amount", above.success === false && above.errorReason === "invalid_upto_evm_payload_settlement_exceeds_amount" && !above.transaction, JSON.stringify(above));
  const settled = await ours.settle(payload, uptoReq("6000"));
  check("upto settle charges the named amount", settled.success === true && settled.amount === "6000" && /^0x[0-9a-f]{64}$/.test(settled.transaction) && settled.payer === PAYER, JSON.stringify(settled));
  const after = await balances(PAYER);
  check("upto balances moved exactly the named amount once", before.payer - after.payer === 6000n && after.payTo - before.payTo === 6000n, `${before.payer - after.payer}`);
  const again = await ours.settle(payload, uptoReq("6000"));
  check("upto repeated settle answers the same hash and amount", again.success === true && again.transaction === settled.transaction && again.amount === "6000", JSON.stringify(again));
  const second = await ours.settle(payload, uptoReq("3000"));
  check("upto second settle of one authorization: permit2_invalid_nonce, nothing sent", second.success === false && second.errorReason === "permit2_invalid_nonce" && !second.transaction, JSON.stringify(second));
  check("upto retries moved nothing", (await balance(PAYER)) === after.payer);
  gas.upto = await gasOf(settled.transaction);

  // upto with the EIP-2612 extension: a payer who never approved Permit2.
  const sponsoredPayload = await uptoClient(FRESH_KEY).createPaymentPayload({ x402Version: 2, resource, accepts: [max], extensions: SPONSORING });
  check("upto client signed an EIP-2612 permit for the maximum", sponsoredPayload.extensions?.eip2612GasSponsoring?.info?.amount === "10000", JSON.stringify(sponsoredPayload.extensions));
  const freshBefore = await balances(fresh);
  const sponsored = await ours.settle(sponsoredPayload, uptoReq("3000"));
  check("upto with eip2612 settles the named amount", sponsored.success === true && sponsored.amount === "3000", JSON.stringify(sponsored));
  const freshAfter = await balances(fresh);
  check("upto with eip2612 moved exactly the named amount", freshBefore.payer - freshAfter.payer === 3000n && freshAfter.payTo - freshBefore.payTo === 3000n, `${freshBefore.payer - freshAfter.payer}`);

  const nothing = await payUpto(max);
  const zero = await ours.settle(nothing, uptoReq("0"));
  check("upto zero settlement: success, no transaction, amount 0", zero.success === true && zero.transaction === "" && zero.amount === "0", JSON.stringify(zero));
  check("upto zero settlement moved nothing", (await balance(PAYER)) === after.payer);

  const strangers = await payUpto(uptoReq("10000", { facilitatorAddress: OTHER }));
  const stranger = await ours.verify(strangers, uptoReq("10000", { facilitatorAddress: OTHER }));
  check("upto for another facilitator: upto_facilitator_mismatch", stranger.isValid === false && stranger.invalidReason === "upto_facilitator_mismatch", JSON.stringify(stranger));

  // The reference, paid for its own signer: it verifies and settles upto on the same chain.
  const refReq = (amount = "10000") => uptoReq(amount, { facilitatorAddress: referenceSigner.getAddresses()[0] });
  const refPayload = await payUpto(refReq());
  const refVerified = await reference.verify(refPayload, refReq());
  check("reference verifies upto", refVerified.isValid === true, JSON.stringify(refVerified));
  const mineOnTheirs = await ours.verify(refPayload, refReq());
  check("an upto payment for the reference's signer is not ours to settle", mineOnTheirs.isValid === false && mineOnTheirs.invalidReason === "upto_facilitator_mismatch", JSON.stringify(mineOnTheirs));
  const refSettled = await reference.settle(refPayload, refReq("6000"));
  check("reference settles upto", refSettled.success === true && refSettled.amount === "6000", JSON.stringify(refSettled));
  gas.uptoReference = refSettled.success ? await gasOf(refSettled.transaction) : 0n;
}

// ---- EIP-3009 beside it, for the gas comparison (the test USDC the harness funded) ----
{
  const USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
  const req = { scheme: "exact", network: "eip155:84532", amount: "10000", asset: USDC, payTo: PAY_TO, maxTimeoutSeconds: 60, extra: { name: "USDC", version: "2" } };
  const settleWith = async who => who.settle(await client(PAYER_KEY).createPaymentPayload({ x402Version: 2, resource, accepts: [req] }), req);
  const first = await settleWith(ours);
  const refSettled = await settleWith(reference);
  const second = await settleWith(ours); // the same storage state as the reference's
  check("eip3009 settles on both, for the gas comparison", first.success && refSettled.success && second.success, JSON.stringify([first, refSettled, second]));
  gas.eip3009 = second.success ? await gasOf(second.transaction) : 0n;
  gas.eip3009Reference = refSettled.success ? await gasOf(refSettled.transaction) : 0n;
}

console.log(`gas used: eip3009 ${gas.eip3009} (reference ${gas.eip3009Reference}), permit2 ${gas.permit2} (reference ${gas.permit2Reference}), permit2+eip2612 ${gas.permit2Eip2612} (reference ${gas.permit2Eip2612Reference}), upto ${gas.upto} (reference ${gas.uptoReference})`);
finish();
