"""Clinical code tables: SNOMED CT conditions, dm+d medicines, LOINC tests with UCUM units.

Rules:
1. Codes are real codes with their usual display: SNOMED CT (``http://snomed.info/sct``) for
   conditions, encounter types, allergies, specialties and vaccines; dm+d VMP codes (which are
   SNOMED CT identifiers in the UK edition, so also ``http://snomed.info/sct``) for medicines;
   LOINC (``http://loinc.org``) for observations, with UCUM units. The tables are small,
   spot-checked samples for synthetic data, not a terminology and not for clinical use.
2. A chronic condition's prevalence is a per-person probability by age band; a condition may name
   the medicine its sufferers are prescribed and the lab panel that monitors it.
3. Values are drawn around a mean with a spread; conditions shift the mean (a diabetic's HbA1c).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "ACUTE",
    "ALLERGIES",
    "CHRONIC",
    "ENCOUNTER_TYPES",
    "LABS",
    "LOINC",
    "MANIFESTATIONS",
    "MEDICINES",
    "PANELS",
    "SNOMED",
    "SPECIALTIES",
    "UCUM",
    "VACCINES",
    "VITALS",
    "Chronic",
    "Lab",
    "Medicine",
    "Panel",
]

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


@dataclass(frozen=True, slots=True)
class Chronic:
    code: str
    display: str
    prevalence: tuple[float, float, float, float]  # ages <18, 18-44, 45-64, 65+ (rule 2)
    medicine: str | None  # a key of MEDICINES
    panel: str | None  # a key of PANELS
    female_only: bool = False


@dataclass(frozen=True, slots=True)
class Medicine:
    code: str
    display: str
    dosage: str


@dataclass(frozen=True, slots=True)
class Lab:
    code: str
    display: str
    unit: str  # UCUM code, also used as the human unit
    mean: float
    sd: float
    low: float | None
    high: float | None
    decimals: int


@dataclass(frozen=True, slots=True)
class Panel:
    code: str
    display: str
    service: str  # HL7 v2 diagnostic service section (table 0074): HM, CH
    tests: tuple[str, ...]  # keys of LABS


CHRONIC: Mapping[str, Chronic] = MappingProxyType({
    "hypertension": Chronic("38341003", "Hypertensive disorder", (0.0, 0.06, 0.25, 0.55),
                            "amlodipine", "renal"),
    "diabetes": Chronic("44054006", "Type 2 diabetes mellitus", (0.0, 0.02, 0.09, 0.18),
                        "metformin", "hba1c"),
    "asthma": Chronic("195967001", "Asthma", (0.09, 0.08, 0.07, 0.07), "salbutamol", None),
    "copd": Chronic("13645005", "Chronic obstructive lung disease", (0.0, 0.005, 0.03, 0.08),
                    "salbutamol", None),
    "hyperlipidaemia": Chronic("55822004", "Hyperlipidemia", (0.0, 0.03, 0.15, 0.3),
                               "rosuvastatin", "lipids"),
    "ihd": Chronic("414545008", "Ischemic heart disease", (0.0, 0.003, 0.04, 0.13),
                   "pravastatin", "lipids"),
    "af": Chronic("49436004", "Atrial fibrillation", (0.0, 0.002, 0.02, 0.1), None, "fbc"),
    "ckd": Chronic("709044004", "Chronic kidney disease", (0.0, 0.005, 0.03, 0.15), None, "renal"),
    "hypothyroidism": Chronic("40930008", "Hypothyroidism", (0.002, 0.02, 0.04, 0.06), None,
                              "thyroid", female_only=True),
    "depression": Chronic("35489007", "Depressive disorder", (0.02, 0.1, 0.1, 0.07), None, None),
    "anxiety": Chronic("197480006", "Anxiety disorder", (0.03, 0.08, 0.06, 0.04), "diazepam",
                       None),
    "osteoarthritis": Chronic("396275006", "Osteoarthritis", (0.0, 0.01, 0.1, 0.3),
                              "paracetamol", None),
    "heart_failure": Chronic("84114007", "Heart failure", (0.0, 0.001, 0.01, 0.06), None,
                             "renal"),
    "dementia": Chronic("26929004", "Alzheimer's disease", (0.0, 0.0, 0.003, 0.05), None, None),
})  # fmt: skip

ACUTE: Mapping[str, tuple[str, str, str | None]] = MappingProxyType({
    # key: (SNOMED code, display, medicine key)
    "uti": ("68566005", "Urinary tract infectious disease", "amoxicillin"),
    "pneumonia": ("233604007", "Pneumonia", "amoxicillin"),
    "pharyngitis": ("195662009", "Acute viral pharyngitis", None),
    "bronchitis": ("10509002", "Acute bronchitis", "amoxicillin"),
    "sinusitis": ("444814009", "Viral sinusitis", None),
    "covid": ("840539006", "Disease caused by severe acute respiratory syndrome coronavirus 2",
              None),
    "fracture": ("125605004", "Fracture of bone", "paracetamol"),
    "appendicitis": ("74400008", "Appendicitis", None),
    "mi": ("22298006", "Myocardial infarction", None),
    "stroke": ("230690007", "Cerebrovascular accident", None),
    "migraine": ("37796009", "Migraine", "paracetamol"),
})  # fmt: skip

MEDICINES: Mapping[str, Medicine] = MappingProxyType({
    "metformin": Medicine("325278007", "Metformin 500mg tablets", "One tablet twice a day"),
    "amlodipine": Medicine("319283006", "Amlodipine 5mg tablets", "One tablet once a day"),
    "rosuvastatin": Medicine("408037007", "Rosuvastatin 20mg tablets", "One tablet at night"),
    "pravastatin": Medicine("320014009", "Pravastatin 40mg tablets", "One tablet at night"),
    "salbutamol": Medicine("39113611000001102", "Salbutamol 100micrograms/dose inhaler CFC free",
                           "Two puffs when required"),
    "paracetamol": Medicine("322236009", "Paracetamol 500mg tablets",
                            "One or two tablets up to four times a day"),
    "amoxicillin": Medicine("323509004", "Amoxicillin 250mg capsules",
                            "One capsule three times a day for 5 days"),
    "diazepam": Medicine("321196004", "Diazepam 2mg tablets", "One tablet up to three times a day"),
})  # fmt: skip

LABS: Mapping[str, Lab] = MappingProxyType({
    "hb": Lab("718-7", "Hemoglobin [Mass/volume] in Blood", "g/L", 138, 14, 120, 170, 0),
    "wbc": Lab("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*9/L", 7.0, 1.8,
               4.0, 11.0, 1),
    "plt": Lab("777-3", "Platelets [#/volume] in Blood by Automated count", "10*9/L", 260, 60,
               150, 400, 0),
    "na": Lab("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 139, 2.5, 133, 146,
              0),
    "k": Lab("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 4.3, 0.4, 3.5,
             5.3, 1),
    "urea": Lab("22664-7", "Urea [Moles/volume] in Serum or Plasma", "mmol/L", 5.5, 1.5, 2.5,
                7.8, 1),
    "creat": Lab("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "umol/L", 80, 18, 45,
                 110, 0),
    "egfr": Lab("33914-3", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in "
                "Serum or Plasma by Creatinine-based formula (MDRD)", "mL/min/{1.73_m2}", 82, 14,
                60, None, 0),
    "chol": Lab("14647-2", "Cholesterol [Moles/volume] in Serum or Plasma", "mmol/L", 5.1, 1.0,
                None, 5.0, 1),
    "hba1c": Lab("59261-8", "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol",
                 "mmol/mol", 38, 4, 20, 42, 0),
    "tsh": Lab("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "m[IU]/L", 2.1, 0.9,
               0.27, 4.2, 2),
    "crp": Lab("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L", 4, 3,
               None, 5, 0),
})  # fmt: skip

PANELS: Mapping[str, Panel] = MappingProxyType({
    "fbc": Panel("58410-2", "CBC panel - Blood by Automated count", "HM", ("hb", "wbc", "plt")),
    "renal": Panel("24362-6", "Renal function 2000 panel - Serum or Plasma", "CH",
                   ("na", "k", "urea", "creat", "egfr")),
    "lipids": Panel("24331-1", "Lipid 1996 panel - Serum or Plasma", "CH", ("chol",)),
    "hba1c": Panel("59261-8", "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol", "CH",
                   ("hba1c",)),
    "thyroid": Panel("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "CH", ("tsh",)),
    "crp": Panel("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "CH", ("crp",)),
})  # fmt: skip

ALLERGIES: Mapping[str, tuple[str, str, str, str]] = MappingProxyType({
    # key: (SNOMED code, display, category, reaction manifestation key)
    "penicillin": ("91936005", "Allergy to penicillin", "medication", "rash"),
    "peanut": ("91935009", "Allergy to peanut", "food", "anaphylaxis"),
    "latex": ("300916003", "Latex allergy", "environment", "hives"),
    "grass": ("418689008", "Allergy to grass pollen", "environment", "itch"),
    "shellfish": ("300913006", "Shellfish allergy", "food", "hives"),
    "nut": ("91934008", "Allergy to nut", "food", "anaphylaxis"),
})  # fmt: skip

MANIFESTATIONS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "rash": ("271807003", "Eruption of skin"),
    "anaphylaxis": ("39579001", "Anaphylaxis"),
    "hives": ("247472004", "Wheal"),
    "itch": ("418290006", "Itching"),
})  # fmt: skip

VACCINES: Mapping[str, tuple[str, str, str]] = MappingProxyType({
    # key: (SNOMED code, display, product text)
    "6in1": ("836380007", "Haemophilus influenzae type b antigen-containing vaccine product",
             "DTaP/IPV/Hib/HepB (6-in-1)"),
    "mmr": ("871831003", "Measles and mumps and rubella vaccine product", "MMR"),
    "hpv": ("836379009", "Human papillomavirus antigen-containing vaccine product", "HPV"),
    "flu": ("836377006", "Influenza virus antigen-containing vaccine product",
            "Seasonal influenza"),
    "pneumo": ("836398006", "Streptococcus pneumoniae antigen-containing vaccine product",
               "Pneumococcal polysaccharide (PPV23)"),
    "shingles": ("836495005", "Human alphaherpesvirus 3 antigen-containing vaccine product",
                 "Shingles"),
    "covid": ("1119349007", "SARS-CoV-2 mRNA vaccine", "COVID-19 mRNA"),
})  # fmt: skip

ENCOUNTER_TYPES: Mapping[str, tuple[str, str]] = MappingProxyType({
    "consultation": ("11429006", "Consultation"),
    "checkup": ("185349003", "Encounter for check up"),
    "telephone": ("185317003", "Telephone encounter"),
    "symptom": ("185345009", "Encounter for symptom"),
    "followup": ("390906007", "Follow-up encounter"),
    "emergency": ("50849002", "Emergency room admission"),
    "admission": ("32485007", "Hospital admission"),
})  # fmt: skip

SPECIALTIES: Mapping[str, tuple[str, str]] = MappingProxyType({
    "general-practice": ("394814009", "General practice"),
    "general-medicine": ("394802001", "General medicine"),
    "cardiology": ("394579002", "Cardiology"),
    "general-surgery": ("394609007", "General surgery"),
    "emergency": ("773568002", "Emergency medicine"),
    "paediatrics": ("394537008", "Pediatric specialty"),
    "trauma-orthopaedics": ("394801008", "Trauma and orthopedics"),
})  # fmt: skip

# Vital signs: key -> (LOINC code, display, UCUM unit)
VITALS: Mapping[str, tuple[str, str, str]] = MappingProxyType({
    "bp": ("85354-9", "Blood pressure panel with all children optional", ""),
    "systolic": ("8480-6", "Systolic blood pressure", "mm[Hg]"),
    "diastolic": ("8462-4", "Diastolic blood pressure", "mm[Hg]"),
    "hr": ("8867-4", "Heart rate", "/min"),
    "rr": ("9279-1", "Respiratory rate", "/min"),
    "temp": ("8310-5", "Body temperature", "Cel"),
    "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%"),
    "weight": ("29463-7", "Body weight", "kg"),
    "height": ("8302-2", "Body height", "cm"),
    "bmi": ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2"),
})  # fmt: skip
