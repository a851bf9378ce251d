// Side-by-side /verify load: this facilitator vs the official TypeScript facilitator
// (x402Facilitator + ExactEvmScheme from npm), same anvil, same payment, same load.
// Usage (from the repo root, after `npm ci` in tests/js and `cargo build --release`; the binary
// defaults to $CARGO_TARGET_DIR, else ~/.cache/x402-facilitator/target, as scripts/test.sh uses):
//   node bench/verify-load.mjs [path to x402-facilitator binary] [connections] [seconds]
// Prints requests/s, p99 latency, CPU ms per request and peak RSS for both.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const js = path.resolve(here, "../tests/js");
const require = createRequire(path.join(js, "package.json"));
const load = m => import(require.resolve(m));
const { privateKeyToAccount } = await load("viem/accounts");
const { x402Client } = await load("@x402/core/client");
const { registerExactEvmScheme } = await load("@x402/evm/exact/client");
const autocannon = (await load("autocannon")).default;

const targetDir = process.env.CARGO_TARGET_DIR || path.join(process.env.HOME || "/root", ".cache/x402-facilitator/target");
const binary = process.argv[2] || path.join(targetDir, "release/x402-facilitator");
const connections = Number(process.argv[3] || 16);
const seconds = Number(process.argv[4] || 10);
const USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const KEYS = {
  facilitator: "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  referenceFacilitator: "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3d71b5d6c8bd0ba8",
  payer: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
};
const PAY_TO = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";

function waitLine(child, pattern) {
  return new Promise((resolve, reject) => {
    let buffer = "";
    const onData = d => {
      buffer += d.toString();
      const m = buffer.match(pattern);
      if (m) { child.stdout.off("data", onData); resolve(m); }
    };
    child.stdout.on("data", onData);
    child.on("exit", code => reject(new Error(`exited ${code}: ${buffer}`)));
  });
}
async function rpc(url, method, params) {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  const body = await res.json();
  if (body.error) throw new Error(JSON.stringify(body.error));
  return body.result;
}
function procStats(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  const ticks = Number(stat[11]) + Number(stat[12]);
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const rss = Number(status.match(/VmRSS:\s+(\d+)/)[1]);
  const hwm = Number(status.match(/VmHWM:\s+(\d+)/)[1]);
  return { cpuMs: ticks * 10, rssKb: rss, hwmKb: hwm };
}

// ---- chain ----
const anvil = spawn(path.join(js, "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"), ["--host", "127.0.0.1", "--port", "0", "--chain-id", "84532"], { stdio: ["ignore", "pipe", "ignore"] });
const [, anvilAddr] = await waitLine(anvil, /Listening on (\S+)/);
const rpcUrl = `http://${anvilAddr}`;
const artifact = JSON.parse(fs.readFileSync(path.resolve(here, "../tests/contracts/TestUSDC.json"), "utf8"));
await rpc(rpcUrl, "anvil_setCode", [USDC, artifact.contracts.TestUSDC.deployedBytecode]);
const payer = privateKeyToAccount(KEYS.payer).address;
const mintData = "0x40c10f19" + payer.slice(2).toLowerCase().padStart(64, "0") + (10n ** 12n).toString(16).padStart(64, "0");
await rpc(rpcUrl, "eth_sendTransaction", [{ from: privateKeyToAccount(KEYS.facilitator).address, to: USDC, data: mintData }]);

// ---- ours ----
const oursPort = 18000 + Math.floor(Math.random() * 1000);
// Its JSON logs (one line per request, as in production) go to a file, as they would go to
// a collector: reading them in this process would take CPU from the load generator.
const logPath = path.join(fs.mkdtempSync("/tmp/x402-bench-"), "facilitator.log");
const logFd = fs.openSync(logPath, "w");
const ours2 = spawn(binary, [], {
  env: { ...process.env, HOST: "127.0.0.1", PORT: String(oursPort), RPC_URL_BASE_SEPOLIA: rpcUrl, EVM_PRIVATE_KEY: KEYS.facilitator, RUST_LOG: "info", LOG_FORMAT: "json" },
  stdio: ["ignore", logFd, "inherit"],
});
for (let i = 0; !fs.readFileSync(logPath, "utf8").includes("Facilitator listening"); i++) {
  if (i > 600 || ours2.exitCode !== null) throw new Error(`facilitator did not start: ${fs.readFileSync(logPath, "utf8")}`);
  await new Promise(r => setTimeout(r, 50));
}

// ---- reference (official TypeScript facilitator) ----
const referenceScript = `
  const [rpcUrl, key] = process.argv.slice(1);
  const { createRequire } = require("node:module");
  const r = createRequire(${JSON.stringify(path.join(js, "package.json"))});
  (async () => {
    const { createWalletClient, http, publicActions, defineChain } = await import(r.resolve("viem"));
    const { privateKeyToAccount } = await import(r.resolve("viem/accounts"));
    const { x402Facilitator } = await import(r.resolve("@x402/core/facilitator"));
    const { ExactEvmScheme } = await import(r.resolve("@x402/evm/exact/facilitator"));
    const { toFacilitatorEvmSigner } = await import(r.resolve("@x402/evm"));
    const chain = defineChain({ id: 84532, name: "local", nativeCurrency: { name: "ETH", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [rpcUrl] } } });
    const account = privateKeyToAccount(key);
    const wallet = createWalletClient({ account, chain, transport: http(rpcUrl) }).extend(publicActions);
    const signer = toFacilitatorEvmSigner({ ...wallet, address: account.address });
    const facilitator = new x402Facilitator().register("eip155:84532", new ExactEvmScheme(signer));
    const server = require("node:http").createServer((req, res) => {
      let body = ""; req.on("data", c => body += c); req.on("end", async () => {
        try {
          const b = JSON.parse(body);
          const out = req.url === "/settle" ? await facilitator.settle(b.paymentPayload, b.paymentRequirements) : await facilitator.verify(b.paymentPayload, b.paymentRequirements);
          res.setHeader("content-type", "application/json"); res.end(JSON.stringify(out));
        } catch (e) { res.statusCode = 500; res.end(JSON.stringify({ error: String(e) })); }
      });
    });
    server.listen(0, "127.0.0.1", () => console.log("listening " + server.address().port));
  })();
`;
const reference = spawn(process.execPath, ["-e", referenceScript, rpcUrl, KEYS.referenceFacilitator], { stdio: ["ignore", "pipe", "inherit"] });
const [, refPort] = await waitLine(reference, /listening (\d+)/);

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

const a = await run("rust (this repo)", `http://127.0.0.1:${oursPort}/verify`, ours2.pid);
const b = await run("typescript reference", `http://127.0.0.1:${refPort}/verify`, reference.pid);
console.log(`throughput ratio rust/typescript: ${(a.rps / b.rps).toFixed(1)}x; CPU per request ratio typescript/rust: ${(b.cpu_ms_per_request / a.cpu_ms_per_request).toFixed(1)}x`);
ours2.kill(); reference.kill(); anvil.kill();
fs.rmSync(path.dirname(logPath), { recursive: true, force: true });
process.exit(0);
