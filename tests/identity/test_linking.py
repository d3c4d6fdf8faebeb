"""The matcher that follows the change log, Persons at /mpi/fhir, manual decisions, the record
locator and the outbox (docs/mpi.md). Real store (SQLite), real app, requests over ASGI.

Spec: https://hl7.org/fhir/R4/person.html (Person.link.assurance: level1..level4),
https://hl7.org/fhir/R4/references.html (absolute references to other servers).
"""

from __future__ import annotations

from typing import Any

import pytest

from careweave.store.sql import mpi as db
from tests.identity.conftest import Mpi
from tests.mpi.builders import NHS_A, NHS_B, NHS_C, patient

pytestmark = pytest.mark.anyio


def links(person: dict[str, Any]) -> dict[str, str]:
    return {link["target"]["reference"]: link["assurance"] for link in person["link"]}


async def three_of_one(mpi: Mpi) -> str:
    """John Smith at three organisations, recorded a little differently each time."""
    await mpi.put("trust-a", patient("a1", nhs=NHS_A))
    await mpi.put("trust-b", patient("b1", nhs=NHS_A, given=("Jon",), line="12 Church Rd"))
    await mpi.put("gp-c", patient("c1", nhs=None, phones=("07700900123",)))
    await mpi.settle()
    person = await mpi.person_of("trust-a", "a1")
    assert person is not None
    return person


async def test_records_of_one_person_in_three_tenants_share_one_person(mpi: Mpi) -> None:
    person = await three_of_one(mpi)
    assert await mpi.person_of("trust-b", "b1") == person
    assert await mpi.person_of("gp-c", "c1") == person
    body = await mpi.person(person)
    assert body["resourceType"] == "Person" and body["active"] is True
    assert links(body) == {
        mpi.url("trust-a", "a1"): "level3",
        mpi.url("trust-b", "b1"): "level3",
        mpi.url("gp-c", "c1"): "level3",
    }
    rows = await mpi.identity.members(person)
    assert all(r.model_version == mpi.identity.model.version for r in rows)
    assert sum(r.weight is not None for r in rows) == 2  # the first record founded the Person


async def test_persons_are_searched_by_link_and_have_history(mpi: Mpi) -> None:
    person = await three_of_one(mpi)
    found = await mpi.client.get("/mpi/fhir/Person", params={"link": mpi.url("gp-c", "c1")})
    assert found.status_code == 200
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [person]
    by_id = await mpi.client.get("/mpi/fhir/Person", params={"link": "Patient/c1"})
    assert [e["resource"]["id"] for e in by_id.json()["entry"]] == [person]
    none = await mpi.client.get("/mpi/fhir/Person", params={"link": mpi.url("gp-c", "nobody")})
    assert none.json()["total"] == 0
    history = await mpi.client.get(f"/mpi/fhir/Person/{person}/_history")
    assert history.status_code == 200 and history.json()["total"] >= 1


async def test_the_identity_space_is_read_only_and_not_a_tenant(mpi: Mpi) -> None:
    person = await three_of_one(mpi)
    put = await mpi.client.put(f"/mpi/fhir/Person/{person}", json={"resourceType": "Person", "id": person})
    assert put.status_code == 405
    assert put.json()["issue"][0]["details"]["coding"][0]["code"] == "CW-8009"
    assert (await mpi.client.post("/mpi/fhir/Person", json={"resourceType": "Person"})).status_code == 405
    assert (await mpi.client.delete(f"/mpi/fhir/Person/{person}")).status_code == 405
    assert (await mpi.client.get(f"/t/_mpi/fhir/Person/{person}")).status_code == 404
    assert (await mpi.client.get(f"/t/%5Fmpi/fhir/Person/{person}")).status_code == 404
    assert (await mpi.client.get(f"/fhir/Person/{person}")).status_code == 404


