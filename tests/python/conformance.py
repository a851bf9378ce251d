"""Conformance of the facilitator with the official Python x402 SDK (PyPI `x402`).

Usage: python tests/python/conformance.py <facilitator url> <rpc url>

The SDK signs a v2 and a v1 EIP-3009 payment with its own EVM client and calls the facilitator
through its own HTTP facilitator client. Each settlement must move the balances exactly once and a
repeated settle must return the original transaction. Exits non-zero on the first failed check
summary, printing one `ok` / `not ok` line per check.
"""

import sys

import httpx
from eth_account import Account
from x402 import x402ClientSync
from x402.http.facilitator_client import HTTPFacilitatorClientSync
from x402.http.facilitator_client_base import FacilitatorConfig
from x402.mechanisms.evm.exact.register import register_exact_evm_client
from x402.schemas import PaymentRequired, PaymentRequirements, ResourceInfo
from x402.schemas.v1 import PaymentRequiredV1, PaymentRequirementsV1

USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
# anvil development accounts: public test keys, only ever funded on a local anvil.
PAYER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
PAYER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PAY_TO = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"

passes = 0
failures = 0


def check(name: str, condition: bool, detail: object = "") -> None:
    global passes, failures
    if condition:
        passes += 1
        print(f"ok - {name}")
    else:
        failures += 1
        print(f"not ok - {name} {detail}")


def balance_of(rpc_url: str, who: str) -> int:
    data = "0x70a08231" + who[2:].lower().rjust(64, "0")
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [{"to": USDC, "data": data}, "latest"]}
    result = httpx.post(rpc_url, json=body, timeout=10).json()["result"]
    return int(result, 16)


def main() -> int:
    url, rpc_url = sys.argv[1], sys.argv[2]
    client = register_exact_evm_client(x402ClientSync(), Account.from_key(PAYER_KEY))
    facilitator = HTTPFacilitatorClientSync(FacilitatorConfig(url=url))

    supported = facilitator.get_supported()
    kinds = {(k.x402_version, k.network) for k in supported.kinds}
    check("supported lists v2 eip155:84532 and v1 base-sepolia", (2, "eip155:84532") in kinds and (1, "base-sepolia") in kinds, kinds)

    def balances() -> tuple[int, int]:
        return balance_of(rpc_url, PAYER), balance_of(rpc_url, PAY_TO)

    # ---- v2 ----
    requirements = PaymentRequirements(
        scheme="exact", network="eip155:84532", asset=USDC, amount="7000", pay_to=PAY_TO,
        max_timeout_seconds=60, extra={"name": "USDC", "version": "2"},
    )
    resource = ResourceInfo(url="http://127.0.0.1/resource", description="python conformance", mime_type="application/json")
    payload = client.create_payment_payload(PaymentRequired(accepts=[requirements], resource=resource))
    before = balances()
    verified = facilitator.verify(payload, requirements)
    check("python v2 verify valid", verified.is_valid and verified.payer == PAYER, verified)
    settled = facilitator.settle(payload, requirements)
    check("python v2 settle success", settled.success and settled.network == "eip155:84532" and len(settled.transaction) == 66, settled)
    after = balances()
    check("python v2 balances moved exactly once", before[0] - after[0] == 7000 and after[1] - before[1] == 7000, (before, after))
    again = facilitator.settle(payload, requirements)
    check("python v2 repeated settle returns the original transaction", again.success and again.transaction == settled.transaction, again)
    check("python v2 repeated settle moves nothing", balances() == after)

    # ---- v1 ----
    requirements_v1 = PaymentRequirementsV1(
        scheme="exact", network="base-sepolia", max_amount_required="3000", resource="http://127.0.0.1/resource",
        description="python conformance", mime_type="application/json", pay_to=PAY_TO, max_timeout_seconds=60,
        asset=USDC, extra={"name": "USDC", "version": "2"},
    )
    payload_v1 = client.create_payment_payload(PaymentRequiredV1(accepts=[requirements_v1]))
    before = balances()
    verified = facilitator.verify(payload_v1, requirements_v1)
    check("python v1 verify valid", verified.is_valid, verified)
    settled = facilitator.settle(payload_v1, requirements_v1)
    check("python v1 settle success in v1 shape", settled.success and settled.network == "base-sepolia", settled)
    after = balances()
    check("python v1 balances moved exactly once", before[0] - after[0] == 3000 and after[1] - before[1] == 3000, (before, after))
    replay = facilitator.verify(payload_v1, requirements_v1)
    check("python v1 verify after settle: nonce used", replay.is_valid is False and replay.invalid_reason == "invalid_exact_evm_nonce_already_used", replay)

    print(f"{passes} passed, {failures} failed")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
