"""Bytes to text: the character set a message declares in MSH-18 (HL7 table 0211).

Rules:
1. A UTF-8 byte order mark is dropped; a UTF-16 mark or the zero bytes of UTF-16 text around
   ``MSH`` select UTF-16 whatever MSH-18 says.
2. Otherwise MSH-18 (its first repetition and component) names the character set, read from the
   raw bytes of the first segment; :data:`CHARSETS` maps the table 0211 names (and a few common
   spellings) to Python codecs. An unknown name is refused (AR): we cannot know what the bytes say.
3. No MSH-18: UTF-8 when the bytes are valid UTF-8, else 8859/1 (the standard says ASCII; senders
   that leave it out send one of these). A declared ``ASCII`` is read the same way, since such
   senders rarely mean it. Any other declared set is strict: bytes it cannot decode make an error.
"""

from __future__ import annotations

from careweave.errors import Category
from careweave.hl7v2.errors import Hl7v2Error, Location

__all__ = ["CHARSETS", "decode"]

# HL7 table 0211 (v2.5.1 chapter 2, "Alternate character sets") -> Python codec.
CHARSETS: dict[str, str] = {
    "ASCII": "ascii",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "ISO IR6": "ascii",
    "ISO IR100": "latin-1",
    "ISO IR14": "shift_jis",
    "ISO IR87": "iso2022_jp",
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc_kr",
    "BIG-5": "big5",
    "UNICODE": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "UNICODE UTF-16": "utf-16",
    "UNICODE UTF-32": "utf-32",
    # common non-standard spellings
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    "ISO-8859-1": "latin-1",
    "LATIN1": "latin-1",
    "WINDOWS-1252": "cp1252",
}

_BOM_UTF8 = b"\xef\xbb\xbf"
_MSH18 = Location("MSH", field=18)


def decode(data: bytes) -> tuple[str, str]:
    """The text of a message and the codec used (rules 1-3); raises :class:`Hl7v2Error`."""
    if data.startswith(_BOM_UTF8):
        data = data[3:]
    utf16 = _utf16(data)
    if utf16:
        try:
            return data.decode(utf16), "utf-16"
        except UnicodeDecodeError as exc:
            raise Hl7v2Error("the message is not valid UTF-16", "199", location=_MSH18) from exc
    declared = _declared(data)
    codec = CHARSETS.get(declared.upper()) if declared else None
    if declared and codec is None:
        raise Hl7v2Error(
            f"unsupported character set {declared!r} in MSH-18",
            "199",
            Category.UNSUPPORTED_MEDIA,
            _MSH18,
        )
    if data.isascii():
        return data.decode("ascii"), codec or "ascii"
    if codec is None or codec == "ascii":
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            return data.decode("latin-1"), "latin-1"
    try:
        return data.decode(codec), codec
    except UnicodeDecodeError as exc:
        raise Hl7v2Error(
            f"bytes at offset {exc.start} are not valid {declared}", "102", location=_MSH18
        ) from exc


def _utf16(data: bytes) -> str | None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    head = data[:6]
    if head.startswith(b"M\x00S\x00H\x00") or head.startswith(b"F\x00H\x00S\x00"):
        return "utf-16-le"
    if head.startswith(b"\x00M\x00S\x00H") or head.startswith(b"\x00F\x00H\x00S"):
        return "utf-16-be"
    return None


def _declared(data: bytes) -> str:
    """MSH-18 (first repetition, first component) read from the raw bytes, or ``""``."""
    start = data.find(b"MSH")
    if start < 0 or len(data) < start + 8:
        return ""
    end = len(data)
    for terminator in (b"\r", b"\n"):
        found = data.find(terminator, start)
        if 0 <= found < end:
            end = found
    segment = data[start:end]
    sep = segment[3:4]
    if not sep:
        return ""
    fields = segment.split(sep)
    if len(fields) < 18:
        return ""
    encoding = fields[1]
    value = fields[17]
    for delimiter in (encoding[1:2], encoding[0:1]):  # repetition, then component
        if delimiter:
            value = value.split(delimiter, 1)[0]
    try:
        return value.decode("ascii").strip()
    except UnicodeDecodeError:
        return ""
