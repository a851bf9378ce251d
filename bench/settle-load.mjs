// Side-by-side /settle load: confirmed settlements per second from ONE signer, this
// facilitator vs the official TypeScript facilitator (x402Facilitator + ExactEvmScheme from npm),
// on a fresh anvil per block mode (instant mining, then 1 s blocks), same payer, same load.
// Usage (from the repo root, after `npm ci` in tests/js and `cargo build --release`):
//   node bench/settle-load.mjs [path to x402-facilitator binary] [settlements] [concurrency]
// Prints, per facilitator and mode: answered, succeeded, confirmed on chain (payee balance),
// failures, nonce errors, settlements/s, and how a repeated /settle of a settled payment is answered.
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

const targetDir = process.env.CARGO_TARGET_DIR || path.join(process.env.HOME || "/root", ".cache/x402-facilitator/target");
const binary = process.argv[2] || path.join(targetDir, "release/x402-facilitator");
const count = Number(process.argv[3] || 400);
const concurrency = Number(process.argv[4] || 32);
const USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const KEYS = {
  facilitator: "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  referenceFacilitator: "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3d71b5d6c8bd0ba8",
  payer: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
};
// Each facilitator pays a payee of its own, so the chain tells their confirmed counts apart.
const PAY_TO = { ours: "0x90F79bf6EB2c4f870365E785982E1f101E93b906", reference: "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65" };
const AMOUNT = 1000n;

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
async function balanceOf(rpcUrl, who) {
  const data = "0x70a08231" + who.slice(2).toLowerCase().padStart(64, "0");
  return BigInt(await rpc(rpcUrl, "eth_call", [{ to: USDC, data }, "latest"]));
}

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

const client = registerExactEvmScheme(new x402Client(), { signer: privateKeyToAccount(KEYS.payer) });
async function bodies(payTo, n) {
  const requirements = { scheme: "exact", network: "eip155:84532", amount: AMOUNT.toString(), asset: USDC, payTo, maxTimeoutSeconds: 600, extra: { name: "USDC", version: "2" } };
  const out = [];
  for (let i = 0; i < n; i++) {
    const payload = await client.createPaymentPayload({ x402Version: 2, resource: { url: "http://x/y" }, accepts: [requirements] });
    out.push(JSON.stringify({ x402Version: 2, paymentPayload: payload, paymentRequirements: requirements }));
  }
  return out;
}

async function settleAll(url, list) {
  const answers = new Array(list.length);
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const i = next++;
      try {
        const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: list[i] });
        answers[i] = await res.json();
      } catch (e) { answers[i] = { error: String(e) }; }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return answers;
}

async function measure(name, rpcUrl, url, payTo) {
  const list = await bodies(payTo, count);
  const before = await balanceOf(rpcUrl, payTo);
  const started = performance.now();
  const answers = await settleAll(url, list);
  const seconds = (performance.now() - started) / 1000;
  const succeeded = answers.filter(a => a.success === true).length;
  const failures = answers.filter(a => a.success !== true);
  const nonceErrors = failures.filter(a => /nonce too low|nonce has already been used|replacement transaction underpriced|nonce provided for the transaction/i.test(JSON.stringify(a))).length;
  const confirmed = Number((await balanceOf(rpcUrl, payTo) - before) / AMOUNT);
  // A retry of payments already settled: the original transaction, or what instead?
  const retryList = list.slice(0, 20);
  const originals = answers.slice(0, 20);
  const retries = await settleAll(url, retryList);
  const sameHash = retries.filter((a, i) => a.success === true && originals[i].success === true && a.transaction === originals[i].transaction).length;
  const afterRetry = Number((await balanceOf(rpcUrl, payTo) - before) / AMOUNT);
  const row = {
    name, settlements: count, concurrency,
    succeeded, confirmed_on_chain: confirmed, failures: failures.length, nonce_errors: nonceErrors,
    seconds: +seconds.toFixed(2), confirmed_per_second: +(confirmed / seconds).toFixed(1),
    retry_same_hash: `${sameHash}/20`, moved_by_retries: afterRetry - confirmed,
    first_failure: failures[0] ? JSON.stringify(failures[0]).slice(0, 160) : null,
    retry_answer: JSON.stringify(retries[0]).slice(0, 160),
  };
  console.log(JSON.stringify(row));
  return row;
}

