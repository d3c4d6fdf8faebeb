"""The v2 tables the mapping needs, as data: v2 code -> FHIR code (or URI).

Rules:
1. One dict per v2 table (or per concept map), named after what it maps; each says where it
   comes from. Where the packaged FHIR definitions hold the same map (``conceptmaps``: the v2
   maps for administrative sex, name use, address use, telecom use and system), a test checks
   that these dicts agree with them; the v2 code sets come from ``v2-tables``.
2. Maps not in the packages follow the HL7 v2-to-FHIR IG vocabulary maps (hl7.fhir.uv.v2mappings
   1.0.0); a comment says where careweave decides on its own.
3. A code that is not in a dict is not guessed: the mapping keeps it as text, or falls back to
   the documented default of its caller.
"""

from __future__ import annotations

__all__ = [
    "ABNORMAL_FLAG",
    "ADDRESS_TYPE",
    "ADDRESS_USE",
    "ADMINISTRATIVE_SEX",
    "APPOINTMENT_EVENT_STATUS",
    "CODING_SYSTEM",
    "DIAGNOSTIC_SECTION_CATEGORY",
    "DOCUMENT_AVAILABILITY",
    "DOCUMENT_COMPLETION",
    "ENCOUNTER_EVENT_STATUS",
    "ETHNIC_CATEGORY",
    "EVENT_STRUCTURE",
    "FILLER_STATUS",
    "IMMUNIZATION_COMPLETION",
    "MARITAL_STATUS",
    "NAME_USE",
    "NHS_NUMBER_STATUS",
    "OBSERVATION_STATUS",
    "ORDER_CONTROL_STATUS",
    "ORDER_STATUS",
    "PATIENT_CLASS",
    "PRIORITY",
    "RESULT_STATUS",
    "TELECOM_EQUIPMENT",
    "TELECOM_USE",
    "VERSIONS",
]

# HL7 table 0104 (version id): the versions the gateway reads.
VERSIONS = frozenset(
    {"2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1",
     "2.8.2", "2.9"}
)  # fmt: skip

# HL7 table 0354 (message structure), v2.5.1, for the events the gateway maps: used when
# MSH-9.3 is empty (v2.3.x feeds), as the IG's implementation considerations advise.
EVENT_STRUCTURE: dict[tuple[str, str], str] = {
    **{("ADT", e): "ADT_A01" for e in ("A01", "A04", "A08", "A13")},
    ("ADT", "A02"): "ADT_A02",
    ("ADT", "A03"): "ADT_A03",
    **{("ADT", e): "ADT_A05" for e in ("A05", "A14", "A28", "A31")},
    **{("ADT", e): "ADT_A09" for e in ("A09", "A10", "A11")},
    **{("ADT", e): "ADT_A39" for e in ("A39", "A40", "A41", "A42")},
    ("ORU", "R01"): "ORU_R01",
    ("ORM", "O01"): "ORM_O01",
    ("OML", "O21"): "OML_O21",
    **{("SIU", f"S{n}"): "SIU_S12" for n in range(12, 27)},
    ("MDM", "T02"): "MDM_T02",
    **{("MDM", e): "MDM_T02" for e in ("T04", "T06", "T08", "T10")},
    ("VXU", "V04"): "VXU_V04",
}

# Trigger event (table 0003) -> Encounter.status: the IG's MessageEvent[EncounterStatus] map.
# careweave decides A08/A31 (updates: not in this table; the visit's own dates decide) and
# A11: cancelled (the IG's choice; the admission did not happen, which is what FHIR's
# "cancelled" means; entered-in-error would say the record itself was false).
ENCOUNTER_EVENT_STATUS: dict[str, str] = {
    "A01": "in-progress",
    "A02": "in-progress",
    "A03": "finished",
    "A04": "arrived",
    "A05": "planned",
    "A06": "in-progress",
    "A07": "in-progress",
    "A09": "in-progress",
    "A10": "in-progress",
    "A11": "cancelled",
    "A13": "in-progress",
    "A14": "planned",
}

# HL7 table 0001 -> administrative-gender; the inverse of ConceptMap cm-administrative-gender-v2,
# plus N (not applicable) -> other as the IG's AdministrativeSex map says.
ADMINISTRATIVE_SEX: dict[str, str] = {
    "M": "male",
    "F": "female",
    "O": "other",
    "A": "other",
    "N": "other",
    "U": "unknown",
}

# HL7 table 0200 (name type) -> name-use; inverse of ConceptMap cm-name-use-v2.
NAME_USE: dict[str, str] = {
    "D": "usual",
    "L": "official",
    "TEMP": "temp",
    "N": "nickname",
    "S": "anonymous",
    "NOUSE": "old",
    "BAD": "old",
    "M": "maiden",
}

# HL7 table 0190 (address type) -> address-use; inverse of ConceptMap cm-address-use-v2.
ADDRESS_USE: dict[str, str] = {"H": "home", "O": "work", "C": "temp", "BA": "old", "BI": "billing"}
# ... and -> address-type (IG AddressType map): mailing addresses are postal.
ADDRESS_TYPE: dict[str, str] = {"M": "postal", "SH": "physical"}

