"""A NEAR `exact` payment built by a second third-party encoder: uvd-x402-sdk's NEP-366 Borsh
builders (not ours, not near-api-js) and PyNaCl's ed25519 over the NEP-461 hash (SHA-256 of
uvd's NEP-366 prefix and the delegate action). The access key nonce and the head come from the
node, as a wallet reads them.

Usage: python uvd_payment.py <rpc url> <payer account> <ed25519:secret> <token> <payTo> <amount> <ttl>
Prints the base64 `signedDelegateAction`.
"""

import base64
import hashlib
import sys

import httpx
import nacl.signing
from uvd_x402_sdk.networks import near


def rpc(url, method, params):
    answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()
    if "error" in answer:
        raise SystemExit(f"{method}: {answer['error']}")
    return answer["result"]


def main():
    url, payer, secret, token, pay_to, amount, ttl = sys.argv[1:8]
    keypair = near.base58_decode(secret.split(":", 1)[1])
    signing = nacl.signing.SigningKey(keypair[:32])
    public = bytes(signing.verify_key)
    public_text = "ed25519:" + near_base58(public)
    key = rpc(url, "query", {"request_type": "view_access_key", "finality": "optimistic",
                             "account_id": payer, "public_key": public_text})
    head = rpc(url, "block", {"finality": "optimistic"})["header"]["height"]
    action = near.serialize_non_delegate_action(pay_to, int(amount))
    delegate = near.serialize_delegate_action(payer, token, action, key["nonce"] + 1,
                                              head + int(ttl), public)
    digest = hashlib.sha256(near.NEP366_PREFIX + delegate).digest()
    signature = signing.sign(digest).signature
    print(base64.b64encode(near.serialize_signed_delegate_action(delegate, signature)).decode())


def near_base58(data):
    """Base58 (Bitcoin alphabet), for the public key's text form the node reads."""
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    number = int.from_bytes(data, "big")
    text = ""
    while number:
        number, digit = divmod(number, 58)
        text = alphabet[digit] + text
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + text


if __name__ == "__main__":
    main()
