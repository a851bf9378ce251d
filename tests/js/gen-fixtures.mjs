// Generates the golden fixtures of the protocol crate with the official x402 SDKs.
//
// Every JSON file written here is produced by the SDKs themselves: payment payloads are
// signed by the official clients (@x402/core + @x402/evm for v2, `x402` for v1), and the
// /verify and /settle bodies are captured from the official facilitator clients posting
// to a local recorder. Run: `node tests/js/gen-fixtures.mjs` (after `npm ci` in tests/js).
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { privateKeyToAccount } from "viem/accounts";
import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/http";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { createPaymentHeader } from "x402/client";
import { createSigner } from "x402/types";
import { useFacilitator } from "x402/verify";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(here, "../../crates/x402-protocol/tests/fixtures");
fs.mkdirSync(out, { recursive: true });

// A throwaway test key (anvil's second development account); never funded anywhere real.
const KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
const USDC_BASE_SEPOLIA = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";

function write(name, value) {
  fs.writeFileSync(path.join(out, name), JSON.stringify(value, null, 2) + "\n");
  console.log("wrote", name);
}

// A recorder that answers like a facilitator so the official clients complete their calls.
const captured = [];
const server = http.createServer((req, res) => {
  let body = "";
  req.on("data", c => (body += c));
  req.on("end", () => {
    const parsed = body ? JSON.parse(body) : null;
    captured.push({ path: req.url, body: parsed });
    res.setHeader("content-type", "application/json");
    const network = parsed?.paymentRequirements?.network ?? "";
    if (req.url === "/verify") res.end(JSON.stringify({ isValid: true, payer: "0x0" }));
    else if (req.url === "/settle")
      res.end(JSON.stringify({ success: true, transaction: "0x" + "ab".repeat(32), network, payer: "0x0" }));
    else res.end(JSON.stringify({ kinds: [], extensions: [], signers: {} }));
  });
});
await new Promise(r => server.listen(0, "127.0.0.1", r));
const url = `http://127.0.0.1:${server.address().port}`;
const lastBody = () => captured[captured.length - 1].body;

// ---------- v2 ----------
const v2Required = {
  x402Version: 2,
  error: "PAYMENT-SIGNATURE header is required",
  resource: { url: "https://api.example.com/premium-data", description: "Premium data", mimeType: "application/json" },
  accepts: [
    {
      scheme: "exact",
      network: "eip155:84532",
      amount: "10000",
      asset: USDC_BASE_SEPOLIA,
      payTo: PAY_TO,
      maxTimeoutSeconds: 60,
      extra: { name: "USDC", version: "2" },
    },
  ],
  extensions: {
    "payment-identifier": {
      info: { required: false },
      schema: { type: "object", properties: { required: { type: "boolean" } }, required: ["required"] },
    },
  },
};
const v2Client = registerExactEvmScheme(new x402Client(), { signer: privateKeyToAccount(KEY) });
const v2Payload = await v2Client.createPaymentPayload(v2Required);
write("v2_payment_required.json", v2Required);
write("v2_payment_payload.json", v2Payload);
const v2Facilitator = new HTTPFacilitatorClient({ url });
await v2Facilitator.verify(v2Payload, v2Required.accepts[0]);
write("v2_verify_request.json", lastBody());
await v2Facilitator.settle(v2Payload, v2Required.accepts[0]);
write("v2_settle_request.json", lastBody());

// v1 payment signed by the v2 SDK's v1 support (what @x402/core clients send to v1 servers).
const v1Requirements = {
  scheme: "exact",
  network: "base-sepolia",
  maxAmountRequired: "10000",
  resource: "https://api.example.com/premium-data",
  description: "Premium data",
  mimeType: "application/json",
  outputSchema: null,
  payTo: PAY_TO,
  maxTimeoutSeconds: 60,
  asset: USDC_BASE_SEPOLIA,
  extra: { name: "USDC", version: "2" },
};
const v1Required = { x402Version: 1, error: "X-PAYMENT header is required", accepts: [v1Requirements] };
write("v1_payment_required.json", v1Required);
const v1ByCore = await v2Client.createPaymentPayload(v1Required);
write("v1_payment_payload_core.json", v1ByCore);

// ---------- v1 with the `x402` package ----------
const signer = await createSigner("base-sepolia", KEY);
const header = await createPaymentHeader(signer, 1, v1Requirements);
const v1Payload = JSON.parse(Buffer.from(header, "base64").toString("utf8"));
write("v1_payment_payload.json", v1Payload);
const v1Facilitator = useFacilitator({ url });
await v1Facilitator.verify(v1Payload, v1Requirements);
write("v1_verify_request.json", lastBody());
await v1Facilitator.settle(v1Payload, v1Requirements);
write("v1_settle_request.json", lastBody());

server.close();