# HL7 table 0201 (telecommunication use) -> contact-point-use; inverse of ConceptMap
# cm-contact-point-use-v2 (PRS, "personal", is where mobiles go in that map).
TELECOM_USE: dict[str, str] = {
    "PRN": "home",
    "ORN": "home",
    "VHN": "home",
    "WPN": "work",
    "PRS": "mobile",
}

# HL7 table 0202 (telecommunication equipment) -> contact-point-system; inverse of ConceptMap
# cm-contact-point-system-v2, plus CP (cellular phone) -> phone with use mobile (IG map).
TELECOM_EQUIPMENT: dict[str, str] = {
    "PH": "phone",
    "FX": "fax",
    "Internet": "email",
    "BP": "pager",
    "CP": "phone",
    "MD": "other",
    "X.400": "email",
    "TDD": "other",
    "TTY": "other",
}

# HL7 table 0004 (patient class) -> v3 ActCode (Encounter.class): the IG's PatientClass map.
PATIENT_CLASS: dict[str, tuple[str, str]] = {
    "E": ("EMER", "emergency"),
    "I": ("IMP", "inpatient encounter"),
    "O": ("AMB", "ambulatory"),
    "P": ("PRENC", "pre-admission"),
    "R": ("AMB", "ambulatory"),
    "B": ("IMP", "inpatient encounter"),
}

# HL7 table 0002 (marital status) -> v3 MaritalStatus (IG MaritalStatus map).
MARITAL_STATUS: dict[str, tuple[str, str]] = {
    "A": ("L", "Legally Separated"),
    "D": ("D", "Divorced"),
    "M": ("M", "Married"),
    "S": ("S", "Never Married"),
    "W": ("W", "Widowed"),
    "C": ("T", "Domestic partner"),
    "P": ("T", "Domestic partner"),
    "R": ("T", "Domestic partner"),
    "E": ("L", "Legally Separated"),
    "N": ("A", "Annulled"),
    "I": ("I", "Interlocutory"),
    "B": ("U", "unmarried"),
    "U": ("UNK", "unknown"),
}

# HL7 table 0396 (coding system) -> FHIR system URI. HL7nnnn is handled as a pattern.
CODING_SYSTEM: dict[str, str] = {
    "LN": "http://loinc.org",
    "LOINC": "http://loinc.org",
    "SCT": "http://snomed.info/sct",
    "SNM": "http://snomed.info/sct",
    "SNOMED": "http://snomed.info/sct",
    "SNOMEDCT": "http://snomed.info/sct",
    "I10": "http://hl7.org/fhir/sid/icd-10",
    "ICD10": "http://hl7.org/fhir/sid/icd-10",
    "UCUM": "http://unitsofmeasure.org",
    "CVX": "http://hl7.org/fhir/sid/cvx",
    "DMD": "https://dmd.nhs.uk",
    "RD2": "http://read.info/readv2",
    "CTV3": "http://read.info/ctv3",
}

# HL7 table 0123 (result status, OBR-25) -> diagnostic-report-status (IG ResultStatus map).
RESULT_STATUS: dict[str, str] = {
    "O": "registered",
    "I": "registered",
    "S": "registered",
    "A": "partial",
    "P": "preliminary",
    "R": "partial",
    "N": "partial",
    "C": "corrected",
    "M": "corrected",
    "F": "final",
    "X": "cancelled",
}

# HL7 table 0085 (observation result status, OBX-11) -> observation-status (IG map).
OBSERVATION_STATUS: dict[str, str] = {
    "C": "corrected",
    "D": "entered-in-error",
    "F": "final",
    "I": "registered",
    "N": "cancelled",
    "O": "registered",
    "P": "preliminary",
    "R": "preliminary",
    "S": "preliminary",
    "U": "final",
    "V": "final",
    "W": "entered-in-error",
    "X": "cancelled",
    "A": "amended",
    "B": "amended",
}

# HL7 table 0078 (abnormal flags, OBX-8) -> v3 ObservationInterpretation: the same codes
# where v3 has them (IG map); others are kept as v2-0078 codings.
ABNORMAL_FLAG: dict[str, str] = {
    code: code
    for code in ("L", "H", "LL", "HH", "N", "A", "AA", "U", "D", "B", "W", "S", "R", "I",
                 "MS", "VS", "POS", "NEG", "IND", "DET", "ND", "<", ">", "HU", "LU")
}  # fmt: skip

# HL7 table 0074 (diagnostic service section, OBR-24) -> observation-category (careweave).
DIAGNOSTIC_SECTION_CATEGORY: dict[str, str] = {
    **{s: "laboratory" for s in ("LAB", "CH", "HM", "MB", "BLB", "SR", "CP", "IMM", "PAT",
                                 "SP", "TX", "VR", "MCB", "MYC", "HM", "OSL")},
    **{s: "imaging" for s in ("RAD", "CT", "MR", "US", "NMR", "NMS", "XRC", "RX", "VUS")},
    **{s: "procedure" for s in ("EC", "EN", "CTH", "PF", "CUS", "OUS")},
}  # fmt: skip

