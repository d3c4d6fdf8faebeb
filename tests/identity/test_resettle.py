"""A Person holds together by evidence, never through a record that left it (docs/mpi.md "Holding
together"); the Person summary by survivorship; link, unlink, merge and unmerge events; the
identity space's own CapabilityStatement. Real store (SQLite), real app, requests over ASGI.

Spec: https://hl7.org/fhir/R4/person.html, https://hl7.org/fhir/R4/capabilitystatement.html
"""

from __future__ import annotations

from typing import Any

import pytest

from careweave.store.sql import mpi as db
from tests.identity.conftest import Mpi
from tests.identity.test_linking import links, params
from tests.mpi.builders import NHS_A, NHS_B, NHS_C, nhs_identifier, patient

pytestmark = pytest.mark.anyio

# b1 is the bridge: a1 and b1 share a verified NHS number; b1 and c1 an address and a mobile; a1 and
# c1 share only name, birth date and sex, which the matcher never links on alone (uncorroborated)
MOVED = {"postcode": "M1 1AE", "line": "5 Canal Street", "phones": ("07700900123",)}


async def chain(mpi: Mpi) -> str:
    await mpi.put("trust-a", patient("a1", nhs=NHS_A))
    await mpi.put("trust-b", patient("b1", nhs=NHS_A, **MOVED))
    await mpi.put("gp-c", patient("c1", nhs=None, **MOVED))
    await mpi.settle()
    person = await mpi.person_of("trust-a", "a1")
    assert person is not None
    assert await mpi.person_of("trust-b", "b1") == person
    assert await mpi.person_of("gp-c", "c1") == person  # through b1 only
    return person


async def kinds_after(mpi: Mpi, seq: int) -> list[tuple[str, str, str]]:
    """(kind, target organisation, source) of the outbox rows after ``seq``."""
    names = {t.key: t.name for t in await mpi.system.store.tenants()}
    return [
        (e.kind, names[e.tid], f"{names[e.source_tid]}|{e.source_ref}")
        for e in await mpi.identity.outbox_after(seq, 1000)
    ]


async def last_seq(mpi: Mpi) -> int:
    rows = await mpi.identity.outbox_after(0, 100_000)
    return rows[-1].seq if rows else 0


async def assert_split_with_review(mpi: Mpi, person: str) -> None:
    a, c = await mpi.person_of("trust-a", "a1"), await mpi.person_of("gp-c", "c1")
    assert a == person and c is not None and c != person  # the oldest part keeps the Person
    assert links(await mpi.person(str(c))) == {mpi.url("gp-c", "c1"): "level3"}
    assert links(await mpi.person(person)) == {
        mpi.url("trust-a", "a1"): "level3",
        mpi.url("gp-c", "c1"): "level2",  # they still score possible: a reviewer decides
    }
    (item,) = await mpi.identity.reviews()
    assert item.person == person


async def test_deleting_the_bridge_splits_the_person(mpi: Mpi) -> None:
    person = await chain(mpi)
    seq = await last_seq(mpi)
    await mpi.delete("trust-b", "b1")
    await mpi.settle()
    await assert_split_with_review(mpi, person)
    events = await kinds_after(mpi, seq)
    assert ("unlinked", "trust-a", "trust-b|Patient/b1") in events  # b1 left: a1's organisation
    assert ("unlinked", "gp-c", "gp-c|Patient/c1") in events  # c1 split off: its own organisation
    assert ("unlinked", "trust-a", "gp-c|Patient/c1") in events


async def test_unlinking_the_bridge_splits_the_person(mpi: Mpi) -> None:
    person = await chain(mpi)
    response = await mpi.client.post(
        f"/mpi/fhir/Person/{person}/$unlink",
        json=params(patient=mpi.url("trust-b", "b1"), actor="reviewer", reason="a different John Smith"),
    )
    assert response.status_code == 200, response.text
    assert await mpi.person_of("trust-b", "b1") not in (None, person)
    await assert_split_with_review(mpi, person)


async def test_an_update_that_moves_the_bridge_away_splits_the_person(mpi: Mpi) -> None:
    person = await chain(mpi)
    other = patient("b1", nhs=NHS_C, given=("Mary",), family="Ng", birth="1990-09-09", gender="female")
    await mpi.put("trust-b", other)
    await mpi.settle()
    assert await mpi.person_of("trust-b", "b1") not in (None, person)
    await assert_split_with_review(mpi, person)


async def test_an_update_that_removes_the_evidence_splits_the_person(mpi: Mpi) -> None:
    person = await chain(mpi)
    # b1 still fits a1 (same verified NHS number) but no longer shares c1's address or mobile
    await mpi.put("trust-b", patient("b1", nhs=NHS_A, postcode="BD7 1AB", line="4 Mill Street"))
    await mpi.settle()
    assert await mpi.person_of("trust-b", "b1") == person
    c = await mpi.person_of("gp-c", "c1")
    assert c is not None and c != person
    assert links(await mpi.person(person))[mpi.url("gp-c", "c1")] == "level2"


