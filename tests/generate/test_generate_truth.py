"""The ground truth: one row per Patient, each in exactly one person, and the discrepancies it
lists are exactly the ones applied, at about the configured rates."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import date

from careweave.generate import EASY, HARD, TRUTH_COLUMNS, Discrepancy
from careweave.mpi import nhs_number

NHS = "https://fhir.nhs.uk/Id/nhs-number"
VERIFIED = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"


def _codes(row):
    return set(filter(None, row["discrepancies"].split(";")))


def _nhs(patient):
    found = [i for i in patient["identifier"] if i.get("system") == NHS]
    return found[0] if found else None


def test_one_row_per_patient_each_in_one_person(hard_run):
    rows = hard_run.truth()
    assert tuple(rows[0]) == TRUTH_COLUMNS
    patients = {p["id"]: p for p in hard_run.resources("Patient")}
    assert sorted(r["patient_id"] for r in rows) == sorted(patients)
    assert len({r["patient_id"] for r in rows}) == len(rows)
    persons = {r["person_id"] for r in rows}
    assert len(persons) == hard_run.config.patients == hard_run.summary.persons
    per_person = defaultdict(set)
    for row in rows:
        per_person[row["person_id"]].add((row["sex"], row["birth_date"], row["nhs_number"]))
    assert all(len(facts) == 1 for facts in per_person.values())  # one truth per person
    true_numbers = Counter(next(iter(f))[2] for f in per_person.values())
    assert max(true_numbers.values()) == 1  # a real NHS number belongs to one person


def test_many_people_have_several_records(hard_run):
    sizes = Counter(Counter(r["person_id"] for r in hard_run.truth()).values())
    assert sizes[1] > 0 and sizes[2] > 0 and sizes[3] > 0


def test_nhs_numbers_valid_unless_the_truth_says_transposed(hard_run):
    truth = {r["patient_id"]: r for r in hard_run.truth()}
    kinds = Counter()
    for patient in hard_run.resources("Patient"):
        row, identifier = truth[patient["id"]], _nhs(patient)
        codes = _codes(row)
        if identifier is None:
            assert Discrepancy.NHS_MISSING.value in codes
            assert row["recorded_nhs_number"] == ""
            kinds["missing"] += 1
            continue
        value = identifier["value"]
        assert value == row["recorded_nhs_number"]
        assert nhs_number.is_fixture_number(value)
        status = identifier["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
        assert identifier["extension"][0]["url"] == VERIFIED
        assert status == row["verification_status"]
        if Discrepancy.NHS_TRANSPOSED.value in codes:
            assert not nhs_number.is_valid(value)
            assert sorted(value) == sorted(row["nhs_number"]) and value != row["nhs_number"]
            kinds["transposed"] += 1
        elif Discrepancy.NHS_OTHER.value in codes:
            assert nhs_number.is_valid(value) and value != row["nhs_number"]
            kinds["other"] += 1
        else:
            assert value == row["nhs_number"] and nhs_number.is_valid(value)
    assert kinds["missing"] and kinds["transposed"] and kinds["other"]


def test_demographic_discrepancies_are_what_the_truth_says(hard_run):
    truth = {r["patient_id"]: r for r in hard_run.truth()}
    seen = Counter()
    for patient in hard_run.resources("Patient"):
        row = truth[patient["id"]]
        codes = _codes(row)
        true_birth = date.fromisoformat(row["birth_date"])
        recorded = date.fromisoformat(patient["birthDate"])
        if Discrepancy.DOB_SWAPPED.value in codes:
            assert recorded == date(true_birth.year, true_birth.day, true_birth.month)
        elif Discrepancy.DOB_PLACEHOLDER.value in codes:
            assert (recorded.month, recorded.day) == (1, 1) != (true_birth.month, true_birth.day)
        else:
            assert recorded == true_birth
        name = patient["name"][0]
        if Discrepancy.BABY_PLACEHOLDER.value in codes:
            assert name["given"] == ["Baby"] and name["text"].startswith("Baby of ")
        if Discrepancy.NO_FIXED_ABODE.value in codes:
            assert patient["address"][0]["postalCode"] == "ZZ99 3VZ"
        assert patient["gender"] == row["sex"]
        seen.update(codes)
    for code in Discrepancy:
        assert seen[code.value] > 0, code


def test_duplicates_and_merges_are_consistent(hard_run):
    truth = {r["patient_id"]: r for r in hard_run.truth()}
    patients = {p["id"]: p for p in hard_run.resources("Patient")}
    merged = 0
    for pid, patient in patients.items():
        codes = _codes(truth[pid])
        links = {link["type"]: link["other"]["reference"] for link in patient.get("link", ())}
        if Discrepancy.MERGED.value in codes:
            assert Discrepancy.DUPLICATE.value in codes
            assert patient["active"] is False
            survivor = patients[links["replaced-by"].removeprefix("Patient/")]
            assert survivor["link"][0] == {"other": {"reference": f"Patient/{pid}"}, "type": "replaces"}
            assert truth[survivor["id"]]["person_id"] == truth[pid]["person_id"]
            assert truth[survivor["id"]]["organisation"] == truth[pid]["organisation"]
            merged += 1
        else:
            assert patient["active"] is True and "replaced-by" not in links
        if Discrepancy.DUPLICATE.value in codes:
            others = codes - {Discrepancy.DUPLICATE.value, Discrepancy.MERGED.value}
            assert others, "a duplicate always has the discrepancy that caused it"
    assert merged == hard_run.summary.discrepancies[Discrepancy.MERGED.value] > 0


def _within(observed: int, trials: int, rate: float) -> bool:
    sigma = math.sqrt(trials * rate * (1 - rate))
    return abs(observed - trials * rate) <= 4.5 * sigma + 1


def test_unconditional_discrepancy_rates_match_the_config(hard_run):
    rows = [r for r in hard_run.truth() if Discrepancy.DUPLICATE.value not in _codes(r)]
    counts = Counter(code for r in rows for code in _codes(r))
    n = len(rows)
    assert _within(counts[Discrepancy.NHS_MISSING.value], n, HARD.nhs_missing)
    assert _within(counts[Discrepancy.NAME_SWAP.value], n, HARD.name_swap)
    not_baby = n - counts[Discrepancy.BABY_PLACEHOLDER.value]
    assert _within(counts[Discrepancy.NAME_TYPO.value], not_baby, HARD.name_typo)
    with_number = n - counts[Discrepancy.NHS_MISSING.value]
    assert _within(counts[Discrepancy.NHS_TRANSPOSED.value], with_number, HARD.nhs_transposed)


def test_conditional_rates_stay_below_the_config_rate(hard_run):
    rows = [r for r in hard_run.truth() if Discrepancy.DUPLICATE.value not in _codes(r)]
    counts = Counter(code for r in rows for code in _codes(r))
    n = len(rows)
    for code, rate in [
        (Discrepancy.DOB_SWAPPED, HARD.dob_swapped),
        (Discrepancy.NICKNAME, HARD.nickname),
        (Discrepancy.MAIDEN_NAME, HARD.maiden_name),
        (Discrepancy.OLD_ADDRESS, HARD.old_address),
    ]:
        assert 0 < counts[code.value] <= n * rate + 4.5 * math.sqrt(n * rate), code


def test_easy_is_cleaner_than_hard(demo_run, hard_run):
    def share(run):
        rows = run.truth()
        return sum(1 for r in rows if _codes(r)) / len(rows)

    assert EASY.name_typo < HARD.name_typo
    assert share(demo_run) < share(hard_run)
