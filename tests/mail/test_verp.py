"""VERP codes: short, signed, case-proof; a tampered or foreign code names nothing."""

from __future__ import annotations

from digest.mail.verp import DeliveryRef, code_in_address, read_verp_code, verp_address, verp_code

SECRET = "verp-test-secret-0123456789"


def test_code_round_trip_and_address_shape() -> None:
    code = verp_code(SECRET, 1234, 98765)
    assert read_verp_code(SECRET, code) == DeliveryRef(1234, 98765)
    address = verp_address("bounces@example.com", code)
    assert address == f"bounces+{code}@example.com"
    assert len(address.split("@")[0]) <= 64  # RFC 5321 local-part limit
    assert code_in_address("bounces@example.com", address) == code


def test_code_survives_a_server_that_changes_case() -> None:
    code = verp_code(SECRET, 7, 42)
    assert read_verp_code(SECRET, code.upper()) == DeliveryRef(7, 42)
    found = code_in_address("bounces@example.com", f"BOUNCES+{code.upper()}@Example.COM")
    assert found is not None and read_verp_code(SECRET, found) == DeliveryRef(7, 42)


def test_tampered_foreign_and_garbled_codes_name_nothing() -> None:
    code = verp_code(SECRET, 7, 42)
    run, subscriber, mac = code.split("-")
    assert read_verp_code(SECRET, f"{run}-{'1b'}-{mac}") is None  # another subscriber
    assert read_verp_code(SECRET, f"{run}-{subscriber}-{mac[:-1]}a") is None
    assert read_verp_code(SECRET + "x", code) is None
    for garbage in ("", "abc", "7-42", "7-42-!!!!!!!!!!", code + "-x"):
        assert read_verp_code(SECRET, garbage) is None


def test_only_our_address_carries_a_code() -> None:
    assert code_in_address("bounces@example.com", "bounces@example.com") is None
    assert code_in_address("bounces@example.com", "bounces+abc@other.example") is None
    assert code_in_address("bounces@example.com", "news+abc@example.com") is None
    assert code_in_address("bounces@example.com", "<bounces+abc@example.com>") == "abc"
