"""String comparators for folded names: Jaro-Winkler, edit distance and Soundex.

Rules:
1. Inputs are folded names (lower-case ASCII, see :mod:`careweave.mpi.names`); the functions are
   pure, total and symmetric where the maths is (Jaro-Winkler and the edit distance are).
2. Jaro-Winkler follows Winkler (1990): the Jaro similarity plus a bonus of 0.1 per agreeing
   leading character (at most four), applied only when the Jaro similarity is above 0.7 (the
   boost threshold of Winkler, jellyfish and Splink, which it agrees with). Empty strings score 0.
3. :func:`edit_distance` is the optimal string alignment distance (Damerau-Levenshtein restricted
   to adjacent transpositions that are not edited again), which counts a keyboard transposition
   (Jnoes) as one edit, like a dropped, doubled or wrong letter.
4. :func:`soundex` is American Soundex (the PDS fuzzy-search code): first letter, then the
   consonant classes, H and W transparent, vowels separating, padded to four characters.
"""

from __future__ import annotations

__all__ = ["edit_distance", "jaro_winkler", "soundex", "within_one_edit"]

_SOUNDEX = str.maketrans(
    "abcdefghijklmnopqrstuvwxyz",
    "01230120022455012623010202",
)


def jaro_winkler(a: str, b: str) -> float:
    """Jaro-Winkler similarity in [0, 1] (rule 2)."""
    if a == b:
        return 1.0 if a else 0.0
    la, lb = len(a), len(b)
    if not la or not lb:
        return 0.0
    window = max(max(la, lb) // 2 - 1, 0)
    b_used = [False] * lb
    a_matched: list[str] = []
    find = b.find
    for i, ch in enumerate(a):
        end = min(lb, i + window + 1)
        j = find(ch, max(0, i - window), end)
        while j >= 0 and b_used[j]:
            j = find(ch, j + 1, end)
        if j >= 0:
            b_used[j] = True
            a_matched.append(ch)
    matches = len(a_matched)
    if not matches:
        return 0.0
    b_matched = [b[j] for j in range(lb) if b_used[j]]
    transpositions = sum(1 for x, y in zip(a_matched, b_matched, strict=True) if x != y) // 2
    jaro = (matches / la + matches / lb + (matches - transpositions) / matches) / 3
    if jaro <= 0.7:
        return jaro
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    return jaro + prefix * 0.1 * (1 - jaro)


def within_one_edit(a: str, b: str) -> bool:
    """True when :func:`edit_distance` is at most 1, in linear time."""
    la, lb = len(a), len(b)
    if a == b:
        return True
    if abs(la - lb) > 1:
        return False
    i, shortest = 0, min(la, lb)
    while i < shortest and a[i] == b[i]:
        i += 1
    if la == lb:
        if a[i + 1 :] == b[i + 1 :]:
            return True
        return i + 1 < la and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]
    if la > lb:
        return a[i + 1 :] == b[i:]
    return b[i + 1 :] == a[i:]


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (rule 3)."""
    if a == b:
        return 0
    la, lb = len(a), len(b)
    if not la or not lb:
        return la or lb
    before: list[int] = []
    previous = list(range(lb + 1))
    for i in range(1, la + 1):
        current = [i] + [0] * lb
        ai = a[i - 1]
        for j in range(1, lb + 1):
            cost = 0 if ai == b[j - 1] else 1
            best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ai == b[j - 2] and a[i - 2] == b[j - 1]:
                best = min(best, before[j - 2] + 1)
            current[j] = best
        before, previous = previous, current
    return previous[lb]


def soundex(name: str) -> str:
    """American Soundex of a folded name (rule 4); ``""`` when it has no letter."""
    letters = [c for c in name if "a" <= c <= "z"]
    if not letters:
        return ""
    codes = "".join(letters).translate(_SOUNDEX)
    out = [letters[0].upper()]
    last = codes[0]
    for letter, code in zip(letters[1:], codes[1:], strict=True):
        if letter in "hw":
            continue  # transparent: the codes either side merge
        if code != "0" and code != last:
            out.append(code)
            if len(out) == 4:
                break
        last = code
    return "".join(out).ljust(4, "0")
