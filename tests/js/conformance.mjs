// Conformance of the facilitator with the official x402 clients on a local anvil.
// Usage: node tests/js/conformance.mjs <facilitator url> <rpc url>
// Each happy path asserts the on-chain balances moved exactly once; each negative case
// asserts its reason code and that nothing moved.
import { privateKeyToAccount } from "viem/accounts";
import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/http";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { createPaymentHeader } from "x402/client";
import { createSigner } from "x402/types";
import { useFacilitator } from "x402/verify";
import {
  PAYER, PAYER_KEY, PAY_TO, POOR_KEY, USDC, balance, chainClient, check, finish, v1Requirements, v2Requirements,
} from "./common.mjs";

const [url, rpcUrl] = process.argv.slice(2);
const chain = chainClient(rpcUrl);
const account = privateKeyToAccount(PAYER_KEY);
const v2 = registerExactEvmScheme(new x402Client(), { signer: account });
const facilitator = new HTTPFacilitatorClient({ url });
const resource = { url: "http://127.0.0.1/resource", description: "conformance", mimeType: "application/json" };

async function balances() {
  return { payer: await balance(chain, PAYER), payTo: await balance(chain, PAY_TO) };
}

async function post(path, body) {
  const res = await fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

// ---- /supported through the official client ----
const supported = await facilitator.getSupported();
check("supported lists v2 eip155:84532", supported.kinds.some(k => k.x402Version === 2 && k.network === "eip155:84532"));
check("supported lists v1 base-sepolia", supported.kinds.some(k => k.x402Version === 1 && k.network === "base-sepolia"));
check("supported lists eip155:* signers", (supported.signers["eip155:*"] || []).length >= 1);

// ---- v2 happy path ----
{
  const requirements = v2Requirements("10000");
  const payload = await v2.createPaymentPayload({ x402Version: 2, resource, accepts: [requirements] });
  const before = await balances();
  const verified = await facilitator.verify(payload, requirements);
  check("v2 verify valid", verified.isValid === true && verified.payer === PAYER, JSON.stringify(verified));
  const settled = await facilitator.settle(payload, requirements);
  check("v2 settle success", settled.success === true && /^0x[0-9a-f]{64}$/.test(settled.transaction) && settled.network === "eip155:84532" && settled.payer === PAYER, JSON.stringify(settled));
  const after = await balances();
  check("v2 balances moved exactly once", before.payer - after.payer === 10000n && after.payTo - before.payTo === 10000n, `${before.payer - after.payer}`);
  const again = await facilitator.settle(payload, requirements);
  check("v2 repeated settle returns the original transaction", again.success === true && again.transaction === settled.transaction, JSON.stringify(again));
  const after2 = await balances();
  check("v2 repeated settle moves nothing", after2.payer === after.payer && after2.payTo === after.payTo);
  const replay = await facilitator.verify(payload, requirements);
  check("v2 verify after settle: nonce used", replay.isValid === false && replay.invalidReason === "invalid_exact_evm_nonce_already_used", JSON.stringify(replay));
}

// ---- v1 with the `x402` package ----
{
  const requirements = v1Requirements("10000");
  const signer = await createSigner("base-sepolia", PAYER_KEY);
  const header = await createPaymentHeader(signer, 1, requirements);
  const payload = JSON.parse(Buffer.from(header, "base64").toString("utf8"));
  const v1 = useFacilitator({ url });
  const before = await balances();
  const verified = await v1.verify(payload, requirements);
  check("v1 verify valid", verified.isValid === true, JSON.stringify(verified));
  const settled = await v1.settle(payload, requirements);
  check("v1 settle success in v1 shape", settled.success === true && settled.network === "base-sepolia" && /^0x[0-9a-f]{64}$/.test(settled.transaction), JSON.stringify(settled));
  const after = await balances();
  check("v1 balances moved exactly once", before.payer - after.payer === 10000n && after.payTo - before.payTo === 10000n);
}

// ---- v1 signed by the v2 SDK's v1 support, over the v2 facilitator client ----
{
  const requirements = v1Requirements("20000");
  const payload = await v2.createPaymentPayload({ x402Version: 1, accepts: [requirements] });
  const before = await balances();
  const settled = await facilitator.settle(payload, requirements);
  check("v1 via @x402/core settles", settled.success === true && settled.network === "base-sepolia", JSON.stringify(settled));
  const after = await balances();
  check("v1 via @x402/core moved exactly once", before.payer - after.payer === 20000n);
}

// ---- negative cases: reason code and nothing moved ----
const types = {
  TransferWithAuthorization: [
    { name: "from", type: "address" }, { name: "to", type: "address" }, { name: "value", type: "uint256" },
    { name: "validAfter", type: "uint256" }, { name: "validBefore", type: "uint256" }, { name: "nonce", type: "bytes32" },
  ],
};
function randomNonce() {
  return "0x" + [...crypto.getRandomValues(new Uint8Array(32))].map(b => b.toString(16).padStart(2, "0")).join("");
}
async function signed({ key = PAYER_KEY, to = PAY_TO, value = "10000", validAfter, validBefore, chainId = 84532, token = USDC, nonce = randomNonce(), name = "USDC", version = "2" } = {}) {
  const signerAccount = privateKeyToAccount(key);
  const now = Math.floor(Date.now() / 1000);
  const authorization = {
    from: signerAccount.address, to, value,
    validAfter: String(validAfter ?? now - 600), validBefore: String(validBefore ?? now + 60), nonce,
  };
  const signature = await signerAccount.signTypedData({
    domain: { name, version, chainId, verifyingContract: token },
    types, primaryType: "TransferWithAuthorization",
    message: { ...authorization, value: BigInt(value), validAfter: BigInt(authorization.validAfter), validBefore: BigInt(authorization.validBefore) },
  });
  return { signature, authorization };
}
function v2Body(payload, requirements = v2Requirements("10000"), accepted = requirements) {
  return { x402Version: 2, paymentPayload: { x402Version: 2, resource, accepted, payload }, paymentRequirements: requirements };
}

const negatives = [
  ["bad signature", async () => { const p = await signed(); p.signature = p.signature.slice(0, 10) + (p.signature[10] === "a" ? "b" : "a") + p.signature.slice(11); return v2Body(p); }, "invalid_exact_evm_signature"],
  ["signature for another chain id", async () => v2Body(await signed({ chainId: 1 })), "invalid_exact_evm_signature"],
  ["signature for another token", async () => v2Body(await signed({ token: "0x0000000000000000000000000000000000000001" })), "invalid_exact_evm_signature"],
  ["wrong payTo", async () => v2Body(await signed({ to: "0x90F79bf6EB2c4f870365E785982E1f101E93b906" })), "invalid_exact_evm_recipient_mismatch"],
  ["amount short", async () => v2Body(await signed({ value: "9999" })), "invalid_exact_evm_payload_authorization_value_mismatch"],
  ["amount over (v2 needs equality)", async () => v2Body(await signed({ value: "10001" })), "invalid_exact_evm_payload_authorization_value_mismatch"],
  ["expired", async () => v2Body(await signed({ validBefore: Math.floor(Date.now() / 1000) - 10 })), "invalid_exact_evm_payload_authorization_valid_before"],
  ["not yet valid", async () => v2Body(await signed({ validAfter: Math.floor(Date.now() / 1000) + 3600, validBefore: Math.floor(Date.now() / 1000) + 3630 })), "invalid_exact_evm_payload_authorization_valid_after"],
  ["insufficient balance", async () => v2Body(await signed({ key: POOR_KEY })), "invalid_exact_evm_insufficient_balance"],
  ["network in payload differs", async () => { const r = v2Requirements("10000"); return v2Body(await signed(), r, { ...r, network: "eip155:8453" }); }, "invalid_exact_evm_network_mismatch"],
  // Signed for the domain extra names, which is not the token's: the signature recovers, the
  // simulated transfer reverts, and the token's own name() / version() explain why.
  ["extra.name is not the token's name", async () => { const r = { ...v2Requirements("10000"), extra: { name: "USD Coin", version: "2" } }; return v2Body(await signed({ name: "USD Coin" }), r); }, "invalid_exact_evm_token_name_mismatch"],
  ["extra.version is not the token's version", async () => { const r = { ...v2Requirements("10000"), extra: { name: "USDC", version: "1" } }; return v2Body(await signed({ version: "1" }), r); }, "invalid_exact_evm_token_version_mismatch"],
  ["unknown asset", async () => { const r = { ...v2Requirements("10000"), asset: "0x00000000000000000000000000000000000000aa" }; return v2Body(await signed({ token: r.asset }), r); }, "invalid_payment_requirements"], // outside the asset list: refused before the chain is asked
];
for (const [name, make, reason] of negatives) {
  const body = await make();
  const before = await balances();
  for (const path of ["/verify", "/settle"]) {
    const res = await post(path, body);
    const got = path === "/verify" ? res.body.invalidReason : res.body.errorReason;
    const refused = path === "/verify" ? res.body.isValid === false : res.body.success === false && res.body.transaction === "";
    check(`${name}: ${path} -> ${reason}`, res.status === 200 && refused && got === reason, JSON.stringify(res.body));
  }
  const after = await balances();
  check(`${name}: nothing moved`, after.payer === before.payer && after.payTo === before.payTo);
}

// nonce already used: a replay of a settled authorization with a different body.
{
  const p = await signed();
  const first = await post("/settle", v2Body(p));
  check("replay setup settles", first.body.success === true, JSON.stringify(first.body));
  const before = await balances();
  const replayVerify = await post("/verify", v2Body(p));
  check("replay: verify -> nonce used", replayVerify.body.invalidReason === "invalid_exact_evm_nonce_already_used", JSON.stringify(replayVerify.body));
  const same = await post("/settle", v2Body(p));
  check("replay of the identical request returns the original transaction", same.body.success === true && same.body.transaction === first.body.transaction, JSON.stringify(same.body));
  // The same authorization against other requirements is a different payment reusing the nonce.
  const requirementsV1 = v1Requirements("5000");
  const replayV1 = await post("/settle", { x402Version: 1, paymentPayload: { x402Version: 1, scheme: "exact", network: "base-sepolia", payload: p }, paymentRequirements: requirementsV1 });
  check("replay with other requirements: settle refused with nonce used", replayV1.body.success === false && replayV1.body.errorReason === "invalid_exact_evm_nonce_already_used", JSON.stringify(replayV1.body));
  const after = await balances();
  check("replay: nothing moved", after.payer === before.payer && after.payTo === before.payTo);
}

// v1 accepts value >= maxAmountRequired (v1 specification).
{
  const p = await signed({ value: "10001" });
  const body = { x402Version: 1, paymentPayload: { x402Version: 1, scheme: "exact", network: "base-sepolia", payload: p }, paymentRequirements: v1Requirements("10000") };
  const res = await post("/verify", body);
  check("v1 value over maxAmountRequired is valid", res.body.isValid === true, JSON.stringify(res.body));
}

// a v1 body sent with x402Version 2: 400 naming the field, nothing moved.
{
  const p = await signed();
  const before = await balances();
  const body = { x402Version: 2, paymentPayload: { x402Version: 2, scheme: "exact", network: "base-sepolia", payload: p }, paymentRequirements: v1Requirements("10000") };
  const res = await post("/settle", body);
  check("v1 body labelled v2 -> 400 with field", res.status === 400 && typeof res.body.error === "string" && res.body.field === "paymentPayload", JSON.stringify(res.body));
  const after = await balances();
  check("v1 body labelled v2: nothing moved", after.payer === before.payer);
}

finish();