async def test_twins_are_never_linked(mpi: Mpi) -> None:
    twin = {"family": "Khan", "birth": "2010-03-03", "postcode": "BD7 1AB", "line": "4 Mill Street"}
    await mpi.put("trust-a", patient("t1", given=("Oliver",), multiple_birth=1, **twin))
    await mpi.put("trust-a", patient("t2", given=("Amelia",), gender="female", multiple_birth=2, **twin))
    await mpi.put("trust-b", patient("t3", given=("Oliver",), **twin))
    await mpi.put("trust-b", patient("t4", given=("Olivia",), gender="female", **twin))
    await mpi.settle()
    oliver, amelia = await mpi.person_of("trust-a", "t1"), await mpi.person_of("trust-a", "t2")
    olivia = await mpi.person_of("trust-b", "t4")
    assert await mpi.person_of("trust-b", "t3") == oliver
    assert len({oliver, amelia, olivia}) == 3
    body = await mpi.person(str(oliver))
    assert mpi.url("trust-a", "t2") not in links(body)
    assert links(body).get(mpi.url("trust-b", "t4")) in (None, "level2")  # review at most


async def test_baby_of_records_are_reviewed_not_linked(mpi: Mpi) -> None:
    baby = {"family": "Jones", "birth": "2025-03-01", "gender": "female", "status": "08"}
    await mpi.put("trust-a", patient("n1", nhs=NHS_B, given=("Baby",), **baby))
    await mpi.put("gp-c", patient("n2", nhs=NHS_B, given=("Ella",), **baby))
    await mpi.settle()
    first, second = await mpi.person_of("trust-a", "n1"), await mpi.person_of("gp-c", "n2")
    assert first != second
    items = await mpi.identity.reviews()
    assert len(items) == 1
    item = items[0]
    assert item.person in (first, second) and item.state == "open"
    reviewed = await mpi.person(item.person)
    pending = [a for a in links(reviewed).values() if a == "level2"]
    assert pending == ["level2"]


async def test_different_verified_nhs_numbers_are_never_linked(mpi: Mpi) -> None:
    await mpi.put("trust-a", patient("v1", nhs=NHS_A))
    await mpi.put("trust-b", patient("v2", nhs=NHS_C))
    await mpi.settle()
    p1, p2 = await mpi.person_of("trust-a", "v1"), await mpi.person_of("trust-b", "v2")
    assert p1 != p2
    response = await mpi.client.post(
        f"/mpi/fhir/Person/{p1}/$link",
        json=params(patient=mpi.url("trust-b", "v2"), actor="dr.who", reason="same person"),
    )
    assert response.status_code == 409
    assert response.json()["issue"][0]["details"]["coding"][0]["code"] == "CW-8003"
    merge = await mpi.client.post(
        f"/mpi/fhir/Person/{p1}/$merge", json=params(source=f"Person/{p2}", actor="dr.who", reason="x")
    )
    assert merge.status_code == 409
    assert await mpi.person_of("trust-b", "v2") == p2


def params(**values: Any) -> dict[str, Any]:
    parameter = []
    for name, value in values.items():
        if isinstance(value, int):
            parameter.append({"name": name, "valueInteger": value})
        elif name == "patient" and value.startswith("http"):
            parameter.append({"name": name, "valueReference": {"reference": value}})
        else:
            parameter.append({"name": name, "valueString": value})
    return {"resourceType": "Parameters", "parameter": parameter}


