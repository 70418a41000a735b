"""MFA strength: the class of the strongest method a user registered, after Microsoft's authentication strengths.

Conditional Access ranks methods phishing-resistant (FIDO2 and passkeys, Windows Hello for Business and
platform credentials, certificate-based multifactor) above passwordless phone sign-in, above app push and
one-time codes, above SMS and voice; Microsoft's Zero Trust assessment groups users the same way. A user is
as phishable as the weakest method they can still sign in with, but what an organisation controls, and what
this measures, is whether each user has at least one method of a class: that is the class they can be
required to use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)

# Strongest first: the order of this table is the ranking.
CLASSES: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "phishing_resistant",
        frozenset(
            {
                "fido2",
                "fido2SecurityKey",
                "passKeyDeviceBound",
                "passKeyDeviceBoundAuthenticator",
                "passKeyDeviceBoundWindowsHello",
                "passKeySynced",
                "windowsHelloForBusiness",
                "macOsSecureEnclaveKey",
                "x509CertificateMultiFactor",
            }
        ),
    ),
    ("passwordless", frozenset({"microsoftAuthenticatorPasswordless"})),
    ("app", frozenset({"microsoftAuthenticatorPush", "softwareOneTimePasscode", "hardwareOneTimePasscode"})),
    ("phone", frozenset({"mobilePhone", "alternateMobilePhone", "officePhone", "sms"})),
    # Not a second factor one can require for sign-in: recovery or onboarding only.
    ("none", frozenset({"email", "securityQuestion", "temporaryAccessPass"})),
)
STRENGTHS = tuple(name for name, _ in CLASSES)
_RANK = {method: rank for rank, (_, methods) in enumerate(CLASSES) for method in methods}
_NONE = len(CLASSES) - 1
_reported: set[str] = set()  # unknown names already logged, process-wide: once per name, not once per poll
_REPORT_AT_MOST = 256  # names, so that a hostile Graph cannot grow the set (or the log) without bound


def strength_of(methods: Iterable[str]) -> str:
    """The class of the strongest method; a name not in the table never raises the class."""
    return STRENGTHS[min((_RANK.get(method, _NONE) for method in methods), default=_NONE)]


def log_unknown(methods: Iterable[str]) -> None:
    """Log each method name without a class once, so that the table can be extended.

    Called with a validated report's methods only: a hostile page (hundreds of made-up names) fails the poll
    with one line, not one line per name.
    """
    for method in methods:
        if method not in _RANK and method not in _reported and len(_reported) < _REPORT_AT_MOST:
            _reported.add(method)
            log.warning(
                "methodsRegistered holds %r, which has no MFA strength class yet: counted by method, graded as "
                "if absent",
                method,
            )
