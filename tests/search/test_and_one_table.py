"""Several conditions on one index table, ANDed (``Compiler.where_all`` checks them in one read of
the resource's rows there): each must hold on some value of the resource, not necessarily the
same one (search.html 3.1.1.2: each repetition of a parameter is its own condition). Values on
separate index rows, values missing, parameters mixed, the driver among them or not."""

from __future__ import annotations

import pytest

from careweave.search.plan import DateMatch, RefMatch, StringMatch, TokenMatch
from careweave.store.sql.compile import Compiler
from tests.search.conftest import ids, put

pytestmark = pytest.mark.anyio

NHS = "https://fhir.nhs.uk/Id/nhs-number"
LOCAL = "urn:local"


@pytest.fixture
async def data(client) -> None:
    people = {
        "both": ["Ann", "Beth"],  # two given names: two index rows of one parameter
        "ann": ["Ann"],
        "beth": ["Beth"],
    }
    for id_, given in people.items():
        await put(client, {
            "resourceType": "Patient", "id": id_, "gender": "female",
            "name": [{"family": "Smith", "given": given}],
            "identifier": [{"system": NHS, "value": f"nhs-{id_}"}, {"system": LOCAL, "value": f"l-{id_}"}],
        })  # fmt: skip
    # one date each, and one resource whose period spans both conditions' ranges
    for id_, effective in {
        "o2019": {"effectiveDateTime": "2019-05-01"},
        "o2021": {"effectiveDateTime": "2021-05-01"},
        "o2024": {"effectiveDateTime": "2024-05-01"},
        "ospan": {"effectivePeriod": {"start": "2018-01-01", "end": "2026-01-01"}},
        "onone": {},
    }.items():
        await put(client, {
            "resourceType": "Observation", "id": id_, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
            "subject": {"reference": "Patient/both"}, **effective,
        })  # fmt: skip


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # one parameter twice, its values on different rows of the resource
        ("Patient?given=ann&given=beth", {"both"}),
        ("Patient?given=ann&given=carol", set()),
        ("Patient?given=ann&given=ann", {"both", "ann"}),
        # two parameters of one table (ix_string), and with a third of another (ix_token)
        ("Patient?family=smith&given=beth", {"both", "beth"}),
        ("Patient?family=smith&given=beth&gender=female", {"both", "beth"}),
        ("Patient?family=jones&given=beth", set()),
        # two identifiers (ix_token rows of one parameter)
        (f"Patient?identifier={NHS}|nhs-both&identifier={LOCAL}|l-both", {"both"}),
        (f"Patient?identifier={NHS}|nhs-both&identifier={LOCAL}|l-ann", set()),
        (f"Patient?identifier={NHS}|nhs-ann&gender=female&identifier={LOCAL}|l-ann", {"ann"}),
        # a date range: each bound its own condition; a resource with no date matches neither
        ("Observation?date=ge2020-01-01&date=lt2023-01-01", {"o2021", "ospan"}),
        ("Observation?patient=Patient/both&date=ge2020-01-01&date=lt2023-01-01", {"o2021", "ospan"}),
        ("Observation?code=8302-2&date=gt2019-01-01&date=lt2020-01-01&date=ne2019-05-01", {"ospan"}),
        ("Observation?patient=Patient/both&date=lt2019-01-01&date=gt2025-01-01", {"ospan"}),
        ("Observation?patient=Patient/nobody&date=ge2020-01-01&date=lt2023-01-01", set()),
    ],
)
async def test_each_condition_holds_on_some_value(client, data, query: str, expected: set[str]) -> None:
    assert set(await ids(client, f"/fhir/{query}")) == expected
    # the same through the page of one (keyset paging runs the statement again with a cursor)
    assert set(await ids(client, f"/fhir/{query}&_count=1&_total=accurate")) <= expected


def test_one_read_per_table() -> None:
    """Two conditions on ix_date (and one on ix_reference) compile to one subquery on ix_date."""
    pids = {"Observation.date": 7, "Observation.patient": 8, "Observation.code": 9, "Patient.family": 10}
    compiler = Compiler(1, pids.get)
    params: list[object] = []
    where = compiler.where_all(
        [
            DateMatch("Observation.date", "ge", 1, 2),
            RefMatch("Observation.patient", "Patient", "p1"),
            DateMatch("Observation.date", "lt", 3, 4),
            TokenMatch("Observation.code", None, "x"),
        ],
        "r",
        ("Observation",),
        params,
    )
    assert len(where) == 3
    assert where[0].count("FROM ix_date") == 1 and where[0].count("max(") == 2
    assert "ix_reference" in where[1] and "ix_token" in where[2]
    # a condition of a parameter never indexed stays FALSE, and takes no part in a merge
    assert compiler.where_all([StringMatch("Patient.given", "ann", "start")], "r", ("Patient",), []) == [
        "FALSE"
    ]
