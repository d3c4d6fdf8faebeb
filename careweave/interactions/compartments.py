"""Patient compartment membership as a search predicate (compartmentdefinition-patient.html)."""

from __future__ import annotations

from collections.abc import Sequence

from careweave.interactions.context import Services
from careweave.search.plan import And, IdIn, Or, Predicate, RefIn, RefMatch, TypeIn

__all__ = ["patient_membership"]


def patient_membership(
    services: Services, patients: str | Sequence[str] | None, types: Sequence[str]
) -> Predicate:
    """Resources of ``types`` in the compartment of the given patient(s) (any patient: None):
    the Patient resources themselves, and each member type through its compartment parameters."""
    ids: tuple[str, ...] | None = None
    if isinstance(patients, str):
        ids = (patients,)
    elif patients is not None:
        ids = tuple(patients)
    compartment = services.compartments.get("Patient", {})
    options: list[Predicate] = []
    for type_ in types:
        if type_ == "Patient":
            options.append(
                And((TypeIn(("Patient",)), IdIn(ids))) if ids is not None else TypeIn(("Patient",))
            )
            continue
        refs: list[Predicate] = []
        for code in compartment.get(type_, ()):
            param = services.search_params.get(type_, code)
            if param is None:
                continue
            if ids is None:
                refs.append(RefMatch(param.key, "Patient", None))
            elif len(ids) == 1:
                refs.append(RefMatch(param.key, "Patient", ids[0]))
            else:
                refs.append(RefIn(param.key, "Patient", ids))
        if refs:
            options.append(And((TypeIn((type_,)), refs[0] if len(refs) == 1 else Or(tuple(refs)))))
    return Or(tuple(options)) if options else IdIn(())
