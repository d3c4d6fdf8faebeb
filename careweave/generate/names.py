"""Name pools: given names and surnames with realistic frequencies, by ethnic group and cohort.

Rules:
1. Each list below is in rough order of frequency; weights fall off as ``1 / (rank + 3)`` so the
   common names are very common and many strangers share a name, as on real registers.
2. British surnames are a head of common names (about a third of British-origin people) plus a
   long tail of plausible English place-name surnames (``prefix + suffix``), so collisions happen
   mostly, as in life, among the Smiths and Joneses.
3. A surname is a pair of (male form, female form): the same string for most, different for
   Polish (Kowalski/Kowalska) and for Sikh names (Singh/Kaur).
4. British given names depend on the birth cohort (a Margaret is old, an Amelia is young).
5. Diacritics, hyphens and apostrophes appear where real names have them (Zoë, Łukasz,
   Anne-Marie, O'Brien): the matching hazards the MPI must survive.
6. The pools are immutable constants built at import from the tables here.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from careweave.generate.randomness import Weighted

__all__ = ["ETHNIC_GROUPS", "NICKNAMES", "NamePool", "pick_given", "pick_surname"]

Surname = tuple[str, str]


def _ranked(names: str) -> list[tuple[str, float]]:
    return [(name.replace("_", " "), 1.0 / (rank + 3)) for rank, name in enumerate(names.split())]


def _surnames(names: str) -> list[tuple[Surname, float]]:
    pairs: list[tuple[Surname, float]] = []
    for name, weight in _ranked(names):
        male, _, female = name.partition("|")
        pairs.append(((male, female or male), weight))
    return pairs


_BRITISH_GIVEN = {
    # cohort start year: (male, female)
    1900: (
        "John William David Peter Michael Robert James Brian Anthony Kenneth Ronald Alan Derek "
        "Geoffrey Raymond Dennis Frank Arthur George Roy Stanley Albert Frederick Harold Leslie "
        "Norman Eric Ernest Walter Thomas Richard Colin Keith Terence Gordon Donald Charles "
        "Edward Joseph Trevor Barry Malcolm",
        "Margaret Patricia Jean Mary Joan Sheila Dorothy Barbara Betty Doris Joyce Sylvia Irene "
        "Elizabeth Brenda Pauline Eileen Kathleen Maureen Valerie Shirley Audrey Marjorie Iris "
        "Hilda Elsie Edna Gladys Ann Christine Janet Susan Sandra Rita Vera Beryl Phyllis "
        "Winifred Evelyn Peggy",
    ),
    1955: (
        "David Paul Andrew Mark John Michael Stephen Ian Robert Richard Christopher Peter Simon "
        "Anthony Kevin Gary Steven Martin James Neil Philip Jonathan Timothy Nigel Graham Darren "
        "Lee Jason Nicholas Stuart Alan Colin Keith Dean Wayne Matthew Thomas Daniel Craig Shaun",
        "Susan Karen Julie Sarah Deborah Alison Amanda Helen Jacqueline Tracey Nicola Elizabeth "
        "Lisa Joanne Michelle Jane Angela Claire Catherine Gillian Linda Carol Lorraine Dawn "
        "Sharon Wendy Kim Julia Emma Rachel Joanna Caroline Samantha Donna Kathryn Louise Anne "
        "Jennifer Anne-Marie Christine Margaret",
    ),
    1980: (
        "Daniel James Thomas Christopher Matthew Michael David Adam Andrew Luke Ryan Jamie Jack "
        "Mark Paul Robert Benjamin Joshua Samuel Richard Liam Craig Lee Ashley Scott Steven "
        "Jonathan Kieran Sean Nathan Oliver Alexander Joseph William Stephen Martin Dean Carl "
        "Aaron Callum",
        "Sarah Laura Emma Gemma Rebecca Claire Amy Jennifer Nicola Lisa Kelly Hannah Charlotte "
        "Samantha Lauren Jessica Stacey Danielle Katie Sophie Rachel Emily Natalie Victoria "
        "Louise Kirsty Amanda Zoe Stephanie Jade Kayleigh Leanne Michelle Helen Joanne Elizabeth "
        "Catherine Hayley Holly Chloe",
    ),
    2000: (
        "Oliver Jack Harry George Noah Charlie Jacob Alfie Freddie Oscar Leo Archie Thomas "
        "Joshua James William Henry Theo Arthur Ethan Isaac Alexander Joseph Samuel Daniel Logan "
        "Edward Lucas Max Benjamin Mason Harrison Theodore Jake Dylan Riley Finley Tommy Reuben "
        "Louie",
        "Olivia Amelia Isla Ava Emily Sophia Grace Mia Poppy Ella Lily Evie Isabella Sophie Ivy "
        "Freya Harper Willow Isabelle Daisy Chloe Florence Phoebe Sienna Alice Ruby Jessica "
        "Matilda Charlotte Evelyn Elsie Rosie Millie Esme Scarlett Zoë Lily-Mae Maisie Erin "
        "Ellie-May Chloë",
    ),
}

_GROUP_GIVEN = {
    "irish": (
        "Sean Patrick Ciaran Declan Padraig Eamon Conor Liam Niall Cillian Darragh Oisin",
        "Siobhan Niamh Aoife Roisin Orla Sinead Ciara Aisling Grainne Caoimhe Mairead Eimear",
    ),
    "european": (
        "Łukasz Michał Paweł Wojciech Krzysztof Tomasz Piotr Jakub Andrzej Marek Mihai Andrei "
        "Alexandru Ionuț Ștefan Giuseppe Marco Luca Francesco João José António Tiago Rui "
        "Mindaugas Tomas Dmitri Álvaro Jesús",
        "Anna Małgorzata Agnieszka Katarzyna Joanna Magdalena Ewa Zofia Ioana Elena Andreea "
        "Maria Ana Inês Beatriz Sofía Lucía Chiara Giulia Francesca Agnė Rūta Oksana Natalia",
    ),
    "indian": (
        "Rajesh Sanjay Amit Vijay Anil Ravi Arjun Rohan Nikhil Harpreet Gurpreet Jaspal Manjit "
        "Sunil Ashok Dinesh Hitesh Mehul Kiran Dev Aarav Vihaan Krish Rahul Vikram Sandeep "
        "Kuldip Jagdeep Paramjit Bhavesh",
        "Priya Anjali Sunita Asha Meena Neha Pooja Rina Kavita Harjit Manpreet Jaspreet Simran "
        "Anita Nisha Divya Shreya Aanya Diya Sita Hansa Bhavna Komal Sangeeta Rupinder Kiran "
        "Parminder Jasvinder Hema",
    ),
    "pakistani": (
        "Mohammed Muhammad Ahmed Ali Imran Adeel Asif Tariq Zahid Nadeem Kamran Faisal Bilal "
        "Usman Hamza Zain Ibrahim Yusuf Ayaan Rehan Shahid Arshad Waqas Amjad Sajid",
        "Fatima Ayesha Aisha Zainab Maryam Sana Amina Nadia Saima Shazia Rubina Nasreen Farzana "
        "Bushra Hina Iqra Mehwish Samina Khadija Hafsa Noor Anum Sadia Rabia Uzma",
    ),
    "bangladeshi": (
        "Mohammed Abdul Shahid Jamal Kamal Rafiq Anwar Aminul Mizanur Shafiq Rahim Sohel Habib "
        "Jahangir Faruk Ismail Rayhan Arif Nazrul Tanvir",
        "Fatema Rehana Shirin Nasima Rokeya Salma Shamima Jahanara Rumana Taslima Nazma Shanaz "
        "Ruksana Hasina Sumaiya Tahmina Farhana Lutfa Nurjahan Sultana",
    ),
    "chinese": (
        "Wei Jun Hao Ming Jian Lei Yong Jie Tao Ka_Wai Chi_Ming Wing_Kei Kevin Michael Jason",
        "Li Mei Xin Ying Jing Hui Yan Fang Ling Xiao Mei_Ling Wai_Man Vivian Grace Jenny",
    ),
    "other-asian": (
        "Jose Mark John_Paul Ramesh Bishnu Hari Kumar Nuwan Chaminda Thanh Minh Duc Jae-won Roberto Prakash",
        "Maria Marites Rosalie Sita Gita Dilani Chathurika Lan Hoa Ji-woo Jocelyn Anjana Kamala Rosa Nguyet",
    ),
    "african": (
        "Oluwaseun Chinedu Emeka Tunde Femi Kwame Kofi Kwabena Yaw Abdi Mohamed Ahmed Tendai "
        "Tatenda Samuel Daniel Emmanuel David Joseph Michael Ibrahim Mustafa Chukwuemeka "
        "Olumide Abdullahi",
        "Adaeze Chioma Ngozi Funmilayo Folake Abena Akosua Ama Esi Fatuma Hodan Amina Faith "
        "Grace Blessing Precious Mercy Comfort Nyasha Chiamaka Temitope Yetunde Aisha Deborah "
        "Ifeoma",
    ),
    "caribbean": (
        "Marcus Leroy Delroy Winston Devon Clive Errol Carlton Tyrone Jermaine Andre Dwayne",
        "Marcia Beverley Paulette Janice Sonia Claudette Yvonne Hyacinth Tanisha Shanice Simone Natasha",
    ),
    "arab-other": (
        "Mohammed Ahmad Omar Khalid Hassan Hussein Youssef Karim Samir Tariq Mehmet Mustafa "
        "Emre Ali Reza Amir Kaveh Dawit",
        "Fatima Layla Noor Yasmin Leila Mariam Rana Huda Zeynep Elif Ayşe Shirin Maryam Sara Dina Selam",
    ),
}

_BRITISH_SURNAMES = (
    "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson "
    "Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Jackson Wood "
    "Turner Martin Cooper Hill Ward Morris Moore Clark Lee King Baker Harrison Morgan Allen "
    "James Scott Phillips Watson Davis Parker Price Bennett Young Griffiths Mitchell Kelly Cook "
    "Carter Richardson Bailey Collins Bell Shaw Murphy Miller Cox Richards Marshall Anderson "
    "Simpson Ellis Adams Wilkinson Foster Chapman Powell Webb Rogers Gray Mason Hunt Matthews "
    "Owen Palmer Holmes Mills Barnes Knight Lloyd Butler Russell Barker Fisher Stevens Jenkins "
    "Murray Dixon Harvey Graham Pearson Fletcher Walsh Gibson Howard Andrews Stewart Elliott "
    "Reynolds Saunders Payne Fox Ford Pearce Day Brooks West Lawrence Cole Atkinson Bradley "
    "Spencer Gill Dawson Ball Burton O'Brien Watts Rose Booth Perry Ryan Grant Wells Armstrong "
    "Francis Rees Hayes Hart Hudson Newman Barrett Webster Hunter Gregory Carr Lowe Page Marsh "
    "Riley Dunn Woods Parsons Berry Stone Reid Holland Hawkins Harding Porter Robertson Newton "
    "Oliver Reed Kennedy Williamson Bird Gardner Dean Lane Cooke Bates Henderson Parry Burgess "
    "Bishop Walton Burns Nicholson Shepherd Ross Cross Long Freeman Warren Nicholls Hamilton "
    "Byrne Sutton McDonald Yates Hodgson Robson Curtis Hopkins O'Connor Harper Coleman Watkins "
    "Moss McCarthy Chambers Pritchard Bowen Vaughan Howells"
)
_TAIL_PREFIXES = [
    "Ash",
    "Black",
    "Brad",
    "Bram",
    "Brook",
    "Cald",
    "Chat",
    "Craw",
    "Cross",
    "Dal",
    "Down",
    "East",
    "Fair",
    "Fern",
    "Hal",
    "Hart",
    "Hay",
    "Hol",
    "Kirk",
    "Lang",
    "Lin",
    "Marsh",
    "Mid",
    "Mill",
    "More",
    "New",
    "North",
    "Oak",
    "Pen",
    "Red",
    "Rad",
    "Ross",
    "Sand",
    "Shel",
    "South",
    "Stan",
    "Stock",
    "Thorn",
    "Wal",
    "West",
    "Whit",
    "Wood",
    "Wick",
    "Brom",
    "Cran",
    "Ather",
    "Bur",
    "Roth",
    "Pick",
    "Ring",
]
_TAIL_SUFFIXES = [
    "ford",
    "ley",
    "ton",
    "wood",
    "field",
    "worth",
    "well",
    "by",
    "combe",
    "ham",
    "hurst",
    "bridge",
    "dale",
    "stone",
    "more",
    "brook",
    "shaw",
    "wick",
    "croft",
    "land",
    "burn",
    "thwaite",
    "ridge",
    "low",
    "den",
]
_TAIL_SHARE = 2.0  # the tail carries twice the weight of the common head (rule 2)

_GROUP_SURNAMES = {
    "irish": "Murphy Kelly O'Brien O'Sullivan Walsh Byrne Ryan O'Connor O'Neill Doyle McCarthy "
    "Gallagher O'Donnell Lynch Quinn McLaughlin Kennedy Brennan Fitzgerald Nolan Daly O'Reilly",
    "european": "Nowak Kowalski|Kowalska Wiśniewski|Wiśniewska Wójcik Kowalczyk "
    "Kamiński|Kamińska Lewandowski|Lewandowska Zieliński|Zielińska Woźniak "
    "Dąbrowski|Dąbrowska Popescu Ionescu Popa Radu Dumitru Stoica Rossi Russo Ferrari "
    "Esposito Bianchi Silva Santos Ferreira Pereira Oliveira Costa Gonçalves García "
    "Fernández López Müller Schmidt Dubois Lefèvre Kazlauskas Petrov",
    "indian": "Patel Singh|Kaur Shah Sharma Gupta Kumar Mistry Parmar Desai Mehta Joshi Chauhan "
    "Rana Bhatt Solanki Chopra Malhotra Kapoor Gill Sandhu Dhillon Sidhu Bains Johal Mann",
    "pakistani": "Khan Hussain Ahmed Ali Akhtar Iqbal Mahmood Rashid Butt Malik Shah Aslam Riaz "
    "Javed Mirza Raza Qureshi Anwar Nawaz Hanif Sharif Hussain|Bibi",
    "bangladeshi": "Begum|Begum Miah|Begum Uddin|Begum Rahman Islam Ahmed Hussain Ali "
    "Ali|Khatun Chowdhury Hoque Alam Hossain Choudhury Karim Sultana|Sultana",
    "chinese": "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Wong Chan Cheung Lau Leung Ng Ho Lam Tang Lee",
    "other-asian": "Santos Reyes Cruz Garcia Gurung Tamang Rai Thapa Magar Perera Fernando "
    "Silva De_Silva Jayasuriya Nguyen Tran Kim Park",
    "african": "Okafor Okonkwo Adeyemi Adebayo Ogunleye Mensah Asante Boateng Owusu Osei Mohamed "
    "Abdi Hassan Yusuf Nwosu Eze Obi Mwangi Kamara Conteh Bangura Diallo Ndlovu Moyo Dube "
    "Oyelaran-Smith",
    "caribbean": "Campbell Brown Williams Thomas Robinson Johnson Francis Grant Clarke Morgan "
    "Henry Baptiste Lewis Bailey Reid Stewart Gordon Edwards Charles Joseph",
    "arab-other": "Hassan Ibrahim Mohammed Abdullah Saleh Haddad Nasser Khalil Mansour Aziz "
    "Yilmaz Demir Kaya Çelik Öztürk Ayd\u0131n Hosseini Ahmadi Rezaei Karimi Tesfaye",
}

# ethnic category code: (given-name group or None for British by cohort, surname group,
# share of British given names for groups that mix them)
ETHNIC_GROUPS: Mapping[str, tuple[str | None, str, float]] = MappingProxyType(
    {
        "A": (None, "british", 1.0),
        "B": ("irish", "irish", 0.6),
        "C": ("european", "european", 0.1),
        "H": ("indian", "indian", 0.1),
        "J": ("pakistani", "pakistani", 0.05),
        "K": ("bangladeshi", "bangladeshi", 0.05),
        "L": ("other-asian", "other-asian", 0.2),
        "R": ("chinese", "chinese", 0.25),
        "M": ("caribbean", "caribbean", 0.6),
        "N": ("african", "african", 0.2),
        "P": ("african", "caribbean", 0.5),
        "S": ("arab-other", "arab-other", 0.1),
        # mixed categories: children of mixed couples take the family surname, so only the
        # given-name mix matters here
        "D": ("caribbean", "british", 0.7),
        "E": ("african", "british", 0.6),
        "F": ("pakistani", "british", 0.6),
        "G": ("european", "british", 0.7),
    }
)


@dataclass(frozen=True, slots=True)
class NamePool:
    male: Weighted[str]
    female: Weighted[str]


def _pool(male: str, female: str) -> NamePool:
    return NamePool(Weighted.of(_ranked(male)), Weighted.of(_ranked(female)))


def _british_surnames() -> Weighted[Surname]:
    head = _surnames(_BRITISH_SURNAMES)
    head_total = sum(w for _, w in head)
    tail = [p + s for p in _TAIL_PREFIXES for s in _TAIL_SUFFIXES]
    each = head_total * _TAIL_SHARE / len(tail)
    return Weighted.of([*head, *(((t, t), each) for t in tail)])


_COHORTS = tuple(sorted((year, _pool(*names)) for year, names in _BRITISH_GIVEN.items()))
_GIVEN = {group: _pool(*names) for group, names in _GROUP_GIVEN.items()}
_SURNAMES: dict[str, Weighted[Surname]] = {
    "british": _british_surnames(),
    **{group: Weighted.of(_surnames(names)) for group, names in _GROUP_SURNAMES.items()},
}


def _british_pool(birth_year: int) -> NamePool:
    chosen = _COHORTS[0][1]
    for start, pool in _COHORTS:
        if birth_year >= start:
            chosen = pool
    return chosen


def pick_given(rng: random.Random, ethnicity: str, sex: str, birth_year: int) -> str:
    """A given name for someone of this ethnic category, sex and birth year."""
    given_group, _, british_share = ETHNIC_GROUPS[ethnicity]
    if given_group is None or rng.random() < british_share:
        pool = _british_pool(birth_year)
    else:
        pool = _GIVEN[given_group]
    return (pool.male if sex == "male" else pool.female).pick(rng)


def pick_surname(rng: random.Random, ethnicity: str) -> Surname:
    """A (male form, female form) surname for a household of this ethnic category."""
    return _SURNAMES[ETHNIC_GROUPS[ethnicity][1]].pick(rng)


NICKNAMES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        name: tuple(short.split())
        for name, short in {
            "William": "Bill Will Billy",
            "Robert": "Bob Rob Bobby",
            "Richard": "Dick Rich Richie",
            "Margaret": "Peggy Maggie Meg",
            "Elizabeth": "Liz Beth Betty Lizzie",
            "James": "Jim Jimmy Jamie",
            "John": "Jack Johnny",
            "Edward": "Ted Ed Eddie",
            "Katherine": "Kate Kathy",
            "Catherine": "Cathy Kate",
            "Kathryn": "Kate Kathy",
            "Thomas": "Tom Tommy",
            "Michael": "Mike Mick Micky",
            "Christopher": "Chris",
            "Anthony": "Tony",
            "Alexander": "Alex Sandy",
            "Jennifer": "Jenny Jen",
            "Susan": "Sue Susie",
            "Patricia": "Pat Trish",
            "Dorothy": "Dot Dolly",
            "Deborah": "Debbie Debs",
            "Rebecca": "Becky Becca",
            "Samuel": "Sam Sammy",
            "Daniel": "Dan Danny",
            "Joseph": "Joe",
            "Matthew": "Matt",
            "Nicholas": "Nick",
            "Stephen": "Steve",
            "Steven": "Steve",
            "Peter": "Pete",
            "David": "Dave",
            "Andrew": "Andy Drew",
            "Benjamin": "Ben",
            "Charles": "Charlie Chas",
            "Henry": "Harry Hal",
            "Frederick": "Fred Freddie",
            "Victoria": "Vicky Tori",
            "Jacqueline": "Jackie",
            "Gillian": "Gill Jill",
            "Alison": "Ali",
            "Samantha": "Sam",
            "Charlotte": "Lottie",
            "Joanne": "Jo",
            "Kenneth": "Ken Kenny",
            "Ronald": "Ron Ronnie",
            "Donald": "Don",
            "Terence": "Terry",
            "Raymond": "Ray",
            "Leslie": "Les",
            "Albert": "Bert Albie",
            "Barbara": "Babs",
            "Mohammed": "Mo",
            "Muhammad": "Mo",
            "Oluwaseun": "Seun",
            "Chukwuemeka": "Emeka",
            "Funmilayo": "Funmi",
            "Temitope": "Tope",
            "Jonathan": "Jon Jonny",
            "Timothy": "Tim",
            "Philip": "Phil",
            "Isabella": "Bella Izzy",
            "Amelia": "Millie",
            "Frederica": "Freddie",
        }.items()
    }
)
