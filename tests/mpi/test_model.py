"""The model: weights from m and u, term frequencies, JSON round trip, versions."""

from __future__ import annotations

import math
from types import MappingProxyType

import orjson
import pytest

from careweave.mpi import FIELDS, LEVELS, FieldModel, MatchModel, TermFrequencies, Thresholds


def make_model(**changes) -> MatchModel:
    fields = tuple(
        FieldModel(name, tuple([0.9] + [0.1 / (len(LEVELS[name]) - 1)] * (len(LEVELS[name]) - 1)),
                   tuple([0.01] + [0.99 / (len(LEVELS[name]) - 1)] * (len(LEVELS[name]) - 1)))
        for name in FIELDS
    )  # fmt: skip
    tf = TermFrequencies(MappingProxyType({"smith": 0.02, "john": 0.03}), default=1e-4, floor=1e-6)
    args = {
        "prior": 1e-4,
        "fields": fields,
        "term_frequencies": MappingProxyType({"given_name": tf, "family_name": tf}),
        "thresholds": Thresholds(10.0, 0.0),
    }
    return MatchModel(**{**args, **changes})


def test_weights_are_log2_m_over_u():
    model = make_model()
    nhs = model.field_model("nhs_number")
    assert nhs.weights[0] == pytest.approx(math.log2(0.9 / 0.01))
    assert model.prior_weight == pytest.approx(math.log2(1e-4 / (1 - 1e-4)))


def test_term_frequencies_fall_back_and_floor():
    tf = TermFrequencies(MappingProxyType({"smith": 0.02, "tiny": 1e-9}), default=1e-4, floor=1e-6)
    assert tf.of("smith") == 0.02
    assert tf.of("unseen") == 1e-4
    assert tf.of("tiny") == 1e-6


def test_json_round_trip_keeps_the_version():
    model = make_model()
    data = orjson.loads(orjson.dumps(model.to_json()))
    again = MatchModel.from_json(data)
    assert again.version == model.version
    assert again.weights == model.weights
    assert data["format"] == "careweave-mpi-model/1"
    assert data["fields"]["birth_date"]["levels"] == list(LEVELS["birth_date"])


def test_version_names_parameters_and_thresholds():
    model = make_model()
    assert model.version.startswith("careweave-fs/")
    assert make_model().version == model.version
    assert model.with_thresholds(Thresholds(11.0, 0.0)).version != model.version
    assert make_model(prior=2e-4).version != model.version


def test_from_json_refuses_what_it_cannot_trust():
    data = make_model().to_json()
    with pytest.raises(ValueError, match="careweave-mpi-model/1"):
        MatchModel.from_json({**data, "format": "other"})
    with pytest.raises(ValueError, match="version"):
        MatchModel.from_json({**data, "version": "careweave-fs/000000000000"})
    fields = dict(data["fields"])
    fields["sex"] = {**fields["sex"], "levels": ["same", "different", "unknown"]}
    with pytest.raises(ValueError, match="levels"):
        MatchModel.from_json({**data, "fields": fields})


@pytest.mark.parametrize(
    "bad",
    [
        {"prior": 0.0},
        {"prior": 1.0},
        {"fields": ()},
        {"term_frequencies": MappingProxyType({"address": None})},
    ],
)
def test_invalid_models_are_refused(bad):
    with pytest.raises(ValueError):
        make_model(**bad)


def test_field_model_checks_its_levels():
    with pytest.raises(ValueError):
        FieldModel("sex", (0.9,), (0.5, 0.5))
    with pytest.raises(ValueError):
        FieldModel("sex", (1.0, 0.0), (0.5, 0.5))


def test_thresholds_are_ordered():
    with pytest.raises(ValueError):
        Thresholds(certain=0.0, possible=1.0)
