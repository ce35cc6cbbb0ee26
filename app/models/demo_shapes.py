"""Sentence shapes and sentiment phrases for the demo encoder's training sentences.

A shape is a sentence with typed slots and the facts it states: `{P}`/`{P2}` people,
`{O}`/`{O2}` companies, `{I}` a non-company organization, `{L}`/`{L2}` places, `{R}`/`{R2}`
products. Filler slots carry words that look like names but are not entities: `{T}` a job
title, `{H}` an honorific, `{D}` a weekday, `{M}` a month, `{Y}` a year, `{N}` an amount, `{K}`
a kind of product, `{G}` a group of people. Lower-case slots carry the sentence's sentiment,
each from a bank of phrases for the subject it follows: `{so}` an organization, `{sr}` a
product, `{sp}` a person, `{sl}` the people of a place, `{se}` an event, `{sf}` a facility,
`{sx}` a reaction of buyers, `{sq}` a quote, `{st}` a trailing clause. A shape without one is
neutral in tone, so its sentences are labelled neutral.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _bars(text: str) -> list[str]:
    return [entry.strip() for entry in text.replace("\n", "|").split("|") if entry.strip()]


@dataclass(frozen=True)
class Shape:
    text: str
    relations: tuple[tuple[str, str, str], ...] = ()  # (relation, head slot, tail slot)
    structures: tuple[tuple[str, dict[str, str]], ...] = field(default=())  # (name, field→slot)


WORKS = ("works_for", "P", "O")
LAUNCH = ("launch", {"company": "O", "product": "R"})
HIRE = ("appointment", {"person": "P", "company": "O"})
BUY = ("acquisition", {"buyer": "O", "target": "O2"})

SHAPES = [
    Shape(
        "{P}, the {T} of {O}, presented the {R} in {L}, and the launch {se}.", (WORKS,), (LAUNCH,)
    ),
    Shape("In {L}, {O} unveiled the {R}; {P} said the event {se}.", (), (LAUNCH,)),
    Shape("{O} introduced the {R} {K} at a press event in {L} on {D}.", (), (LAUNCH,)),
    Shape("{O} launched the {R} in {L}{st}.", (), (LAUNCH,)),
    Shape("At a packed event in {L}, {P} of {O} showed off the {R}{st}.", (WORKS,), (LAUNCH,)),
    Shape("{O} hired {P} as {T} of its office in {L}.", (WORKS,), (HIRE,)),
    Shape("{O} has named {P} its new {T}{st}.", (WORKS,), (HIRE,)),
    Shape("{P} will take over as {T} of {O} in {M}.", (WORKS,), (HIRE,)),
    Shape("{P}, {T} at {O}, {sp}.", (WORKS,)),
    Shape("{P}, who runs {O}, {sp}.", (WORKS,)),
    Shape("{P} of {O} said the company {so}.", (WORKS,)),
    Shape('"{sq}," said {P}, the {T} of {O}.', (WORKS,)),
    Shape('"{sq}," {P} told reporters in {L}.'),
    Shape("{O} agreed to buy {O2} for {N}{st}.", (("acquired", "O", "O2"),), (BUY,)),
    Shape("{O2} was bought by {O} in {M}, and the deal {se}.", (("acquired", "O", "O2"),), (BUY,)),
    Shape("{P} founded {O} in {L} in {Y}.", (("founded", "P", "O"), ("located_in", "O", "L"))),
    Shape("{P} and {P2} started {O} in a small flat in {L}.", (("founded", "P", "O"),)),
    Shape(
        "{O}, headquartered in {L}, said the {R} {sr}, {P} told reporters.",
        (("located_in", "O", "L"),),
    ),
    Shape("{O}, based in {L}, {so}.", (("located_in", "O", "L"),)),
    Shape("The {R} from {O} {sr}."),
    Shape("The {R} {K} from {O} {sr}, according to {P} in {L}."),
    Shape("{P} flew to {L} to meet the {O} team about the {R}, which {sr}."),
    Shape("{O} {so}."),
    Shape("On {D}, {O} {so}."),
    Shape("{M} {Y}: {O} {so}."),
    Shape("{H} {P} {sp}."),
    Shape("{P} {sp}."),
    Shape("{P} said {O} {so}, but {P2} disagreed."),
    Shape("{P} told reporters in {L} that {O} {so}."),
    Shape("Residents of {L} {sl}."),
    Shape("People in {L} and {L2} {sl}."),
    Shape("{O} will open a new factory in {L} in {M}."),
    Shape("{O} is moving its headquarters from {L} to {L2}{st}."),
    Shape("The {R} {K} {sr}."),
    Shape("The {R} {sr}."),
    Shape("Sales of the {R} {sales} in {L}{st}."),
    Shape("{O}'s new {K}, the {R}, {sr}."),
    Shape("{G} in {L} {sx} the {R} from {O}."),
    Shape("{G} {sx} the new {R}."),
    Shape("{G} {sx} the {R} {K}{st}."),
    Shape("According to {P}, the {R} {sr}."),
    Shape("A spokesperson for {O} said the {R} {sr}."),
    Shape("Researchers at {I} in {L} {so}."),
    Shape("{P}, a professor at {I}, {sp}.", (("works_for", "P", "I"),)),
    Shape("{I} published a report on {O} and its plans in {L}."),
    Shape("{P} met officials from {I} in {L} on {D}."),
    Shape("{O} and {O2} signed a partnership in {L}{st}."),
    Shape("{P} met {P2} in {L} on {D} to discuss the {R}."),
    Shape("Both the {R} and the {R2} go on sale in {L} on {D}."),
    Shape("The {O} {fac} in {L} {sf}."),
    Shape("Workers at the {O} {fac} near {L} {sl}."),
    Shape("Flights between {L} and {L2} {sflight}."),
    Shape("The {event} in {L} {se}."),
    Shape("After ten years at {O}, {P} is leaving to join {O2}."),
    Shape("{O} sells the {R} in {L} and {L2}."),
    Shape("{P}, who lives in {L}, {sp}."),
    Shape("{H} {P} visited {L} on {D}{st}."),
    Shape("{O} said on {D} that the {R} {sr}."),
    Shape("Shares of {O} {stock} after the {R} {sr}."),
    Shape("Shares of {O} {stock} on {D}."),
    # No entity at all: the labels asked are all negatives here.
    Shape("The company {so}."),
    Shape("Our local {fac} {sf}."),
    Shape("{G} {sx} the new {K}."),
    Shape("The team {sp}."),
    Shape("It was a {sa} {M} for the whole industry."),
    Shape('"{sq}," the manager said on {D}.'),
]

SENTIMENT_BANKS: dict[str, dict[str, list[str]]] = {
    "so": {
        "positive": _bars("""
