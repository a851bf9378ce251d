// Side-by-side /verify load for a Permit2 `exact` payment: this facilitator vs the official
// TypeScript facilitator (x402Facilitator + ExactEvmScheme from npm), same anvil, same
// payment, same load; also the JSON-RPC round trips and node calls one verify costs each.
// The chain: anvil with the real Permit2 bytecode (npm @uniswap/v4-periphery), our STAND-IN
// of the x402 exact Permit2 proxy, the EIP-2612 test token and Multicall3 (from viem), as in
// tests/js/permit2-conformance.mjs.
// Usage (from the repo root, after `npm ci` in tests/js and `cargo build --release`):
//   node bench/permit2-verify-load.mjs [path to x402-facilitator binary] [connections] [seconds]
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { KEYS, anvilWithUsdc, defaultBinary, here, js, load, procStats, rpc, startEvmReference, startOurs } from "./common.mjs";

const { privateKeyToAccount } = await load("viem/accounts");
const { x402Client } = await load("@x402/core/client");
const { registerExactEvmScheme } = await load("@x402/evm/exact/client");
const autocannon = (await load("autocannon")).default;

const binary = process.argv[2] || defaultBinary;
const connections = Number(process.argv[3] || 16);
const seconds = Number(process.argv[4] || 10);
const PAY_TO = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
const TOKEN = "0x2612000000000000000000000000000000002612";
const PERMIT2 = "0x000000000022D473030F116dDEE9F6B43aC78BA3";
const payer = privateKeyToAccount(KEYS.payer).address;

const { anvil, rpcUrl: nodeUrl } = await anvilWithUsdc([], 1n, payer);
const word = a => a.slice(2).toLowerCase().padStart(64, "0");
{
  const permit2Source = fs.readFileSync(path.join(js, "node_modules/@uniswap/v4-periphery/lib/permit2/test/utils/DeployPermit2.sol"), "utf8");
  await rpc(nodeUrl, "anvil_setCode", [PERMIT2, "0x" + permit2Source.match(/hex"([0-9a-f]+)"/)[1]]);
  const standIns = JSON.parse(fs.readFileSync(path.resolve(here, "../crates/x402-testkit/contracts/Permit2StandIns.json"), "utf8")).contracts;
  await rpc(nodeUrl, "anvil_setCode", ["0x402085c248EeA27D92E8b30b2C58ed07f9E20001", standIns.X402ExactPermit2ProxyStandIn.deployedBytecode]);
  await rpc(nodeUrl, "anvil_setCode", [TOKEN, standIns.TestPermitToken.deployedBytecode]);
  const viemContracts = fs.readFileSync(path.join(js, "node_modules/viem/_esm/constants/contracts.js"), "utf8");
  const multicall = await rpc(nodeUrl, "eth_call", [{ data: viemContracts.match(/multicall3Bytecode = '(0x[0-9a-f]+)'/)[1] }, "latest"]);
  await rpc(nodeUrl, "anvil_setCode", ["0xcA11bde05977b3631167028862bE2a173976CA11", multicall]);
  await rpc(nodeUrl, "eth_sendTransaction", [{ from: payer, to: TOKEN, data: "0x40c10f19" + word(payer) + (10n ** 12n).toString(16).padStart(64, "0") }]);
  await rpc(nodeUrl, "eth_sendTransaction", [{ from: payer, to: TOKEN, data: "0x095ea7b3" + word(PERMIT2) + "f".repeat(64) }]);
}

// A counting relay in front of the node: HTTP round trips and JSON-RPC calls per verify.
const counts = { trips: 0, calls: 0 };
const relay = http.createServer((req, res) => {
  let body = "";
  req.on("data", c => body += c);
  req.on("end", async () => {
    counts.trips++;
    const parsed = JSON.parse(body);
    counts.calls += Array.isArray(parsed) ? parsed.length : 1;
    const answer = await fetch(nodeUrl, { method: "POST", headers: { "content-type": "application/json" }, body });
    res.setHeader("content-type", "application/json");
    res.end(await answer.text());
  });
});
await new Promise(r => relay.listen(0, "127.0.0.1", r));
const rpcUrl = `http://127.0.0.1:${relay.address().port}`;

const ours = await startOurs(binary, [], { RPC_URL_BASE_SEPOLIA: rpcUrl, EVM_PRIVATE_KEY: KEYS.facilitator, ASSETS_BASE_SEPOLIA: TOKEN });
const reference = await startEvmReference(rpcUrl, KEYS.referenceFacilitator);

const client = registerExactEvmScheme(x402Client.fromConfig({ schemes: [], spendControls: false }), { signer: privateKeyToAccount(KEYS.payer) });
const requirements = { scheme: "exact", network: "eip155:84532", amount: "10000", asset: TOKEN, payTo: PAY_TO, maxTimeoutSeconds: 300, extra: { name: "Permit Token", version: "1", assetTransferMethod: "permit2" } };
const payload = await client.createPaymentPayload({ x402Version: 2, resource: { url: "http://x/y" }, accepts: [requirements] });
const body = JSON.stringify({ x402Version: 2, paymentPayload: payload, paymentRequirements: requirements });

async function run(name, url, pid) {
  const post = () => fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body }).then(r => r.json());
  await post();
  const before = { ...counts };
  const check = await post();
  if (check.isValid !== true) throw new Error(`${name} did not accept the payment: ${JSON.stringify(check)}`);
  const perVerify = { trips: counts.trips - before.trips, calls: counts.calls - before.calls };
  const stats = procStats(pid);
  const result = await autocannon({ url, method: "POST", connections, duration: seconds, headers: { "content-type": "application/json" }, body });
  const after = procStats(pid);
  const requests = result.requests.total;
  const row = {
    name, connections, seconds,
    rps: Math.round(result.requests.average),
    p50_ms: result.latency.p50, p99_ms: result.latency.p99,
    errors: result.errors + result.non2xx,
    rpc_round_trips_per_verify: perVerify.trips, rpc_calls_per_verify: perVerify.calls,
    cpu_ms_per_request: requests ? +((after.cpuMs - stats.cpuMs) / requests).toFixed(3) : null,
    peak_rss_mb: +(after.hwmKb / 1024).toFixed(1),
  };
  console.log(JSON.stringify(row));
  return row;
}

const a = await run("rust (this repo)", `${ours.url}/verify`, ours.child.pid);
const b = await run("typescript reference", `${reference.url}/verify`, reference.child.pid);
console.log(`permit2 verify throughput ratio rust/typescript: ${(a.rps / b.rps).toFixed(1)}x; RPC round trips per verify ${a.rpc_round_trips_per_verify} vs ${b.rpc_round_trips_per_verify}, calls ${a.rpc_calls_per_verify} vs ${b.rpc_calls_per_verify}`);
ours.stop(); reference.child.kill(); anvil.kill(); relay.close();
process.exit(0);
