"""Staff accounts of the CEC server room and the territorial commissions.

Four roles, each allowed only what its work needs:

- ``admin``: manages accounts (nothing else: who creates accounts does not enter results);
- ``cec_engineer``: the server room, alerts and reconciliation, for the whole country;
- ``commission_operator``: bound to one territorial commission; enters the manual-count
  protocols of that commission's stations and sees only that commission;
- ``observer``: reads what the server room shows, changes nothing.

Passwords are hashed with scrypt (a fresh salt per password, the parameters stored with
the hash so they can be raised later without breaking old hashes) and compared in
constant time.  After `MAX_FAILURES` wrong passwords in a row an account is locked for
`LOCKOUT`; an admin can unlock it early.  A session is a random token in a cookie; the
database keeps only its SHA-256, so a copy of the database does not let anyone in.  Each
session has its own CSRF token, which every form posts back.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from central.db import Database, Tx
from election.definition import ElectionDefinition

MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
SESSION_LIFETIME = dt.timedelta(hours=12)  # one election night's shift
MIN_PASSWORD = 10
MAX_PASSWORD = 256
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{2,63}$")

# scrypt cost: 2**15 * 8 * 128 bytes = 32 MiB and about 0.1 s per sign-in.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32


class Role(StrEnum):
    ADMIN = "admin"
    CEC_ENGINEER = "cec_engineer"
    COMMISSION_OPERATOR = "commission_operator"
    OBSERVER = "observer"


class Permission(StrEnum):
    MANAGE_ACCOUNTS = "manage_accounts"
    VIEW = "view"  # the live page, alerts, reconciliation, protocols (scoped for operators)
    ENTER_MANUAL = "enter_manual"


PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset({Permission.MANAGE_ACCOUNTS, Permission.VIEW}),
    Role.CEC_ENGINEER: frozenset({Permission.VIEW}),
    Role.COMMISSION_OPERATOR: frozenset({Permission.VIEW, Permission.ENTER_MANUAL}),
    Role.OBSERVER: frozenset({Permission.VIEW}),
}


class AccountError(ValueError):
    """An account cannot be created or changed as asked; the message says why."""


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    role: Role
    commission_id: str | None
    disabled: bool = False

    def can(self, permission: Permission) -> bool:
        return not self.disabled and permission in PERMISSIONS[self.role]

    def sees_commission(self, commission_id: str) -> bool:
        """Operators see only their own commission; every other role sees all."""
        return self.commission_id is None or self.commission_id == commission_id


@dataclass(frozen=True)
class Session:
    account: Account
    csrf_token: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in attempt: a session, or why not (`refused` key)."""

    session: Session | None
    token: str | None
    refused: str | None = None  # "bad_credentials" | "locked"
    locked_until: dt.datetime | None = None


