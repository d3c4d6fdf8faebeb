"""Table definitions and numbered migrations for the SQLite backend.

Rules:
1. Every table that holds tenant data has a ``tid`` column; every index on such a table leads with it.
2. Migrations are numbered and append-only; ``user_version`` records the last one applied.
3. Index tables hold current versions only; history rows keep every version's body. Since V5 an
   index row is keyed by ``ik = rk << ROW_BITS | ordinal`` (its INTEGER PRIMARY KEY, so VACUUM keeps
   it): one resource's rows are the key range of its ``rk`` (:data:`ROW_BITS`), and the value indexes,
   which end with the key, give a matching row's ``rk`` without reading the row. The full-text table
   ``ix_text`` is keyed by ``rk`` itself.
"""

from __future__ import annotations

__all__ = ["INDEX_TABLES", "MIGRATIONS", "ROW_BITS", "SORT_FLAGS_IN_VALUE_INDEXES", "TENANT_TABLES"]

# Low bits of an index row's key, numbering one resource's rows in one table: 2^24 (16.8M) rows. Rows
# are deduplicated, so only a pathological body of tens of megabytes (millions of distinct values)
# could need more, and the writer refuses it (CW-1003) rather than overflow. Fewer bits would bring
# that closer to real bodies; more would make keys longer: each value index entry carries the key,
# stored in 6 bytes while it is below 2^47, that is for the first 2^23 (8.4M) resources with 24 bits.
# The high bits leave room for 2^39 (5.5e11) resources below SQLite's largest key, 2^63 - 1.
ROW_BITS = 24

# Tables whose rows belong to a tenant (removed with it; scoped by tid in every statement).
TENANT_TABLES = (
    "resource",
    "history",
    "ix_token",
    "ix_token_text",
    "ix_string",
    "ix_reference",
    "ix_date",
    "ix_number",
    "ix_quantity",
    "ix_uri",
    "ix_composite",
    "ix_geo",
    "ix_text",
    "custom_param",
    "job",
)

_V1 = """
CREATE TABLE tenant (
    tid INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    settings BLOB NOT NULL DEFAULT '{}'
);
CREATE TABLE param (
    pid INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE
);
CREATE TABLE resource (
    rk INTEGER PRIMARY KEY,
    tid INTEGER NOT NULL,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    body BLOB
);
CREATE UNIQUE INDEX resource_key ON resource (tid, type, id);
CREATE INDEX resource_updated ON resource (tid, type, updated_ms);
CREATE TABLE history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tid INTEGER NOT NULL,
    rk INTEGER NOT NULL,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    method TEXT NOT NULL,
    body BLOB
);
CREATE UNIQUE INDEX history_version ON history (rk, version);
CREATE INDEX history_tenant ON history (tid, seq);
CREATE INDEX history_type ON history (tid, type, seq);
CREATE TABLE ix_token (tid INTEGER NOT NULL, pid INTEGER NOT NULL, system TEXT, code TEXT,
                       flags INTEGER NOT NULL, rk INTEGER NOT NULL);
CREATE INDEX ix_token_code ON ix_token (tid, pid, code, system);
CREATE INDEX ix_token_rk ON ix_token (rk);
CREATE INDEX ix_token_sort ON ix_token (tid, pid, code) WHERE flags & 1 = 1;
CREATE TABLE ix_token_text (tid INTEGER NOT NULL, pid INTEGER NOT NULL, text TEXT NOT NULL,
                            rk INTEGER NOT NULL);
CREATE INDEX ix_token_text_v ON ix_token_text (tid, pid, text);
CREATE INDEX ix_token_text_rk ON ix_token_text (rk);
CREATE TABLE ix_string (tid INTEGER NOT NULL, pid INTEGER NOT NULL, norm TEXT NOT NULL,
                        exact TEXT NOT NULL, flags INTEGER NOT NULL, rk INTEGER NOT NULL);
CREATE INDEX ix_string_v ON ix_string (tid, pid, norm);
CREATE INDEX ix_string_rk ON ix_string (rk);
CREATE INDEX ix_string_first ON ix_string (tid, pid, norm) WHERE flags & 1 = 1;
CREATE INDEX ix_string_last ON ix_string (tid, pid, norm) WHERE flags & 2 = 2;
CREATE TABLE ix_reference (tid INTEGER NOT NULL, pid INTEGER NOT NULL, target_type TEXT,
                           target_id TEXT, url TEXT, flags INTEGER NOT NULL, rk INTEGER NOT NULL);
CREATE INDEX ix_reference_v ON ix_reference (tid, pid, target_id, target_type);
CREATE INDEX ix_reference_url ON ix_reference (tid, pid, url);
CREATE INDEX ix_reference_rk ON ix_reference (rk);
CREATE TABLE ix_date (tid INTEGER NOT NULL, pid INTEGER NOT NULL, lo INTEGER NOT NULL,
                      hi INTEGER NOT NULL, flags INTEGER NOT NULL, rk INTEGER NOT NULL);
CREATE INDEX ix_date_lo ON ix_date (tid, pid, lo);
CREATE INDEX ix_date_hi ON ix_date (tid, pid, hi);
CREATE INDEX ix_date_rk ON ix_date (rk);
CREATE INDEX ix_date_first ON ix_date (tid, pid, lo) WHERE flags & 1 = 1;
CREATE INDEX ix_date_last ON ix_date (tid, pid, hi) WHERE flags & 2 = 2;
CREATE TABLE ix_number (tid INTEGER NOT NULL, pid INTEGER NOT NULL, lo REAL NOT NULL,
                        hi REAL NOT NULL, flags INTEGER NOT NULL, rk INTEGER NOT NULL);
CREATE INDEX ix_number_v ON ix_number (tid, pid, lo);
CREATE INDEX ix_number_rk ON ix_number (rk);
CREATE TABLE ix_quantity (tid INTEGER NOT NULL, pid INTEGER NOT NULL, system TEXT, code TEXT,
                          lo REAL NOT NULL, hi REAL NOT NULL, flags INTEGER NOT NULL,
                          rk INTEGER NOT NULL);
CREATE INDEX ix_quantity_v ON ix_quantity (tid, pid, code, lo);
CREATE INDEX ix_quantity_rk ON ix_quantity (rk);
CREATE TABLE ix_uri (tid INTEGER NOT NULL, pid INTEGER NOT NULL, uri TEXT NOT NULL,
                     flags INTEGER NOT NULL, rk INTEGER NOT NULL);
CREATE INDEX ix_uri_v ON ix_uri (tid, pid, uri);
CREATE INDEX ix_uri_rk ON ix_uri (rk);
CREATE TABLE ix_composite (tid INTEGER NOT NULL, pid INTEGER NOT NULL, s1 TEXT, v1 TEXT,
                           s2 TEXT, v2 TEXT, lo2 REAL, hi2 REAL, lo3 REAL, hi3 REAL,
                           rk INTEGER NOT NULL);
CREATE INDEX ix_composite_v ON ix_composite (tid, pid, v1, v2);
CREATE INDEX ix_composite_rk ON ix_composite (rk);
CREATE TABLE ix_geo (tid INTEGER NOT NULL, pid INTEGER NOT NULL, lat REAL NOT NULL,
                     lon REAL NOT NULL, rk INTEGER NOT NULL);
CREATE INDEX ix_geo_v ON ix_geo (tid, pid, lat);
CREATE INDEX ix_geo_rk ON ix_geo (rk);
CREATE VIRTUAL TABLE ix_text USING fts5 (
    narrative, content, tid UNINDEXED, tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO tenant (tid, name, created_ms, settings) VALUES (1, 'default', 0, '{}');
"""

