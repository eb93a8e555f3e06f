"""Redis key names: an account is named by a hash, so no secret ever appears in a key."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

import httpx

from .._client import account_identity
from .._setting_validators import invalid

if TYPE_CHECKING:
    from .._client import AgileClient

__all__ = ["account_key", "account_of", "limiter_prefix"]

_ACCOUNT_KEY = re.compile(r"[0-9a-f]{16}")


def account_key(base_url: str | httpx.URL, credential: str) -> str:
    """The name of an account in Redis keys: 16 hex digits, never the secret itself.

    The first 16 hex digits of ``sha256(base_url + "\\n" + credential)``, where ``base_url`` is
    normalised (lower-case host, a trailing ``/``) and ``credential`` is the API key or, for
    Basic auth, the user name (never the password, so changing it keeps the account's keys).
    Every worker of one account must derive the same name; passing the
    :class:`~agile_async.AgileClient` to :class:`RedisLimiter` does it for you.
    """
    if not credential:
        raise invalid("credential", "must be the API key or the Basic-auth user name")
    url = httpx.URL(str(base_url))
    if not url.path.endswith("/"):
        url = url.copy_with(path=url.path + "/")
    digest = hashlib.sha256(f"{url}\n{credential}".encode())
    return digest.hexdigest()[:16]


def account_of(account: AgileClient | str) -> str:
    """An account's key name, from a client or from :func:`account_key`'s result."""
    if isinstance(account, str):
        if not _ACCOUNT_KEY.fullmatch(account):
            raise invalid(  # never the value: it may be a secret passed by mistake
                "account",
                "must be an AgileClient or the result of account_key(base_url, credential) "
                "(16 hex digits): a name that cannot carry a secret into Redis keys",
            )
        return account
    return account_key(account.base_url, _identity(account))


def _identity(client: AgileClient) -> str:
    """The API key, or the Basic-auth user name: what names the account, not the password."""
    return account_identity(client)


def limiter_prefix(account: str) -> str:
    """The hash-tagged prefix of an account's limiter keys: ``{agile:l:<acct>}``."""
    return f"{{agile:l:{account}}}"