async def test_unlink_persists_across_updates_and_link_reverses_it(mpi: Mpi) -> None:
    person = await three_of_one(mpi)
    version = (await mpi.person(person))["meta"]["versionId"]
    unlinked = await mpi.client.post(
        f"/mpi/fhir/Person/{person}/$unlink",
        json=params(patient=mpi.url("gp-c", "c1"), actor="reviewer-1", reason="different person at GP"),
        headers={"If-Match": f'W/"{version}"'},
    )
    assert unlinked.status_code == 200, unlinked.text
    alone = await mpi.person_of("gp-c", "c1")
    assert alone != person
    assert links(await mpi.person(str(alone))) == {mpi.url("gp-c", "c1"): "level4"}
    assert mpi.url("gp-c", "c1") not in links(await mpi.person(person))
    # later updates of either side never undo a human's "not the same person"
    await mpi.put("gp-c", patient("c1", nhs=NHS_A, phones=("07700900999",)))
    await mpi.put("trust-a", patient("a1", nhs=NHS_A, postcode="LS6 4QU"))
    await mpi.settle()
    assert await mpi.person_of("gp-c", "c1") == alone
    assert await mpi.person_of("trust-a", "a1") == person
    # a stale If-Match is refused, then linking back reverses the unlink
    stale = await mpi.client.post(
        f"/mpi/fhir/Person/{person}/$link",
        json=params(patient="gp-c/Patient/c1", actor="reviewer-2", reason="it was him after all"),
        headers={"If-Match": f'W/"{version}"'},
    )
    assert stale.status_code == 412
    relinked = await mpi.client.post(
        f"/mpi/fhir/Person/{person}/$link",
        json=params(patient="gp-c/Patient/c1", actor="reviewer-2", reason="it was him after all"),
    )
    assert relinked.status_code == 200, relinked.text
    assert await mpi.person_of("gp-c", "c1") == person
    assert links(await mpi.person(person))[mpi.url("gp-c", "c1")] == "level4"
    assert (await mpi.client.get(f"/mpi/fhir/Person/{alone}")).status_code == 410
    audit = (await mpi.client.get(f"/mpi/fhir/Person/{person}/$audit")).json()["parameter"]
    actions = [
        {p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in e["part"]} for e in audit
    ]
    assert [(a["action"], a["actor"]) for a in actions] == [("unlink", "reviewer-1"), ("link", "reviewer-2")]
    assert actions[0]["reason"] == "different person at GP"


async def test_review_decisions_persist(mpi: Mpi) -> None:
    baby = {"family": "Jones", "birth": "2025-03-01", "gender": "female", "status": "08"}
    await mpi.put("trust-a", patient("n1", nhs=NHS_B, given=("Baby",), **baby))
    await mpi.put("gp-c", patient("n2", nhs=NHS_B, given=("Ella",), **baby))
    await mpi.settle()
    (item,) = await mpi.identity.reviews()
    compare = await mpi.client.get("/mpi/fhir/$review-compare", params={"item": str(item.item)})
    assert compare.status_code == 200
    parts = {p["name"] for p in compare.json()["parameter"]}
    assert {"record", "matched", "contribution", "rule", "explanation", "modelVersion"} <= parts
    queue = (await mpi.client.get("/mpi/fhir/$review")).json()["parameter"]
    assert [p["part"][0]["valueInteger"] for p in queue] == [item.item]
    decided = await mpi.client.post(
        "/mpi/fhir/$review-decide",
        json=params(item=item.item, decision="not-same", actor="reviewer", reason="different babies"),
    )
    assert decided.status_code == 200, decided.text
    assert await mpi.identity.reviews() == []
    again = await mpi.client.post(
        "/mpi/fhir/$review-decide", json=params(item=item.item, decision="same", actor="r", reason="r")
    )
    assert again.status_code == 409
    # the records change (the baby is named at both places): still kept apart, no new review
    await mpi.put("trust-a", patient("n1", nhs=NHS_B, given=("Ella",), **baby))
    await mpi.settle()
    assert await mpi.person_of("trust-a", "n1") != await mpi.person_of("gp-c", "n2")
    assert await mpi.identity.reviews() == []


async def test_review_decided_same_links_the_record(mpi: Mpi) -> None:
    baby = {"family": "Jones", "birth": "2025-03-01", "gender": "female", "status": "08"}
    await mpi.put("trust-a", patient("n1", nhs=NHS_B, given=("Baby",), **baby))
    await mpi.put("gp-c", patient("n2", nhs=NHS_B, given=("Ella",), **baby))
    await mpi.settle()
    (item,) = await mpi.identity.reviews()
    decided = await mpi.client.post(
        "/mpi/fhir/$review-decide",
        json=params(item=item.item, decision="same", actor="nurse", reason="checked"),
    )
    assert decided.status_code == 200, decided.text
    assert await mpi.person_of("trust-a", "n1") == await mpi.person_of("gp-c", "n2") == item.person
    assert set(links(await mpi.person(item.person)).values()) <= {"level3", "level4"}