async def test_a_person_that_holds_together_is_not_split(mpi: Mpi) -> None:
    await mpi.put("trust-a", patient("a1", nhs=NHS_A))
    await mpi.put("trust-b", patient("b1", nhs=NHS_A, given=("Jon",)))
    await mpi.put("gp-c", patient("c1", nhs=NHS_A))
    await mpi.settle()
    person = await mpi.person_of("trust-a", "a1")
    await mpi.delete("trust-b", "b1")
    await mpi.settle()
    assert await mpi.person_of("gp-c", "c1") == person
    assert await mpi.identity.reviews() == []


async def test_manual_links_are_kept_when_the_bridge_leaves(mpi: Mpi) -> None:
    person = await chain(mpi)
    for op in ("$unlink", "$link"):  # c1 is now in the Person by a human's decision (level4)
        response = await mpi.client.post(
            f"/mpi/fhir/Person/{person}/{op}",
            json=params(patient="gp-c/Patient/c1", actor="reviewer", reason="checked by phone"),
        )
        assert response.status_code == 200, response.text
    await mpi.delete("trust-b", "b1")
    await mpi.settle()
    assert await mpi.person_of("gp-c", "c1") == person
    assert links(await mpi.person(person)) == {
        mpi.url("trust-a", "a1"): "level3",
        mpi.url("gp-c", "c1"): "level4",
    }


async def test_an_automatic_record_joined_after_a_manual_link_still_needs_evidence(mpi: Mpi) -> None:
    await mpi.put("trust-a", patient("a1", nhs=NHS_A))
    await mpi.settle()
    person = str(await mpi.person_of("trust-a", "a1"))
    # x1 is linked by hand (only name and birth date agree), then c1 joins through x1
    await mpi.put("trust-b", patient("x1", nhs=None, **MOVED))
    await mpi.settle()
    response = await mpi.client.post(
        f"/mpi/fhir/Person/{person}/$link",
        json=params(patient="trust-b/Patient/x1", actor="reviewer", reason="confirmed"),
    )
    assert response.status_code == 200, response.text
    await mpi.put("gp-c", patient("c1", nhs=None, **MOVED))
    await mpi.settle()
    assert await mpi.person_of("gp-c", "c1") == person
    await mpi.delete("trust-b", "x1")
    await mpi.settle()
    assert await mpi.person_of("gp-c", "c1") != person  # a1 and c1 were only ever tied by x1


# -- survivorship --------------------------------------------------------------------------------
async def test_the_person_summary_follows_the_survivorship_rule(mpi: Mpi) -> None:
    a1 = patient("a1", nhs=NHS_A, given=("John",))
    await mpi.put("trust-a", a1)
    b1 = patient("b1", nhs=NHS_A, status="02", given=("Jonathan",), birth="1980-05-17")
    b1["identifier"].append(nhs_identifier(NHS_B, status=None, use="old"))
    await mpi.put("trust-b", b1)
    await mpi.settle()
    person = str(await mpi.person_of("trust-a", "a1"))
    assert await mpi.person_of("trust-b", "b1") == person
    body = await mpi.person(person)
    # the verified record wins although b1 changed more recently
    assert body["name"][0]["given"] == ["John"]
    assert body["identifier"] == [
        {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_A, "use": "official"},
        {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_B, "use": "old"},
    ]
    # without a verified member, the most recently changed record speaks for the Person
    await mpi.put("trust-a", patient("a1", nhs=NHS_A, status="02", given=("John",)))
    await mpi.put("trust-b", patient("b1", nhs=NHS_A, status="02", given=("Jonathan",)))
    await mpi.settle()
    body = await mpi.person(person)
    assert body["name"][0]["given"] == ["Jonathan"]
    assert body["identifier"] == [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_A}]


async def test_a_placeholder_name_does_not_name_the_person(mpi: Mpi) -> None:
    baby = {"family": "Jones", "birth": "2025-03-01", "gender": "female", "status": "08"}
    await mpi.put("trust-a", patient("n1", nhs=NHS_B, given=("Ella",), **baby))
    await mpi.put("gp-c", patient("n2", nhs=NHS_B, given=("Baby",), **baby))
    await mpi.settle()
    (item,) = await mpi.identity.reviews()
    decided = await mpi.client.post(
        "/mpi/fhir/$review-decide", json=params(item=item.item, decision="same", actor="n", reason="r")
    )
    assert decided.status_code == 200, decided.text
    body = await mpi.person(item.person)
    assert len(body["link"]) == 2 and body["name"][0]["given"] == ["Ella"]


