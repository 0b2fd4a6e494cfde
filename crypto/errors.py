"""Exception types of the crypto package.

All derive from `CryptoError` (a `ValueError`), so a caller that handles
untrusted input (central ingest, a station reading a bundle) can refuse
anything the package rejects with one `except`, while tests and logs still see
exactly which check failed.
"""

from __future__ import annotations


class CryptoError(ValueError):
    """Base of every error raised by `crypto` for bad or untrusted input."""


class KeyFileError(CryptoError):
    """A key file is not in a form Shailoo uses (wrong type, not PEM, ...)."""


class KeyDecryptError(KeyFileError):
    """An encrypted private key could not be opened: wrong passphrase or damaged file."""


class CertificateError(CryptoError):
    """A certificate does not verify or does not carry the binding it must."""


class EnvelopeError(CryptoError):
    """Envelope bytes or fields are malformed (before any signature is checked)."""


class SignatureError(CryptoError):
    """A signature does not verify, or the signer is not who the envelope names."""


class BindingError(SignatureError):
    """The certificate is valid but bound to a different station, device or election."""


class DecryptError(CryptoError):
    """An at-rest blob could not be decrypted: wrong passphrase, tampering or not a blob."""


class ChainError(CryptoError):
    """A hash-chain argument is malformed (e.g. a previous hash that is not 64 hex)."""