async def test_merge_and_unmerge_are_reversible(mpi: Mpi) -> None:
    baby = {"family": "Jones", "birth": "2025-03-01", "gender": "female", "status": "08"}
    await mpi.put("trust-a", patient("n1", nhs=NHS_B, given=("Baby",), **baby))
    await mpi.put("gp-c", patient("n2", nhs=NHS_B, given=("Ella",), **baby))
    await mpi.settle()
    target, source = str(await mpi.person_of("gp-c", "n2")), str(await mpi.person_of("trust-a", "n1"))
    before_target, before_source = links(await mpi.person(target)), links(await mpi.person(source))
    version = (await mpi.person(target))["meta"]["versionId"]
    stale = await mpi.client.post(
        f"/mpi/fhir/Person/{target}/$merge",
        json=params(source=f"Person/{source}", actor="ops", reason="same baby"),
        headers={"If-Match": f'W/"{int(version) + 5}"'},
    )
    assert stale.status_code == 412
    merged = await mpi.client.post(
        f"/mpi/fhir/Person/{target}/$merge",
        json=params(source=f"Person/{source}", actor="ops", reason="same baby"),
        headers={"If-Match": f'W/"{version}"'},
    )
    assert merged.status_code == 200, merged.text
    assert await mpi.person_of("trust-a", "n1") == target
    assert links(await mpi.person(target)) == {
        mpi.url("trust-a", "n1"): "level4",
        mpi.url("gp-c", "n2"): "level3",
    }
    gone = await mpi.person(source)
    assert gone["active"] is False
    assert gone["link"] == [{"target": {"reference": f"Person/{target}"}, "assurance": "level4"}]
    assert (await mpi.identity.reviews()) == []
    unmerged = await mpi.client.post(
        f"/mpi/fhir/Person/{target}/$unmerge",
        json=params(source=f"Person/{source}", actor="ops", reason="merged by mistake"),
    )
    assert unmerged.status_code == 200, unmerged.text
    assert await mpi.person_of("trust-a", "n1") == source
    assert links(await mpi.person(target)) == {k: v for k, v in before_target.items() if v != "level2"}
    restored = await mpi.person(source)
    assert restored["active"] is True
    assert links(restored) == {k: v for k, v in before_source.items() if v != "level2"}
    twice = await mpi.client.post(
        f"/mpi/fhir/Person/{target}/$unmerge",
        json=params(source=f"Person/{source}", actor="ops", reason="again"),
    )
    assert twice.status_code == 409


async def test_record_locator_names_each_organisation(mpi: Mpi) -> None:
    person = await three_of_one(mpi)
    located = await mpi.client.get(f"/mpi/fhir/Person/{person}/$locate")
    assert located.status_code == 200
    organisations = {
        next(p["valueString"] for p in o["part"] if p["name"] == "tenant"): [
            p["valueReference"]["reference"] for p in o["part"] if p["name"] == "patient"
        ]
        for o in located.json()["parameter"]
    }
    assert organisations == {
        "gp-c": ["http://testserver/t/gp-c/fhir/Patient/c1"],
        "trust-a": ["http://testserver/t/trust-a/fhir/Patient/a1"],
        "trust-b": ["http://testserver/t/trust-b/fhir/Patient/b1"],
    }
    patients = (await mpi.client.get(f"/mpi/fhir/Person/{person}/$patients")).json()
    assert sorted(e["resource"]["id"] for e in patients["entry"]) == ["a1", "b1", "c1"]
    assert (await mpi.client.get("/mpi/fhir/Person/nobody/$locate")).status_code == 404


async def test_demographics_changes_write_outbox_events_for_the_other_organisations(mpi: Mpi) -> None:
    person = await three_of_one(mpi)
    start = await mpi.system.store.sql_read(lambda sql: db.outbox_after(sql, 0, 100))
    assert {e.kind for e in start} == {"linked"}  # b1 and c1 joined a1's Person
    after = start[-1].seq
    await mpi.put("trust-a", patient("a1", nhs=NHS_A, postcode="LS6 4QU", line="3 New Street"))
    await mpi.settle()
    events = await mpi.identity.outbox_after(after, 100)
    names = {t.key: t.name for t in await mpi.system.store.tenants()}
    assert sorted(names[e.tid] for e in events) == ["gp-c", "trust-b"]
    assert {(names[e.source_tid], e.source_ref, e.kind, e.person) for e in events} == {
        ("trust-a", "Patient/a1", "demographics-changed", person)
    }
    # a change outside the identifying elements is no demographics change
    body = patient("a1", nhs=NHS_A, postcode="LS6 4QU", line="3 New Street")
    body["maritalStatus"] = {"text": "married"}
    await mpi.put("trust-a", body)
    await mpi.settle()
    assert len(await mpi.identity.outbox_after(after, 100)) == 2
    assert await mpi.identity.outbox_after(events[-1].seq, 100) == []


