"""The packaged UK Core (careweave.fhir.ukcore): what it holds, and that it equals a fresh build from
the published XML in /work/shared/uk-core (those tests skip when the folder is absent)."""

from __future__ import annotations

import configparser
import gzip
import xml.etree.ElementTree as ET
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest

from careweave.errors import CareweaveError
from careweave.fhir import ukcore
from careweave.fhir.elements import ElementModel
from careweave.fhir.ukcore.build import CONFORMANCE_TYPES, REPAIRS, Repair, build, write
from careweave.fhir.xml import parse_xml, render_xml

SOURCE = Path("/work/shared/uk-core")
needs_source = pytest.mark.skipif(not (SOURCE / "package.json").is_file(), reason="no UK Core source")


def _packaged(name: str) -> bytes:
    return resources.files(ukcore).joinpath(name).read_bytes()


def _info() -> configparser.ConfigParser:
    info = configparser.ConfigParser(interpolation=None)
    info.optionxform = str  # type: ignore[assignment,method-assign]
    info.read_string(_packaged(ukcore.INFO_FILE).decode())
    return info


def test_conformance_holds_what_the_info_counts() -> None:
    loaded = ukcore.load_conformance()
    counts = Counter(r["resourceType"] for r in loaded)
    info = _info()["conformance"]
    assert len(loaded) == int(info["total"]) == 379
    assert {k: int(v) for k, v in info.items() if k != "total"} == dict(counts)
    assert set(counts) == CONFORMANCE_TYPES
    assert counts["StructureDefinition"] == 153
    urls = [r["url"] for r in loaded]
    assert len(set(urls)) == len(urls)
    # UK Core's own, plus a few cross-version extensions (http://hl7.org/fhir/5.0/...)
    assert all(url.startswith(("https://fhir.hl7.org.uk/", "http://hl7.org/fhir/")) for url in urls)
    assert sum(url.startswith("https://fhir.hl7.org.uk/") for url in urls) > 350


def test_examples_hold_what_the_info_counts() -> None:
    loaded = ukcore.load_examples()
    counts = Counter(r["resourceType"] for r in loaded)
    info = _info()["examples"]
    assert len(loaded) == int(info["total"]) == 215
    assert {k: int(v) for k, v in info.items() if k != "total"} == dict(counts)
    keys = [(r["resourceType"], r["id"]) for r in loaded]
    assert len(set(keys)) == len(keys)


def test_info_keeps_the_licence_note() -> None:
    info = _info()["UKCore"]
    assert info["package"] == "UKCore.R4.STU.02.00.00"
    assert "Apache License, Version 2.0" in info["licence"]
    assert "HL7 UK" in info["licence"]


@pytest.mark.parametrize("name", [ukcore.CONFORMANCE_FILE, ukcore.EXAMPLES_FILE])
def test_packaged_files_are_small(name: str) -> None:
    assert len(_packaged(name)) < 1_000_000  # the limit is 5 MB; they are far below it


@needs_source
def test_packaged_files_equal_a_fresh_build(model: ElementModel) -> None:
    fresh = build(SOURCE, model)
    assert gzip.decompress(_packaged(ukcore.CONFORMANCE_FILE)) == fresh.conformance
    assert gzip.decompress(_packaged(ukcore.EXAMPLES_FILE)) == fresh.examples
    assert _packaged(ukcore.INFO_FILE).decode() == fresh.info


@needs_source
@pytest.mark.parametrize("repair", REPAIRS, ids=[r.path for r in REPAIRS])
def test_each_repair_is_needed(model: ElementModel, repair: Repair) -> None:
    original = (SOURCE / repair.path).read_bytes()
    with pytest.raises(CareweaveError) as caught:
        parse_xml(original, model)
    assert caught.value.code == "CW-1015"
    parse_xml(original.replace(repair.old, repair.new), model)


def _information(element: ET.Element) -> tuple[Any, ...]:
    """Tag, attributes and children; FHIR siblings sorted by name (stable, so arrays keep their
    order), since three upstream files list elements out of order and parse_xml accepts that."""
    children = [_information(c) for c in element]
    if not element.tag.startswith("{http://www.w3.org/1999/xhtml}"):
        children.sort(key=lambda c: c[0])
        return (element.tag, sorted(element.attrib.items()), children)
    text = [element.text or ""] + [c.tail or "" for c in element]
    return (element.tag, sorted(element.attrib.items()), children, text)


@needs_source
def test_every_source_file_keeps_its_information_through_json(model: ElementModel) -> None:
    repairs = {r.path: r for r in REPAIRS}
    files = sorted(SOURCE.rglob("*.xml"))
    assert len(files) == 594
    for path in files:
        data = path.read_bytes()
        repair = repairs.get(path.relative_to(SOURCE).as_posix())
        if repair is not None:
            data = data.replace(repair.old, repair.new)
        again = render_xml(parse_xml(data, model), model)
        assert _information(ET.fromstring(again)) == _information(ET.fromstring(data)), path.name


# -- the build on a small made-up source -----------------------------------------------------------


def _source(tmp_path: Path, files: dict[str, str]) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "package.json").write_text('{"name": "Test", "version": "1", "fhirVersions": ["4.0.1"]}')
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


VS = '<ValueSet xmlns="http://hl7.org/fhir"><url value="https://x/vs"/><status value="draft"/></ValueSet>'
PATIENT = '<Patient xmlns="http://hl7.org/fhir"><id value="p"/></Patient>'


def test_build_sorts_files_into_two_bundles(model: ElementModel, tmp_path: Path) -> None:
    source = _source(tmp_path / "src", {"valuesets/b.xml": VS, "examples/a.xml": PATIENT})
    result = build(source, model, repairs=())
    conformance = orjson.loads(result.conformance)
    assert conformance["type"] == "collection"
    assert [e["resource"]["resourceType"] for e in conformance["entry"]] == ["ValueSet"]
    assert orjson.loads(result.examples)["entry"] == [{"resource": {"resourceType": "Patient", "id": "p"}}]
    assert "[examples]\ntotal=1\nPatient=1\n" in result.info
    target = tmp_path / "out"
    target.mkdir()
    write(result, target)
    assert gzip.decompress((target / ukcore.EXAMPLES_FILE).read_bytes()) == result.examples
    assert (target / ukcore.INFO_FILE).read_text() == result.info


def test_build_applies_repairs(model: ElementModel, tmp_path: Path) -> None:
    broken = PATIENT.replace("<id", "oops<id")
    source = _source(tmp_path, {"examples/a.xml": broken})
    repair = Repair("examples/a.xml", b"oops", b"", "stray text")
    result = build(source, model, repairs=[repair])
    assert orjson.loads(result.examples)["entry"][0]["resource"]["id"] == "p"
    assert "examples/a.xml=stray text" in result.info


@pytest.mark.parametrize(
    ("files", "repairs", "message"),
    [
        ({"examples/a.xml": "<Patient/>"}, (), "examples/a.xml: CW-1015"),
        ({"valuesets/a.xml": PATIENT}, (), "a Patient is not conformance"),
        ({"examples/a.xml": PATIENT}, (Repair("examples/a.xml", b"zz", b"", "r"),), "no longer applies"),
        ({"examples/a.xml": PATIENT}, (Repair("examples/b.xml", b"zz", b"", "r"),), "missing"),
    ],
    ids=["bad file", "not conformance", "stale repair", "missing repaired file"],
)
def test_build_refuses(
    model: ElementModel, tmp_path: Path, files: dict[str, str], repairs: tuple[Repair, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build(_source(tmp_path, files), model, repairs=repairs)
