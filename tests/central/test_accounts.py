from __future__ import annotations

import datetime as dt

import pytest

from central import accounts
from central.accounts import (
    LOCKOUT,
    MAX_FAILURES,
    AccountError,
    Permission,
    Role,
    create_account,
    csrf_ok,
    hash_password,
    session_for,
    sign_in,
    sign_out,
    verify_password,
)
from central.db import Database
from tests.central.staff_support import FAST_SCRYPT, PASSWORD, T0, small_definition


def _make(db: Database, username: str = "alice", role: str = "cec_engineer") -> None:
    create_account(db, username, role, None, PASSWORD, scrypt_n=FAST_SCRYPT, at=T0)


def test_a_password_hash_names_scrypt_its_parameters_and_a_fresh_salt() -> None:
    h1, h2 = hash_password("same password"), hash_password("same password")
    scheme, n, r, p, salt, key = h1.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", accounts.SCRYPT_N, 8, 1)
    assert h1 != h2  # a per-password salt
    assert verify_password("same password", h1) and verify_password("same password", h2)
    assert not verify_password("same passwore", h1)
    assert "same password" not in h1


def test_a_hash_made_with_other_parameters_still_verifies() -> None:
    assert verify_password("pw-with-cheap-cost", hash_password("pw-with-cheap-cost", n=2**10))


def test_a_malformed_stored_hash_never_verifies() -> None:
    assert not verify_password("x", "md5$abc")
    assert not verify_password("x", "scrypt$notanumber$8$1$AAAA$AAAA")


def test_the_stored_account_keeps_no_plain_password(db: Database) -> None:
    _make(db)
    row = db.one("SELECT * FROM staff_accounts WHERE username = 'alice'")
    assert row is not None and PASSWORD not in str(row.values())


def test_sign_in_with_the_right_password_opens_a_session_found_by_its_token(db: Database) -> None:
    _make(db)
    out = sign_in(db, "alice", PASSWORD, at=T0)
    assert out.session is not None and out.token is not None
    found = session_for(db, out.token, at=T0 + dt.timedelta(minutes=5))
    assert found is not None and found.account.username == "alice"
    assert found.account.role is Role.CEC_ENGINEER
    # only the token's hash is stored
    assert db.one("SELECT 1 AS x FROM staff_sessions WHERE token_hash = ?", (out.token,)) is None


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(db: Database) -> None:
    _make(db)
    wrong = sign_in(db, "alice", "not the password", at=T0)
    unknown = sign_in(db, "mallory", "whatever-it-is", at=T0)
    assert wrong.session is None and unknown.session is None
    assert wrong.refused == unknown.refused == "bad_credentials"


def test_an_account_locks_after_repeated_failures_even_for_the_right_password(
    db: Database,
) -> None:
    _make(db)
    for i in range(MAX_FAILURES - 1):
        assert sign_in(db, "alice", f"guess {i}", at=T0).refused == "bad_credentials"
    locked = sign_in(db, "alice", "last guess", at=T0)
    assert locked.refused == "locked" and locked.locked_until == T0 + LOCKOUT
    assert sign_in(db, "alice", PASSWORD, at=T0 + dt.timedelta(minutes=1)).refused == "locked"
    later = sign_in(db, "alice", PASSWORD, at=T0 + LOCKOUT + dt.timedelta(seconds=1))
    assert later.session is not None


def test_a_success_resets_the_failure_count(db: Database) -> None:
    _make(db)
    for i in range(MAX_FAILURES - 1):
        sign_in(db, "alice", f"guess {i}", at=T0)
    assert sign_in(db, "alice", PASSWORD, at=T0).session is not None
    for i in range(MAX_FAILURES - 1):
        assert sign_in(db, "alice", f"guess {i}", at=T0).refused == "bad_credentials"


def test_an_admin_can_unlock_an_account_early(db: Database) -> None:
    _make(db)
    for i in range(MAX_FAILURES):
        sign_in(db, "alice", f"guess {i}", at=T0)
    accounts.unlock(db, "alice", at=T0)
    assert sign_in(db, "alice", PASSWORD, at=T0).session is not None


def test_a_session_expires_and_ends_at_sign_out(db: Database) -> None:
    _make(db)
    out = sign_in(db, "alice", PASSWORD, at=T0, lifetime=dt.timedelta(hours=1))
    assert out.token is not None
    assert session_for(db, out.token, at=T0 + dt.timedelta(hours=1)) is None
    again = sign_in(db, "alice", PASSWORD, at=T0)
    sign_out(db, again.token, at=T0)
    assert session_for(db, again.token, at=T0) is None
    assert session_for(db, "forged-token", at=T0) is None


