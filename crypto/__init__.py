"""Shailoo cryptography: keys, certificates, signed envelopes, hash chains, data at rest.

Every signed thing in Shailoo is an `crypto.envelope.Envelope`; every device
identity is an X.509 certificate issued by the CEC root (`crypto.certs`).
The byte-exact rules are in docs/crypto.md so that anyone can write a verifier.
"""
