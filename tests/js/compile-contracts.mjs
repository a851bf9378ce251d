// Compiles tests/contracts/TestUSDC.sol with solc from npm and writes the artifact the
// Rust tests and the `dev` command load: tests/contracts/TestUSDC.json.
// Run: `node tests/js/compile-contracts.mjs` (after `npm ci` in tests/js).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = path.resolve(here, "../contracts");
const source = fs.readFileSync(path.join(dir, "TestUSDC.sol"), "utf8");
const input = {
  language: "Solidity",
  sources: { "TestUSDC.sol": { content: source } },
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
const artifact = { compiler: `solc ${solc.version()}`, optimizer_runs: 200, contracts: {} };
for (const [contract, out] of Object.entries(output.contracts["TestUSDC.sol"])) {
  artifact.contracts[contract] = {
    bytecode: "0x" + out.evm.bytecode.object,
    deployedBytecode: "0x" + out.evm.deployedBytecode.object,
  };
}
fs.writeFileSync(path.join(dir, "TestUSDC.json"), JSON.stringify(artifact, null, 2) + "\n");
console.log("wrote tests/contracts/TestUSDC.json with", Object.keys(artifact.contracts).join(", "));
