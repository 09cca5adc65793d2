"""Password hashing off the event loop: argon2id for new hashes, the original's scrypt
format still verified (contract rest.md §3.2.2) and replaced on the next sign-in.

With the ``legacy`` scheme (``PASSWORD_HASH=legacy``, for a server the original may take
over again: Better Auth verifies only its scrypt format) new hashes are the original's
scrypt, a scrypt hash is kept as it is, and an argon2id one is replaced by scrypt on the
next sign-in.

Both argon2-cffi and ``hashlib.scrypt`` release the GIL while hashing (measured: see
benchmarks/bench_auth.py), so a thread pool runs them while the event loop keeps serving
sockets. The pool has one thread per CPU but one (at least one), and its threads run at a
lower priority, so the loop thread gets the CPU first. A semaphore admits at most one job
per thread, so the executor's own queue never grows; waiting requests queue on the
semaphore (bounded by the open connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: argon2id parameters (OWASP 2023 second recommendation: 19 MiB, 2 passes, 1 lane)
ARGON2_TIME_COST = 2
ARGON2_MEMORY_KIB = 19_456
ARGON2_PARALLELISM = 1
ARGON2_HASH_LEN = 32
ARGON2_SALT_LEN = 16

#: the original's scrypt parameters
SCRYPT_N = 16_384
SCRYPT_R = 16
SCRYPT_P = 1
SCRYPT_DKLEN = 64
_SCRYPT_MAXMEM = 64 * 1024 * 1024
T = TypeVar("T")
_LEGACY = re.compile(r"^([0-9a-f]{32}):([0-9a-f]{128})$")

#: ``PASSWORD_HASH`` values: the format new hashes are written in
ARGON2ID = "argon2id"
LEGACY = "legacy"
SCHEMES = (ARGON2ID, LEGACY)


def normalize(password: str) -> bytes:
    return unicodedata.normalize("NFKC", password).encode()


def legacy_scrypt_hash(password: str, salt_hex: str | None = None) -> str:
    """The original's format ``<salt hex>:<key hex>`` (the salt is the hex string's bytes)."""
    salt = salt_hex or secrets.token_hex(16)
    key = hashlib.scrypt(
        normalize(password),
        salt=salt.encode(),
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        dklen=SCRYPT_DKLEN,
        maxmem=_SCRYPT_MAXMEM,
    )
    return f"{salt}:{key.hex()}"


def is_legacy(stored: str) -> bool:
    return _LEGACY.match(stored) is not None


#: niceness added to hashing threads, so the event loop thread wins the CPU when both want it
HASH_THREAD_NICENESS = 10


def _lower_priority() -> None:
    """On Linux a thread has its own nice value: lower the hashing thread's."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_THREAD_NICENESS)


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    #: the stored hash is not in the scheme's format (argon2id: with the current parameters)
    needs_rehash: bool


class PasswordHasher:
    def __init__(self, threads: int | None = None, scheme: str = ARGON2ID) -> None:
        if scheme not in SCHEMES:
            raise ValueError(f"unknown password hash scheme {scheme!r}")
        self.legacy = scheme == LEGACY
        self.threads = threads or max(1, (os.cpu_count() or 2) - 1)
        self._pool = ThreadPoolExecutor(
            self.threads, thread_name_prefix="password", initializer=_lower_priority
        )
        self._admit = asyncio.Semaphore(self.threads)
        self._argon2 = Argon2Hasher(
            time_cost=ARGON2_TIME_COST,
            memory_cost=ARGON2_MEMORY_KIB,
            parallelism=ARGON2_PARALLELISM,
            hash_len=ARGON2_HASH_LEN,
            salt_len=ARGON2_SALT_LEN,
            type=Type.ID,
        )
        # Unknown emails are checked against this, so they cost what a wrong password costs.
        self._dummy = self._argon2.hash(secrets.token_hex(16))

    # -- blocking work (runs in the pool) ----------------------------------------------
    def hash_sync(self, password: str) -> str:
        if self.legacy:
            return legacy_scrypt_hash(password)
        return self._argon2.hash(normalize(password))

    def verify_sync(self, stored: str | None, password: str) -> Verdict:
        if stored is None:
            self._verify_argon2(self._dummy, password)
            return Verdict(False, False)
        legacy = _LEGACY.match(stored)
        if legacy is not None:
            computed = legacy_scrypt_hash(password, legacy.group(1))
            ok = hmac.compare_digest(computed, stored)
            return Verdict(ok, ok and not self.legacy)
        if not stored.startswith("$argon2"):
            return Verdict(False, False)
        ok = self._verify_argon2(stored, password)
        return Verdict(ok, ok and (self.legacy or self._argon2.check_needs_rehash(stored)))

    def _verify_argon2(self, stored: str, password: str) -> bool:
        try:
            return bool(self._argon2.verify(stored, normalize(password)))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    # -- async API ---------------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._admit:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, fn, *args)

    async def hash(self, password: str) -> str:
        return await self._run(self.hash_sync, password)

    async def verify(self, stored: str | None, password: str) -> Verdict:
        """Check ``password`` against ``stored``; ``None`` (no such user) burns the same time."""
        return await self._run(self.verify_sync, stored, password)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
