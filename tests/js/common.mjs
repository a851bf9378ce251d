// Shared setup of the conformance scripts: accounts, requirements, chain reads.
import { createPublicClient, http, defineChain } from "viem";

export const USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
// anvil development accounts (public test keys, only ever funded on local anvil).
export const PAYER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
export const PAYER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
export const PAY_TO = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
export const POOR_KEY = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";

export function chainClient(rpcUrl) {
  const chain = defineChain({
    id: 84532,
    name: "local",
    nativeCurrency: { name: "ETH", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
  return createPublicClient({ chain, transport: http(rpcUrl) });
}

const balanceOfAbi = [
  { type: "function", name: "balanceOf", stateMutability: "view", inputs: [{ name: "a", type: "address" }], outputs: [{ type: "uint256" }] },
];

export async function balance(client, who) {
  return client.readContract({ address: USDC, abi: balanceOfAbi, functionName: "balanceOf", args: [who] });
}

export function v2Requirements(amount = "10000") {
  return {
    scheme: "exact",
    network: "eip155:84532",
    amount,
    asset: USDC,
    payTo: PAY_TO,
    maxTimeoutSeconds: 60,
    extra: { name: "USDC", version: "2" },
  };
}

export function v1Requirements(amount = "10000") {
  return {
    scheme: "exact",
    network: "base-sepolia",
    maxAmountRequired: amount,
    resource: "http://127.0.0.1/resource",
    description: "conformance test",
    mimeType: "application/json",
    payTo: PAY_TO,
    maxTimeoutSeconds: 60,
    asset: USDC,
    extra: { name: "USDC", version: "2" },
  };
}

let failures = 0;
let passes = 0;
export function check(name, condition, detail = "") {
  if (condition) {
    passes++;
    console.log(`ok - ${name}`);
  } else {
    failures++;
    console.log(`not ok - ${name} ${detail}`);
  }
}

export function finish() {
  console.log(`${passes} passed, ${failures} failed`);
  process.exit(failures === 0 ? 0 : 1);
}