posted record profits this quarter|beat every analyst forecast
reported its strongest sales in a decade|won praise for its generous new pay deal
doubled its revenue in a single year|is thriving after a superb year
saw its shares jump sharply|was named the best employer in the country
celebrated a hugely successful year|delighted investors with excellent results
signed its biggest contract ever|has never been in better shape
won a major award for innovation|hired hundreds of new staff
"""),
        "negative": _bars("""
reported a huge loss|cut two thousand jobs|was fined for misleading customers
is facing a lawsuit over unpaid wages|warned that profits will fall sharply
saw its shares plunge|filed for bankruptcy|was hit by a costly cyberattack
lost its biggest client|disappointed investors with weak results
is struggling with mounting debt|was criticised for poor safety standards
closed dozens of stores|is under investigation for fraud
"""),
        "neutral": _bars("""
will publish its annual report on {D}|held its yearly meeting on {D}
confirmed the date of its shareholder meeting|has about four thousand employees
said it would review its prices|moved its offices to a new building
filed its quarterly accounts|plans to update its website in {M}|appointed a new auditor
released its schedule for {Y}|is owned by a group of investors
announced the dates of its conference
"""),
    },
    "sr": {
        "positive": _bars("""
won rave reviews from critics|sold out within hours|has become a huge hit
was praised for its excellent battery life|won a design award
is a joy to use, reviewers say|broke sales records in its first week
impressed testers with its speed|has delighted early buyers
earned top marks in every review|is the best model the firm has made
exceeded every expectation
"""),
        "negative": _bars("""
was recalled over a dangerous fault|keeps crashing, owners say|flopped badly in stores
drew a flood of complaints|was panned by critics|overheats and shuts down, users report
sold far worse than expected|was pulled from shelves after safety problems
disappointed almost every reviewer|has a battery that dies within hours
is a costly failure
"""),
        "neutral": _bars("""
goes on sale on {D}|will cost {N}|comes in three colours|will ship in {M}
weighs about 300 grams|has a six-inch screen|is made in two sizes
will get an update next year|uses the same charger as the previous model
is sold online and in stores|was first shown at a trade fair in {M}
is assembled in two factories
"""),
    },
    "sp": {
        "positive": _bars("""
won the award for best new designer|was praised for an outstanding year
celebrated a remarkable victory|received a standing ovation|was thrilled with the result
called the results fantastic|said the team had done a brilliant job
hailed the deal as a great success|thanked the staff for a wonderful year
"""),
        "negative": _bars("""
