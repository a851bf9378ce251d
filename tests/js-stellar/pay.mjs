// Payments built, simulated and signed by the official client (@x402/stellar 2.9.0) for the
// Rust tests. Usage: node tests/js-stellar/pay.mjs '{"rpc", "network", "secret",
//   "requirements", "count"}'; prints one line: [{payload, requirements}, ...].
import { x402Client } from "@x402/core/client";
import { createEd25519Signer } from "@x402/stellar";
import { ExactStellarScheme } from "@x402/stellar/exact/client";
import { emit, tlsFront } from "./common.mjs";

const ask = JSON.parse(process.argv[2]);
const front = await tlsFront(ask.rpc);
const client = new x402Client();
client.register(ask.network, new ExactStellarScheme(createEd25519Signer(ask.secret, ask.network), { url: front }));
const resource = { url: "http://127.0.0.1/stellar", description: "stellar test", mimeType: "application/json" };
const out = [];
for (let i = 0; i < ask.count; i++) {
  const payload = await client.createPaymentPayload({ x402Version: 2, resource, accepts: [ask.requirements] });
  out.push({ payload, requirements: ask.requirements });
}
emit(out);
