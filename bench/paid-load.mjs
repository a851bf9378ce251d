// A paid endpoint under load, side by side on one anvil: this repo's x402-axum middleware
// (examples/paid-api) with this facilitator, and the official @x402/express 2.27 middleware
// with the official TypeScript facilitator. Every request carries a fresh payment signed by
// the official client from ONE payer, so each is a verify + settle.
// Usage (from the repo root, after `npm ci` in tests/js and
// `cargo build --release -p x402-facilitator -p paid-api`):
//   node bench/paid-load.mjs [facilitator binary] [paid-api binary] [requests] [concurrency]
// Prints per stack: paid answers/s, payments confirmed on chain, failures, and the latency
// (p50, sequential) of an unpaid route, of the 402 a paid route answers without payment (the
// middleware's own work), of a paid request, and of the same verify + settle sent straight to
// the facilitator (the difference is what the middleware adds to a paid request).
import { spawn } from "node:child_process";
import http from "node:http";
import path from "node:path";
import { KEYS, anvilWithUsdc, defaultBinary, freePort, load, referenceFacilitatorSetup, referenceLoader, rpc, startOurs, usdcBalance, waitLine } from "./common.mjs";

const { privateKeyToAccount } = await load("viem/accounts");
const { x402Client, x402HTTPClient } = await load("@x402/core/client");
const { registerExactEvmScheme } = await load("@x402/evm/exact/client");

const binary = process.argv[2] || defaultBinary;
const apiBinary = process.argv[3] || path.join(path.dirname(defaultBinary), "paid-api");
const count = Number(process.argv[4] || 200);
const concurrency = Number(process.argv[5] || 16);
const PAY_TO = { ours: "0x90F79bf6EB2c4f870365E785982E1f101E93b906", reference: "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65" };
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });

// The official facilitator and @x402/express in one node process (as a resource server
// operator would run them), both on free ports.
const referenceScript = `
  const [rpcUrl, key, payTo, facilitatorPort, apiPort] = process.argv.slice(1);
  ${referenceLoader}
  (async () => {
    ${referenceFacilitatorSetup}
    const { ExactEvmScheme: ServerScheme } = await import(r.resolve("@x402/evm/exact/server"));
    const { HTTPFacilitatorClient } = await import(r.resolve("@x402/core/server"));
    const { paymentMiddleware, x402ResourceServer } = await import(r.resolve("@x402/express"));
    const express = (await import(r.resolve("express"))).default;
    const f = express(); f.use(express.json());
    f.get("/supported", async (req, res) => res.json(await facilitator.getSupported()));
    f.post("/verify", async (req, res) => res.json(await facilitator.verify(req.body.paymentPayload, req.body.paymentRequirements)));
    f.post("/settle", async (req, res) => res.json(await facilitator.settle(req.body.paymentPayload, req.body.paymentRequirements)));
    f.listen(Number(facilitatorPort), "127.0.0.1", () => {
      const server = new x402ResourceServer(new HTTPFacilitatorClient({ url: "http://127.0.0.1:" + facilitatorPort })).register("eip155:84532", new ServerScheme());
      const app = express();
      app.use(paymentMiddleware({ "GET /weather": { accepts: { scheme: "exact", price: "$0.001", network: "eip155:84532", payTo }, description: "today's weather", mimeType: "application/json" } }, server));
      app.get("/weather", (req, res) => res.json({ weather: "sunny", temperature_c: 21 }));
      app.get("/free", (req, res) => res.json({ free: true }));
      app.listen(Number(apiPort), "127.0.0.1", () => console.log("listening " + apiPort));
    });
  })();
`;

function get(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers }, res => {
      let body = ""; res.on("data", c => body += c); res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on("error", reject);
  });
}

async function p50(url, headersFor, n) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const answer = await get(url, headersFor(i));
    times.push(performance.now() - started);
    if (headersFor(i)["PAYMENT-SIGNATURE"] && answer.status !== 200) throw new Error(`paid request answered ${answer.status}: ${answer.body}`);
  }
  times.sort((a, b) => a - b);
  return +times[Math.floor(n / 2)].toFixed(2);
}

/** p50 of verify + settle sent straight to the facilitator (no middleware), fresh payments. */
async function direct(api, facilitator, n) {
  const list = await headers(api, n);
  const first = await get(`${api}/weather`);
  const required = JSON.parse(Buffer.from(first.headers["payment-required"], "base64").toString());
  const times = [];
  for (const header of list) {
    const body = JSON.stringify({ x402Version: 2, paymentPayload: JSON.parse(Buffer.from(header, "base64").toString()), paymentRequirements: required.accepts[0] });
    const post = route => new Promise((resolve, reject) => {
      const req = http.request(`${facilitator}${route}`, { method: "POST", agent, headers: { "content-type": "application/json" } }, res => {
        let text = ""; res.on("data", c => text += c); res.on("end", () => resolve(JSON.parse(text)));
      });
      req.on("error", reject); req.end(body);
    });
    const started = performance.now();
    const verified = await post("/verify");
    const settled = await post("/settle");
    times.push(performance.now() - started);
    if (!verified.isValid || !settled.success) throw new Error(`direct payment refused: ${JSON.stringify([verified, settled])}`);
  }
  times.sort((a, b) => a - b);
  return +times[Math.floor(n / 2)].toFixed(2);
}

