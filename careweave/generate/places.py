"""Places: regions with real outward postcodes, invented addresses, and fictional phone numbers.

Rules:
1. Outward codes (``LS6``) are real ones of each region; inward codes (``4QT``) are invented: a
   digit and two letters from the Royal Mail set (never C I K M O V). Every postcode matches the
   BS 7666 pattern; the NHS pseudo-postcode ``ZZ99 3VZ`` (no fixed abode) is separate.
2. Telephone numbers come only from Ofcom's ranges reserved for drama (never allocated): mobiles
   07700 900000-900999, each region's geographic drama block (0113 496 0xxx for Leeds...), and
   01632 960xxx. Each block holds 1,000 numbers, so in a large population strangers share
   numbers: treat phone agreement as weak evidence, as the MPI must anyway.
3. E-mail addresses use the reserved example.com / example.org / example.net domains.
4. Each region carries a diversity factor that scales the non-White-British ethnic shares
   (London, Birmingham and Leicester are more diverse than Newcastle).
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from careweave.generate.model import Address

__all__ = [
    "NO_FIXED_ABODE",
    "REGIONS",
    "Region",
    "email_for",
    "landline_number",
    "make_address",
    "make_postcode",
    "mobile_number",
]

NO_FIXED_ABODE = Address(lines=("No fixed abode",), city="", district="", postcode="ZZ99 3VZ")
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


@dataclass(frozen=True, slots=True)
class Region:
    key: str
    city: str
    district: str
    outward: tuple[str, ...]
    landline_prefix: str  # the drama block: prefix + 3 digits
    localities: tuple[str, ...]
    diversity: float  # rule 4


def _region(
    key: str, city: str, district: str, outward: str, prefix: str, localities: str, div: float
) -> Region:
    return Region(key, city, district, tuple(outward.split()), prefix, tuple(localities.split(",")), div)


REGIONS: Mapping[str, Region] = MappingProxyType(
    {
        r.key: r
        for r in (
            _region("leeds", "Leeds", "West Yorkshire",
                    "LS1 LS2 LS4 LS6 LS7 LS8 LS9 LS11 LS12 LS13 LS15 LS16 LS17 LS28",
                    "0113 496 0", "Headingley,Chapel Allerton,Armley,Roundhay,Pudsey,Beeston", 1.3),
            _region("manchester", "Manchester", "Greater Manchester",
                    "M1 M4 M8 M9 M11 M12 M13 M14 M16 M19 M20 M21 M40",
                    "0161 496 0", "Chorlton,Didsbury,Levenshulme,Rusholme,Ancoats,Moss Side", 2.0),
            _region("birmingham", "Birmingham", "West Midlands",
                    "B1 B5 B8 B10 B11 B12 B13 B14 B15 B17 B20 B23 B29 B30",
                    "0121 496 0", "Sparkhill,Moseley,Edgbaston,Erdington,Handsworth,Selly Oak", 2.6),
            _region("bristol", "Bristol", "City of Bristol",
                    "BS1 BS2 BS3 BS4 BS5 BS6 BS7 BS8 BS9 BS13 BS14 BS16",
                    "0117 496 0", "Bedminster,Clifton,Easton,Fishponds,Redland,Southville", 1.2),
            _region("london", "London", "Greater London",
                    "E1 E1W E2 E3 E5 E8 E14 E17 SE1 SE5 SE15 SE22 N1 N7 N16 SW1A SW9 W1T",
                    "020 7946 0", "Hackney,Peckham,Bow,Walthamstow,Brixton,Islington,Stepney", 3.0),
            _region("sheffield", "Sheffield", "South Yorkshire",
                    "S1 S2 S3 S4 S5 S6 S7 S8 S10 S11 S13 S20",
                    "0114 496 0", "Hillsborough,Crookes,Darnall,Heeley,Walkley,Ecclesall", 1.0),
            _region("newcastle", "Newcastle upon Tyne", "Tyne and Wear",
                    "NE1 NE2 NE3 NE4 NE5 NE6 NE7 NE12 NE15",
                    "0191 498 0", "Jesmond,Heaton,Gosforth,Byker,Fenham,Walker", 0.5),
            _region("leicester", "Leicester", "Leicestershire",
                    "LE1 LE2 LE3 LE4 LE5",
                    "0116 496 0", "Belgrave,Highfields,Evington,Aylestone,Braunstone", 3.0),
            _region("cardiff", "Cardiff", "South Glamorgan",
                    "CF10 CF11 CF14 CF23 CF24",
                    "029 2018 0", "Canton,Roath,Splott,Grangetown,Cathays,Llandaff", 1.1),
        )
    }
)  # fmt: skip

_STREET_NAMES = [
    "Church",
    "Station",
    "Victoria",
    "Park",
    "Mill",
    "High",
    "Albert",
    "Queen's",
    "King's",
    "Manor",
    "Grange",
    "Oak",
    "Elm",
    "Beech",
    "Willow",
    "Chestnut",
    "Holly",
    "Cedar",
    "Meadow",
    "Orchard",
    "Windsor",
    "York",
    "Clarence",
    "Cromwell",
    "Nelson",
    "Wellington",
    "Gladstone",
    "Stanley",
    "Alexandra",
    "St_John's",
    "St_Mary's",
    "Springfield",
    "Woodland",
    "Hillside",
    "Ashgrove",
    "Brookside",
    "Highfield",
    "Priory",
    "Abbey",
    "Bridge",
    "Castle",
    "Rectory",
    "Kingsway",
    "Chapel",
    "Water",
    "Mount",
    "Pleasant_View",
    "Green",
    "Moor",
    "Hollin",
    "Beckett",
    "Clifton",
    "Albion",
]
_STREET_TYPES = [
    "Road",
    "Street",
    "Lane",
    "Avenue",
    "Close",
    "Drive",
    "Grove",
    "Crescent",
    "Way",
    "Gardens",
    "Terrace",
    "Place",
    "Walk",
    "Court",
    "Mews",
]
_BUILDINGS = ["Albion", "Jubilee", "Victoria", "Regent", "Carlton", "Beaumont", "Lancaster", "Marlborough"]


def make_postcode(rng: random.Random, region: Region) -> str:
    """A real outward code of the region with an invented inward code (rule 1)."""
    inward = f"{rng.randrange(10)}{rng.choice(_INWARD_LETTERS)}{rng.choice(_INWARD_LETTERS)}"
    return f"{rng.choice(region.outward)} {inward}"


def make_address(rng: random.Random, region: Region) -> Address:
    """A house or flat on an invented street in one of the region's districts."""
    street = f"{rng.choice(_STREET_NAMES).replace('_', ' ')} {rng.choice(_STREET_TYPES)}"
    number = rng.randint(1, 180)
    roll = rng.random()
    if roll < 0.18:
        lines: tuple[str, ...] = (f"Flat {rng.randint(1, 24)}", f"{number} {street}")
    elif roll < 0.24:
        building = f"{rng.choice(_BUILDINGS)} {rng.choice(('House', 'Court', 'Mansions'))}"
        lines = (f"Flat {rng.randint(1, 40)}, {building}", street)
    else:
        lines = (f"{number} {street}",)
    if rng.random() < 0.5:
        lines = (*lines, rng.choice(region.localities))
    return Address(
        lines=lines, city=region.city, district=region.district, postcode=make_postcode(rng, region)
    )


def mobile_number(rng: random.Random) -> str:
    return f"07700 900{rng.randrange(1000):03d}"


def landline_number(rng: random.Random, region: Region) -> str:
    """The region's drama block, or the no-area 01632 960xxx block for one call in five."""
    if rng.random() < 0.2:
        return f"01632 960{rng.randrange(1000):03d}"
    return f"{region.landline_prefix}{rng.randrange(1000):03d}"


def _ascii_fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and (c.isalnum() or c in ".-"))


def email_for(rng: random.Random, given: str, family: str) -> str:
    """``firstname.surname42@example.org`` and variations, on the reserved domains (rule 3)."""
    first = _ascii_fold(given.replace(" ", "")).lower() or "user"
    last = _ascii_fold(family.replace(" ", "")).lower() or "mail"
    style = rng.randrange(4)
    if style == 0:
        local = f"{first}.{last}"
    elif style == 1:
        local = f"{first[0]}{last}{rng.randrange(10, 99)}"
    elif style == 2:
        local = f"{first}{rng.randrange(1950, 2015)}"
    else:
        local = f"{last}.{first}{rng.randrange(1, 9)}"
    return f"{local}@{rng.choice(('example.com', 'example.org', 'example.net'))}"
