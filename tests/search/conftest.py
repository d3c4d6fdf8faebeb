"""Fixtures for search tests: a client with a small, known data set."""

from __future__ import annotations

import httpx

JSON = {"content-type": "application/fhir+json"}


async def put(client: httpx.AsyncClient, resource: dict) -> dict:
    r = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource,
                         headers=JSON)
    assert r.status_code in (200, 201), r.text
    return r.json()


async def ids(client: httpx.AsyncClient, url: str) -> list[str]:
    r = await client.get(url)
    assert r.status_code == 200, r.text
    bundle = r.json()
    return sorted(e["resource"]["id"] for e in bundle.get("entry", ())
                  if e.get("search", {}).get("mode") == "match")


async def ordered_ids(client: httpx.AsyncClient, url: str) -> list[str]:
    bundle = (await client.get(url)).json()
    return [e["resource"]["id"] for e in bundle.get("entry", ())
            if e.get("search", {}).get("mode") == "match"]
