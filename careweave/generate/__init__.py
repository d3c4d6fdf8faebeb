"""A realistic, deterministic synthetic UK population: FHIR R4, HL7 v2 and ground truth.

Public API::

    from careweave.generate import DEMO, GeneratorConfig, generate
    summary = generate(GeneratorConfig(patients=1000, seed=7), Path("out"))

What it writes (``out_dir``):

* ``ndjson/<ResourceType>.ndjson`` — Bulk Data style, one resource per line.
* ``bundles/NNNNNN.json`` — transaction Bundles of ``PUT Type/id`` entries (idempotent reloads);
  load ``000000.json`` (organisations, practitioners) first, then the rest in name order.
* ``hl7v2/adt.hl7`` and ``hl7v2/oru.hl7`` — HL7 v2.4 ER7, segments ended by ``\\r``, one message
  per line (``\\n`` between messages), grouped per registration and in time order within it.
* ``ground_truth.csv`` — one row per Patient: ``patient_id, organisation (ODS code),
  organisation_type, mrn, person_id, household_id, sex, birth_date, ethnicity, nhs_number (the
  true one), recorded_nhs_number, verification_status, twin (birth order), discrepancies`` (``;``
  separated codes of :class:`Discrepancy`). Patients with the same ``person_id`` are the same real
  person; nothing else is.
* ``summary.json`` — the configuration and the counts.

Identifier systems: NHS numbers ``https://fhir.nhs.uk/Id/nhs-number`` (999 block only, Modulus 11
valid unless the ground truth says ``nhs-number-transposed``); organisations
``https://fhir.nhs.uk/Id/ods-organization-code``; each trust's MRNs
``https://fhir.<code>.nhs.uk/Id/mrn``, each practice's ``https://fhir.<code>.nhs.uk/Id/
local-patient-number``; visit numbers ``https://fhir.<code>.nhs.uk/Id/visit-number``; doctors
``https://fhir.hl7.org.uk/Id/gmc-number``.
"""

from careweave.generate.config import (
    DEMO,
    EASY,
    FORMATS,
    HARD,
    PRESETS,
    DiscrepancyRates,
    GeneratorConfig,
)
from careweave.generate.model import Discrepancy
from careweave.generate.output import TRUTH_COLUMNS
from careweave.generate.run import Progress, Summary, generate

__all__ = [
    "DEMO",
    "EASY",
    "FORMATS",
    "HARD",
    "PRESETS",
    "TRUTH_COLUMNS",
    "Discrepancy",
    "DiscrepancyRates",
    "GeneratorConfig",
    "Progress",
    "Summary",
    "generate",
]
