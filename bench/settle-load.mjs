// Side-by-side /settle load: confirmed settlements per second from ONE signer, this
// facilitator vs the official TypeScript facilitator (x402Facilitator + ExactEvmScheme from npm),
// on a fresh anvil per block mode (instant mining, then 1 s blocks), same payer, same load.
// Usage (from the repo root, after `npm ci` in tests/js and `cargo build --release`):
//   node bench/settle-load.mjs [path to x402-facilitator binary] [settlements] [concurrency]
// Prints, per facilitator and mode: answered, succeeded, confirmed on chain (payee balance),
// failures, nonce errors, settlements/s, and how a repeated /settle of a settled payment is answered.
import { KEYS, USDC, anvilWithUsdc, defaultBinary, load, rpc, startEvmReference, startOurs, usdcBalance as balanceOf } from "./common.mjs";

const { privateKeyToAccount } = await load("viem/accounts");
const { x402Client } = await load("@x402/core/client");
const { registerExactEvmScheme } = await load("@x402/evm/exact/client");

const binary = process.argv[2] || defaultBinary;
const count = Number(process.argv[3] || 400);
const concurrency = Number(process.argv[4] || 32);
// Each facilitator pays a payee of its own, so the chain tells their confirmed counts apart.
const PAY_TO = { ours: "0x90F79bf6EB2c4f870365E785982E1f101E93b906", reference: "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65" };
const AMOUNT = 1000n;

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
  const { anvil, rpcUrl } = await anvilWithUsdc(anvilArgs, 10n ** 15n, privateKeyToAccount(KEYS.payer).address);
  // Both facilitator signers hold the same gas money.
  for (const key of [KEYS.facilitator, KEYS.referenceFacilitator]) {
    await rpc(rpcUrl, "anvil_setBalance", [privateKeyToAccount(key).address, "0x3635c9adc5dea00000"]);
  }
  const ours = await startOurs(binary, [], { RPC_URL_BASE_SEPOLIA: rpcUrl, EVM_PRIVATE_KEY: KEYS.facilitator });
  const reference = await startEvmReference(rpcUrl, KEYS.referenceFacilitator);

  console.log(`# ${label}`);
  const a = await measure(`rust (this repo), ${label}`, rpcUrl, `${ours.url}/settle`, PAY_TO.ours);
  const b = await measure(`typescript reference, ${label}`, rpcUrl, `${reference.url}/settle`, PAY_TO.reference);
  const ratio = b.confirmed_per_second > 0 ? (a.confirmed_per_second / b.confirmed_per_second).toFixed(1) + "x" : "n/a (reference confirmed none)";
  console.log(`${label}: confirmed settlements/s rust/typescript: ${ratio}`);
  ours.stop(); reference.child.kill(); anvil.kill();
}

await mode("instant mining", []);
await mode("1 s blocks", ["--block-time", "1"]);
process.exit(0);
