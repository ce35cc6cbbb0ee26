"""Names the demo encoder's training sentences are filled with.

Wide on purpose: a few hundred first and last names from many languages, organizations
composed from invented roots and industry words, a hundred and fifty places, products
composed from invented bases, model words and numbers. A small vocabulary teaches the model
the names themselves; a wide, composed one teaches it what the context around a name says.

Kept out on purpose: the names in the README's examples and in the hand-written held-out
set (`tests/data/demo_heldout.json`), so both show the model on names it never saw.
"""

from __future__ import annotations

from collections.abc import Iterator


def _bars(text: str) -> list[str]:
    """Entries separated by "|" or line breaks (names with spaces in them)."""
    return [entry.strip() for entry in text.replace("\n", "|").split("|") if entry.strip()]


FIRST_NAMES = """
Aaron Abigail Adriana Ahmed Aiko Alejandro Amara Anders Andrea Anika Antoine Astrid Bastian
Beatriz Benedikt Bianca Bogdan Camila Carmen Cedric Chidi Chloe Cyrus Dagny Damian Daniela
Dmitri Eduardo Elena Elif Eliza Emil Farah Fatima Felipe Fiona Florian Freya Gabriel Giulia
Hana Hamid Hugo Ibrahim Ida Ines Irene Isaac Ivan Jamal Javier Jonas Jorge Julia Kai Kamala
Karim Katarina Kenji Kofi Laila Lars Leila Lena Leon Lorenzo Lucia Magnus Malik Mansur Marco
Mariam Mateo Mei Miguel Mina Nadia Naveen Nia Nils Noor Oscar Pablo Paolo Pedro Quinn Rania
Ravi Renata Rohan Ruth Sabine Samir Sara Sebastian Selin Sergei Shira Simone Sina Stefan
Tariq Teresa Thabo Theo Ulla Valentina Vera Viktor Wanjiru Xavier Yara Yasmin Yusuke Zainab
Zoran Zofia Adaeze Bjorn Chen Deepa Efua Goran Haruto Ingrid Jin Kwame Lucas Mohammed Olga
Priya Ricardo Siobhan Tomas Uma Wei Ximena Yosef Zeynep Arash Brigitte Carlos Dario Emma
""".split()

LAST_NAMES = """
Abara Adeyemi Alvarez Andersen Aoki Baptiste Becker Bergstrom Bianchi Blackwood Borowski
Castillo Chaudhry Costa Dahl Delacroix Demir Diallo Dimitrov Eriksen Esposito Fernandes
Fischer Fitzgerald Fontaine Forsberg Gallagher Goldberg Gonzalez Haddad Hakimi Hartmann
Hosseini Ibarra Iyer Jovanovic Kamau Kapoor Kaur Kowalski Kruger Lambert Larsen Lindgren
Lombardi Lopez Marchetti Mbeki Medina Moreau Morales Mwangi Nakamura Navarro Nieminen Novak
Obi Okafor Olsen Osman Pereira Popescu Quinlan Ramos Reyes Richter Romero Saito Salazar
Santos Schmidt Sato Shapiro Sokolov Suzuki Takahashi Toure Valdez Varga Vasquez Weber
Whitfield Wojcik Yamamoto Zhang Zhou Ziegler Achterberg Banerjee Cardoso Dubrovsky Ekwueme
Falk Gunawardena Horvat Ishikawa Jaramillo Kovacs Lindholm Mahlangu Nyström Oyelaran Park
""".split()

# Invented (or rare) words that name companies alone or before an industry word.
ORG_ROOTS = """
Aldermoor Amberline Ashgrove Azurite Bellhaven Birchfield Blackthorn Bluefin Cobalt
Copperfield Coralis Cresta Darnell Deepwell Eastgate Elmstone Emberly Evergreen Foxglove
Frostline Galvan Goldcrest Granite Greenvale Halcyon Hawkridge Highmark Ironbridge Juniper
Keystone Kingsford Lakeshore Larkspur Lumina Maplewood Marigold Meadowbrook Millbrook
Moonstone Nordlys Northwind Oakridge Onyx Pinecrest Polaris Redwood Riverbend Sapphire
Silverline Starling Stillwater Sunridge Thornbury Trident Upland Valence Verity Whitecliff
Willowbrook Zenith Qorvex Zylo Novaly Kelvra Mavix Plexa Sorvi Tandro Velmo Yorbit Quintix
Brevo Datrix Fenwix Glimra Oberon Castor Alder Bramble Corvette Drummond Falkner Garrick
""".split()