# --- passwords ---------------------------------------------------------------------------------
def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A self-describing scrypt hash with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, n, r, p)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """True if `password` produces `stored`; constant time in the key comparison."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        got = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p), len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int = KEY_BYTES) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        dklen=dklen,
        maxmem=256 * r * n + 1024 * 1024,
    )


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


_DUMMY_HASH = hash_password("not a password of anyone", n=SCRYPT_N)


# --- accounts ----------------------------------------------------------------------------------
def create_account(
    db: Database,
    username: str,
    role: str,
    commission_id: str | None,
    password: str,
    *,
    definition: ElectionDefinition | None = None,
    at: dt.datetime | None = None,
    scrypt_n: int = SCRYPT_N,
    by: str = "",
) -> Account:
    """Create a staff account (the CLI's `shailoo central account add`).

    A commission operator must name a commission (checked against `definition` when
    given); no other role may.  Refuses a taken username or a short password.  `by` is
    the admin who asked (the staff log says who created whom; empty from the CLI).
    """
    at = at or dt.datetime.now(dt.UTC)
    try:
        role_ = Role(role)
    except ValueError:
        raise AccountError(
            f"unknown role {role!r}: use one of {', '.join(r.value for r in Role)}"
        ) from None
    if not USERNAME_RE.match(username):
        raise AccountError(
            "a username is 3-64 characters: lower-case Latin letters, digits, '.', '_', '-', "
            "starting with a letter or digit"
        )
    _check_password(password)
    if role_ is Role.COMMISSION_OPERATOR:
        if not commission_id:
            raise AccountError("a commission_operator must be bound to a commission")
        if definition is not None:
            try:
                definition.commission(commission_id)
            except KeyError:
                raise AccountError(f"no commission {commission_id!r} in the election") from None
    elif commission_id:
        raise AccountError(f"only a commission_operator is bound to a commission, not a {role}")
    stamp = _iso(at)
    with db.transaction() as tx:
        if tx.one("SELECT id FROM staff_accounts WHERE username = ?", (username,)):
            raise AccountError(f"the username {username!r} is taken")
        tx.execute(
            "INSERT INTO staff_accounts (username, role, commission_id, password_hash, "
            "created_at, password_set_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                username,
                role_.value,
                commission_id or None,
                hash_password(password, n=scrypt_n),
                stamp,
                stamp,
            ),
        )
        log_action(
            tx,
            at,
            username,
            "account_created",
            f"role={role_.value} commission={commission_id or '-'}" + _by(by),
        )
        row = tx.one("SELECT * FROM staff_accounts WHERE username = ?", (username,))
    assert row is not None
    return _account(row)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"a password has at most {MAX_PASSWORD} characters")


def set_password(
    db: Database,
    username: str,
    password: str,
    *,
    at: dt.datetime,
    scrypt_n: int = SCRYPT_N,
    by: str = "",
) -> None:
    """Replace a password; every session of the account ends and any lock is lifted."""
    _check_password(password)
    with db.transaction() as tx:
        row = _row_by_name(tx, username)
        tx.execute(
            "UPDATE staff_accounts SET password_hash = ?, password_set_at = ?, "
            "failed_attempts = 0, locked_until = NULL WHERE id = ?",
            (hash_password(password, n=scrypt_n), _iso(at), row["id"]),
        )
        tx.execute("DELETE FROM staff_sessions WHERE account_id = ?", (row["id"],))
        log_action(tx, at, username, "password_set", _by(by))


def set_disabled(
    db: Database, username: str, disabled: bool, *, at: dt.datetime, by: str = ""
) -> None:
    """Disable (ending every session) or re-enable an account; accounts are never deleted."""
    with db.transaction() as tx:
        row = _row_by_name(tx, username)
        tx.execute(
            "UPDATE staff_accounts SET disabled = ? WHERE id = ?", (int(disabled), row["id"])
        )
        if disabled:
            tx.execute("DELETE FROM staff_sessions WHERE account_id = ?", (row["id"],))
        log_action(tx, at, username, "account_disabled" if disabled else "account_enabled", _by(by))


def unlock(db: Database, username: str, *, at: dt.datetime, by: str = "") -> None:
    """Lift a lock-out before it expires (an admin, after checking who it was)."""
    with db.transaction() as tx:
        row = _row_by_name(tx, username)
        tx.execute(
            "UPDATE staff_accounts SET failed_attempts = 0, locked_until = NULL WHERE id = ?",
            (row["id"],),
        )
        log_action(tx, at, username, "account_unlocked", _by(by))


def get_account(db: Database | Tx, username: str) -> Account | None:
    row = db.one("SELECT * FROM staff_accounts WHERE username = ?", (username,))
    return _account(row) if row else None


def list_accounts(db: Database) -> list[dict[str, object]]:
    """Every account with its lock state, for the admin's page (no hashes)."""
    rows = db.query(
        "SELECT username, role, commission_id, failed_attempts, locked_until, disabled, "
        "created_at FROM staff_accounts ORDER BY username"
    )
    return [dict(r) for r in rows]


def _row_by_name(tx: Tx, username: str) -> dict[str, object]:
    row = tx.one("SELECT * FROM staff_accounts WHERE username = ?", (username,))
    if row is None:
        raise AccountError(f"no account {username!r}")
    return row


def _account(row: dict[str, object]) -> Account:
    return Account(
        id=int(row["id"]),  # type: ignore[call-overload]
        username=str(row["username"]),
        role=Role(str(row["role"])),
        commission_id=str(row["commission_id"]) if row["commission_id"] else None,
        disabled=bool(row["disabled"]),
    )


# --- signing in --------------------------------------------------------------------------------
def sign_in(
    db: Database,
    username: str,
    password: str,
    *,
    at: dt.datetime,
    lifetime: dt.timedelta = SESSION_LIFETIME,
) -> SignIn:
    """Check a password and open a session; count failures and lock after too many.

    The answer for an unknown user, a disabled account and a wrong password is the same
    (and costs the same time), so sign-in does not reveal which usernames exist.  A
    locked account is refused even with the right password until the lock ends.
    """
    username = username.strip().lower()
    row = db.one("SELECT * FROM staff_accounts WHERE username = ?", (username,))
    if row is None:
        verify_password(password, _DUMMY_HASH)
        with db.transaction() as tx:
            log_action(tx, at, username[:64], "sign_in_refused", "unknown user")
        return SignIn(None, None, "bad_credentials")
    locked_until = _parse(row["locked_until"])
    if locked_until is not None and locked_until > at:
        verify_password(password, _DUMMY_HASH)
        with db.transaction() as tx:
            log_action(tx, at, username, "sign_in_refused", "locked")
        return SignIn(None, None, "locked", locked_until)
    good = verify_password(password, str(row["password_hash"]))
    with db.transaction() as tx:
        if not good or row["disabled"]:
            if good:  # disabled: not a guessing attempt, but no way in either
                log_action(tx, at, username, "sign_in_refused", "disabled")
                return SignIn(None, None, "bad_credentials")
            tx.execute(
                "UPDATE staff_accounts SET failed_attempts = failed_attempts + 1 WHERE id = ?",
                (row["id"],),
            )
            log_action(tx, at, username, "sign_in_refused", "wrong password")
            now = tx.one("SELECT failed_attempts FROM staff_accounts WHERE id = ?", (row["id"],))
            if now is not None and int(now["failed_attempts"]) >= MAX_FAILURES:
                until = at + LOCKOUT
                tx.execute(
                    "UPDATE staff_accounts SET failed_attempts = 0, locked_until = ? WHERE id = ?",
                    (_iso(until), row["id"]),
                )
                log_action(tx, at, username, "account_locked", f"until {_iso(until)}")
                return SignIn(None, None, "locked", until)
            return SignIn(None, None, "bad_credentials")
        tx.execute(
            "UPDATE staff_accounts SET failed_attempts = 0, locked_until = NULL WHERE id = ?",
            (row["id"],),
        )
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        expires = at + lifetime
        tx.execute(
            "INSERT INTO staff_sessions (token_hash, account_id, csrf_token, created_at, "
            "expires_at) VALUES (?, ?, ?, ?, ?)",
            (_token_hash(token), row["id"], csrf, _iso(at), _iso(expires)),
        )
        tx.execute("DELETE FROM staff_sessions WHERE expires_at < ?", (_iso(at),))
        log_action(tx, at, username, "signed_in")
    return SignIn(Session(_account(row), csrf, expires), token)


def session_for(db: Database, token: str | None, *, at: dt.datetime) -> Session | None:
    """The live session of a cookie's token, or None (unknown, expired, account disabled)."""
    if not token or len(token) > 200:
        return None
    row = db.one(
        "SELECT s.csrf_token, s.expires_at, a.* FROM staff_sessions s "
        "JOIN staff_accounts a ON a.id = s.account_id WHERE s.token_hash = ?",
        (_token_hash(token),),
    )
    if row is None or row["disabled"]:
        return None
    expires = _parse(row["expires_at"])
    if expires is None or expires <= at:
        return None
    return Session(_account(row), str(row["csrf_token"]), expires)


def sign_out(db: Database, token: str | None, *, at: dt.datetime) -> None:
    """End the session of this token (nothing happens for an unknown one)."""
    if not token:
        return
    with db.transaction() as tx:
        row = tx.one(
            "SELECT a.username FROM staff_sessions s JOIN staff_accounts a "
            "ON a.id = s.account_id WHERE s.token_hash = ?",
            (_token_hash(token),),
        )
        tx.execute("DELETE FROM staff_sessions WHERE token_hash = ?", (_token_hash(token),))
        if row:
            log_action(tx, at, str(row["username"]), "signed_out")


def csrf_ok(session: Session, posted: str | None) -> bool:
    """True if a form posted this session's CSRF token (constant-time)."""
    return bool(posted) and hmac.compare_digest(
        session.csrf_token.encode(), (posted or "").encode()
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# --- the staff log -----------------------------------------------------------------------------
def log_action(tx: Tx, at: dt.datetime, username: str, action: str, detail: str = "") -> None:
    """One line of who did what, kept with the data it concerns (same transaction)."""
    tx.execute(
        "INSERT INTO staff_log (at, username, action, detail) VALUES (?, ?, ?, ?)",
        (_iso(at), username, action, detail),
    )


def _by(who: str) -> str:
    return f" by {who}" if who else ""


def _iso(at: dt.datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return at.astimezone(dt.UTC).isoformat(timespec="seconds")


def _parse(value: object) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(str(value))
