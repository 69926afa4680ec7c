"""Cryptography: the master key, sealing at rest, keyed hashes and the signing key ring."""