# HL7 table 0119 (order control, ORC-1) -> request-status (IG OrderControlCode map, subset).
ORDER_CONTROL_STATUS: dict[str, str] = {
    "NW": "active",
    "OK": "active",
    "SC": "active",
    "XO": "active",
    "RP": "active",
    "CA": "revoked",
    "OC": "revoked",
    "CR": "revoked",
    "DC": "revoked",
    "OD": "revoked",
    "HD": "on-hold",
    "OH": "on-hold",
    "RL": "active",
    "RE": "completed",
}

# HL7 table 0038 (order status, ORC-5) -> request-status (IG OrderStatus map).
ORDER_STATUS: dict[str, str] = {
    "A": "active",
    "CA": "revoked",
    "CM": "completed",
    "DC": "revoked",
    "ER": "entered-in-error",
    "HD": "on-hold",
    "IP": "active",
    "RP": "revoked",
    "SC": "active",
}

# Priority (TQ1-9 / OBR-27.6 / ORC-7.6, HL7 table 0485) -> request-priority.
PRIORITY: dict[str, str] = {
    "S": "stat",
    "A": "asap",
    "R": "routine",
    "P": "urgent",
    "C": "urgent",
    "T": "urgent",
    "PRN": "routine",
}

# SIU trigger event -> appointment-status (careweave: S12 new, S13/S14 rescheduled or changed,
# S15 cancelled, S17 deleted, S26 no-show).
APPOINTMENT_EVENT_STATUS: dict[str, str] = {
    "S12": "booked",
    "S13": "booked",
    "S14": "booked",
    "S15": "cancelled",
    "S17": "entered-in-error",
    "S26": "noshow",
}

# HL7 table 0278 (filler status code, SCH-25) -> appointment-status (IG map).
FILLER_STATUS: dict[str, str] = {
    "Pending": "pending",
    "Waitlist": "waitlist",
    "Booked": "booked",
    "Started": "arrived",
    "Complete": "fulfilled",
    "Cancelled": "cancelled",
    "DC": "cancelled",
    "Discontinued": "cancelled",
    "Deleted": "entered-in-error",
    "Blocked": "booked",
    "Overbook": "booked",
    "Noshow": "noshow",
}

# HL7 table 0271 (document completion status, TXA-17) -> composition-status (docStatus).
DOCUMENT_COMPLETION: dict[str, str] = {
    "AU": "final",
    "LA": "final",
    "DI": "preliminary",
    "DO": "preliminary",
    "IN": "preliminary",
    "IP": "preliminary",
    "PA": "preliminary",
}

# HL7 table 0273 (document availability status, TXA-19) -> document-reference-status.
DOCUMENT_AVAILABILITY: dict[str, str] = {
    "AV": "current",
    "UN": "current",
    "OB": "superseded",
    "CA": "entered-in-error",
}

# HL7 table 0322 (completion status, RXA-20) -> immunization-status (IG CompletionStatus map).
IMMUNIZATION_COMPLETION: dict[str, str] = {
    "CP": "completed",
    "PA": "completed",
    "RE": "not-done",
    "NA": "not-done",
}

# NHS Number Status Indicator Code (NHS Data Dictionary), carried in PID-32 (identity
# reliability code) by UK feeds, with or without the "NSTS" prefix -> UK Core
# NHSNumberVerificationStatusEngland code and display.
NHS_NUMBER_STATUS: dict[str, str] = {
    "01": "Number present and verified",
    "02": "Number present but not traced",
    "03": "Trace required",
    "04": "Trace attempted - No match or multiple match found",
    "05": "Trace needs to be resolved - (NHS Number or patient detail conflict)",
    "06": "Trace in progress",
    "07": "Number not present and trace not required",
    "08": "Trace postponed (baby under six weeks old)",
}

# NHS Data Dictionary "Ethnic Category" (2001 census codes), carried in PID-22 by UK feeds ->
# UK Core EthnicCategoryEngland code and display.
ETHNIC_CATEGORY: dict[str, str] = {
    "A": "White - British",
    "B": "White - Irish",
    "C": "White - Any other White background",
    "D": "Mixed - White and Black Caribbean",
    "E": "Mixed - White and Black African",
    "F": "Mixed - White and Asian",
    "G": "Mixed - Any other mixed background",
    "H": "Asian or Asian British - Indian",
    "J": "Asian or Asian British - Pakistani",
    "K": "Asian or Asian British - Bangladeshi",
    "L": "Asian or Asian British - Any other Asian background",
    "M": "Black or Black British - Caribbean",
    "N": "Black or Black British - African",
    "P": "Black or Black British - Any other Black background",
    "R": "Other Ethnic Groups - Chinese",
    "S": "Other Ethnic Groups - Any other ethnic group",
    "Z": "Not stated",
}
