"""The Standard Webhooks signer: the DESIGN.md test vector; the PyPI library accepts our headers."""

from __future__ import annotations

import time

import pytest
from standardwebhooks.webhooks import Webhook

from worker.sinks.signing import SecretError, decode_secret, generate_secret, sign, signature_headers

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_design_test_vector() -> None:
    key = decode_secret(VECTOR_SECRET)
    signature = sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_standardwebhooks_library_verifies_our_headers() -> None:
    secret = generate_secret()
    body = '{"type":"topic.matched","data":{"id":"al_1","title":"Войска КНДР"}}'.encode()
    headers = signature_headers(decode_secret(secret), "al_1", int(time.time()), body)
    assert Webhook(secret).verify(body, headers) == {
        "type": "topic.matched",
        "data": {"id": "al_1", "title": "Войска КНДР"},
    }


@pytest.mark.parametrize(
    ("secret", "says"),
    [
        ("", "empty"),
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must start with 'whsec_'"),
        ("whsec_not base64!!", "not valid base64"),
        ("whsec_c2hvcnQ=", "decodes to 5 bytes"),
    ],
)
def test_malformed_secrets_are_explained(secret: str, says: str) -> None:
    with pytest.raises(SecretError, match=says) as caught:
        decode_secret(secret, name="NEWSWATCH_WEBHOOK_SECRET")
    assert "NEWSWATCH_WEBHOOK_SECRET" in str(caught.value) or secret == ""