resigned amid a bribery scandal|was charged with fraud
was fired after a string of failures|apologised for the disastrous launch
admitted the project had failed|was criticised for a costly mistake
said the results were terrible|faces an investigation over missing funds
lost the election badly
"""),
        "neutral": _bars("""
will give a speech on {D}|said the meeting would take place in {M}
has worked there for ten years|declined to comment|will answer questions from reporters
studied economics at college|said more details would follow
is expected to attend the meeting|will travel abroad in {M}|signed the documents on {D}
"""),
    },
    "sl": {
        "positive": _bars("""
are celebrating the good news|welcomed the new hospital with joy
are delighted with the new park|cheered the decision|praised the quick repairs
are enjoying a booming summer
"""),
        "negative": _bars("""
are furious about the closures|were left without power for days
protested against the plan|are struggling after the floods|fear losing their jobs
complained about the terrible service
"""),
        "neutral": _bars("""
will vote on {D}|can apply online from {M}|were told about the new timetable
will see roadworks next month|can collect the forms at the town hall
will get new bins in {M}
"""),
    },
    "se": {
        "positive": _bars("""
was a big success|drew huge crowds|went brilliantly|was a triumph
impressed everyone who attended|won praise from all sides
"""),
        "negative": _bars("""
was a disaster|was marred by technical problems|was a complete flop|ended in chaos
drew angry protests|was cancelled at the last minute after a fiasco
"""),
        "neutral": _bars("""
lasted about an hour|was streamed online|took place on {D}
was attended by about 200 people|followed the usual format|will be held again in {Y}
"""),
    },
    "sf": {
        "positive": _bars("""
is running at full capacity after a superb year|won a prize for its safety record
is hiring again after a strong year
"""),
        "negative": _bars("""
was shut down after a fire|has been crippled by strikes|is losing money and may close
"""),
        "neutral": _bars("""
employs about 400 people|will be inspected next month|opens at eight every morning
"""),
    },
    "sx": {
        "positive": _bars("""
loved|raved about|snapped up|praised|are thrilled with|can't get enough of
"""),
        "negative": _bars("""
complained about|returned thousands of|criticised|are angry about|are boycotting
gave up on
"""),
        "neutral": _bars("""
can now order|will be able to buy|were shown|asked questions about|can rent
"""),
    },
    "sq": {
        "positive": _bars("""
We are thrilled with these results|This has been our best year ever
The response from customers has been fantastic|I could not be prouder of the team
"""),
        "negative": _bars("""
We are deeply disappointed|This has been a terrible year for us
We failed our customers and I am sorry|The losses are worse than we feared
"""),
        "neutral": _bars("""
We will publish the figures on {D}|The meeting is scheduled for {M}
We have nothing more to add at this time|The plan will be reviewed next year
"""),
    },
    "st": {
        "positive": _bars("""
, and the response has been overwhelmingly positive
, which analysts called a great success|, a move investors warmly welcomed
, and customers love it|, and the mood is upbeat
"""),
        "negative": _bars("""
, and critics called it a disaster|, which angered many customers
, a decision that was widely condemned|, and the fallout has been severe
, leaving staff frustrated and worried
"""),
        "neutral": _bars("""
, according to a statement|, a spokesperson said|, the company confirmed|, as planned
, the filing shows
"""),
    },
    "sa": {
        "positive": _bars("fantastic|record-breaking|stellar|superb|wonderful"),
        "negative": _bars("dismal|terrible|disastrous|painful|bleak"),
        "neutral": _bars("typical|routine|normal|quiet"),
    },
    "sales": {
        "positive": _bars("surged|tripled|soared|beat all forecasts"),
        "negative": _bars("slumped|collapsed|fell sharply|dried up"),
        "neutral": _bars("were steady|were unchanged|were counted|were reported"),
    },
    "stock": {
        "positive": _bars("soared|jumped|rallied strongly|hit a record high"),
        "negative": _bars("plunged|tumbled|crashed|sank to a record low"),
        "neutral": _bars("were little changed|traded flat|opened at the usual level"),
    },
    "sflight": {
        "positive": _bars("""
are fully booked after a superb season|are back and busier than ever
"""),
        "negative": _bars("""
were cancelled, leaving thousands stranded|face long delays after a strike
"""),
        "neutral": _bars("will leave an hour earlier from {M}|run twice a day"),
    },
}

FILLERS: dict[str, list[str]] = {
    "fac": ["plant", "factory", "mill", "warehouse", "store", "refinery", "call centre"],
    "event": ["conference", "festival", "trade fair", "summit", "concert", "marathon", "expo"],
    "G": _bars("""
Customers|Critics|Reviewers|Buyers|Gamers|Parents|Drivers|Shoppers|Fans|Testers|Teachers
Farmers|Students
"""),
}
