"""Who a request to the fake provider is: the account, the documentation's test user, or nobody.

The provider accepts two credentials for an account, ``X-Api-Key`` or Basic. Its Italian page
adds a third kind: the default values of its Postman collection (``user`` / ``pass``, API key
``api-value``) "are test credentials that simulate the send without actually sending SMS", so
a payload can be checked before real credentials are used. The fake accepts them as
*simulation-only* credentials (SPEC §6): the request is checked like any other, and a send is
treated as ``simulation: true`` whatever its body says, so nothing is charged, delivered or
reported.

The account's own credentials win: a fake configured with ``api_key="api-value"`` sends for
real with that key. Secrets are compared in constant time and never stored in a record.
"""

from __future__ import annotations

from typing import Literal

from .._asgi import authorization_scheme, basic_credentials, same_secret
from ._records import AuthMode

__all__ = [
    "SIMULATION_API_KEY",
    "SIMULATION_PASSWORD",
    "SIMULATION_USERNAME",
    "Identity",
    "authenticate",
    "client_credentials",
]

#: The API key of the provider's Postman collection: simulates, never sends (Italian page).
SIMULATION_API_KEY = "api-value"
#: The Basic-auth user of the provider's Postman collection.
SIMULATION_USERNAME = "user"
#: The Basic-auth password of the provider's Postman collection.
SIMULATION_PASSWORD = "pass"

#: Whose credentials a request carried: the account's, or the simulation-only test values.
Identity = Literal["account", "simulation"]


def _same(given: bytes, expected: str | None) -> bool:
    return expected is not None and same_secret(given, expected.encode())


def authenticate(
    api_key_header: str | None,
    authorization_header: str | None,
    *,
    api_key: str | None,
    username: str | None,
    password: str | None,
    simulation_credentials: bool,
) -> tuple[AuthMode | None, Identity | None]:
    """Which mechanism a request used, and whose credentials it carried (``None``: wrong).

    ``X-Api-Key`` wins when both headers are present, as it is the one the provider
    recommends.

    Args:
        api_key_header: the request's ``X-Api-Key``.
        authorization_header: the request's ``Authorization``.
        api_key: the account's key; ``None`` when API-key auth is off.
        username: the account's Basic user; Basic auth is off unless both it and
            ``password`` are set.
        password: the account's Basic password.
        simulation_credentials: whether the documentation's test values are accepted.
    """
    if api_key_header is not None:
        # latin-1 back to the header's own bytes: the key is compared as it was sent.
        given_key = api_key_header.encode("latin-1")
        account = _same(given_key, api_key)
        test = simulation_credentials and _same(given_key, SIMULATION_API_KEY)
        return "api_key", _identity(account, test)
    if authorization_scheme(authorization_header) != "basic":
        return None, None
    credentials = basic_credentials(authorization_header)
    if credentials is None:
        return "basic", None
    user, secret = credentials
    # Compare every half, always: an early exit would tell a caller which one was wrong.
    account_user = _same(user, username if password is not None else None)
    account_password = _same(secret, password if username is not None else None)
    test_user = _same(user, SIMULATION_USERNAME)
    test_password = _same(secret, SIMULATION_PASSWORD)
    test = simulation_credentials and test_user and test_password
    return "basic", _identity(account_user and account_password, test)


def client_credentials(
    api_key: str | None, username: str | None, password: str | None
) -> dict[str, str]:
    """The ``AgileClient`` keyword arguments for an account: its API key, else Basic."""
    if api_key is not None:
        return {"api_key": api_key}
    if username is None or password is None:
        raise ValueError("the account has neither an API key nor Basic credentials")
    return {"username": username, "password": password}


def _identity(account: bool, test: bool) -> Identity | None:
    if account:
        return "account"
    return "simulation" if test else None
