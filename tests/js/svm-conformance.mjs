// Conformance of the facilitator's exact-SVM scheme with the official @x402/svm client on a
// local Solana node presented under the devnet id.
// Usage: node tests/js/svm-conformance.mjs <facilitator url> <rpc url> <payer keypair base58> <payTo> <mint>...
// For each mint (SPL Token and Token-2022) and each version (v2, v1): the official client
// builds the payment against the local node, the official facilitator client verifies and
// settles it with us, the payee's token balance moves exactly once, and a repeated settle
// returns the same signature without moving anything.
import { createKeyPairSignerFromBytes, getBase58Encoder } from "@solana/kit";
import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/http";
import { ExactSvmScheme } from "@x402/svm/exact/client";
import { ExactSvmSchemeV1 } from "@x402/svm/exact/v1/client";

const [url, rpcUrl, payerSecret, payTo, ...mints] = process.argv.slice(2);
const DEVNET = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
let failures = 0;
function check(name, ok, detail = "") {
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${ok ? "" : ` ${detail}`}`);
  if (!ok) failures++;
}

async function rpc(method, params) {
  const res = await fetch(rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  const body = await res.json();
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}
async function tokenBalance(owner, mint) {
  const accounts = await rpc("getTokenAccountsByOwner", [owner, { mint }, { encoding: "jsonParsed" }]);
  return accounts.value.reduce((sum, a) => sum + BigInt(a.account.data.parsed.info.tokenAmount.amount), 0n);
}

const signer = await createKeyPairSignerFromBytes(getBase58Encoder().encode(payerSecret));
const client = new x402Client();
// The Token-2022 test mint is not one of the SDK's default assets.
client.setSpendControls(false);
client.register("solana:*", new ExactSvmScheme(signer, { rpcUrl }));
client.registerV1("solana-devnet", new ExactSvmSchemeV1(signer, { rpcUrl }));
const facilitator = new HTTPFacilitatorClient({ url });
const resource = { url: "http://127.0.0.1/resource", description: "svm conformance", mimeType: "application/json" };

const supported = await facilitator.getSupported();
const kind = supported.kinds.find(k => k.x402Version === 2 && k.network === DEVNET);
check("supported lists v2 solana devnet with extra.feePayer", !!kind && typeof kind.extra?.feePayer === "string", JSON.stringify(supported));
check("supported lists v1 solana-devnet", supported.kinds.some(k => k.x402Version === 1 && k.network === "solana-devnet"));
check("supported lists solana:* signers", (supported.signers["solana:*"] || []).includes(kind?.extra?.feePayer));
const feePayer = kind?.extra?.feePayer;

for (const mint of mints) {
  for (const version of [2, 1]) {
    const label = `v${version} ${mint.slice(0, 6)}`;
    const amount = version === 2 ? "12345" : "2345";
    const requirements = version === 2
      ? { scheme: "exact", network: DEVNET, amount, asset: mint, payTo, maxTimeoutSeconds: 60, extra: { feePayer } }
      : { scheme: "exact", network: "solana-devnet", maxAmountRequired: amount, resource: resource.url, description: "svm", mimeType: "application/json", asset: mint, payTo, maxTimeoutSeconds: 60, extra: { feePayer } };
    const payload = await client.createPaymentPayload(version === 2
      ? { x402Version: 2, resource, accepts: [requirements] }
      : { x402Version: 1, accepts: [requirements] });
    const before = { payer: await tokenBalance(signer.address, mint), payTo: await tokenBalance(payTo, mint) };
    const verified = await facilitator.verify(payload, requirements);
    check(`${label} verify valid`, verified.isValid === true && verified.payer === signer.address, JSON.stringify(verified));
    const settled = await facilitator.settle(payload, requirements);
    check(`${label} settle success`, settled.success === true && typeof settled.transaction === "string" && settled.transaction.length >= 80 && settled.payer === signer.address, JSON.stringify(settled));
    const after = { payer: await tokenBalance(signer.address, mint), payTo: await tokenBalance(payTo, mint) };
    check(`${label} balances moved exactly once`, before.payer - after.payer === BigInt(amount) && after.payTo - before.payTo === BigInt(amount), `${before.payer - after.payer} / ${after.payTo - before.payTo}`);
    const again = await facilitator.settle(payload, requirements);
    check(`${label} repeated settle returns the same signature`, again.success === true && again.transaction === settled.transaction, JSON.stringify(again));
    const after2 = { payer: await tokenBalance(signer.address, mint), payTo: await tokenBalance(payTo, mint) };
    check(`${label} repeated settle moves nothing`, after2.payer === after.payer && after2.payTo === after.payTo);
  }
}
console.log(failures === 0 ? "svm conformance: all checks passed" : `svm conformance: ${failures} checks failed`);
process.exit(failures === 0 ? 0 : 1);
