// Compiles the Solidity sources with solc from npm and writes the committed artifacts:
// - crates/x402-testkit/contracts/{TestUSDC,Permit2StandIns}.sol -> *.json (test tokens, wallet, factory, the
//   x402 Permit2 proxy stand-ins), loaded by the Rust tests and the `dev` command;
// - crates/chains/x402-evm/contracts/{Erc6492Probe,Eip3009VerifyProbe,Permit2VerifyProbe}.sol -> *.hex (creation
//   code the EVM crate embeds for deployless checks in one eth_call).
// Run: `node tests/js/compile-contracts.mjs` (after `npm ci` in tests/js).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const here = path.dirname(fileURLToPath(import.meta.url));

function compile(file) {
  const source = fs.readFileSync(file, "utf8");
  const name = path.basename(file);
  const input = {
    language: "Solidity",
    sources: { [name]: { content: source } },
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: "cancun",
      outputSelection: { "*": { "*": ["evm.bytecode.object", "evm.deployedBytecode.object"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter(e => e.severity === "error");
  if (errors.length) {
    console.error(errors.map(e => e.formattedMessage).join("\n"));
    process.exit(1);
  }
  return output.contracts[name];
}

const testDir = path.resolve(here, "../../crates/x402-testkit/contracts");
for (const source of ["TestUSDC", "Permit2StandIns"]) {
  const artifact = { compiler: `solc ${solc.version()}`, optimizer_runs: 200, contracts: {} };
  for (const [contract, out] of Object.entries(compile(path.join(testDir, `${source}.sol`)))) {
    if (!out.evm.bytecode.object) continue; // interfaces and abstract contracts
    artifact.contracts[contract] = {
      bytecode: "0x" + out.evm.bytecode.object,
      deployedBytecode: "0x" + out.evm.deployedBytecode.object,
    };
  }
  fs.writeFileSync(path.join(testDir, `${source}.json`), JSON.stringify(artifact, null, 2) + "\n");
  console.log(`wrote crates/x402-testkit/contracts/${source}.json with`, Object.keys(artifact.contracts).join(", "));
}

const probeDir = path.resolve(here, "../../crates/chains/x402-evm/contracts");
for (const name of ["Erc6492Probe", "Eip3009VerifyProbe", "Permit2VerifyProbe"]) {
  const probe = compile(path.join(probeDir, `${name}.sol`))[name];
  fs.writeFileSync(path.join(probeDir, `${name}.hex`), probe.evm.bytecode.object + "\n");
  console.log(`wrote ${name}.hex (solc ${solc.version()})`);
}
