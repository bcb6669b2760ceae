"""How `paddy` commands call the API (`paddy demo`, `paddy predict DIR`): one client with the key,
and one way to say why a call failed, raised as the command's own error."""

from typing import Any

import httpx


def api_client(api_url: str, api_key: str) -> httpx.Client:
    return httpx.Client(base_url=api_url.rstrip("/"), timeout=30, headers={"X-API-Key": api_key})


def call_api(
    client: httpx.Client, error: type[Exception], refused: str, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    """The answer of a successful call; else error(message): the API unreachable, the key
    refused, or `refused` with the status {code} and FastAPI's {detail} filled in."""
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as failure:
        raise error(f"cannot reach the API at {client.base_url}: {failure}; is `paddy up` running?") from None
    if response.status_code == 401:
        raise error("the API refused the key: pass --api-key (or set PADDY_API_KEY) to the API's key")
    if not response.is_success:
        raise error(refused.format(code=response.status_code, detail=api_message(response)))
    return response


def api_message(response: httpx.Response) -> str:
    """FastAPI's `detail`: a string, or a list of validation errors naming their fields."""
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        return response.text
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(map(str, error.get('loc', [])))}: {error.get('msg')}" for error in detail)
    return str(detail)
