"""Session cookies: signed, tamper-evident, expiring."""

from __future__ import annotations

import time

from serving.web.session import Signer


def test_a_session_cookie_reads_back_until_it_expires() -> None:
    signer = Signer("s" * 32, hours=0)  # max age 0 s: any cookie older than a second is stale
    cookie = signer.dump("key_1", "token")
    assert signer.load(cookie) == {"k": "key_1", "c": "token"}
    time.sleep(1.1)
    assert signer.load(cookie) is None


def test_a_cookie_signed_with_another_secret_or_altered_is_refused() -> None:
    ours, theirs = Signer("a" * 32, hours=1), Signer("b" * 32, hours=1)
    assert ours.load(theirs.dump("key_1", "t")) is None
    cookie = ours.dump("key_1", "t")
    assert ours.load(cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")) is None
    assert ours.load("") is None and ours.load(None) is None