def test_disabling_an_account_ends_its_sessions_and_refuses_sign_in(db: Database) -> None:
    _make(db)
    out = sign_in(db, "alice", PASSWORD, at=T0)
    accounts.set_disabled(db, "alice", True, at=T0)
    assert session_for(db, out.token, at=T0) is None
    assert sign_in(db, "alice", PASSWORD, at=T0).refused == "bad_credentials"


def test_a_new_password_ends_every_session(db: Database) -> None:
    _make(db)
    out = sign_in(db, "alice", PASSWORD, at=T0)
    accounts.set_password(db, "alice", "another long password", at=T0, scrypt_n=FAST_SCRYPT)
    assert session_for(db, out.token, at=T0) is None
    assert sign_in(db, "alice", "another long password", at=T0).session is not None


def test_the_csrf_token_is_per_session_and_checked_exactly(db: Database) -> None:
    _make(db)
    a = sign_in(db, "alice", PASSWORD, at=T0).session
    b = sign_in(db, "alice", PASSWORD, at=T0).session
    assert a is not None and b is not None and a.csrf_token != b.csrf_token
    assert csrf_ok(a, a.csrf_token)
    assert not csrf_ok(a, b.csrf_token) and not csrf_ok(a, "") and not csrf_ok(a, None)


def test_roles_have_only_the_permissions_their_work_needs(db: Database) -> None:
    d = small_definition()
    admin = create_account(db, "root", "admin", None, PASSWORD, scrypt_n=FAST_SCRYPT, at=T0)
    clerk = create_account(
        db,
        "clerk",
        "commission_operator",
        "tik-a",
        PASSWORD,
        definition=d,
        scrypt_n=FAST_SCRYPT,
        at=T0,
    )
    viewer = create_account(db, "viewer", "observer", None, PASSWORD, scrypt_n=FAST_SCRYPT, at=T0)
    engineer = create_account(
        db, "eng", "cec_engineer", None, PASSWORD, scrypt_n=FAST_SCRYPT, at=T0
    )
    assert admin.can(Permission.MANAGE_ACCOUNTS) and not admin.can(Permission.ENTER_MANUAL)
    assert clerk.can(Permission.ENTER_MANUAL) and not clerk.can(Permission.MANAGE_ACCOUNTS)
    assert clerk.sees_commission("tik-a") and not clerk.sees_commission("tik-b")
    for ro in (viewer, engineer):
        assert ro.can(Permission.VIEW) and ro.sees_commission("tik-b")
        assert not ro.can(Permission.ENTER_MANUAL) and not ro.can(Permission.MANAGE_ACCOUNTS)


@pytest.mark.parametrize(
    ("username", "role", "commission", "password", "message"),
    [
        ("bob", "superuser", None, PASSWORD, "unknown role"),
        ("Bob Smith", "observer", None, PASSWORD, "a username is"),
        ("bob", "observer", None, "short", "at least"),
        ("bob", "commission_operator", None, PASSWORD, "must be bound"),
        ("bob", "commission_operator", "tik-nowhere", PASSWORD, "no commission"),
        ("bob", "observer", "tik-a", PASSWORD, "only a commission_operator"),
        ("alice", "observer", None, PASSWORD, "is taken"),
    ],
)
def test_create_account_refuses_what_it_cannot_honour(
    db: Database, username: str, role: str, commission: str | None, password: str, message: str
) -> None:
    _make(db)
    with pytest.raises(AccountError, match=message):
        create_account(
            db,
            username,
            role,
            commission,
            password,
            definition=small_definition(),
            scrypt_n=FAST_SCRYPT,
            at=T0,
        )
    assert [r["username"] for r in db.query("SELECT username FROM staff_accounts")] == ["alice"]


def test_sign_ins_and_lockouts_are_logged(db: Database) -> None:
    _make(db)
    for i in range(MAX_FAILURES):
        sign_in(db, "alice", f"guess {i}", at=T0)
    actions = [r["action"] for r in db.query("SELECT action FROM staff_log ORDER BY id")]
    assert actions[0] == "account_created"
    assert actions.count("sign_in_refused") == MAX_FAILURES
    assert actions[-1] == "account_locked"