# -- events --------------------------------------------------------------------------------------
async def test_link_unlink_merge_and_unmerge_write_events(mpi: Mpi) -> None:
    await mpi.put("trust-a", patient("a1", nhs=NHS_A))
    await mpi.put("trust-b", patient("b1", nhs=NHS_A, given=("Jon",)))
    await mpi.settle()
    person = str(await mpi.person_of("trust-a", "a1"))
    assert await kinds_after(mpi, 0) == [
        ("linked", "trust-a", "trust-b|Patient/b1"),
        ("linked", "trust-b", "trust-b|Patient/b1"),
    ]
    seq = await last_seq(mpi)
    unlinked = await mpi.client.post(
        f"/mpi/fhir/Person/{person}/$unlink",
        json=params(patient="trust-b/Patient/b1", actor="r", reason="r"),
    )
    alone = unlinked.json()["parameter"][2]["valueString"]
    assert await kinds_after(mpi, seq) == [
        ("unlinked", "trust-a", "trust-b|Patient/b1"),
        ("unlinked", "trust-b", "trust-b|Patient/b1"),
    ]
    seq = await last_seq(mpi)
    merged = await mpi.client.post(
        f"/mpi/fhir/Person/{person}/$merge", json=params(source=f"Person/{alone}", actor="r", reason="r")
    )
    assert merged.status_code == 200, merged.text
    assert await kinds_after(mpi, seq) == [
        ("merged", "trust-a", f"_mpi|Person/{alone}"),
        ("merged", "trust-b", f"_mpi|Person/{alone}"),
    ]
    seq = await last_seq(mpi)
    unmerged = await mpi.client.post(
        f"/mpi/fhir/Person/{person}/$unmerge", json=params(source=f"Person/{alone}", actor="r", reason="r")
    )
    assert unmerged.status_code == 200, unmerged.text
    assert sorted(await kinds_after(mpi, seq)) == [
        ("unmerged", "trust-a", f"_mpi|Person/{alone}"),
        ("unmerged", "trust-b", f"_mpi|Person/{person}"),
    ]
    rows = await mpi.identity.outbox_after(seq, 10)
    assert {r.person for r in rows} == {person, alone}  # each organisation is told of its own Person


async def test_events_carry_no_demographics(mpi: Mpi) -> None:
    await chain(mpi)
    await mpi.delete("trust-b", "b1")
    await mpi.settle()
    rows = await mpi.system.store.sql_read(lambda sql: db.outbox_after(sql, 0, 1000))
    assert rows and all(set(vars_of(r)) == OUTBOX_FIELDS for r in rows)
    assert not any("Smith" in str(vars_of(r)) or "M1" in str(vars_of(r)) for r in rows)


OUTBOX_FIELDS = {"seq", "tid", "person", "source_tid", "source_ref", "kind", "at_ms"}


def vars_of(row: db.OutboxRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__slots__}


# -- the identity space's CapabilityStatement ------------------------------------------------------
async def test_the_capability_statement_says_what_the_identity_space_serves(mpi: Mpi) -> None:
    response = await mpi.client.get("/mpi/fhir/metadata")
    assert response.status_code == 200
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement" and statement["kind"] == "instance"
    (rest,) = statement["rest"]
    assert {i["code"] for i in rest["interaction"]} == {"search-system", "history-system"}
    resources = {r["type"]: r for r in rest["resource"]}
    assert set(resources) == {"Person", "Patient"}
    person = resources["Person"]
    assert {i["code"] for i in person["interaction"]} == {
        "read",
        "vread",
        "search-type",
        "history-instance",
        "history-type",
    }
    assert {"link", "identifier", "name", "birthdate"} <= {p["name"] for p in person["searchParam"]}
    assert {o["name"] for o in person["operation"]} == {
        "link",
        "unlink",
        "merge",
        "unmerge",
        "locate",
        "patients",
        "audit",
    }
    assert resources["Patient"]["operation"] == [
        {"name": "match", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-match"}
    ]
    assert "interaction" not in resources["Patient"]
    assert {o["name"] for o in rest["operation"]} == {"review", "review-compare", "review-decide"}
    # and what it lists is what answers: every listed read works, every write is refused
    assert (await mpi.client.get("/mpi/fhir/Person")).status_code == 200
    assert (await mpi.client.get("/mpi/fhir/Person/_history")).status_code == 200
    assert (await mpi.client.get("/mpi/fhir/_history")).status_code == 200
    assert (await mpi.client.get("/mpi/fhir/Observation")).status_code == 404
    assert (await mpi.client.post("/mpi/fhir", json={"resourceType": "Bundle"})).status_code == 405


# -- corroboration by GP practice across organisations ------------------------------------------
RARE = {"family": "Quennell", "nhs": None}


async def test_a_shared_gp_practice_corroborates_only_by_ods_code(mpi: Mpi) -> None:
    # a moved address and no NHS number: only the GP practice is shared
    tobias = {"given": ("Tobias",), **RARE}
    await mpi.put("trust-a", patient("a1", postcode="M1 1AE", practice="Organization/gp1", **tobias))
    await mpi.put("trust-b", patient("b1", practice="Organization/gp1", **tobias))
    await mpi.settle()
    # each tenant's Organization/gp1 is its own: no agreement, so review at most
    assert await mpi.person_of("trust-a", "a1") != await mpi.person_of("trust-b", "b1")
    ambrose = {"given": ("Ambrose",), **RARE}
    await mpi.put("trust-a", patient("a2", postcode="M1 1AE", practice="B82005", **ambrose))
    await mpi.put("gp-c", patient("c2", practice="B82005", **ambrose))
    await mpi.settle()
    assert await mpi.person_of("trust-a", "a2") == await mpi.person_of("gp-c", "c2")
