"""HL7 v2.4 ER7 messages for the same registrations: ADT (A01 A03 A04 A08 A31 A40) and ORU^R01.

Rules:
1. Messages describe exactly the registrations the FHIR output holds: the same MRNs, the same
   recorded (possibly wrong) demographics, the same visits and lab results.
2. MSH-4 (sending facility) is the organisation's ODS code; MSH-9 carries the message structure
   (``ADT^A01^ADT_A01``); MSH-12 is ``2.4`` and MSH-18 ``UNICODE UTF-8``.
3. PID-3 repeats the identifiers: the NHS number with assigning authority ``NHS`` and type
   ``NH`` (when the organisation holds one), then the MRN with the organisation's code and type
   ``MR``. PID-5 is the recorded name (type ``L``), then any maiden name (type ``M``).
4. Segments end with ``\\r``; the writer puts ``\\n`` between messages. Timestamps carry the
   London offset. Text is escaped (``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``).
5. Per trust registration: A04 for an emergency or outpatient visit, A01 and A03 around an
   admission, sometimes an A08 (demographics update), and for a merged duplicate an A40 (the
   survivor's PID, MRG naming the duplicate's MRN) after the duplicate's own messages. Per GP
   registration: one A31 (person information). One ORU^R01 per lab report.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from datetime import datetime, time, timedelta

from careweave.generate import clock
from careweave.generate.codes import LABS, PANELS
from careweave.generate.history import Chart, LabReport, Result, Visit
from careweave.generate.model import Organisation, OrgKind, Registration

__all__ = ["adt_messages", "escape", "oru_messages"]

_ESCAPES = str.maketrans(
    {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\", "\r": "\\X0D\\", "\n": "\\X0A\\"}
)
_CLASS = {"AMB": "O", "VR": "O", "EMER": "E", "IMP": "I"}
_STRUCTURE = {
    "A01": "ADT_A01",
    "A03": "ADT_A03",
    "A04": "ADT_A01",
    "A08": "ADT_A01",
    "A31": "ADT_A05",
    "A40": "ADT_A39",
}

NextId = Callable[[], int]


def escape(text: str) -> str:
    """ER7 escaping of one value (rule 4)."""
    return text.translate(_ESCAPES)


def _msh(org: Organisation, when: datetime, kind: str, control: int) -> str:
    app = "PAS" if org.kind is OrgKind.TRUST else "GPSYS"
    structure = _STRUCTURE.get(kind.rsplit("^", 1)[-1], "ORU_R01")
    return "|".join(
        [
            "MSH",
            "^~\\&",
            app,
            org.code,
            "CAREWEAVE",
            "CAREWEAVE",
            clock.hl7_timestamp(when),
            "",
            f"{kind}^{structure}",
            f"{org.code}{control:09d}",
            "P",
            "2.4",
            "",
            "",
            "AL",
            "NE",
            "GBR",
            "UNICODE UTF-8",
        ]
    )


def _pid(reg: Registration) -> str:
    rec, org = reg.recorded, reg.org
    ids = []
    if rec.nhs_number is not None:
        ids.append(f"{rec.nhs_number}^^^NHS^NH")
    ids.append(f"{escape(reg.mrn)}^^^{org.code}^MR")
    given = [escape(g) for g in rec.given]
    names = [f"{escape(rec.family)}^{given[0]}^{' '.join(given[1:])}^^^^L"]
    if rec.maiden_family:
        names.append(f"{escape(rec.maiden_family)}^{given[0]}^^^^^M")
    addr = rec.address
    second = ", ".join(addr.lines[1:])
    address = "^".join(
        [
            escape(addr.lines[0]),
            escape(second),
            escape(addr.city),
            escape(addr.district),
            addr.postcode,
            "GBR",
            "H",
        ]
    )
    phones = [f"{p.replace(' ', '')}^PRN^PH" for p in (rec.phone,) if p]
    phones += [f"{m.replace(' ', '')}^ORN^CP" for m in (rec.mobile,) if m]
    phones += [f"^NET^Internet^{escape(e)}" for e in (rec.email,) if e]
    person = reg.person
    fields = [""] * 31
    fields[1], fields[3], fields[5] = "1", "~".join(ids), "~".join(names)
    fields[7], fields[8] = clock.hl7_date(rec.birth_date), "M" if rec.sex == "male" else "F"
    fields[11], fields[13] = address, "~".join(phones)
    if person.multiple_birth is not None:
        fields[24], fields[25] = "Y", str(person.multiple_birth)
    if person.deceased is not None:
        fields[29], fields[30] = clock.hl7_date(person.deceased), "Y"
    return "PID|" + "|".join(fields[1:]).rstrip("|")


def _pd1(reg: Registration) -> str | None:
    gp = reg.org if reg.org.kind is OrgKind.GP else reg.gp
    return None if gp is None else f"PD1|||{escape(gp.name)}^^{gp.code}"


def _pv1(reg: Registration, visit: Visit | None, discharged: bool) -> str:
    if visit is None:
        return "PV1|1|N"
    org, doctor = reg.org, visit.practitioner
    location = {
        "IMP": f"WARD{len(visit.visit_number) % 9 + 1}^BED{visit.start.day % 20 + 1}^^",
        "EMER": "ED^^^",
        "AMB": "OPD^^^",
        "VR": "TEL^^^",
    }[visit.cls] + org.code
    fields = [""] * 46
    fields[1], fields[2], fields[3] = "1", _CLASS[visit.cls], location
    fields[7] = f"C{doctor.gmc}^{escape(doctor.family)}^{escape(doctor.given)}^^^Dr"
    fields[19] = visit.visit_number
    fields[44] = clock.hl7_timestamp(visit.start)
    if discharged:
        fields[45] = clock.hl7_timestamp(visit.end)
    return "PV1|" + "|".join(fields[1:]).rstrip("|")


def _message(segments: Iterable[str | None]) -> str:
    return "\r".join(s for s in segments if s) + "\r"


def _adt(
    reg: Registration,
    event: str,
    when: datetime,
    visit: Visit | None,
    next_id: NextId,
    discharged: bool = False,
    extra: str | None = None,
) -> tuple[datetime, str]:
    return when, _message(
        [
            _msh(reg.org, when, f"ADT^{event}", next_id()),
            f"EVN|{event}|{clock.hl7_timestamp(when)}",
            _pid(reg),
            _pd1(reg),
            extra,
            _pv1(reg, visit, discharged),
        ]
    )


def adt_messages(rng: random.Random, reg: Registration, chart: Chart, next_id: NextId) -> list[str]:
    """The ADT messages of one registration, in time order (rule 5)."""
    if reg.org.kind is OrgKind.GP:
        when = datetime.combine(reg.since, time(9)) + timedelta(minutes=rng.randrange(480))
        return [_adt(reg, "A31", when, None, next_id)[1]]
    timed: list[tuple[datetime, str]] = []
    for visit in chart.visits:
        if visit.cls == "IMP":
            timed.append(_adt(reg, "A01", visit.start, visit, next_id))
            timed.append(_adt(reg, "A03", visit.end, visit, next_id, discharged=True))
        else:
            timed.append(_adt(reg, "A04", visit.start, visit, next_id))
    if chart.visits and rng.random() < 0.15:
        last = max(v.end for v in chart.visits)
        timed.append(_adt(reg, "A08", last + timedelta(hours=rng.randint(1, 200)), None, next_id))
    survivor = reg.merged_into
    if survivor is not None:  # the trust merged this duplicate into the survivor: A40
        last = max((v.end for v in chart.visits), default=datetime.combine(reg.since, time(12)))
        merged_on = last + timedelta(days=rng.randint(1, 30))
        mrg = f"MRG|{escape(reg.mrn)}^^^{reg.org.code}^MR"
        timed.append(_adt(survivor, "A40", merged_on, None, next_id, extra=mrg))
    timed.sort(key=lambda pair: pair[0])
    return [message for _, message in timed]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{_number(low)}-{_number(high)}"
    if high is not None:
        return f"<{_number(high)}"
    return f">{_number(low)}" if low is not None else ""


def _obr(panel_key: str, placer: str, filler: str, provider: str, report: LabReport) -> str:
    panel = PANELS[panel_key]
    return "|".join([
        "OBR", "1", placer, filler, f"{panel.code}^{escape(panel.display)}^LN", "", "",
        clock.hl7_timestamp(report.taken), *[""] * 8, provider, *[""] * 5,
        clock.hl7_timestamp(report.issued), "", panel.service, "F",
    ])  # fmt: skip


def _obx(index: int, result: Result, taken: str) -> str:
    lab = LABS[result.lab]
    return "|".join([
        "OBX", str(index), "NM", f"{lab.code}^{escape(lab.display)}^LN", "", _number(result.value),
        f"{escape(lab.unit)}^^UCUM", _range(lab.low, lab.high), result.flag, "", "", "F", "", "",
        taken,
    ])  # fmt: skip


def _oru(reg: Registration, report: LabReport, next_id: NextId) -> str:
    doctor = report.practitioner
    key = report.report_id.replace("-", "").upper()
    placer, filler = f"P{key[:10]}^{reg.org.code}", f"F{key[10:20]}^{reg.org.code}"
    provider = f"C{doctor.gmc}^{escape(doctor.family)}^{escape(doctor.given)}^^^Dr"
    taken = clock.hl7_timestamp(report.taken)
    return _message(
        [
            _msh(reg.org, report.issued, "ORU^R01", next_id()),
            _pid(reg),
            _pv1(reg, report.visit, False) if report.visit else None,
            f"ORC|RE|{placer}|{filler}||CM||||{taken}|||{provider}",
            _obr(report.panel, placer, filler, provider, report),
            *(_obx(i, result, taken) for i, result in enumerate(report.results, start=1)),
        ]
    )


def oru_messages(reg: Registration, chart: Chart, next_id: NextId) -> list[str]:
    """One ORU^R01 per lab report of the registration, in time order."""
    reports = sorted(chart.reports, key=lambda r: r.issued)
    return [_oru(reg, report, next_id) for report in reports]
