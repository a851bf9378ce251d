// Pays a paid route (an x402 resource server) with an official x402 client and prints, as
// one JSON line, what happened: the first answer (402 and its decoded payment requirements),
// the payment header sent, the final status, body and decoded settlement header.
// Usage: node tests/js/pay-api.mjs v2|v1|header|header-v1 <url>
//   v2         @x402/fetch 2.27 (x402 v2, PAYMENT-SIGNATURE)
//   v1         x402-fetch 1.2 (x402 v1, X-PAYMENT)
//   header     signs a v2 payment for the route's 402 with @x402/core and prints the header
//   header-v1  the same with the v1 `x402` package, from the 402 body
import { privateKeyToAccount } from "viem/accounts";
import { x402Client, x402HTTPClient } from "@x402/core/client";
import { decodePaymentRequiredHeader, decodePaymentResponseHeader } from "@x402/core/http";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { wrapFetchWithPayment } from "@x402/fetch";
import { wrapFetchWithPayment as wrapFetchV1, createSigner, decodeXPaymentResponse } from "x402-fetch";
import { createPaymentHeader } from "x402/client";
import { PAYER_KEY } from "./common.mjs";

const [mode, url, key = PAYER_KEY] = process.argv.slice(2);

// Every exchange the client makes, as the server saw it.
const exchanges = [];
async function recordingFetch(input, init) {
  const request = new Request(input, init);
  const sent = {};
  for (const name of ["payment-signature", "x-payment"]) {
    if (request.headers.has(name)) sent[name] = request.headers.get(name);
  }
  const response = await fetch(request);
  const body = await response.clone().text();
  exchanges.push({ status: response.status, headers: Object.fromEntries(response.headers), body, sent });
  return response;
}

function decodedRequired(exchange) {
  const header = exchange.headers["payment-required"];
  return {
    v2: header ? decodePaymentRequiredHeader(header) : null,
    body: exchange.body ? JSON.parse(exchange.body) : null,
  };
}

function v2Client() {
  return registerExactEvmScheme(new x402Client(), { signer: privateKeyToAccount(key) });
}

async function report(response, settlement) {
  const first = exchanges[0];
  const last = exchanges[exchanges.length - 1];
  console.log(
    JSON.stringify({
      firstStatus: first.status,
      firstRequired: decodedRequired(first),
      sent: last.sent,
      status: response.status,
      body: await response.text(),
      settlement,
      exchanges: exchanges.length,
    }),
  );
}

if (mode === "v2") {
  const pay = wrapFetchWithPayment(recordingFetch, v2Client());
  const response = await pay(url);
  const header = response.headers.get("payment-response");
  await report(response, header ? decodePaymentResponseHeader(header) : null);
} else if (mode === "v1") {
  const signer = await createSigner("base-sepolia", key);
  const pay = wrapFetchV1(recordingFetch, signer);
  const response = await pay(url);
  const header = response.headers.get("x-payment-response");
  await report(response, header ? decodeXPaymentResponse(header) : null);
} else if (mode === "header") {
  const first = await recordingFetch(url);
  const http = new x402HTTPClient(v2Client());
  const required = http.getPaymentRequiredResponse((n) => first.headers.get(n));
  const payload = await http.createPaymentPayload(required);
  console.log(JSON.stringify({ header: http.encodePaymentSignatureHeader(payload)["PAYMENT-SIGNATURE"] }));
} else if (mode === "header-v1") {
  const first = await recordingFetch(url);
  const { accepts } = JSON.parse(exchanges[0].body);
  const signer = await createSigner("base-sepolia", key);
  console.log(JSON.stringify({ header: await createPaymentHeader(signer, 1, accepts[0]) }));
} else {
  console.error("usage: node tests/js/pay-api.mjs v2|v1|header|header-v1 <url>");
  process.exit(2);
}