async function mode(label, anvilArgs) {
  const anvil = spawn(path.join(js, "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"), ["--host", "127.0.0.1", "--port", "0", "--chain-id", "84532", ...anvilArgs], { stdio: ["ignore", "pipe", "ignore"] });
  const [, anvilAddr] = await waitLine(anvil, /Listening on (\S+)/);
  const rpcUrl = `http://${anvilAddr}`;
  const artifact = JSON.parse(fs.readFileSync(path.resolve(here, "../tests/contracts/TestUSDC.json"), "utf8"));
  await rpc(rpcUrl, "anvil_setCode", [USDC, artifact.contracts.TestUSDC.deployedBytecode]);
  const payer = privateKeyToAccount(KEYS.payer).address;
  const mintData = "0x40c10f19" + payer.slice(2).toLowerCase().padStart(64, "0") + (10n ** 15n).toString(16).padStart(64, "0");
  await rpc(rpcUrl, "eth_sendTransaction", [{ from: privateKeyToAccount(KEYS.facilitator).address, to: USDC, data: mintData }]);
  while ((await balanceOf(rpcUrl, payer)) === 0n) await new Promise(r => setTimeout(r, 100));
  // Both facilitator signers hold the same gas money.
  for (const key of [KEYS.facilitator, KEYS.referenceFacilitator]) {
    await rpc(rpcUrl, "anvil_setBalance", [privateKeyToAccount(key).address, "0x3635c9adc5dea00000"]);
  }

  const dir = fs.mkdtempSync("/tmp/x402-settle-bench-");
  const logPath = path.join(dir, "facilitator.log");
  const logFd = fs.openSync(logPath, "w");
  const port = 18000 + Math.floor(Math.random() * 1000);
  const ours = spawn(binary, [], {
    env: { ...process.env, HOST: "127.0.0.1", PORT: String(port), RPC_URL_BASE_SEPOLIA: rpcUrl, EVM_PRIVATE_KEY: KEYS.facilitator, RUST_LOG: "info", LOG_FORMAT: "json", DATABASE_URL: `sqlite://${dir}/ledger.db?mode=rwc` },
    stdio: ["ignore", logFd, "inherit"],
  });
  for (let i = 0; !fs.readFileSync(logPath, "utf8").includes("Facilitator listening"); i++) {
    if (i > 600 || ours.exitCode !== null) throw new Error(`facilitator did not start: ${fs.readFileSync(logPath, "utf8")}`);
    await new Promise(r => setTimeout(r, 50));
  }
  const reference = spawn(process.execPath, ["-e", referenceScript, rpcUrl, KEYS.referenceFacilitator], { stdio: ["ignore", "pipe", "inherit"] });
  const [, refPort] = await waitLine(reference, /listening (\d+)/);

  console.log(`# ${label}`);
  const a = await measure(`rust (this repo), ${label}`, rpcUrl, `http://127.0.0.1:${port}/settle`, PAY_TO.ours);
  const b = await measure(`typescript reference, ${label}`, rpcUrl, `http://127.0.0.1:${refPort}/settle`, PAY_TO.reference);
  const ratio = b.confirmed_per_second > 0 ? (a.confirmed_per_second / b.confirmed_per_second).toFixed(1) + "x" : "n/a (reference confirmed none)";
  console.log(`${label}: confirmed settlements/s rust/typescript: ${ratio}`);
  ours.kill(); reference.kill(); anvil.kill();
  fs.rmSync(dir, { recursive: true, force: true });
}

await mode("instant mining", []);
await mode("1 s blocks", ["--block-time", "1"]);
process.exit(0);
