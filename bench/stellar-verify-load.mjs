// Side-by-side exact-Stellar /verify load: this facilitator vs the official TypeScript Stellar
// facilitator (x402Facilitator + ExactStellarScheme from @x402/stellar 2.9.0), on one local
// Stellar node stand-in (tools/stellarnode, the real Soroban host), same payment, same load.
// Each facilitator reaches the node through its own counting proxy, so the RPC calls per
// verify are measured, not assumed. The payment is built and signed by the official client.
// The reference asks Horizon (a public URL it has built in) for the ledger close time on
// every verify; offline that request waits for its timeout and it falls back to 5 s. With
// X402_BENCH_HORIZON_FAILS_FAST=1 the request is refused at once instead (through a proxy
// setting that points at a closed local port; local URLs are exempt), which measures the
// reference without that wait.
// Usage (from the repo root, after `cargo build --release -p x402-facilitator -p x402-stellarnode`):
//   node bench/stellar-verify-load.mjs [facilitator binary] [connections] [seconds]
import { spawn } from "node:child_process";
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { countingProxy, defaultBinary, freePort, here, measureVerify, startOurs, waitLine } from "./common.mjs";

const stellarJs = path.resolve(here, "../tests/js-stellar");
const requireStellar = createRequire(path.join(stellarJs, "package.json"));
const loadStellar = m => import(requireStellar.resolve(m));
const { Keypair } = await loadStellar("@stellar/stellar-sdk");
const { x402Client } = await loadStellar("@x402/core/client");
const { x402Facilitator } = await loadStellar("@x402/core/facilitator");
const { createEd25519Signer } = await loadStellar("@x402/stellar");
const { ExactStellarScheme: ClientScheme } = await loadStellar("@x402/stellar/exact/client");
const { ExactStellarScheme: FacilitatorScheme } = await loadStellar("@x402/stellar/exact/facilitator");
const { tlsFront } = await import(path.join(stellarJs, "common.mjs"));

const binary = process.argv[2] || defaultBinary;
const connections = Number(process.argv[3] || 16);
const seconds = Number(process.argv[4] || 10);
const nodeBinary = process.env.X402_STELLARNODE || path.join(path.dirname(binary), "x402-stellarnode");
const NETWORK = "stellar:testnet";
process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";
if (process.env.X402_BENCH_HORIZON_FAILS_FAST === "1") {
  process.env.HTTPS_PROXY = "http://127.0.0.1:9";
  process.env.NO_PROXY = "127.0.0.1,localhost";
}

// ---- node and accounts ----
const [payer, payTo, ours, theirs] = [Keypair.random(), Keypair.random(), Keypair.random(), Keypair.random()];
const dir = fs.mkdtempSync("/tmp/x402-stellar-bench-");
const genesis = {
  ledger_interval_ms: 1000, assets: ["USDC"],
  accounts: [
    { public_key: payer.publicKey(), xlm: 1_000_000_000, balances: { USDC: 1_000_000_000 } },
    { public_key: payTo.publicKey(), xlm: 1_000_000_000, balances: { USDC: 0 } },
    { public_key: ours.publicKey(), xlm: 10_000_000_000 },
    { public_key: theirs.publicKey(), xlm: 10_000_000_000 },
  ],
};
fs.writeFileSync(path.join(dir, "genesis.json"), JSON.stringify(genesis));
const node = spawn(nodeBinary, ["--genesis", path.join(dir, "genesis.json"), "--port", String(await freePort())], { stdio: ["ignore", "pipe", "inherit"] });
const [line] = await waitLine(node, /^\{.*"url".*\}$/m);
const started = JSON.parse(line);
const nodeUrl = started.url;
const usdc = started.contracts.USDC;

// ---- ours ----
const oursProxy = await countingProxy(nodeUrl);
fs.writeFileSync(path.join(dir, "f.toml"), `[networks."${NETWORK}"]\nrpc_urls = ["${oursProxy.url}"]\nsigner_keys = ["${ours.secret()}"]\nassets = ["${usdc}"]\n`);
const facilitator = await startOurs(binary, ["--config", path.join(dir, "f.toml")], {});

// ---- reference ----
const refProxy = await countingProxy(nodeUrl);
const reference = new x402Facilitator().register(NETWORK, new FacilitatorScheme([createEd25519Signer(theirs.secret(), NETWORK)], { rpcConfig: { url: refProxy.url } }));
const refServer = http.createServer((req, res) => {
  let body = ""; req.on("data", c => body += c); req.on("end", async () => {
    try {
      const b = JSON.parse(body);
      const out = await reference.verify(b.paymentPayload, b.paymentRequirements);
      res.setHeader("content-type", "application/json"); res.end(JSON.stringify(out));
    } catch (e) { res.statusCode = 500; res.end(JSON.stringify({ error: String(e) })); }
  });
});
// The reference runs in this process: its CPU and memory are not separated from the load
// generator's, so only throughput, latency and RPC calls are compared for it.
await new Promise(r => refServer.listen(0, "127.0.0.1", r));

// ---- one payment, verified over and over ----
const front = await tlsFront(nodeUrl);
const client = new x402Client().register(NETWORK, new ClientScheme(createEd25519Signer(payer.secret(), NETWORK), { url: front }));
const requirements = { scheme: "exact", network: NETWORK, amount: "1000", asset: usdc, payTo: payTo.publicKey(), maxTimeoutSeconds: 3600, extra: { areFeesSponsored: true } };
const payload = await client.createPaymentPayload({ x402Version: 2, resource: { url: "http://x/y" }, accepts: [requirements] });
const body = JSON.stringify({ x402Version: 2, paymentPayload: payload, paymentRequirements: requirements });

const run = (name, url, proxy, pid) => measureVerify({ name, url, proxy, pid, body, connections, seconds });
const a = await run("rust (this repo)", `${facilitator.url}/verify`, oursProxy, facilitator.child.pid);
const b = await run("typescript reference (@x402/stellar)", `http://127.0.0.1:${refServer.address().port}/verify`, refProxy, null);
const horizon = process.env.X402_BENCH_HORIZON_FAILS_FAST === "1" ? "refused at once" : "unreachable, waited for";
console.log(`stellar verify (reference's Horizon call ${horizon}) throughput ratio rust/typescript: ${(a.rps / b.rps).toFixed(1)}x; RPC calls per verify ${a.rpc_calls_per_verify} vs ${b.rpc_calls_per_verify}`);
facilitator.stop(); node.kill(); refServer.close(); oursProxy.server.close(); refProxy.server.close();
fs.rmSync(dir, { recursive: true, force: true });
process.exit(0);