async def test_a_deleted_patient_leaves_its_person(mpi: Mpi) -> None:
    person = await three_of_one(mpi)
    await mpi.delete("gp-c", "c1")
    await mpi.settle()
    assert await mpi.person_of("gp-c", "c1") is None
    assert mpi.url("gp-c", "c1") not in links(await mpi.person(person))
    await mpi.put("trust-b", patient("solo", nhs=NHS_C, given=("Zed",), family="Quill", birth="1950-01-02"))
    await mpi.settle()
    solo = await mpi.person_of("trust-b", "solo")
    await mpi.delete("trust-b", "solo")
    await mpi.settle()
    assert (await mpi.client.get(f"/mpi/fhir/Person/{solo}")).status_code == 410


async def test_an_update_that_no_longer_fits_moves_the_record(mpi: Mpi) -> None:
    person = await three_of_one(mpi)
    # trust-b's record turns out to be someone else entirely (corrected registration)
    await mpi.put(
        "trust-b",
        patient(
            "b1",
            nhs=NHS_C,
            given=("Mary",),
            family="Ng",
            birth="1990-09-09",
            gender="female",
            postcode="M1 1AE",
        ),
    )
    await mpi.settle()
    moved = await mpi.person_of("trust-b", "b1")
    assert moved is not None and moved != person
    assert mpi.url("trust-b", "b1") not in links(await mpi.person(person))


async def test_the_follower_is_idempotent_and_keeps_its_cursor(mpi: Mpi) -> None:
    await three_of_one(mpi)
    assert await mpi.settle() == 0
    cursor = await mpi.system.store.sql_read(lambda sql: db.cursor(sql, "follower"))
    changes = await mpi.system.store.changes(0, 10_000)
    assert cursor == changes[-1].seq or all(c.seq <= cursor for c in changes)


async def test_a_lone_record_keeps_its_person_when_it_changes(mpi: Mpi) -> None:
    await mpi.put("trust-b", patient("solo", nhs=NHS_C, given=("Zed",), family="Quill", birth="1950-01-02"))
    await mpi.settle()
    person = await mpi.person_of("trust-b", "solo")
    await mpi.put(
        "trust-b", patient("solo", nhs=NHS_C, given=("Zed",), family="Quill-Hart", birth="1950-01-02")
    )
    await mpi.settle()
    assert await mpi.person_of("trust-b", "solo") == person
    body = await mpi.person(str(person))
    assert body["name"][0]["family"] == "Quill-Hart" and body["meta"]["versionId"] == "2"


async def test_one_record_that_cannot_be_matched_never_stops_the_others(
    mpi: Mpi, monkeypatch: pytest.MonkeyPatch
) -> None:
    from careweave.identity.linker import Linker

    real = Linker.apply

    def failing(self: Linker, tid: int, patient_id: str, version: int, prepared: Any) -> None:
        if patient_id == "poison":
            raise RuntimeError("injected fault")
        real(self, tid, patient_id, version, prepared)

    monkeypatch.setattr(Linker, "apply", failing)
    await mpi.put("trust-a", patient("a1", nhs=NHS_A))
    await mpi.put("trust-a", patient("poison", nhs=NHS_C, given=("Zed",), family="Quill"))
    await mpi.put("trust-b", patient("b1", nhs=NHS_A))
    for _ in range(10):
        try:
            await mpi.settle()
            break
        except RuntimeError:
            continue  # the failed batch; the follower retries it change by change
    assert await mpi.person_of("trust-a", "a1") == await mpi.person_of("trust-b", "b1") is not None
    assert await mpi.person_of("trust-a", "poison") is None
    assert len(mpi.identity.skipped) == 1
