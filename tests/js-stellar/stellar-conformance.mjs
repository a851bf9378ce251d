// Stellar exact against the facilitator on the local Stellar node stand-in (tools/stellarnode,
// the real Soroban host behind a JSON-RPC of ours). Payments are built and signed by the
// official client, @x402/stellar 2.9.0 (`ExactStellarScheme` over `createEd25519Signer`),
// which simulates them twice against the node; the official @x402/core 2.9.0 facilitator
// client calls us. Forgeries are the official payload changed with @stellar/stellar-sdk's
// own `authorizeEntry` and XDR types.
// Usage: node tests/js-stellar/stellar-conformance.mjs '<world json>'
// The world: { facilitator, rpc, network, usdc, eurc, payTo, stranger,
//   payer: {address, secret}, other: {address, secret}, facilitatorSecret }
import { authorizeEntry, Keypair, Networks, Operation, xdr, Asset } from "@stellar/stellar-sdk";
import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/http";
import { createEd25519Signer } from "@x402/stellar";
import { ExactStellarScheme } from "@x402/stellar/exact/client";
import { tlsFront } from "./common.mjs";

const world = JSON.parse(process.argv[2]);
const facilitator = new HTTPFacilitatorClient({ url: world.facilitator });
const front = await tlsFront(world.rpc);
const MAX_TIMEOUT = 300;
const AMOUNT = 1_250_000n;
let failures = 0;
function check(name, ok, detail = "") {
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${ok ? "" : ` ${detail}`}`);
  if (!ok) failures++;
}

async function rpc(method, params = null) {
  const res = await fetch(world.rpc, { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  const body = await res.json();
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

const resource = { url: "http://127.0.0.1/stellar", description: "stellar conformance", mimeType: "application/json" };
function requirements({ amount = AMOUNT, asset = world.usdc, payTo = world.payTo } = {}) {
  return { scheme: "exact", network: world.network, amount: String(amount), asset, payTo,
    maxTimeoutSeconds: MAX_TIMEOUT, extra: { areFeesSponsored: true } };
}

/// A payment as the official client builds, simulates and signs it for `reqs`; `claimed`
/// is what its `accepted` says (a hostile payer claims the real requirements while its
/// transaction pays something else).
async function pay(secret, reqs, claimed = reqs) {
  const client = new x402Client();
  client.register(world.network, new ExactStellarScheme(createEd25519Signer(secret, world.network), { url: front }));
  const payload = await client.createPaymentPayload({ x402Version: 2, resource, accepts: [reqs] });
  return { ...payload, accepted: claimed };
}

/// The payload with its transaction's envelope changed by `change(envelope)`.
async function forged(payload, change) {
  const envelope = xdr.TransactionEnvelope.fromXDR(payload.payload.transaction, "base64");
  await change(envelope);
  return { ...payload, payload: { transaction: envelope.toXDR("base64") } };
}
const invocation = (envelope) => envelope.v1().tx().operations()[0].body().invokeHostFunctionOp();
async function reauthorized(payload, signer, expiration, passphrase = Networks.TESTNET) {
  return forged(payload, async (envelope) => {
    const op = invocation(envelope);
    op.auth(await Promise.all(op.auth().map(entry => authorizeEntry(entry, signer, expiration, passphrase))));
  });
}

const supported = await facilitator.getSupported();
const kind = supported.kinds.find(k => k.x402Version === 2 && k.network === world.network);
check("/supported lists stellar:testnet exact with areFeesSponsored", kind?.scheme === "exact" && kind?.extra?.areFeesSponsored === true, JSON.stringify(supported));
check("/supported leaves Stellar out of v1", !supported.kinds.some(k => k.x402Version === 1 && String(k.network).startsWith("stellar")));
const signers = supported.signers?.["stellar:*"] ?? [];
check("/supported names the fee-paying account under stellar:*", signers.length === 1 && signers[0].startsWith("G"), JSON.stringify(supported.signers));

const accepted = requirements();
const good = await pay(world.payer.secret, accepted);
const verified = await facilitator.verify(good, accepted);
check("verify accepts the official payment", verified.isValid === true && verified.payer === world.payer.address, JSON.stringify(verified));

async function refused(name, payload, reqs, reason) {
  const verify = await facilitator.verify(payload, reqs);
  const settle = await facilitator.settle(payload, reqs);
  const ok = verify.isValid === false && verify.invalidReason === reason && settle.success === false
    && settle.errorReason === reason && settle.network === world.network && !settle.transaction;
  check(`${name}: ${reason}`, ok, JSON.stringify({ verify, settle }));
  return { verify, settle };
}

const { sequence } = await rpc("getLatestLedger");
const payerKeys = Keypair.fromSecret(world.payer.secret);
const short = await refused("amount short", await pay(world.payer.secret, requirements({ amount: AMOUNT - 1n }), accepted), accepted, "invalid_exact_stellar_payload_wrong_amount");
check("a refusal names the payer", short.verify.payer === world.payer.address && short.settle.payer === world.payer.address, JSON.stringify(short));
await refused("amount over", await pay(world.payer.secret, requirements({ amount: AMOUNT + 1n }), accepted), accepted, "invalid_exact_stellar_payload_wrong_amount");
await refused("wrong payTo", await pay(world.payer.secret, requirements({ payTo: world.stranger }), accepted), accepted, "invalid_exact_stellar_payload_wrong_recipient");
await refused("wrong asset", await pay(world.payer.secret, requirements({ asset: world.eurc }), accepted), accepted, "invalid_exact_stellar_payload_wrong_asset");
await refused("the facilitator as from", await pay(world.facilitatorSecret, accepted), accepted, "invalid_exact_stellar_payload_facilitator_is_payer");
const ours = Keypair.fromSecret(world.facilitatorSecret);
await refused("the facilitator inside an authorization", await forged(good, async (envelope) => {
  const op = invocation(envelope);
  const extra = xdr.SorobanAuthorizationEntry.fromXDR(op.auth()[0].toXDR());
  extra.credentials().address().address(xdr.ScAddress.scAddressTypeAccount(xdr.PublicKey.publicKeyTypeEd25519(ours.rawPublicKey())));
  op.auth([...op.auth(), extra]);
}), accepted, "invalid_exact_stellar_payload_facilitator_in_auth");
await refused("an authorization signed by another key", await reauthorized(good, Keypair.fromSecret(world.other.secret), sequence + 10), accepted, "invalid_exact_stellar_payload_simulation_failed");
await refused("an unsigned authorization", await forged(good, async (envelope) => {
  invocation(envelope).auth()[0].credentials().address().signature(xdr.ScVal.scvVoid());
}), accepted, "invalid_exact_stellar_payload_missing_payer_signature");
await refused("an extra operation", await forged(good, async (envelope) => {
  const tx = envelope.v1().tx();
  const payment = Operation.payment({ destination: world.stranger, asset: Asset.native(), amount: "1" });
  tx.operations([...tx.operations(), payment]);
}), accepted, "invalid_exact_stellar_payload_wrong_operation");
await refused("a transaction for another network passphrase", await reauthorized(good, payerKeys, sequence + 10, Networks.PUBLIC), accepted, "invalid_exact_stellar_payload_simulation_failed");
await refused("an expired authorization", await reauthorized(good, payerKeys, sequence - 1), accepted, "invalid_exact_stellar_signature_expired");
await refused("an authorization that outlives maxTimeoutSeconds", await reauthorized(good, payerKeys, sequence + 1000), accepted, "invalid_exact_stellar_signature_expiration_too_far");
await refused("a call of another function", await forged(good, async (envelope) => {
  invocation(envelope).hostFunction().invokeContract().functionName("burn");
}), accepted, "invalid_exact_stellar_payload_wrong_function_name");
await refused("a transaction that is not XDR", { ...good, payload: { transaction: "AAAA" } }, accepted, "invalid_exact_stellar_payload_malformed");

const settled = await facilitator.settle(good, accepted);
check("settle succeeds with a 64-hex hash", settled.success === true && /^[0-9a-f]{64}$/.test(settled.transaction) && settled.payer === world.payer.address && settled.network === world.network, JSON.stringify(settled));
const landed = await rpc("getTransaction", { hash: settled.transaction });
check("the node applied it", landed.status === "SUCCESS", JSON.stringify(landed.status));
const again = await facilitator.settle(good, accepted);
check("a repeated settle answers the first outcome", again.success === true && again.transaction === settled.transaction, JSON.stringify(again));
const elsewhere = await facilitator.settle({ ...good, resource: { ...resource, url: "http://127.0.0.1/elsewhere" } }, accepted);
check("the same payment for another resource is a duplicate", elsewhere.success === false && elsewhere.errorReason === "duplicate_settlement" && !elsewhere.transaction, JSON.stringify(elsewhere));
const replay = await facilitator.verify(good, accepted);
check("verify of the spent payment fails in simulation", replay.isValid === false && replay.invalidReason === "invalid_exact_stellar_payload_simulation_failed", JSON.stringify(replay));

console.log(JSON.stringify({ settled: settled.transaction }));
if (failures > 0) {
  console.log(`${failures} check(s) failed`);
  process.exit(1);
}
