// Side-by-side /verify load: this facilitator vs the official TypeScript facilitator
// (x402Facilitator + ExactEvmScheme from npm), same anvil, same payment, same load.
// Usage (from the repo root, after `npm ci` in tests/js and `cargo build --release`; the binary
// defaults to $CARGO_TARGET_DIR, else ~/.cache/x402-facilitator/target, as scripts/test.sh uses):
//   node bench/verify-load.mjs [path to x402-facilitator binary] [connections] [seconds]
// Prints requests/s, p99 latency, CPU ms per request and peak RSS for both.
import { KEYS, USDC, anvilWithUsdc, defaultBinary, load, procStats, startEvmReference, startOurs } from "./common.mjs";

const { privateKeyToAccount } = await load("viem/accounts");
const { x402Client } = await load("@x402/core/client");
const { registerExactEvmScheme } = await load("@x402/evm/exact/client");
const autocannon = (await load("autocannon")).default;

const binary = process.argv[2] || defaultBinary;
const connections = Number(process.argv[3] || 16);
const seconds = Number(process.argv[4] || 10);
const PAY_TO = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";

const { anvil, rpcUrl } = await anvilWithUsdc([], 10n ** 12n, privateKeyToAccount(KEYS.payer).address);
const ours = await startOurs(binary, [], { RPC_URL_BASE_SEPOLIA: rpcUrl, EVM_PRIVATE_KEY: KEYS.facilitator });
const reference = await startEvmReference(rpcUrl, KEYS.referenceFacilitator);

// ---- one payment, verified over and over (verify does not consume it) ----
const client = registerExactEvmScheme(new x402Client(), { signer: privateKeyToAccount(KEYS.payer) });
const requirements = { scheme: "exact", network: "eip155:84532", amount: "10000", asset: USDC, payTo: PAY_TO, maxTimeoutSeconds: 300, extra: { name: "USDC", version: "2" } };
const payload = await client.createPaymentPayload({ x402Version: 2, resource: { url: "http://x/y" }, accepts: [requirements] });
const body = JSON.stringify({ x402Version: 2, paymentPayload: payload, paymentRequirements: requirements });

async function run(name, url, pid) {
  const check = await (await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body })).json();
  if (check.isValid !== true) throw new Error(`${name} did not accept the payment: ${JSON.stringify(check)}`);
  const before = procStats(pid);
  const result = await autocannon({ url, method: "POST", connections, duration: seconds, headers: { "content-type": "application/json" }, body });
  const after = procStats(pid);
  const requests = result.requests.total;
  const row = {
    name, connections, seconds,
    rps: Math.round(result.requests.average),
    p50_ms: result.latency.p50, p99_ms: result.latency.p99,
    errors: result.errors + result.non2xx,
    cpu_ms_per_request: requests ? +((after.cpuMs - before.cpuMs) / requests).toFixed(3) : null,
    peak_rss_mb: +(after.hwmKb / 1024).toFixed(1),
  };
  console.log(JSON.stringify(row));
  return row;
}

const a = await run("rust (this repo)", `${ours.url}/verify`, ours.child.pid);
const b = await run("typescript reference", `${reference.url}/verify`, reference.child.pid);
console.log(`throughput ratio rust/typescript: ${(a.rps / b.rps).toFixed(1)}x; CPU per request ratio typescript/rust: ${(b.cpu_ms_per_request / a.cpu_ms_per_request).toFixed(1)}x`);
ours.stop(); reference.child.kill(); anvil.kill();
process.exit(0);
