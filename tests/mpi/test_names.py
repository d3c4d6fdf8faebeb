"""Name folding, tokens, placeholders and the nickname table (careweave.mpi.names).

Cases from the identity notes' data-quality table (section 4.3): apostrophes and diacritics
(O'Reilly, Kociński), hyphenated and double-barrelled names (Jones-Smith), placeholder identities
("Baby of", "Unknown", John Doe) and nicknames (Bob/Robert, Peggy/Margaret).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from careweave.generate.names import NICKNAMES as GENERATOR_NICKNAMES
from careweave.mpi.names import NicknameIndex, fold, is_placeholder, name_key, tokens
from careweave.mpi.nicknames import GROUPS

FOLDS = [
    ("O'Reilly", "oreilly"),
    ("Kociński", "kocinski"),
    ("Zoë", "zoe"),
    ("Łukasz", "lukasz"),
    ("Müller", "muller"),
    ("Øyvind", "oyvind"),
    ("Strauß", "strauss"),
    ("Ayd\u0131n", "aydin"),
    ("Jones-Smith", "jones smith"),
    ("  Anne   Marie ", "anne marie"),
    ("D'Souza-Pereira", "dsouza pereira"),
    ("St. John", "st john"),
    ("MACDONALD", "macdonald"),
    ("", ""),
]


@pytest.mark.parametrize(("raw", "folded"), FOLDS)
def test_fold(raw, folded):
    assert fold(raw) == folded


@pytest.mark.parametrize(
    ("raw", "toks", "key"),
    [
        ("Anne-Marie", ("anne", "marie"), "annemarie"),
        ("Anne Marie", ("anne", "marie"), "annemarie"),
        ("Annemarie", ("annemarie",), "annemarie"),
        ("O'Brien", ("obrien",), "obrien"),
        ("De Silva", ("de", "silva"), "desilva"),
        ("", (), ""),
    ],
)
def test_tokens_and_key(raw, toks, key):
    assert tokens(raw) == toks
    assert name_key(raw) == key


@given(st.text(max_size=30))
def test_fold_is_idempotent(text):
    once = fold(text)
    assert fold(once) == once
    assert name_key(name_key(text)) == name_key(text)


@pytest.mark.parametrize(
    ("given", "family", "text", "placeholder"),
    [
        (["Baby"], "Smith", "Baby of Jane Smith", True),
        (["Baby"], "Smith", None, True),
        ([], "Smith", "Baby of Jane Smith", True),
        (["Unknown"], "Unknown", None, True),
        (["John"], "Doe", None, True),
        (["Jane"], "Unknown", None, True),
        (["Twin 1"], "Patel", None, True),
        ([], "", None, True),
        (["John"], "Smith", None, False),
        (["Bo"], "Li", "Bo Li", False),
        (["Babatunde"], "Okafor", None, False),
        ([], "Smith", None, False),
    ],
)
def test_placeholders(given, family, text, placeholder):
    assert is_placeholder(given, family, text) is placeholder


def test_nickname_groups_are_symmetric_and_shared_names_belong_to_each_line():
    index = NicknameIndex.from_table()
    assert index.equivalent("robert", "bob") and index.equivalent("bob", "robert")
    assert index.equivalent("margaret", "peggy")
    assert index.equivalent("kate", "katherine") and index.equivalent("kate", "catherine")
    assert not index.equivalent("katherine", "robert")
    assert not index.equivalent("john", "ian")  # cognates are not nicknames
    assert not index.equivalent("unlisted", "unlisted2")
    assert "bill" in index.variants_of("william")
    assert index.variants_of("zzz") == frozenset()


def test_table_is_written_folded():
    for line in GROUPS:
        head, _, rest = line.partition(":")
        for name in (head, *rest.split()):
            assert name == name.strip().lower() and name.replace("-", "").isalpha(), line


@pytest.mark.parametrize(
    ("formal", "short"), sorted((k, s) for k, v in GENERATOR_NICKNAMES.items() for s in v)
)
def test_table_covers_the_nicknames_the_generator_uses(formal, short):
    index = NicknameIndex.from_table()
    assert index.equivalent(name_key(formal), name_key(short))
