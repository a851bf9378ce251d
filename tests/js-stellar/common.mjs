// What the Stellar scripts share: the TLS front the official client needs, and JSON output.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";

// The official client's contract.AssembledTransaction talks to https RPC URLs only, so the
// local node gets a TLS front with a throw-away self-signed certificate (the process runs
// with NODE_TLS_REJECT_UNAUTHORIZED=0). Resolves to the front's https URL.
export async function tlsFront(target) {
  const dir = mkdtempSync(join(tmpdir(), "x402-stellar-tls-"));
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
    "-subj", "/CN=127.0.0.1", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")],
    { stdio: "ignore" });
  const key = readFileSync(join(dir, "key.pem"));
  const cert = readFileSync(join(dir, "cert.pem"));
  rmSync(dir, { recursive: true, force: true });
  const server = https.createServer({ key, cert }, async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    try {
      const answer = await fetch(target, { method: "POST", body: Buffer.concat(chunks),
        headers: { "content-type": "application/json" } });
      res.writeHead(answer.status, { "content-type": "application/json" });
      res.end(Buffer.from(await answer.arrayBuffer()));
    } catch (e) {
      res.writeHead(502);
      res.end(String(e));
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  server.unref();
  return `https://127.0.0.1:${server.address().port}`;
}

export function emit(value) {
  process.stdout.write(JSON.stringify(value) + "\n");
}
