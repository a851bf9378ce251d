// Pays the facilitator once with the official x402 v2 client and prints the transaction.
// Usage: node tests/js/pay.mjs <facilitator url> <rpc url>
import { privateKeyToAccount } from "viem/accounts";
import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/http";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { PAYER_KEY, PAY_TO, balance, chainClient, v2Requirements } from "./common.mjs";

const [facilitatorUrl = "http://127.0.0.1:8080", rpcUrl] = process.argv.slice(2);
const requirements = v2Requirements("1000000");
const client = registerExactEvmScheme(new x402Client(), { signer: privateKeyToAccount(PAYER_KEY) });
const payload = await client.createPaymentPayload({
  x402Version: 2,
  resource: { url: "http://127.0.0.1/demo", description: "demo", mimeType: "text/plain" },
  accepts: [requirements],
});
const facilitator = new HTTPFacilitatorClient({ url: facilitatorUrl });
console.log("verify:", JSON.stringify(await facilitator.verify(payload, requirements)));
console.log("settle:", JSON.stringify(await facilitator.settle(payload, requirements)));
if (rpcUrl) console.log("payee balance:", (await balance(chainClient(rpcUrl), PAY_TO)).toString());
