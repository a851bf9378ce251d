"""Pays a paid route with the official Python x402 SDK's httpx client (PyPI `x402`, v2).

Usage: python tests/python/pay_api.py <url>

Prints one JSON line: the first answer's status and decoded PAYMENT-REQUIRED header, the
payment header the SDK sent, the final status, body and decoded PAYMENT-RESPONSE header.
"""

import asyncio
import base64
import json
import sys

import httpx
from eth_account import Account
from x402 import x402Client
from x402.http.clients.httpx import x402AsyncTransport
from x402.mechanisms.evm.exact.register import register_exact_evm_client

# anvil development account: a public test key, only ever funded on a local anvil.
PAYER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


class Recording(httpx.AsyncHTTPTransport):
    """The network transport under the SDK's: keeps every exchange as the server saw it."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[dict] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        await response.aread()
        sent = {k: v for k, v in request.headers.items() if k.lower() in ("payment-signature", "x-payment")}
        self.exchanges.append({"status": response.status_code, "headers": dict(response.headers), "sent": sent})
        return response


def decode(header: str | None) -> object:
    return json.loads(base64.b64decode(header)) if header else None


async def main() -> int:
    url = sys.argv[1]
    client = register_exact_evm_client(x402Client(), Account.from_key(PAYER_KEY))
    recording = Recording()
    async with httpx.AsyncClient(transport=x402AsyncTransport(client, transport=recording)) as http:
        response = await http.get(url, timeout=60)
    first = recording.exchanges[0]
    print(
        json.dumps(
            {
                "firstStatus": first["status"],
                "firstRequired": {"v2": decode(first["headers"].get("payment-required"))},
                "sent": recording.exchanges[-1]["sent"],
                "status": response.status_code,
                "body": response.text,
                "settlement": decode(response.headers.get("payment-response")),
                "exchanges": len(recording.exchanges),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
