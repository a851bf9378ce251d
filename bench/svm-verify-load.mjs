// Side-by-side exact-SVM /verify load: this facilitator vs the official TypeScript SVM
// facilitator (x402Facilitator + ExactSvmScheme from @x402/svm), on one local Solana node
// (tools/surfnode), same payment, same load. Each facilitator reaches the node through its own
// counting proxy, so the RPC calls per verify are measured, not assumed.
// Usage (from the repo root, after scripts/test.sh built the node and `cargo build --release`):
//   X402_SURFNODE=<node binary> node bench/svm-verify-load.mjs [facilitator binary] [connections] [seconds]
import { spawn } from "node:child_process";
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { countingProxy, defaultBinary, freePort, load, measureVerify, rpc, startOurs, waitLine } from "./common.mjs";

const { createKeyPairSignerFromBytes, generateKeyPairSigner, getBase58Decoder } = await load("@solana/kit");
const { x402Client } = await load("@x402/core/client");
const { x402Facilitator } = await load("@x402/core/facilitator");
const { ExactSvmScheme: ClientScheme } = await load("@x402/svm/exact/client");
const { ExactSvmScheme: FacilitatorScheme } = await load("@x402/svm/exact/facilitator");
const { toFacilitatorSvmSigner } = await load("@x402/svm");

const binary = process.argv[2] || defaultBinary;
const connections = Number(process.argv[3] || 16);
const seconds = Number(process.argv[4] || 10);
const DEVNET = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
const MINT = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";
const TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";

// ---- node and accounts ----
const node = spawn(process.env.X402_SURFNODE, ["--port", String(await freePort()), "--ws-port", String(await freePort())], { stdio: ["ignore", "pipe", "ignore"] });
const [, nodeUrl] = await waitLine(node, /ready (\S+)/);
const payer = await generateKeyPairSigner();
const payTo = (await generateKeyPairSigner()).address;
const mintData = Buffer.alloc(82); mintData.writeUInt32LE(1, 0); mintData.writeBigUInt64LE(2n ** 63n, 36); mintData[44] = 6; mintData[45] = 1;
await rpc(nodeUrl, "surfnet_setAccount", [MINT, { lamports: 1461600, data: mintData.toString("hex"), owner: TOKEN, executable: false }]);
await rpc(nodeUrl, "surfnet_setTokenAccount", [payer.address, MINT, { amount: 10 ** 12, state: "initialized" }, TOKEN]);
await rpc(nodeUrl, "surfnet_setTokenAccount", [payTo, MINT, { amount: 0, state: "initialized" }, TOKEN]);

// Both facilitators use one fee payer key made here, exported as a 64-byte keypair.
const rawKey = new Uint8Array(64);
crypto.getRandomValues(rawKey.subarray(0, 32));
const { createKeyPairFromPrivateKeyBytes } = await load("@solana/keys");
const kp = await createKeyPairFromPrivateKeyBytes(rawKey.subarray(0, 32), true);
const pub = new Uint8Array(await crypto.subtle.exportKey("raw", kp.publicKey));
rawKey.set(pub, 32);
const sponsor = await createKeyPairSignerFromBytes(rawKey);
await rpc(nodeUrl, "surfnet_setAccount", [sponsor.address, { lamports: 10 ** 10 }]);
const sponsorBase58 = getBase58Decoder().decode(rawKey);

// ---- ours ----
const oursProxy = await countingProxy(nodeUrl);
const dir = fs.mkdtempSync("/tmp/x402-svm-bench-");
fs.writeFileSync(path.join(dir, "f.toml"), `[networks."${DEVNET}"]\nrpc_urls = ["${oursProxy.url}"]\nsigner_keys = ["${sponsorBase58}"]\nlocal_stand_in = true\n`);
const ours = await startOurs(binary, ["--config", path.join(dir, "f.toml")], {});

// ---- reference ----
const refProxy = await countingProxy(nodeUrl);
const reference = new x402Facilitator().register(DEVNET, new FacilitatorScheme(toFacilitatorSvmSigner(sponsor, { defaultRpcUrl: refProxy.url })));
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
const client = new x402Client().register("solana:*", new ClientScheme(payer, { rpcUrl: nodeUrl }));
const requirements = { scheme: "exact", network: DEVNET, amount: "1000", asset: MINT, payTo, maxTimeoutSeconds: 60, extra: { feePayer: sponsor.address } };
const payload = await client.createPaymentPayload({ x402Version: 2, resource: { url: "http://x/y" }, accepts: [requirements] });
const body = JSON.stringify({ x402Version: 2, paymentPayload: payload, paymentRequirements: requirements });

const run = (name, url, proxy, pid) => measureVerify({ name, url, proxy, pid, body, connections, seconds });
const a = await run("rust (this repo)", `${ours.url}/verify`, oursProxy, ours.child.pid);
const b = await run("typescript reference (@x402/svm)", `http://127.0.0.1:${refServer.address().port}/verify`, refProxy, null);
console.log(`svm verify throughput ratio rust/typescript: ${(a.rps / b.rps).toFixed(1)}x; RPC calls per verify ${a.rpc_calls_per_verify} vs ${b.rpc_calls_per_verify}`);
ours.stop(); node.kill(); refServer.close(); oursProxy.server.close(); refProxy.server.close();
fs.rmSync(dir, { recursive: true, force: true });
process.exit(0);