/** Fresh payments for the route's 402, as the official client makes them. */
async function headers(api, n) {
  const first = await get(`${api}/weather`);
  const http402 = new x402HTTPClient(registerExactEvmScheme(new x402Client(), { signer: privateKeyToAccount(KEYS.payer) }));
  const required = http402.getPaymentRequiredResponse(name => first.headers[name.toLowerCase()]);
  if (required.accepts[0].amount !== "1000") throw new Error(`unexpected price ${JSON.stringify(required.accepts[0])}`);
  const out = [];
  for (let i = 0; i < n; i++) out.push(http402.encodePaymentSignatureHeader(await http402.createPaymentPayload(required))["PAYMENT-SIGNATURE"]);
  return out;
}

async function measure(name, rpcUrl, api, facilitator, payTo) {
  const latencyHeaders = await headers(api, 21);
  const facilitatorOnly = await direct(api, facilitator, 21);
  const free = await p50(`${api}/free`, () => ({}), 50);
  const unpaid402 = await p50(`${api}/weather`, () => ({}), 50);
  const paid = await p50(`${api}/weather`, i => ({ "PAYMENT-SIGNATURE": latencyHeaders[i] }), 21);
  const list = await headers(api, count);
  const before = await usdcBalance(rpcUrl, payTo);
  let next = 0, ok = 0;
  const failures = [];
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < list.length) {
      const header = list[next++];
      const answer = await get(`${api}/weather`, { "PAYMENT-SIGNATURE": header }).catch(e => ({ status: 0, body: String(e) }));
      if (answer.status === 200 && answer.headers["payment-response"]) ok++; else failures.push(`${answer.status} ${answer.body.slice(0, 120)}`);
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  const confirmed = Number((await usdcBalance(rpcUrl, payTo) - before) / 1000n);
  const row = { name, requests: count, concurrency, paid_answers: ok, confirmed_on_chain: confirmed, failures: failures.length, seconds: +seconds.toFixed(2), paid_per_second: +(ok / seconds).toFixed(1), p50_ms: { unpaid_route: free, answer_402: unpaid402, paid_sequential: paid, facilitator_verify_settle: facilitatorOnly, added_by_middleware: +(paid - facilitatorOnly).toFixed(2) }, first_failure: failures[0] ?? null };
  console.log(JSON.stringify(row));
  return row;
}

const { anvil, rpcUrl } = await anvilWithUsdc([], 10n ** 15n, privateKeyToAccount(KEYS.payer).address);
for (const key of [KEYS.facilitator, KEYS.referenceFacilitator]) {
  await rpc(rpcUrl, "anvil_setBalance", [privateKeyToAccount(key).address, "0x3635c9adc5dea00000"]);
}
const ours = await startOurs(binary, [], { RPC_URL_BASE_SEPOLIA: rpcUrl, EVM_PRIVATE_KEY: KEYS.facilitator });
const apiPort = await freePort();
const api = spawn(apiBinary, [], { env: { ...process.env, FACILITATOR_URL: ours.url, PORT: String(apiPort), PAY_TO: PAY_TO.ours, RUST_LOG: "warn" }, stdio: ["ignore", "pipe", "inherit"] });
await waitLine(api, /paid API on/);
const [facilitatorPort, referenceApiPort] = [await freePort(), await freePort()];
const reference = spawn(process.execPath, ["-e", referenceScript, rpcUrl, KEYS.referenceFacilitator, PAY_TO.reference, facilitatorPort, referenceApiPort], { stdio: ["ignore", "pipe", "inherit"] });
await waitLine(reference, /listening/);

const a = await measure("rust: x402-axum + this facilitator", rpcUrl, `http://127.0.0.1:${apiPort}`, ours.url, PAY_TO.ours);
const b = await measure("typescript: @x402/express + reference facilitator", rpcUrl, `http://127.0.0.1:${referenceApiPort}`, `http://127.0.0.1:${facilitatorPort}`, PAY_TO.reference);
console.log(`paid answers/s rust/typescript: ${(a.paid_per_second / b.paid_per_second).toFixed(1)}x; 402 latency ${a.p50_ms.answer_402} ms vs ${b.p50_ms.answer_402} ms; paid request p50 ${a.p50_ms.paid_sequential} ms vs ${b.p50_ms.paid_sequential} ms; added by the middleware ${a.p50_ms.added_by_middleware} ms vs ${b.p50_ms.added_by_middleware} ms`);
api.kill(); ours.stop(); reference.kill(); anvil.kill();
process.exit(0);
