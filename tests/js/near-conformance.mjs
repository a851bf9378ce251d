// NEAR exact against the facilitator on the local NEAR node stand-in (tools/nearnode).
// Payments are built and signed by third-party code, not ours: near-api-js 7.3.1
// (`Account.createSignedMetaTransaction`, `encodeSignedDelegate`) reading the access key
// nonce and the head from the node; the official @x402/core facilitator client verifies
// and settles them with us. No official x402 NEAR client exists (npm has no @x402/near).
// Usage: node tests/js/near-conformance.mjs '<world json>'
// The world: { facilitator, rpc, network, token, otherToken, payTo, unregistered,
//   payer: {account, secret}, poor: {account, secret}, fcKey: {account, secret},
//   otherSecret }
import {
  Account, JsonRpcProvider, KeyPair, KeyPairSigner, actions, buildDelegateAction,
  encodeDelegateAction, encodeSignedDelegate, Signature,
} from "near-api-js";
import { HTTPFacilitatorClient } from "@x402/core/http";
import { createHash } from "node:crypto";

const world = JSON.parse(process.argv[2]);
const provider = new JsonRpcProvider({ url: world.rpc });
const facilitator = new HTTPFacilitatorClient({ url: world.facilitator });
const TGAS = 1_000_000_000_000n;
const MAX_TIMEOUT = 300;
let failures = 0;
function check(name, ok, detail = "") {
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${ok ? "" : ` ${detail}`}`);
  if (!ok) failures++;
}

async function rpc(method, params) {
  const res = await fetch(world.rpc, { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  const body = await res.json();
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}
async function balance(account, token = world.token) {
  const value = await provider.callFunction({ contractId: token, method: "ft_balance_of", args: { account_id: account } });
  return BigInt(value);
}
async function balances() {
  return { payer: await balance(world.payer.account), payTo: await balance(world.payTo), poor: await balance(world.poor.account) };
}

function accountOf(who) {
  return new Account(who.account, provider, new KeyPairSigner(KeyPair.fromString(who.secret)));
}
const transfer = (amount, { receiver = world.payTo, deposit = 1n, gas = 10n * TGAS, method = "ft_transfer" } = {}) =>
  actions.functionCall(method, { receiver_id: receiver, amount: String(amount) }, gas, deposit);

/// A payment as near-api-js builds and signs it: nonce and head read from the node.
async function pay(who, acts, { receiverId = world.token, ttl = MAX_TIMEOUT } = {}) {
  const account = accountOf(who);
  const { signedDelegate } = await account.createSignedMetaTransaction({ receiverId, actions: acts, blockHeightTtl: ttl });
  return Buffer.from(encodeSignedDelegate(signedDelegate)).toString("base64");
}

const resource = { url: "http://127.0.0.1/near", description: "near conformance", mimeType: "application/json" };
function requirements(amount, extra = {}) {
  return { scheme: "exact", network: world.network, amount: String(amount), asset: world.token,
    payTo: world.payTo, maxTimeoutSeconds: MAX_TIMEOUT, extra };
}
function paymentPayload(signedDelegateAction, accepted, url = resource.url) {
  return { x402Version: 2, resource: { ...resource, url }, accepted, payload: { signedDelegateAction } };
}

// ---- /supported ----
const supported = await facilitator.getSupported();
const kind = supported.kinds.find(k => k.x402Version === 2 && k.network === world.network);
check("supported lists v2 near exact with extra.relayerId", kind?.scheme === "exact" && typeof kind?.extra?.relayerId === "string", JSON.stringify(supported));
check("supported lists no v1 NEAR kind (the spec is v2 only)", !supported.kinds.some(k => k.x402Version === 1 && String(k.network).startsWith("near")));
check("supported lists the relayer under near:*", (supported.signers["near:*"] || []).includes(kind?.extra?.relayerId), JSON.stringify(supported.signers));
const relayerId = kind?.extra?.relayerId;

// ---- the happy path: verified, settled once, repeated settle answers the first outcome ----
const AMOUNT = 1_250_000n;
const accepted = requirements(AMOUNT, { relayerId });
const good = paymentPayload(await pay(world.payer, [transfer(AMOUNT)]), accepted);
const before = await balances();
const verified = await facilitator.verify(good, accepted);
check("verify: valid, payer named", verified.isValid === true && verified.payer === world.payer.account, JSON.stringify(verified));
const settled = await facilitator.settle(good, accepted);
check("settle: success with a transaction hash", settled.success === true && typeof settled.transaction === "string" && settled.transaction.length > 30 && settled.network === world.network && settled.payer === world.payer.account, JSON.stringify(settled));
const after = await balances();
check("the payer paid exactly once", before.payer - after.payer === AMOUNT, `${before.payer} -> ${after.payer}`);
check("payTo received exactly once", after.payTo - before.payTo === AMOUNT, `${before.payTo} -> ${after.payTo}`);
const outcome = await rpc("tx", { tx_hash: settled.transaction, sender_account_id: relayerId, wait_until: "FINAL" });
const tokenReceipt = outcome.receipts_outcome.find(r => r.outcome.executor_id === world.token);
check("the chain's outcome holds the ft_transfer receipt, succeeded, with its NEP-141 event",
  tokenReceipt !== undefined && "SuccessValue" in tokenReceipt.outcome.status && tokenReceipt.outcome.logs.some(l => l.includes('"event":"ft_transfer"')), JSON.stringify(outcome));
const again = await facilitator.settle(good, accepted);
check("repeated settle: same transaction, nothing moved", again.success === true && again.transaction === settled.transaction && (await balance(world.payer.account)) === after.payer, JSON.stringify(again));

// ---- refusals: each its reason, nothing moved, no transaction ----
async function refused(name, payload, reqs, reason, verifyReason = reason) {
  const start = await balances();
  const v = await facilitator.verify(payload, reqs);
  const s = await facilitator.settle(payload, reqs);
  const end = await balances();
  const moved = start.payer !== end.payer || start.payTo !== end.payTo || start.poor !== end.poor;
  check(`${name}: verify ${verifyReason}`, v.isValid === false && v.invalidReason === verifyReason, JSON.stringify(v));
  check(`${name}: settle ${reason}, no transaction, nothing moved`,
    s.success === false && s.errorReason === reason && !s.transaction && s.network === world.network && !moved, JSON.stringify(s));
}

// Verify reads the chain (the nonce is used); settle reads the ledger first (the payment
// was settled for another request).
await refused("replay of the settled payment under another resource", paymentPayload(good.payload.signedDelegateAction, accepted, "http://127.0.0.1/other"), accepted, "duplicate_settlement", "delegate_action_nonce_reused");

const expiring = await pay(world.payer, [transfer(AMOUNT)], { ttl: 5 });
await rpc("sandbox_fast_forward", { delta_height: 10 });
await refused("expired delegate action", paymentPayload(expiring, accepted), accepted, "delegate_action_expired");
await refused("window longer than maxTimeoutSeconds", paymentPayload(await pay(world.payer, [transfer(AMOUNT)], { ttl: MAX_TIMEOUT + 20 }), accepted), accepted, "delegate_action_timeout_window_exceeds_maxTimeout");
await refused("amount short", paymentPayload(await pay(world.payer, [transfer(AMOUNT - 1n)]), accepted), accepted, "invalid_exact_near_payload_amount_mismatch");
await refused("amount over", paymentPayload(await pay(world.payer, [transfer(AMOUNT + 1n)]), accepted), accepted, "invalid_exact_near_payload_amount_mismatch");
await refused("wrong payTo", paymentPayload(await pay(world.payer, [transfer(AMOUNT, { receiver: world.unregistered })]), accepted), accepted, "invalid_exact_near_payload_recipient_mismatch");
await refused("wrong token contract", paymentPayload(await pay(world.payer, [transfer(AMOUNT)], { receiverId: world.otherToken }), accepted), accepted, "invalid_exact_near_payload_asset_mismatch");
await refused("two actions", paymentPayload(await pay(world.payer, [transfer(AMOUNT), transfer(AMOUNT)]), accepted), accepted, "invalid_exact_near_payload_action_count");
await refused("a call other than ft_transfer", paymentPayload(await pay(world.payer, [transfer(AMOUNT, { method: "ft_transfer_call" })]), accepted), accepted, "invalid_exact_near_payload_not_ft_transfer");
await refused("a native transfer instead of a call", paymentPayload(await pay(world.payer, [actions.transfer(1n)]), accepted), accepted, "invalid_exact_near_payload_not_ft_transfer");
await refused("no deposit", paymentPayload(await pay(world.payer, [transfer(AMOUNT, { deposit: 0n })]), accepted), accepted, "invalid_exact_near_payload_deposit_not_one_yocto");
await refused("a deposit of 2 yocto", paymentPayload(await pay(world.payer, [transfer(AMOUNT, { deposit: 2n })]), accepted), accepted, "invalid_exact_near_payload_deposit_not_one_yocto");
await refused("gas above the cap", paymentPayload(await pay(world.payer, [transfer(AMOUNT, { gas: 300n * TGAS })]), accepted), accepted, "invalid_exact_near_payload_gas_above_cap");
await refused("a function-call access key", paymentPayload(await pay(world.fcKey, [transfer(AMOUNT)]), accepted), accepted, "invalid_exact_near_access_key");
await refused("more than the payer holds", paymentPayload(await pay(world.poor, [transfer(AMOUNT)]), accepted), accepted, "insufficient_funds");

// Signed by another key over the payer's delegate action (near-api-js's own signer refuses
// to sign for a key it does not hold, so the hash is signed by hand with its KeyPair).
{
  const payerKey = KeyPair.fromString(world.payer.secret).getPublicKey();
  const access = await provider.viewAccessKey({ accountId: world.payer.account, publicKey: payerKey });
  const head = await provider.viewBlock({ finality: "optimistic" });
  const delegateAction = buildDelegateAction({ receiverId: world.token, senderId: world.payer.account,
    actions: [transfer(AMOUNT)], publicKey: payerKey, nonce: BigInt(access.nonce) + 1n,
    maxBlockHeight: BigInt(head.header.height) + 100n });
  // KeyPair.sign hashes nothing itself: near-api-js's signer signs the SHA-256 of the
  // NEP-461-prefixed encoding, and so does this.
  const hash = createHash("sha256").update(encodeDelegateAction(delegateAction)).digest();
  const forged = KeyPair.fromString(world.otherSecret).sign(hash);
  const signedDelegate = { delegateAction, signature: new Signature({ keyType: 0, data: forged.signature }) };
  const encoded = Buffer.from(encodeSignedDelegate(signedDelegate)).toString("base64");
  await refused("signed by another key", paymentPayload(encoded, accepted), accepted, "invalid_exact_near_payload_signature_invalid");
}

await refused("payTo not registered with the token", paymentPayload(await pay(world.payer, [transfer(AMOUNT, { receiver: world.unregistered })]), { ...accepted, payTo: world.unregistered }), { ...accepted, payTo: world.unregistered }, "invalid_exact_near_recipient_not_registered");
await refused("extra.relayerId not ours", paymentPayload(await pay(world.payer, [transfer(AMOUNT)]), { ...accepted, extra: { relayerId: "mallory.test" } }), { ...accepted, extra: { relayerId: "mallory.test" } }, "invalid_exact_near_relayer_not_managed");
{
  const payer = accountOf(world.payer);
  // The payer's own nonce moves on (a transaction of its own), so a payment signed before
  // it is a used nonce.
  const stale = await pay(world.payer, [transfer(AMOUNT)]);
  await payer.signAndSendTransaction({ receiverId: world.token, actions: [actions.functionCall("storage_deposit", { account_id: world.payer.account }, 10n * TGAS, 1_250_000_000_000_000_000_000n)], waitUntil: "EXECUTED_OPTIMISTIC" });
  await refused("a nonce the payer used meanwhile", paymentPayload(stale, accepted), accepted, "delegate_action_nonce_reused");
}

// v1 names NEAR under near-testnet: refused, pointing at v2.
{
  const body = { x402Version: 1, paymentPayload: { x402Version: 1, scheme: "exact", network: "near-testnet", payload: { signedDelegateAction: good.payload.signedDelegateAction } },
    paymentRequirements: { scheme: "exact", network: "near-testnet", maxAmountRequired: String(AMOUNT), resource: resource.url, description: "v1", mimeType: "application/json", payTo: world.payTo, maxTimeoutSeconds: MAX_TIMEOUT, asset: world.token } };
  const res = await fetch(`${world.facilitator}/verify`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const answer = await res.json();
  check("v1 naming near-testnet: 200, invalid_x402_version naming v2 and near:testnet", res.status === 200 && answer.isValid === false && answer.invalidReason === "invalid_x402_version" && /v2/.test(answer.invalidMessage ?? "") && /near:testnet/.test(answer.invalidMessage ?? ""), `${res.status} ${JSON.stringify(answer)}`);
}

console.log(failures === 0 ? "all NEAR conformance checks passed" : `${failures} NEAR conformance checks failed`);
process.exit(failures === 0 ? 0 : 1);
