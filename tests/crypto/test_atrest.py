from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import atrest
from crypto.atrest import HEADER_SIZE, MIN_LOG2_N, DecryptError, decrypt, encrypt

PASS = "station 1001 database"
SECRET = b"index key: \x00\x01\x02 and more"
# The fastest allowed cost keeps the tests quick; the format is the same.
FAST = MIN_LOG2_N


@pytest.fixture(scope="module")
def blob() -> bytes:
    return encrypt(SECRET, PASS, log2_n=FAST)


def test_round_trip_returns_the_plaintext(blob: bytes) -> None:
    assert decrypt(blob, PASS) == SECRET


def test_default_cost_round_trips() -> None:
    b = encrypt(b"x", PASS)
    assert b[6] == atrest.DEFAULT_LOG2_N
    assert decrypt(b, PASS) == b"x"


def test_blob_has_versioned_header_and_gcm_tag(blob: bytes) -> None:
    assert blob.startswith(b"SHLAR\x01")
    assert len(blob) == HEADER_SIZE + len(SECRET) + 16


def test_same_plaintext_encrypts_differently_each_time(blob: bytes) -> None:
    assert encrypt(SECRET, PASS, log2_n=FAST) != blob


def test_wrong_passphrase_raises_decrypt_error(blob: bytes) -> None:
    with pytest.raises(DecryptError, match="wrong passphrase"):
        decrypt(blob, PASS + "!")


def test_truncated_or_foreign_data_is_not_a_blob(blob: bytes) -> None:
    with pytest.raises(DecryptError, match="not a Shailoo encrypted blob"):
        decrypt(blob[:20], PASS)
    with pytest.raises(DecryptError, match="not a Shailoo encrypted blob"):
        decrypt(b"PK\x03\x04" + blob[4:], PASS)


def test_unknown_version_is_named(blob: bytes) -> None:
    with pytest.raises(DecryptError, match="version 2"):
        decrypt(blob[:5] + b"\x02" + blob[6:], PASS)


def test_hostile_cost_parameters_are_refused_before_any_work(blob: bytes) -> None:
    huge = blob[:6] + bytes([40]) + blob[7:]
    with pytest.raises(DecryptError, match="unsupported scrypt parameters"):
        decrypt(huge, PASS)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_any_single_byte_change_fails_decryption(blob: bytes, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(blob) - 1))
    x = data.draw(st.integers(1, 255))
    tampered = bytearray(blob)
    tampered[i] ^= x
    with pytest.raises(DecryptError):
        decrypt(bytes(tampered), PASS)


def test_empty_passphrase_is_refused() -> None:
    with pytest.raises(ValueError, match="passphrase is empty"):
        encrypt(b"x", "")


def test_cost_outside_the_supported_range_is_refused() -> None:
    with pytest.raises(ValueError, match="log2_n"):
        encrypt(b"x", PASS, log2_n=10)


def test_passphrase_is_unicode_normalised() -> None:
    b = encrypt(b"x", "Өкмөт", log2_n=FAST)
    assert decrypt(b, unicodedata.normalize("NFD", "Өкмөт")) == b"x"


def test_empty_plaintext_round_trips() -> None:
    assert decrypt(encrypt(b"", PASS, log2_n=FAST), PASS) == b""
