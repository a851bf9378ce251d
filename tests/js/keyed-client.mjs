// The official facilitator client calling a facilitator that requires caller API keys: the
// key goes in `createAuthHeaders` (keyed by path, as `@x402/core` asks). Signs one payment
// with `@x402/evm`, verifies and settles it, and prints one JSON line with what each call
// answered or the error it threw. Usage: node tests/js/keyed-client.mjs <facilitator url> [key]
import { privateKeyToAccount } from "viem/accounts";
import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/http";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { PAYER_KEY, v2Requirements } from "./common.mjs";

const [url, key] = process.argv.slice(2);
const requirements = v2Requirements("2000");
const client = registerExactEvmScheme(new x402Client(), { signer: privateKeyToAccount(PAYER_KEY) });
const payload = await client.createPaymentPayload({
  x402Version: 2,
  resource: { url: "https://api.example.com/keyed", description: "keyed", mimeType: "application/json" },
  accepts: [requirements],
});
const auth = key ? { Authorization: `Bearer ${key}` } : {};
const facilitator = new HTTPFacilitatorClient({
  url,
  createAuthHeaders: async () => ({ verify: auth, settle: auth, supported: {} }),
});
const outcome = async call => {
  try {
    return { answer: await call() };
  } catch (error) {
    return { error: String(error.message ?? error) };
  }
};
const verify = await outcome(() => facilitator.verify(payload, requirements));
const settle = await outcome(() => facilitator.settle(payload, requirements));
console.log(JSON.stringify({ verify, settle }));
