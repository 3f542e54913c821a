"""Telling running endpoints about a new champion: the only place the training side talks
to serving (DESIGN: serving is separate; the endpoint follows the registry alias, and
automation only asks it to look now instead of at its next poll)."""

from __future__ import annotations

import os


def endpoint_urls() -> list[str]:
    """Running endpoints to tell about a new champion (`ML_ASSETS_ENDPOINTS`, comma-separated)."""
    return [
        u.strip().rstrip("/")
        for u in os.environ.get("ML_ASSETS_ENDPOINTS", "").split(",")
        if u.strip()
    ]


def notify_endpoints(urls: list[str], timeout_s: float = 5.0) -> dict[str, str]:
    """Ask each endpoint to reload now; one that cannot be reached picks the alias up on its
    own next poll, so a failure here is reported, not raised."""
    import httpx  # only when a model is promoted: the code location loads without it

    key = os.environ.get("ML_ASSETS_API_KEY", "").split(",")[0].strip()
    headers = {"X-API-Key": key} if key else {}
    outcome = {}
    for url in urls:
        try:
            response = httpx.post(f"{url}/admin/reload", headers=headers, timeout=timeout_s)
            outcome[url] = f"{response.status_code}"
        except httpx.HTTPError as error:
            outcome[url] = f"unreachable: {error}"
    return outcome
