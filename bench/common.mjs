// What the benchmarks share: the official packages from tests/js, anvil with our test USDC,
// this facilitator as a child process (JSON logs to a file), the official TypeScript EVM
// facilitator as a side-by-side reference, and per-process CPU and memory readings.
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

export const here = path.dirname(fileURLToPath(import.meta.url));
export const js = path.resolve(here, "../tests/js");
const require = createRequire(path.join(js, "package.json"));
/** Imports a package installed in tests/js. */
export const load = m => import(require.resolve(m));

const targetDir = process.env.CARGO_TARGET_DIR || path.join(process.env.HOME || "/root", ".cache/x402-facilitator/target");
/** The release binary, where scripts/test.sh builds into. */
export const defaultBinary = path.join(targetDir, "release/x402-facilitator");

export const USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
export const KEYS = {
  facilitator: "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  referenceFacilitator: "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3d71b5d6c8bd0ba8",
  payer: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
};

/** Resolves with the first match of `pattern` in the child's stdout. */
export function waitLine(child, pattern) {
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

/** One JSON-RPC call; a node error throws. */
export async function rpc(url, method, params) {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  const body = await res.json();
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

/** A free loopback port. */
export const freePort = () => new Promise(r => { const s = http.createServer(); s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => r(p)); }); });

/** CPU time used so far and peak resident memory of a process. */
export function procStats(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return { cpuMs: (Number(stat[11]) + Number(stat[12])) * 10, hwmKb: Number(status.match(/VmHWM:\s+(\d+)/)[1]) };
}

/** The test USDC balance of `who`. */
export async function usdcBalance(rpcUrl, who) {
  const data = "0x70a08231" + who.slice(2).toLowerCase().padStart(64, "0");
  return BigInt(await rpc(rpcUrl, "eth_call", [{ to: USDC, data }, "latest"]));
}

/** anvil (chain 84532, `extraArgs`) with our test USDC at Base Sepolia's address and `amount` minted to the payer. */
export async function anvilWithUsdc(extraArgs, amount, payer) {
  const anvil = spawn(path.join(js, "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"), ["--host", "127.0.0.1", "--port", "0", "--chain-id", "84532", ...extraArgs], { stdio: ["ignore", "pipe", "ignore"] });
  const [, address] = await waitLine(anvil, /Listening on (\S+)/);
  const rpcUrl = `http://${address}`;
  const artifact = JSON.parse(fs.readFileSync(path.resolve(here, "../crates/x402-testkit/contracts/TestUSDC.json"), "utf8"));
  await rpc(rpcUrl, "anvil_setCode", [USDC, artifact.contracts.TestUSDC.deployedBytecode]);
  const minter = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"; // anvil account 0, unlocked
  const mintData = "0x40c10f19" + payer.slice(2).toLowerCase().padStart(64, "0") + amount.toString(16).padStart(64, "0");
  await rpc(rpcUrl, "eth_sendTransaction", [{ from: minter, to: USDC, data: mintData }]);
  while ((await usdcBalance(rpcUrl, payer)) === 0n) await new Promise(r => setTimeout(r, 50));
  return { anvil, rpcUrl };
}

/**
 * This facilitator as a child process on a free port, its JSON logs written to a file (as
 * they would go to a collector: reading them here would take CPU from the load generator).
 * Resolves once it listens.
 */
export async function startOurs(binary, args, env) {
  const dir = fs.mkdtempSync("/tmp/x402-bench-");
  const logPath = path.join(dir, "facilitator.log");
  const port = await freePort();
  const child = spawn(binary, args, {
    env: { ...process.env, HOST: "127.0.0.1", PORT: String(port), RUST_LOG: "info", LOG_FORMAT: "json", DATABASE_URL: `sqlite://${dir}/ledger.db?mode=rwc`, ...env },
    stdio: ["ignore", fs.openSync(logPath, "w"), "inherit"],
  });
  for (let i = 0; !fs.readFileSync(logPath, "utf8").includes("Facilitator listening"); i++) {
    if (i > 600 || child.exitCode !== null) throw new Error(`facilitator did not start: ${fs.readFileSync(logPath, "utf8")}`);
    await new Promise(r => setTimeout(r, 50));
  }
  return { child, url: `http://127.0.0.1:${port}`, dir, stop: () => { child.kill(); fs.rmSync(dir, { recursive: true, force: true }); } };
}

/**
 * Script text that builds the official TypeScript EVM facilitator as `facilitator`, inside
 * an async function where `rpcUrl`, `key` and the package loader `r` are in scope: shared by
 * the reference scripts of the benchmarks.
 */
export const referenceFacilitatorSetup = `
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
`;

/** The loader of packages installed in tests/js, as script text (`r`). */
export const referenceLoader = `
  const { createRequire } = require("node:module");
  const r = createRequire(${JSON.stringify(path.join(js, "package.json"))});
`;

// The official TypeScript EVM facilitator in a 30-line HTTP server, in its own process.
const referenceScript = `
  const [rpcUrl, key] = process.argv.slice(1);
  ${referenceLoader}
  (async () => {
    ${referenceFacilitatorSetup}
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

/** The reference EVM facilitator signing with `key`; resolves once it listens. */
export async function startEvmReference(rpcUrl, key) {
  const child = spawn(process.execPath, ["-e", referenceScript, rpcUrl, key], { stdio: ["ignore", "pipe", "inherit"] });
  const [, port] = await waitLine(child, /listening (\d+)/);
  return { child, url: `http://127.0.0.1:${port}` };
}

/** A proxy in front of a node that counts JSON-RPC calls (batch entries count one each). */
export function countingProxy(target) {
  const counter = { calls: 0 };
  const server = http.createServer((req, res) => {
    let body = ""; req.on("data", c => body += c); req.on("end", async () => {
      try { const parsed = JSON.parse(body); counter.calls += Array.isArray(parsed) ? parsed.length : 1; } catch { counter.calls++; }
      const upstream = await fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body });
      res.setHeader("content-type", "application/json"); res.end(await upstream.text());
    });
  });
  return new Promise(r => server.listen(0, "127.0.0.1", () => r({ url: `http://127.0.0.1:${server.address().port}`, counter, server })));
}

/**
 * One /verify load on `url` with `body` (checked valid first): throughput, p99, errors, the
 * RPC calls per verify counted by `proxy`, and with `pid` the process's CPU per request and
 * peak memory. Prints the row as one JSON line and returns it.
 */
export async function measureVerify({ name, url, proxy, pid, body, connections, seconds }) {
  const autocannon = (await load("autocannon")).default;
  const check = await (await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body })).json();
  if (check.isValid !== true) throw new Error(`${name} did not accept the payment: ${JSON.stringify(check)}`);
  const before = pid ? procStats(pid) : null;
  const callsBefore = proxy.counter.calls;
  const result = await autocannon({ url, method: "POST", connections, duration: seconds, headers: { "content-type": "application/json" }, body });
  const requests = result.requests.total;
  const after = pid ? procStats(pid) : null;
  const row = {
    name, connections, seconds, rps: Math.round(result.requests.average), p99_ms: result.latency.p99,
    errors: result.errors + result.non2xx,
    rpc_calls_per_verify: requests ? +((proxy.counter.calls - callsBefore) / requests).toFixed(2) : null,
    cpu_ms_per_request: before ? +((after.cpuMs - before.cpuMs) / requests).toFixed(3) : "shared with the load generator",
    peak_rss_mb: after ? +(after.hwmKb / 1024).toFixed(1) : "shared",
  };
  console.log(JSON.stringify(row));
  return row;
}