# Industry words after a root; generic, so the held-out set may share them.
ORG_SUFFIXES = """
Systems Labs Motors Foods Energy Bank Airlines Air Logistics Pharma Pharmaceuticals Media
Robotics Capital Insurance Telecom Group Holdings Technologies Studios Partners Software
Analytics Mobile Cycles Aerospace Computing Biotech Health Steel Cooperative Instruments
Wines Fund Networks Semiconductors Shipping Textiles Brewing Games Retail Electric Solar
Chemicals Mining Construction Consulting Inc. Corp. Ltd. Hotels Railways Bakery Outfitters
""".split()

INSTITUTION_FORMS = (
    "University of {city}",
    "{root} University",
    "{root} Institute",
    "{root} Foundation",
    "{city} City Council",
    "{root} College",
    "{root} Hospital",
)

# Said with "the" before them.
FAMOUS_INSTITUTIONS = _bars("""United Nations|World Bank|European Central Bank|Red Cross
International Monetary Fund|World Health Organization|European Commission""")
NAMED_BODIES = ["Greenpeace", "FIFA", "UNICEF", "NATO", "Interpol", "Amnesty International"]
FAMOUS_COMPANIES = """Siemens Toyota Spotify Netflix Volkswagen Nestle Unilever Ikea Lufthansa
Reuters Heineken Maersk Philips""".split()

CITIES = _bars("""
Accra|Adelaide|Amsterdam|Ankara|Antwerp|Athens|Atlanta|Auckland|Baltimore|Bangalore|Bangkok
Barcelona|Beirut|Belgrade|Bergen|Berlin|Bogota|Bordeaux|Boston|Brisbane|Bristol|Brussels
Bucharest|Budapest|Buenos Aires|Cairo|Calgary|Cape Town|Cardiff|Casablanca|Chennai|Chicago
Cologne|Copenhagen|Dakar|Dallas|Delhi|Detroit|Doha|Dubai|Dublin|Durban|Florence|Frankfurt
Geneva|Glasgow|Guadalajara|Hamburg|Hanoi|Havana|Helsinki|Hong Kong|Houston|Istanbul
Johannesburg|Kigali|Kyoto|Lagos|Lima|Liverpool|Los Angeles|Lyon|Madrid|Manila|Marseille
Medellin|Melbourne|Miami|Milan|Minneapolis|Montreal|Moscow|Mumbai|Munich|Nagoya|Naples
New Orleans|Osaka|Oslo|Ottawa|Palermo|Perth|Philadelphia|Phoenix|Prague|Pune|Reykjavik
Rio de Janeiro|Rome|San Diego|Santiago|Sao Paulo|Sapporo|Seville|Shanghai|Stockholm
Stuttgart|Sydney|Taipei|Tbilisi|Tehran|Toronto|Tunis|Turin|Valencia|Vancouver|Warsaw
Wellington|Zurich|Abuja|Aarhus|Krakow|Lahore|Nantes|Salzburg|Tampere|Utrecht
""")

COUNTRIES_AND_REGIONS = _bars("""
Argentina|Australia|Austria|Belgium|Brazil|Colombia|Croatia|Denmark|Egypt|Estonia|Finland
France|Germany|Ghana|Greece|Hungary|India|Indonesia|Japan|Jordan|Kenya|Morocco|Netherlands
New Zealand|Nigeria|Norway|Peru|Portugal|Romania|Senegal|South Africa|South Korea|Sweden
Switzerland|Thailand|Turkey|Uganda|Vietnam|United States|California|Texas|Bavaria|Catalonia
Scotland|Ontario|Queensland|Patagonia|Tuscany|Andalusia|Kerala|Quebec|Brittany|Siberia
""")