# 2: which index tables hold rows for a resource (bit i = INDEX_TABLES[i]; -1 = unknown, check all),
# so an update deletes old rows only where there are some. Fewer index entries per write: the url
# index only holds rows that have a url, and tokens keep no sort index (sorting by a token still
# works, reading the token rows).
_V2 = """
ALTER TABLE resource ADD COLUMN ixmask INTEGER NOT NULL DEFAULT -1;
DROP INDEX ix_reference_url;
CREATE INDEX ix_reference_url ON ix_reference (tid, pid, url) WHERE url IS NOT NULL;
DROP INDEX ix_token_sort;
"""

# 3: custom search parameters per tenant, with the generation that tells processes to reload them,
# and background jobs (reindex; later exports), progress kept in the database so they survive
# a restart.
_V3 = """
ALTER TABLE tenant ADD COLUMN params_generation INTEGER NOT NULL DEFAULT 0;
CREATE TABLE custom_param (
    tid INTEGER NOT NULL,
    key TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    url TEXT NOT NULL,
    definition BLOB NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (tid, key)
);
CREATE INDEX custom_param_resource ON custom_param (tid, resource_id);
CREATE TABLE job (
    jid INTEGER PRIMARY KEY,
    tid INTEGER NOT NULL,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    state TEXT NOT NULL,
    cursor INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    error TEXT
);
CREATE INDEX job_state ON job (state, jid);
CREATE INDEX job_tenant ON job (tid, jid);
"""

# 4: current resources of a type in row order (default search order, exports, reindexing)
_V4 = """
CREATE INDEX resource_type_rk ON resource (tid, type, rk);
"""

