"""Signed Twilio inbound-SMS webhooks, generated ahead of a load run.

Every request carries its own MessageSid (the webhook stores each Sid once and drops repeats),
so a run needs as many distinct requests as it sends. They are written one a line as
``signature<TAB>form body`` for the wrk script (``bench/signed_post.lua``) and for
``bench/constant_rate.py``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

SENDER = "+4520123456"
TEXTS = (
    "Hej, jeg kommer lidt senere i dag",
    "Ja tak, det passer fint",
    "Kan vi flytte mødet til på torsdag?",
    "Jeg drømmer om at blive tømrer",
    "Tak for i dag, det var godt at snakke",
    "Nej, ikke lige nu",
    "Hvornår ses vi næste gang?",
    "Jeg har søgt ind på en uddannelse",
)


@dataclass(frozen=True)
class SignedRequest:
    sid: str
    signature: str
    body: str


def twilio_form(sid: str, *, text: str, to: str, account_sid: str) -> dict[str, str]:
    """The parameters Twilio posts for an inbound SMS (as of API 2010-04-01)."""
    return {
        "ToCountry": "DK",
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": text,
        "FromCountry": "DK",
        "To": to,
        "ToZip": "",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": SENDER,
        "ApiVersion": "2010-04-01",
    }


def generate(
    count: int, *, url: str, auth_token: str, to: str, account_sid: str, seed: int
) -> list[SignedRequest]:
    """``count`` requests with distinct random Sids, signed for the public ``url``."""
    validator = RequestValidator(auth_token)
    chooser = random.Random(seed)  # noqa: S311 - test data, not secrets
    sids: set[str] = set()
    made: list[SignedRequest] = []
    while len(made) < count:
        sid = f"SM{chooser.getrandbits(128):032x}"
        if sid in sids:
            continue
        sids.add(sid)
        form = twilio_form(sid, text=chooser.choice(TEXTS), to=to, account_sid=account_sid)
        signature = validator.compute_signature(url, form)
        made.append(SignedRequest(sid=sid, signature=signature, body=urlencode(form)))
    return made


def write(requests: list[SignedRequest], path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for request in requests:
            out.write(f"{request.signature}\t{request.body}\n")


def read(path: Path) -> list[tuple[str, str]]:
    """(signature, body) pairs, in file order."""
    pairs: list[tuple[str, str]] = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            signature, body = line.rstrip("\n").split("\t", 1)
            pairs.append((signature, body))
    return pairs
