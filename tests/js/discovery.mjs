// The bazaar (discovery) extension end to end with the official packages only: an
// `@x402/express` resource server whose routes declare the extension with
// `@x402/extensions`' `declareDiscoveryExtension` (one of them a dynamic route, one without
// the extension), paid by `@x402/fetch` through the facilitator under test, then the
// catalog read back with `@x402/extensions`' `withBazaar(...).extensions.bazaar`.
// Prints one JSON line: what each payment answered and what each listing call returned.
// Usage: node tests/js/discovery.mjs <facilitator url> <payTo address>
import express from "express";
import { privateKeyToAccount } from "viem/accounts";
import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { bazaarResourceServerExtension, declareDiscoveryExtension, withBazaar } from "@x402/extensions/bazaar";
import { wrapFetchWithPayment } from "@x402/fetch";
import { PAYER_KEY } from "./common.mjs";

const [facilitatorUrl, payTo] = process.argv.slice(2);
const NETWORK = "eip155:84532";
const accepts = { scheme: "exact", price: "$0.001", network: NETWORK, payTo };

const routes = {
  "GET /weather/:city": {
    accepts,
    description: "Weather for a city",
    mimeType: "application/json",
    extensions: declareDiscoveryExtension({
      pathParamsSchema: { properties: { city: { type: "string" } }, required: ["city"] },
      output: { example: { city: "lisbon", weather: "sunny" } },
    }),
  },
  "POST /search": {
    accepts,
    description: "Search the archive",
    mimeType: "application/json",
    extensions: declareDiscoveryExtension({
      bodyType: "json",
      input: { query: "x402" },
      inputSchema: { properties: { query: { type: "string" } }, required: ["query"] },
      output: { example: { results: [] } },
    }),
  },
  "GET /unlisted": { accepts, description: "Paid, not listed", mimeType: "application/json" },
};

const resourceServer = new x402ResourceServer(new HTTPFacilitatorClient({ url: facilitatorUrl }))
  .register(NETWORK, new ExactEvmScheme())
  .registerExtension(bazaarResourceServerExtension);
const app = express();
app.use(express.json());
app.use(paymentMiddleware(routes, resourceServer));
app.get("/weather/:city", (req, res) => res.json({ city: req.params.city, weather: "sunny" }));
app.post("/search", (req, res) => res.json({ results: [String(req.body?.query ?? "")] }));
app.get("/unlisted", (_req, res) => res.json({ ok: true }));
const server = await new Promise(resolve => {
  const s = app.listen(0, "127.0.0.1", () => resolve(s));
});
const origin = `http://127.0.0.1:${server.address().port}`;

const pay = wrapFetchWithPayment(fetch, registerExactEvmScheme(new x402Client(), { signer: privateKeyToAccount(PAYER_KEY) }));
const paid = {};
for (const [name, path, init] of [
  ["lisbon", "/weather/lisbon", {}],
  ["porto", "/weather/porto", {}],
  ["search", "/search", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "x402" }) }],
  ["unlisted", "/unlisted", {}],
]) {
  const response = await pay(origin + path, init);
  paid[name] = { status: response.status, body: await response.text() };
}

const discovery = withBazaar(new HTTPFacilitatorClient({ url: facilitatorUrl })).extensions.bazaar;
const listed = {
  all: await discovery.listResources(),
  http: await discovery.listResources({ type: "http" }),
  mcp: await discovery.listResources({ type: "mcp" }),
  firstPage: await discovery.listResources({ limit: 1, offset: 0 }),
  secondPage: await discovery.listResources({ limit: 1, offset: 1 }),
  byPayTo: await discovery.listResources({ payTo: payTo.toLowerCase() }),
  otherNetwork: await discovery.listResources({ network: "eip155:8453" }),
  byScheme: await discovery.listResources({ scheme: "exact", extensions: "bazaar" }),
};
let badLimit;
try {
  await discovery.listResources({ limit: 1000 });
  badLimit = "accepted";
} catch (error) {
  badLimit = String(error.message);
}
console.log(JSON.stringify({ origin, paid, listed, badLimit }));
server.close();
