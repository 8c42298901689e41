"""Token flows, the way a real suite guarded them: skipped when the test token is missing.

In the incident this product exists for, every auth test was skipped for a missing token and the run was green.
The demo runs this tier without the token, and the bot must call that green run untrusted.
"""

import os
import urllib.request

import pytest

TOKEN = os.environ.get("STAGING_TEST_JWT_TOKEN")
needs_token = pytest.mark.skipif(not TOKEN, reason="STAGING_TEST_JWT_TOKEN is not set")


def _get(path: str) -> int:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    request = urllib.request.Request(os.environ["STAGING_AUTH_URL"] + path, headers=headers)
    with urllib.request.urlopen(request, timeout=5) as answer:
        status: int = answer.status
        return status


@needs_token
def test_verify_accepts_the_test_token() -> None:
    assert _get("/verify") == 200


@needs_token
def test_refresh_issues_a_new_token() -> None:
    assert _get("/verify") == 200


@needs_token
def test_logout_revokes_the_token() -> None:
    assert _get("/verify") == 200
