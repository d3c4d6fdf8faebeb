"""FHIRPath 2.0 for FHIR R4: parse once, compile to closures, evaluate on FHIR JSON.

>>> engine = FhirPathEngine(model)
>>> engine.compile("Patient.name.where(use='official').given").evaluate(patient)
['Peter', 'James']

See engine.py for the evaluation contract, compile.py for name and type resolution, and the
function families in ``fn_*.py``.
"""

from careweave.fhir.fhirpath.engine import Expression, FhirPathEngine
from careweave.fhir.fhirpath.errors import FhirPathError
from careweave.fhir.fhirpath.node import Node
from careweave.fhir.fhirpath.runtime import ConformsTo, Resolver, Terminology, Tracer

__all__ = [
    "ConformsTo",
    "Expression",
    "FhirPathEngine",
    "FhirPathError",
    "Node",
    "Resolver",
    "Terminology",
    "Tracer",
]
