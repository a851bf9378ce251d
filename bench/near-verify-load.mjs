// NEAR exact /verify load on the local NEAR node stand-in (tools/nearnode): throughput,
// latency, CPU and memory of this facilitator, and the RPC calls per verify counted by a
// proxy in front of the node. No official TypeScript NEAR facilitator exists (npm has no
// @x402/near), so there is no reference to run beside it; the payment is signed by
// near-api-js as in the tests.
// Usage (from the repo root, after `cargo build --release -p x402-facilitator -p x402-nearnode`):
//   node bench/near-verify-load.mjs [facilitator binary] [connections] [seconds]
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { countingProxy, defaultBinary, freePort, load, measureVerify, startOurs, waitLine } from "./common.mjs";

const { Account, JsonRpcProvider, KeyPair, KeyPairSigner, actions, encodeSignedDelegate } = await load("near-api-js");

const binary = process.argv[2] || defaultBinary;
const connections = Number(process.argv[3] || 16);
const seconds = Number(process.argv[4] || 10);
const nodeBinary = process.env.X402_NEARNODE || path.join(path.dirname(binary), "x402-nearnode");
const NETWORK = "near:testnet";
const TOKEN = "usdc.test";
const MERCHANT = "merchant.test";

// ---- node and accounts ----
const relayer = KeyPair.fromRandom("ed25519");
const relayerAccount = Buffer.from(relayer.getPublicKey().data).toString("hex");
const payer = KeyPair.fromRandom("ed25519");
const dir = fs.mkdtempSync("/tmp/x402-near-bench-");
const genesis = {
  chain_id: "x402-local", block_interval_ms: 1000,
  accounts: [
    { account_id: relayerAccount, amount: "100000000000000000000000000", keys: [{ public_key: relayer.getPublicKey().toString() }] },
    { account_id: "alice.test", amount: "10000000000000000000000000", keys: [{ public_key: payer.getPublicKey().toString() }] },
    { account_id: MERCHANT, amount: "1000000000000000000000000" },
  ],
  tokens: [{ account_id: TOKEN, balances: { "alice.test": "1000000000000" }, registered: [MERCHANT] }],
};
fs.writeFileSync(path.join(dir, "genesis.json"), JSON.stringify(genesis));
const node = spawn(nodeBinary, ["--genesis", path.join(dir, "genesis.json"), "--port", String(await freePort())], { stdio: ["ignore", "pipe", "inherit"] });
const [, nodeUrl] = await waitLine(node, /listening on (\S+)/);

// ---- ours ----
const proxy = await countingProxy(nodeUrl);
fs.writeFileSync(path.join(dir, "f.toml"), `[networks."${NETWORK}"]\nrpc_urls = ["${proxy.url}"]\nsigner_keys = ["${relayer.toString()}"]\nlocal_stand_in = true\nassets = ["${TOKEN}"]\n`);
const ours = await startOurs(binary, ["--config", path.join(dir, "f.toml")], {});

// ---- one payment, verified over and over ----
const account = new Account("alice.test", new JsonRpcProvider({ url: nodeUrl }), new KeyPairSigner(payer));
const { signedDelegate } = await account.createSignedMetaTransaction({
  receiverId: TOKEN, blockHeightTtl: 3000,
  actions: [actions.functionCall("ft_transfer", { receiver_id: MERCHANT, amount: "1000" }, 10n ** 13n, 1n)],
});
const requirements = { scheme: "exact", network: NETWORK, amount: "1000", asset: TOKEN, payTo: MERCHANT, maxTimeoutSeconds: 3600 };
const payload = { x402Version: 2, resource: { url: "http://x/y" }, accepted: requirements,
  payload: { signedDelegateAction: Buffer.from(encodeSignedDelegate(signedDelegate)).toString("base64") } };
const body = JSON.stringify({ x402Version: 2, paymentPayload: payload, paymentRequirements: requirements });
const url = `${ours.url}/verify`;
await measureVerify({ name: "rust (this repo), near exact verify", url, proxy, pid: ours.child.pid, body, connections, seconds });
console.log("no official TypeScript NEAR facilitator exists to compare with (npm has no @x402/near)");
ours.stop(); node.kill(); proxy.server.close();
fs.rmSync(dir, { recursive: true, force: true });
process.exit(0);