# 5: index rows clustered by resource (rule 3): each index table is rebuilt with the key
# ``ik = rk << 24 | ordinal`` (ordinals numbered per resource) and without its ``rk`` column and its
# ``(rk)`` index, which existed only to find one resource's rows; the value indexes are recreated.
# A resource with 2^24 rows or more in one table, or an rk of 2^39 or more, makes the copy fail (a
# NULL tid), so the migration rolls back rather than file a row under another resource.
_V5_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {  # table: (value columns, indexes)
    "ix_token": (
        "system TEXT, code TEXT, flags INTEGER NOT NULL",
        ("ix_token_code (tid, pid, code, system)",),
    ),
    "ix_token_text": ("text TEXT NOT NULL", ("ix_token_text_v (tid, pid, text)",)),
    "ix_string": (
        "norm TEXT NOT NULL, exact TEXT NOT NULL, flags INTEGER NOT NULL",
        (
            "ix_string_v (tid, pid, norm)",
            "ix_string_first (tid, pid, norm) WHERE flags & 1 = 1",
            "ix_string_last (tid, pid, norm) WHERE flags & 2 = 2",
        ),
    ),
    "ix_reference": (
        "target_type TEXT, target_id TEXT, url TEXT, flags INTEGER NOT NULL",
        (
            "ix_reference_v (tid, pid, target_id, target_type)",
            "ix_reference_url (tid, pid, url) WHERE url IS NOT NULL",
        ),
    ),
    "ix_date": (
        "lo INTEGER NOT NULL, hi INTEGER NOT NULL, flags INTEGER NOT NULL",
        (
            "ix_date_lo (tid, pid, lo)",
            "ix_date_hi (tid, pid, hi)",
            "ix_date_first (tid, pid, lo) WHERE flags & 1 = 1",
            "ix_date_last (tid, pid, hi) WHERE flags & 2 = 2",
        ),
    ),
    "ix_number": (
        "lo REAL NOT NULL, hi REAL NOT NULL, flags INTEGER NOT NULL",
        ("ix_number_v (tid, pid, lo)",),
    ),
    "ix_quantity": (
        "system TEXT, code TEXT, lo REAL NOT NULL, hi REAL NOT NULL, flags INTEGER NOT NULL",
        ("ix_quantity_v (tid, pid, code, lo)",),
    ),
    "ix_uri": ("uri TEXT NOT NULL, flags INTEGER NOT NULL", ("ix_uri_v (tid, pid, uri)",)),
    "ix_composite": (
        "s1 TEXT, v1 TEXT, s2 TEXT, v2 TEXT, lo2 REAL, hi2 REAL, lo3 REAL, hi3 REAL",
        ("ix_composite_v (tid, pid, v1, v2)",),
    ),
    "ix_geo": ("lat REAL NOT NULL, lon REAL NOT NULL", ("ix_geo_v (tid, pid, lat)",)),
}


def _v5_table(table: str, columns: str, indexes: tuple[str, ...]) -> str:
    names = ", ".join(c.split()[0] for c in columns.split(", "))
    new = f"{table}_v5"
    return "".join(
        [
            f"CREATE TABLE {new} (ik INTEGER PRIMARY KEY, tid INTEGER NOT NULL, pid INTEGER NOT NULL, "
            f"{columns});\n",
            f"INSERT INTO {new} (ik, tid, pid, {names}) "
            f"SELECT (rk << 24) + n, CASE WHEN n < 16777216 AND rk < 549755813888 THEN tid END, "
            f"pid, {names} FROM (SELECT *, row_number() OVER (PARTITION BY rk ORDER BY rowid) - 1 AS n "
            f"FROM {table}) ORDER BY rk, n;\n",
            f"DROP TABLE {table};\n",
            f"ALTER TABLE {new} RENAME TO {table};\n",
            *(f"CREATE INDEX {index.replace(' (', f' ON {table} (', 1)};\n" for index in indexes),
        ]
    )


_V5 = "".join(_v5_table(table, columns, indexes) for table, (columns, indexes) in _V5_TABLES.items())

# 6: fewer index entries per write. The partial "first"/"last" indexes of ix_date and ix_string
# (for sorting by a parameter's lowest or highest value) held most rows a second time, since a
# single value is both; the value indexes now carry ``flags`` instead, and a sorted scan reads them
# in order and skips the rows that are not first (or last) from the index itself. A date row is
# written into two indexes instead of four, a string row into one instead of three. The same
# statements are PostgreSQL's migration 2 (pg_schema.py).
SORT_FLAGS_IN_VALUE_INDEXES = """
DROP INDEX ix_date_first;
DROP INDEX ix_date_last;
DROP INDEX ix_date_lo;
DROP INDEX ix_date_hi;
CREATE INDEX ix_date_lo ON ix_date (tid, pid, lo, flags);
CREATE INDEX ix_date_hi ON ix_date (tid, pid, hi, flags);
DROP INDEX ix_string_first;
DROP INDEX ix_string_last;
DROP INDEX ix_string_v;
CREATE INDEX ix_string_v ON ix_string (tid, pid, norm, flags);
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5, SORT_FLAGS_IN_VALUE_INDEXES)

# The index tables, in the bit order of resource.ixmask.
INDEX_TABLES = tuple(t for t in TENANT_TABLES if t.startswith("ix_"))