# Invented product names; a brand word may stand before them.
PRODUCT_BASES = """
Astra Bolt Cirrus Comet Dash Ember Fjord Flare Glint Halo Ion Jolt Juno Kite Lumo Lyra Mako
Meteor Mira Nexa Nova Opal Orion Photon Prism Quasar Rift Sable Sierra Solstice Spark Spectra
Stratus Terra Tidal Titan Torque Vega Vortex Wisp Xenon Zephyr Zest Arcus Boreal Cadence
Dynamo Equinox Fable Gravity Horizon Indigo Krypton Lumen Monsoon Nebula Oasis Pixel Radiant
""".split()
PRODUCT_BRANDS = "Kelvra Mavix Plexa Sorvi Tandro Velmo Yorbit Quintix Brevo Datrix Glimra".split()
# Model words after a base; generic, so the held-out set may share them.
PRODUCT_MODELS = "Pro Max Mini Plus Ultra Lite Air Go Neo Prime Edge Flex One EV SE XL".split()
FAMOUS_PRODUCTS = _bars("""PlayStation 5|Galaxy S23|Kindle Paperwhite|Model 3|Xbox Series X
ThinkPad X1|
Nintendo Switch|Pixel 8|Surface Laptop""")
PRODUCT_KINDS = _bars("""
phone|smartphone|laptop|tablet|headset|speaker|camera|drone|e-bike|electric scooter|console
router|robot vacuum|electric car|SUV|sedan|earbuds|printer|thermostat|fitness tracker|app
video game|chip|processor|smartwatch|e-reader|coffee machine|energy drink|snack bar|jacket
running shoe|keyboard|monitor|projector|battery pack|heat pump|tractor|sewing machine
""")

TITLES = _bars("""
chief executive|CEO|chief financial officer|founder|co-founder|chairman|chairwoman|president
spokeswoman|spokesman|head of research|chief engineer|managing director|general counsel
head of sales|chief operating officer|vice president|director|lead designer|head of marketing
""")
# Capitalized words before a name that are not part of it.
HONORIFICS = ["Coach", "Mayor", "Dr.", "Professor", "Senator", "Judge", "Captain", "Minister"]
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
MONTHS = """January February March April May June July August September October November
December""".split()

# Words the held-out set may share with these lists: industry and model words.
GENERIC_WORDS = frozenset(
    word.lower() for word in (*ORG_SUFFIXES, *PRODUCT_MODELS, "University", "City", "Council")
)


def product_names(bases: list[str] = PRODUCT_BASES) -> Iterator[str]:
    """Every product name the composer can make from `bases` (numbers 2 to 12)."""
    numbers = [str(n) for n in range(2, 13)]
    for base in bases:
        yield base
        for model in PRODUCT_MODELS:
            yield f"{base} {model}"
            for number in numbers:
                yield f"{base} {model} {number}"
        for number in numbers:
            yield f"{base} {number}"
        for brand in PRODUCT_BRANDS:
            yield f"{brand} {base}"


def all_vocabulary() -> Iterator[str]:
    """Every name the generator can put in a sentence (codes like "X5" aside)."""
    yield from FIRST_NAMES
    yield from LAST_NAMES
    yield from (f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES)
    yield from ORG_ROOTS
    yield from (f"{root} {suffix}" for root in ORG_ROOTS for suffix in ORG_SUFFIXES)
    for form in INSTITUTION_FORMS:
        yield from {form.format(root=root, city=city) for root in ORG_ROOTS for city in CITIES}
    yield from FAMOUS_INSTITUTIONS
    yield from FAMOUS_COMPANIES
    yield from NAMED_BODIES
    yield from CITIES
    yield from COUNTRIES_AND_REGIONS
    yield from product_names()
    yield from FAMOUS_PRODUCTS
    yield from PRODUCT_BRANDS
