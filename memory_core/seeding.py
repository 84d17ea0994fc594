"""Realistic synthetic buyer states, generated deterministically, for QA, demos and benchmarks.

Every buyer gets a coherent profile (persona, budget, neighbourhoods, lender, partner...)
and a conversation written from many small fragment pools whose slots are filled from
that profile and from fresh random numbers. The result reads like real buyer chat and,
importantly for the compression benchmarks, does not repeat one template: messages vary
in structure, vocabulary, numbers, casing and the occasional typo.

All randomness comes from the ``random.Random`` passed in (or seeded from
:class:`SeedOptions`), never from the global generator, so a given seed always yields the
same buyers. Nothing here talks to Redis; feed :meth:`SeedBuyer.as_save_item` tuples to
``SyncBuyerConversationMemory.save_many``.
"""

from __future__ import annotations

import math
import random
import re
import string
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from memory_core.errors import InvalidContactId, InvalidState
from memory_core.state import QA_SEED_FIELD, TEMPERATURES, validate_contact_id

__all__ = [
    "DEFAULT_HISTORY_RANGE",
    "DEFAULT_TEMPERATURE_MIX",
    "MIN_REMAINING_TTL_SECONDS",
    "REFERENCE_TIME",
    "SeedBuyer",
    "SeedOptions",
    "generate_buyers",
    "generate_state",
]

DEFAULT_TEMPERATURE_MIX: tuple[float, float, float] = (0.2, 0.45, 0.35)
DEFAULT_HISTORY_RANGE: tuple[int, int] = (2, 80)
MAX_COUNT = 1_000_000
MAX_HISTORY_MESSAGES = 500
MAX_TTL_DAYS = 3650
#: Interaction times are spread over this many days before ``now``.
INTERACTION_SPREAD_DAYS = 45
#: The least TTL a seeded buyer is written with, whatever its age: seeds whose TTL would
#: have run out already stay an hour rather than vanish as they are written.
MIN_REMAINING_TTL_SECONDS = 3600
#: When :func:`generate_state` is not told when the chat ended, it ends here, so a state
#: depends on nothing but the random generator (reproducible benchmark corpora).
REFERENCE_TIME = datetime(2025, 1, 15, 17, 30, tzinfo=UTC)

URGENCY_LEVELS = ("immediate", "1-3 months", "3-6 months", "6+ months", "unknown")
FINANCING_STATUSES = ("pre-approved", "pre-qualified", "cash", "exploring", "unknown")
QUALIFICATION_STEPS = ("budget", "timeline", "financing", "preferences", "decision_makers",
                       "complete")
JOURNEY_STAGES = ("discovery", "searching", "touring", "offer", "under_contract", "closed")
PERSONAS = ("first_time_buyer", "move_up_buyer", "investor", "relocating_professional",
            "downsizer", "luxury_buyer")
PROPERTY_TYPES = ("single_family", "condo", "townhouse", "multi_family")

# ---------------------------------------------------------------------------------------
# Who the buyers are
# ---------------------------------------------------------------------------------------

FIRST_NAMES = (
    "Aaliyah", "Aarav", "Abdul", "Adaeze", "Adriana", "Ahmed", "Aiko", "Alejandro", "Alexei",
    "Amara", "Amir", "Ana", "Andre", "Anika", "Arjun", "Ashley", "Ayesha", "Beatriz", "Ben",
    "Bianca", "Björn", "Brandon", "Brianna", "Camila", "Carlos", "Carmen", "Chen", "Chiamaka",
    "Chloé", "Chris", "Daniel", "Daniela", "Darnell", "Deepa", "Diego", "Dmitri", "Ebony",
    "Elena", "Elif", "Emeka", "Emily", "Emma", "Eun-ji", "Fatima", "Felipe", "Francesca",
    "Gabriel", "Grace", "Hana", "Hannah", "Hassan", "Hiroshi", "Imani", "Ines", "Isabella",
    "Ivan", "Jamal", "James", "Jasmine", "Javier", "Jennifer", "Ji-woo", "Jordan", "José",
    "Julia", "Kai", "Kavya", "Keisha", "Kenji", "Kevin", "Kwame", "Lakshmi", "Latoya", "Laura",
    "Leila", "Liam", "Lina", "Lucas", "Luis", "Maya", "Mei", "Malik", "Marcus", "María",
    "Mateo", "Megan", "Mohammed", "Nadia", "Naomi", "Nia", "Nikhil", "Noah", "Oksana",
    "Olivia", "Omar", "Oluwaseun", "Pablo", "Patrick", "Priya", "Rachel", "Rafael", "Rahul",
    "Rania", "Ravi", "Rebecca", "Ricardo", "Rosa", "Ryan", "Sakura", "Samir", "Sara",
    "Sean", "Sofia", "Søren", "Sunil", "Tamika", "Tariq", "Thanh", "Tomás", "Tyler",
    "Valentina", "Victor", "Wei", "Xavier", "Yara", "Yusuf", "Zainab", "Zoë", "Zhang Wei",
)
LAST_NAMES = (
    "Abernathy", "Acheampong", "Adeyemi", "Al-Sayed", "Alvarez", "Anderson", "Bailey",
    "Banerjee", "Bauer", "Becker", "Bennett", "Brooks", "Campbell", "Castillo", "Chang",
    "Chatterjee", "Chen", "Cohen", "Coleman", "Cruz", "Da Silva", "Davis", "Delgado", "Diaz",
    "Dubois", "Edwards", "Eze", "Fernandez", "Fischer", "Flores", "Foster", "García",
    "Goldberg", "Gomez", "Gonzalez", "Gupta", "Haddad", "Hansen", "Harris", "Hernandez",
    "Hoang", "Hughes", "Ibrahim", "Ito", "Jackson", "Jensen", "Johnson", "Kapoor", "Khan",
    "Kim", "Kowalski", "Kumar", "Larsen", "Le", "Lee", "Lopez", "Mahmoud", "Martin",
    "Martinez", "Mendoza", "Miller", "Mitchell", "Moreno", "Morris", "Muñoz", "Murphy",
    "Nakamura", "Nguyen", "Novak", "O'Brien", "O'Connor", "Okafor", "Okonkwo", "Olsen",
    "Ortiz", "Osei", "Park", "Patel", "Peña", "Perez", "Petrov", "Phillips", "Popescu",
    "Qureshi", "Ramirez", "Rao", "Reddy", "Reyes", "Richardson", "Rivera", "Robinson",
    "Rodriguez", "Rossi", "Russo", "Saito", "Sanchez", "Santos", "Schmidt", "Shah", "Sharma",
    "Silva", "Singh", "Smith", "Sokolova", "Sullivan", "Suzuki", "Tanaka", "Taylor", "Thomas",
    "Tran", "Turner", "Vargas", "Vasquez", "Volkov", "Walker", "Wang", "Washington",
    "Williams", "Wilson", "Wright", "Wu", "Yamamoto", "Yilmaz", "Young", "Zhang", "Zhou",
)
EMAIL_DOMAINS = (
    "example.com", "example.org", "example.net", "mail.example.com", "mail.example.net",
    "inbox.example.org", "home.example.com", "post.example.net",
)
CITIES = (
    "Austin", "Raleigh", "Denver", "Charlotte", "Nashville", "Columbus", "Phoenix", "Tampa",
    "Boise", "Salt Lake City", "Sacramento", "Portland", "Minneapolis", "Kansas City",
    "Indianapolis", "Richmond", "Atlanta", "San Antonio", "Pittsburgh", "Madison",
    "Greenville", "Colorado Springs", "Orlando", "Dallas", "Houston", "Seattle", "Tucson",
    "Albuquerque", "Louisville", "Omaha", "Des Moines", "Spokane", "Chattanooga", "Durham",
)
_HOOD_HEADS = (
    "Maple", "Cedar", "Willow", "Oak", "Birch", "Aspen", "Juniper", "Magnolia", "Hawthorne",
    "Linden", "Sycamore", "Cypress", "Laurel", "Elm", "Pine", "Chestnut", "River", "Lake",
    "Mill", "Stone", "Fox", "Eagle", "Heron", "Quail", "Meadow", "Sunset", "Harbor", "Bridge",
    "North", "South", "East", "West", "Old", "Brook", "Spring", "Highland", "Clover",
    "Briar", "Copper", "Silver",
)
_HOOD_TAILS = (
    "Heights", "Park", "Village", "Commons", "Crossing", "Ridge", "Hills", "Grove", "Point",
    "Creek", "Landing", "Terrace", "Gardens", "Station", "Valley", "Estates", "Square",
    "Town", "Glen", "Bluff",
)
NEIGHBORHOODS = tuple(f"{head} {tail}" for head in _HOOD_HEADS for tail in _HOOD_TAILS)
STREET_NAMES = (
    "Larkspur", "Marigold", "Bramble", "Kestrel", "Foxglove", "Whitfield", "Ashbury",
    "Calloway", "Pemberton", "Sutton", "Harlow", "Wexford", "Beacon", "Orchard", "Fairview",
    "Kingsley", "Rosewood", "Thornton", "Bellamy", "Hollis", "Carver", "Delmar", "Elmhurst",
    "Garrison", "Hampton", "Ivy", "Jefferson", "Kenwood", "Lexington", "Madison", "Newport",
    "Oakmont", "Prescott", "Quarry", "Redbud", "Sheridan", "Tamarack", "Union", "Vista",
    "Walnut", "Yorktown", "Alder", "Bayberry", "Canterbury", "Dogwood", "Evergreen",
    "Fieldstone", "Greenbriar", "Holloway", "Ironwood", "Jasmine", "Kingfisher", "Lantern",
    "Mockingbird", "Northgate", "Oriole", "Primrose", "Ravenwood", "Saddlebrook", "Tanglewood",
)
STREET_SUFFIXES = (
    "Street", "Avenue", "Lane", "Drive", "Court", "Way", "Road", "Place", "Boulevard",
    "Terrace", "Circle", "Trail", "St", "Ave", "Dr", "Ln",
)
_DISTRICT_HEADS = (
    "Lakeview", "North Ridge", "Westbrook", "Pine Valley", "Riverbend", "Cedar Falls",
    "Eastfield", "Summit", "Oak Hollow", "Fairmont", "Granite Hills", "Southport",
    "Mesa Verde", "Brookside", "Clearwater", "Heritage", "Kingsport", "Millbrook",
)
_DISTRICT_TAILS = ("Unified", "ISD", "School District", "Public Schools", "County Schools")
SCHOOL_DISTRICTS = tuple(f"{h} {t}" for h in _DISTRICT_HEADS for t in _DISTRICT_TAILS)
_LENDER_HEADS = (
    "Harbor", "Summit", "Blue Ridge", "Pinecrest", "Lakeshore", "Northstar", "Keystone",
    "Prairie", "Evergreen", "Granite", "Redwood", "Beacon Hill", "Meridian", "Silverline",
)
_LENDER_TAILS = ("Credit Union", "Home Loans", "Mortgage", "Bank", "Lending", "Federal")
LENDERS = tuple(f"{h} {t}" for h in _LENDER_HEADS for t in _LENDER_TAILS)
AGENT_NAMES = (
    "Dana", "Priya", "Marcus", "Elena", "Tom", "Keiko", "Andre", "Lauren", "Sam", "Jorge",
    "Renee", "Malcolm", "Ingrid", "Tasha", "Owen", "Farah",
)
PARTNERS = (
    "wife", "husband", "partner", "fiancé", "fiancée", "girlfriend", "boyfriend", "mom",
    "dad", "parents", "brother", "sister", "business partner", "wife", "husband", "partner",
)
WORKPLACES = (
    "the hospital downtown", "the medical center", "the tech campus near the airport",
    "the university", "my office in the financial district", "the distribution center",
    "the base", "city hall", "the plant off the interstate", "the research park",
    "my client sites downtown", "the school where I teach", "the new corporate campus",
    "the courthouse", "the airport", "the children's hospital", "the data center",
    "the warehouse district", "the state capitol", "the VA clinic",
)
FEATURES = (  # each reads after "a": "a {feature}"
    "fenced yard", "two-car garage", "home office", "finished basement", "remodeled kitchen",
    "primary suite on the main floor", "covered patio", "big backyard",
    "bright open floor plan", "walk-in pantry", "mudroom", "screened porch", "gas range",
    "garage EV charger", "laundry room upstairs", "guest suite", "pool", "workshop",
    "paid-off solar array", "vaulted great room", "corner lot", "big kitchen island",
    "second living area", "sunroom", "three-car garage", "bonus room", "deck",
    "cul-de-sac lot", "walkout basement", "new roof", "gas fireplace",
    "spot for RV parking", "garden plot", "casita or ADU", "mountain view",
    "tankless water heater",
)
MUST_HAVES_BY_PERSONA: dict[str, tuple[str, ...]] = {
    "first_time_buyer": ("in-unit laundry", "parking", "fenced yard", "updated kitchen",
                         "home office", "low HOA", "move-in ready", "pet friendly",
                         "near transit", "good schools"),
    "move_up_buyer": ("good schools", "fenced yard", "two-car garage", "home office",
                      "finished basement", "four bedrooms", "big backyard", "cul-de-sac",
                      "guest room", "open floor plan"),
    "investor": ("positive cash flow", "separate meters", "low maintenance",
                 "near university", "off-street parking", "rental-friendly HOA",
                 "long-term tenants in place", "no major repairs", "zoned for ADU"),
    "relocating_professional": ("short commute", "home office", "walkable", "near airport",
                                "move-in ready", "good schools", "garage", "gym nearby",
                                "fast internet"),
    "downsizer": ("single-level living", "low maintenance yard", "primary on main",
                  "near healthcare", "no stairs", "community amenities", "garage",
                  "quiet street", "guest room for grandkids"),
    "luxury_buyer": ("pool", "privacy", "gated community", "wine cellar", "three-car garage",
                     "chef's kitchen", "views", "guest house", "home theater",
                     "smart home system"),
}
AMENITIES = (
    "the greenway trail", "a good grocery store", "coffee shops", "the light rail",
    "the farmers market", "a dog park", "the lake", "downtown", "the rec center",
    "restaurants", "a gym", "the library", "bike lanes", "the new shopping center",
    "the hospital", "a playground", "the river walk", "the brewery district",
)
INSPECTION_ISSUES = (
    "the roof is near the end of its life", "some moisture in the crawlspace",
    "the water heater is from 2009", "old knob-and-tube wiring in the attic",
    "a cracked heat exchanger in the furnace", "signs of a past termite problem",
    "settling cracks in the foundation", "the AC unit is 18 years old",
    "polybutylene plumbing under the house", "a double-tapped breaker in the panel",
    "grading that sends water toward the house", "missing GFCI outlets in the kitchen",
    "a slow leak under the upstairs shower", "radon slightly over the EPA limit",
    "rot around a couple of window frames", "an ungrounded electrical panel",
    "a cracked sewer line near the street", "ungraded stairs to the deck",
    "the chimney liner needs replacing", "mold in the attic near the bathroom vent",
)
DAYS = (
    "Saturday", "Sunday", "this Saturday", "Sunday afternoon", "Thursday evening",
    "next Tuesday", "Friday", "Wednesday after work", "Monday morning", "this weekend",
    "tomorrow", "Saturday morning", "next weekend", "Tuesday", "Thursday",
)
TIMES = (
    "9:30", "10", "10:30am", "11", "noon", "1pm", "2:15", "3", "3:30", "4pm", "5:30",
    "6", "6:15pm", "7",
)
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)
FROM_CITIES = (
    "Chicago", "New Jersey", "the Bay Area", "Boston", "Los Angeles", "New York",
    "Philadelphia", "San Diego", "Detroit", "Cleveland", "Baltimore", "DC", "Miami",
    "St. Louis", "Milwaukee", "Hartford", "Buffalo", "Toronto", "London",
)

# ---------------------------------------------------------------------------------------
# What they say. ``{slot}`` names a _Writer method ``_s_<slot>``; unknown slots fail at
# import. Topic pools are written per role; the conversation picks a topic per exchange.
# ---------------------------------------------------------------------------------------

USER_OPENERS = (
    "Hi!", "Hey there,", "Quick question -", "Morning!", "Ok so", "Thanks for getting back "
    "to me.", "Sorry for the slow reply,", "Hi again.", "Hello,", "Hey {first_agent},",
    "So", "Thanks for the info!", "Good afternoon.", "Ok,", "Hmm.", "Hi, it's {first} again.",
    "One more thing,", "Following up -", "Thanks!", "Great, thanks.", "Hey,", "Ah ok.",
    "That helps.", "Got it, thanks.", "Sorry, another question:", "Hey, quick one.",
    "Evening!", "Thanks so much.", "Appreciate it.", "Yes!", "Right,", "Ok cool.",
)
USER_TAILS = (
    "No rush on this.", "Let me know what you think!", "Thanks in advance.",
    "If that makes sense.", "My {partner} says hi lol.", "We're around all weekend.",
    "Just trying to figure out our options.", "Can you text me the details?",
    "Also, is {hood} still on the list?", "Also what did you think of {addr}?",
    "Sorry for all the questions!", "Appreciate the help.", "Thoughts?",
    "I'm free after {time} most days.", "We can chat {day} if easier.",
    "Not sure if that changes anything.", "Just want to be realistic.",
    "Hope that's not too picky.", "Trying not to get my hopes up haha.",
    "My {partner} will probably have opinions too.", "Does that sound doable?",
    "Open to suggestions.", "Feel free to call, my number is on the form.",
    "Still learning how all this works.", "That's kind of the big one for us.",
)
ASSISTANT_ACKS = (
    "Great question, {first}!", "Thanks for the update, {first}.", "Totally understand.",
    "Good to know!", "Happy to help.", "That makes sense.", "Thanks for letting me know.",
    "Absolutely.", "Love that.", "Noted!", "Of course!", "Thanks, {first} - that's really "
    "helpful.", "Fair point.", "Sounds good.", "Thanks for sharing that.", "Good thinking.",
    "I hear you.", "Thanks for the quick reply!", "That's a really common question.",
    "No problem at all.", "Great, thank you.", "Perfect.", "Got it, {first}.",
    "Thanks for your patience.", "Understood.", "Ooh, good one.", "Hi {first}!",
    "That's helpful context.", "You're not alone in that.", "Thanks for being upfront.",
)
ASSISTANT_QUESTIONS = (
    "What price range feels comfortable for you?", "When are you hoping to be moved in?",
    "Have you had a chance to talk with a lender yet?",
    "How many bedrooms do you need at a minimum?",
    "Is anyone else involved in the decision, like a partner or family member?",
    "Would {day} at {time} work for a showing?",
    "Want me to set up a saved search for {hood}?",
    "Should I include {other_hood} in your alerts too?",
    "Is a {feature} a must-have or a nice-to-have?",
    "What's the longest commute you'd be OK with?",
    "Would you like me to connect you with {lender} for a quick pre-approval?",
    "Do you want me to send over the seller disclosures for {addr}?",
    "Any other neighborhoods you'd like me to keep an eye on?",
    "Shall I pull recent sales near {street} so you can compare?",
    "Would it help to see a payment estimate at {price}?",
    "How does {day} look for you?", "Want me to add {addr} to your favorites?",
    "Do you have a home to sell first, or are you currently renting?",
    "Is there a monthly payment you'd like to stay under?",
    "Would you consider a {ptype_alt} if it meant a better location?",
    "How soon could you tour if something great came up?",
    "Is your {partner} able to join the next showing?",
    "Would a quick call {day} be easier than texting?",
    "Should I keep the search at {beds}+ bedrooms?",
    "Do you want listings that need a little work, or move-in ready only?",
    "Anything about {hood} you'd like me to look into?",
)

USER_TOPICS: dict[str, tuple[str, ...]] = {
    "greeting": (
        "Hi, I'm {first}. We're starting to look for a {ptype} in {city} and I'm not sure "
        "where to begin.",
        "I saw one of your listings in {hood} and wanted to ask a few questions.",
        "My name is {first} - a friend told me to reach out about buying in {city}.",
        "I filled out the form on your site last night about homes around {hood}.",
        "Just starting to think about buying and had some questions about {city}.",
        "We've been renting in {other_hood} for {years} years and think it's finally time "
        "to buy.",
        "is this the right place to ask about the {ptype} on {street}?",
        "I got your text about the open house in {hood}. Still interested in looking around.",
        "It's {first}. Sorry I went quiet for {years} weeks, work has been crazy.",
        "We're relocating to {city} sometime this year and need help figuring out areas.",
        "I'd like some info about buying a {beds} bedroom place around {hood}.",
        "I clicked on an ad for homes in {city}. Can you tell me how this works?",
        "My {partner} and I are looking to buy our {nth} home and want to get organized.",
        "We toured a few places in {other_hood} on our own and realized we need an agent.",
        "Hi, my lease is up in {month} and I'm wondering if buying makes sense instead.",
    ),
    "budget": (
        "We're thinking somewhere around {budget}, maybe a little more for the right place.",
        "Our budget is {budget_min} to {budget} but honestly I'd rather stay under "
        "{budget_mid}.",
        "I'd like to keep the monthly payment under {payment} if possible, including taxes.",
        "What does {budget} actually get you in {hood} these days?",
        "We were hoping to stay below {budget}. Is that realistic for a {beds} bedroom?",
        "My max is {budget}, and that's with stretching a bit.",
        "I honestly don't know what we can afford yet. We make about {income} combined.",
        "Can we go up to {budget} if we put {down} down?",
        "Everything I see online in {hood} is way over {budget}, is that normal?",
        "I don't want to be house poor. Something around {budget_min} would feel safer.",
        "Does the {budget} number need to include closing costs or is that separate?",
        "We have about {down_amt} saved for the down payment and closing.",
        "My lender said up to {budget} but {payment} a month feels like a lot.",
        "Our rent is {rent} now, so anything close to that per month would be amazing.",
        "We could probably do {budget_mid}, {budget} absolute tops.",
        "If we found the perfect place I guess we'd stretch to {budget_stretch}.",
    ),
    "timeline": (
        "We'd like to be in by {month} if possible, our lease ends then.",
        "No hard deadline, maybe in the next {months} months?",
        "Honestly just browsing for now, probably not buying until {month} at the earliest.",
        "We need to move before school starts, so {month} at the latest.",
        "My lease is up on {date} so I'm kind of on a clock.",
        "I start the new job on {date}, so ideally we close before then.",
        "We're flexible. If the right place in {hood} came up tomorrow we'd move on it.",
        "Probably {months} months, depends on selling our current place.",
        "The baby is due in {month} so we'd rather not be moving right around then lol",
        "Is {months} months enough time to find something and close?",
        "We've been saying 'next spring' for {years} years now haha, so I'm trying to "
        "actually do it this time.",
        "Our landlord is selling the building, so we have until {date} to figure it out.",
        "Not in a hurry. I'd rather wait {months} months and get it right.",
    ),
    "financing": (
        "[Haven't|We haven't|I haven't] talked to a lender yet. Do [I|we] need to do that before "
        "[touring|we start touring|seeing houses]?",
        "[What's|Whats|What is] the difference between pre-qualified and pre-approved? [The "
        "lender|{lender}|My bank] used both.",
        "My credit is around {credit}, is that good enough for a conventional loan?",
        "We're planning to put {down} down, is that enough?",
        "Is [FHA|an FHA loan] worth it? I keep hearing mixed things about the [mortgage "
        "insurance|MIP|PMI part].",
        "Does the pre-approval letter expire? Ours is from {month}.",
        "Can I use gift money from my {partner} for part of the down payment?",
        "I'm self employed [({years} years now)|as a contractor|with my own business] so I'm "
        "worried about the income paperwork.",
        "Any lenders you'd recommend? The bank quoted me {rate}.",
        "How much should we budget for closing costs on a {price} house?",
        "Do first time buyer programs exist [here|in {city}|around {city}]? [I heard|A friend "
        "mentioned|Someone at work said something] about down payment assistance.",
        "We're pre-approved with {lender} for up to {budget}.",
        "Talked to {lender} yesterday, they said {rate} with {points} points.",
        "Would a VA loan make sense? My {partner} served {years} years.",
        "We'd be paying cash[,| -|.] [just want to make sure|does] that actually [helps|help] us "
        "negotiate[.|?]",
        "My student loans are around {student_loans}, does that hurt us a lot?",
        "Is it better to do 15 year or 30 year? The payment difference is like {small_money}.",
    ),
    "preferences": (
        "We need at least {beds} bedrooms, {baths} baths would be ideal.",
        "A {feature} is a must for us. We have {pets}.",
        "I really want a {feature} and a {feature2}.",
        "Open to a {ptype_alt} if it means a better location.",
        "[Single story|One level|A ranch] would be nice, my knees aren't what they used to be.",
        "I work from home [{office_days} days a week|full time|most days] so a real office (not a "
        "closet) is a big deal.",
        "Prefer something newer, like built after {year}. Not looking for a project.",
        "Honestly I'd take a [fixer upper|project|house that needs work] if the bones are good and "
        "the price is [right|under {budget}].",
        "[Garage|A garage|Covered parking] is non-negotiable. [Winters here are brutal.|I've "
        "scraped ice off my car for {years} winters.|The summer heat is brutal on cars.]",
        "Kitchen doesn't have to be fancy but it can't be from {year_old}.",
        "Need room for my {partner} who visits a lot, so maybe a guest suite or a "
        "{feature}?",
        "How important is lot size? We'd like {lot} or so but not sure that's realistic.",
        "Must haves: {must}, {must2}. Nice to have: {feature}.",
        "No carpet please lol. And ideally a {feature}.",
        "We'd like at least {sqft} if we can find it.",
        "Would love a {feature} but I know we can't have everything at {budget}.",
        "Not a fan of open concept [tbh|honestly|to be honest], I like a separate [dining "
        "room|living room|den].",
    ),
    "neighborhoods": (
        "What do you know about {hood}? Is it safe at night?",
        "We like {hood} and {other_hood} but haven't really explored anywhere else.",
        "Is {hood} walkable? I'd love to be near {amenity}.",
        "A coworker lives in {other_hood} and loves it. How does it compare to {hood}?",
        "How are the flood zones around {hood}? I saw something about the creek.",
        "Are there new developments planned near {hood}? Don't want to live next to a "
        "construction site for {years} years.",
        "I'd rather be close to {amenity} than have a huge yard.",
        "Is {hood} too far out? Everything seems cheaper there and I'm not sure why.",
        "Heard prices in {hood} jumped {pct}% last year. Is it still worth it?",
        "Any neighborhoods like {hood} but a bit more affordable?",
        "We drove through {other_hood} on {day}, felt kind of sleepy. Is that fair?",
        "What's the vibe in {hood}? Lots of families or more young professionals?",
        "Are taxes in {hood} really {tax}? That seems high.",
    ),
    "schools": (
        "How are the schools in {hood}? We have a {kid_age} year old.",
        "Is {hood} in the {school} district?",
        "School district matters a lot to us. Elementary especially, our kid starts in "
        "{month}.",
        "We don't have kids [yet|right now|and don't plan to] so schools aren't a priority, but I "
        "know [it affects resale|they matter for resale|buyers care later on].",
        "What's the difference between {school} and the district next door?",
        "Are there any decent private or charter options near {other_hood}?",
        "My {partner} really wants to be in {school}, it's kind of a dealbreaker.",
        "How far is the elementary school from {street}? Hoping the kids could walk.",
    ),
    "commute": (
        "My commute needs to stay under {commute} minutes to {workplace}.",
        "How bad is traffic from {hood} to {workplace} in the morning?",
        "I go into the office {office_days} days a week so the commute isn't everything.",
        "Is there a train or bus from {hood}? I'd rather not drive every day.",
        "My {partner} works near {workplace}, so somewhere in between is ideal.",
        "{minutes} minutes each way is my absolute max.",
        "I timed the drive from {other_hood} on {day} and it was {minutes} minutes. Ugh.",
        "Hybrid schedule, so {minutes} minutes a couple times a week is fine.",
    ),
    "listings": (
        "Did you see the one on {addr}? Listed at {price}.",
        "What about {addr}? Looks great in the photos but the price seems high.",
        "Can you send me anything new in {hood} under {budget}?",
        "The house on {street} just dropped its price by {pct}%, any idea why?",
        "I keep seeing {addr} come up. It's been sitting for {dom} days, is something wrong "
        "with it?",
        "Loved the kitchen on the {street} listing, but only {beds_alt} bedrooms.",
        "Zillow says {addr} is worth {price_low} but they're asking {price}. Which is right?",
        "Anything with a {feature} come up this week?",
        "That last batch you sent wasn't really what we want. Too many {ptype_alt} listings.",
        "The {sqft} one on {street} looks perfect except for the busy road.",
        "Just saw {addr} go pending after {dom} days, so frustrating.",
        "Is {addr} still available? The listing says coming soon.",
        "Found one on {street} for {price} but the photos are kind of dark, red flag?",
    ),
    "tours": (
        "Can we see {addr} this {day}?",
        "Are there any open houses in {hood} this weekend?",
        "We're free {day} after {time}, does that work?",
        "I went to the open house on {street} yesterday. Smaller than the photos made it look.",
        "Can we do a video tour? I'm still out of state until {date}.",
        "We saw {count} houses on {day} and honestly none of them felt right.",
        "Could we tour {addr} and the one on {street} back to back?",
        "The one on {street} was nice but the backyard slopes a lot.",
        "Loved {addr}!! The light in the living room was amazing.",
        "Running about {minutes} minutes late for the showing, sorry!",
        "Do we need to take our shoes off at [showings|the showing on {day}]? Lol first time doing "
        "this.",
    ),
    "hoa": (
        "What's the HOA on {addr}? I couldn't find it on the listing.",
        "{hoa} for HOA seems steep, what does it cover?",
        "Do [condos|condo buildings|HOAs] [here|in {city}|around {hood}] have a lot of special "
        "assessments?",
        "Can the HOA stop us from putting up a [fence|shed|pergola|playset] or [solar panels|an EV "
        "charger|a satellite dish]?",
        "Is it possible to find something without an HOA in {hood}?",
        "The HOA in {other_hood} is {hoa} - is that normal for a {ptype}?",
    ),
    "inspection": (
        "The inspector found {issue}. How worried should we be?",
        "Do we need a separate sewer scope for {addr}?",
        "Inspection report came back at {pages} pages lol. What should we actually care about?",
        "Can we ask the sellers to fix it or give us a credit? The quote was {small_money}.",
        "How long is the inspection period usually? [We'd want to bring my {partner}'s contractor "
        "friend.|Trying to plan around work.|Our inspector is booked till {day}.]",
        "Our inspector mentioned {issue}. My {partner} is freaking out a bit.",
    ),
    "rates": (
        "Rates are still around {rate}, right? Should we wait?",
        "Everyone says rates will drop. Does it make sense to hold off until {month}?",
        "What's a rate buydown? The builder on {street} offered one.",
        "Can we refinance later if rates [go down|drop|come down to {rate}]? [Just thinking "
        "ahead.|What does that usually cost?|Or is that wishful thinking?]",
        "My lender quoted {rate} with {points} points. Is that good?",
        "Saw on the news rates went up again, does that change what we can afford at "
        "{budget}?",
    ),
    "offer": (
        "We want to make an offer on {addr}. How much under asking can we go?",
        "Should we offer over asking? I heard there are {count} other offers.",
        "What's an escalation clause and should we use one [on {addr}|here|for this one]?",
        "Can we waive the appraisal contingency? [That makes me nervous.|Agent friend said "
        "everyone does now.|Feels risky at {price}.]",
        "The seller countered at {price}. Our max was {budget}.",
        "How much earnest money do people usually put down [here|in {city}|on a {price} house]?",
        "We lost another one. That's the {nth} time we've been outbid.",
        "Ok let's do it. Offer {price_low} on {addr}?",
        "Can we ask for {small_money} toward closing costs instead of a lower price?",
    ),
    "decision": (
        "I need to talk it over with my {partner} before we decide.",
        "My {partner} hasn't seen it yet. Can we do a second showing on {day}?",
        "My {partner} is nervous about the payment, honestly so am I.",
        "My {partner} is helping with the down payment so they kinda want a say lol",
        "We're split - I love {hood}, my {partner} wants {other_hood}.",
        "We talked last night and we're leaning toward {addr}.",
    ),
    "closing": (
        "When do we schedule the final walkthrough? [Closing is {date}.|We're out of town "
        "{day}.|Want my {partner} there too.]",
        "Title company sent us wiring instructions for {small_money} - is that legit?",
        "The appraisal came in at {price_low}, under the contract price. What now?",
        "Do we need homeowners insurance before closing? [Got a quote for {small_money} a year.|No "
        "idea where to start.|{lender} keeps asking.]",
        "Closing is on {date}, what should we bring?",
        "Got the keys to {addr}!! Thank you for everything.",
        "Lender is asking for another bank statement, is that normal this close to {date}?",
    ),
    "logistics": (
        "Sorry, I was at work. Can you resend the link for {addr}?",
        "Can you [text|message] me instead of email? I never check my [inbox|email|work email].",
        "Thanks! Will look at the {street} one tonight.",
        "Can we talk {day}? I'm driving right now.",
        "Is there a way to save listings so my {partner} can see them too?",
        "Didn't get the email about {hood} you mentioned, maybe spam folder?",
        "What's the best time to reach you? I'm usually free after {time}.",
        "Out of town until {date}, can we pick this back up then?",
        "Phone died, sorry! Where were we on {addr}?",
    ),
}

PERSONA_USER: dict[str, tuple[str, ...]] = {
    "first_time_buyer": (
        "This is [our|my] first time buying so sorry if these are dumb questions[.|!| lol]",
        "What does the whole process look like from [start to finish|offer to closing|pre-approval "
        "to keys]?",
        "Should I keep renting another {months} months to save more?",
        "Do first time buyers get any tax [benefits|breaks|credits] [here|in {city}|at all]?",
        "I'm paying {rent} in rent and feel like I'm throwing money away.",
        "My parents keep telling me to buy but prices in {city} are wild.",
    ),
    "move_up_buyer": (
        "We need to sell our current house in {other_hood} before we can buy, or at least "
        "around the same time.",
        "Our place has about {equity} in equity, how does that work for the down payment?",
        "Is it better to buy first or sell first? [Our place is worth maybe {equity} more than we "
        "owe.|Everyone says something different.|Scared of being homeless for a month lol.]",
        "We've outgrown our {beds_alt} bedroom, kids are sharing a room right now.",
        "Would you help us list our current place too? It's a {sqft} house on {street}.",
    ),
    "investor": (
        "What kind of rent could a {beds} bed in {hood} get?",
        "Looking for something that cash flows at least {small_money} a month after PITI.",
        "Are there any rules about short-term rentals in {city}?",
        "I'd consider a [duplex|triplex|fourplex|small multifamily] if the numbers work.",
        "This would be my {nth} rental, I have {count} doors already.",
        "Do you have data on vacancy rates in {hood}?",
    ),
    "relocating_professional": (
        "We're moving from {from_city} so we don't know the area at all.",
        "I can only fly in for [one weekend|{day}|two days] to tour. Can we pack [a lot|{count} "
        "houses] into that?",
        "My company is covering [some relocation costs|up to {small_money} of closing costs|the "
        "move], does that change anything?",
        "Which areas are popular with people moving from {from_city}?",
        "Start date is {date} and I'm flying in {day} to look around.",
    ),
    "downsizer": (
        "Kids are grown, we don't need {beds_old} bedrooms anymore.",
        "Want something low maintenance, no big [yard to mow|lawn|garden to look after].",
        "Is a 55+ community[ near {hood}| around {city}|] worth looking at?",
        "We'll be buying with the proceeds from our house in {other_hood}.",
        "Stairs are becoming an issue for my {partner}, so single level please.",
    ),
    "luxury_buyer": (
        "Looking for something with real privacy, gated if possible[.|, ideally near {hood}.]",
        "A pool and an outdoor kitchen are a must[.|, plus a {feature}.]",
        "We'd want at least a {garage_cars}-car garage for the collection.",
        "Are there any off-market listings in {hood}? We'd prefer discretion.",
        "Budget is flexible for the right property, {budget} is a guide not a cap.",
    ),
}

ASSISTANT_TOPICS: dict[str, tuple[str, ...]] = {
    "greeting": (
        "Thanks for reaching out! I help buyers around {city} find the right home and get "
        "ready to make a strong offer.",
        "Welcome, {first}! I'd love to help you find a {ptype} that fits. I'll ask a few "
        "quick questions so the listings I send actually match.",
        "Great to meet you, {first}. Buying in {city} right now takes a bit of planning, but "
        "we'll take it step by step.",
        "Thanks for filling out the form. I can pull listings, answer financing questions "
        "and set up tours whenever you're ready.",
        "Glad you got in touch. Lots of buyers start exactly where you are, so no pressure "
        "at all.",
        "This is the home search assistant following up on your inquiry about {hood}. Are "
        "you still looking?",
        "Welcome back! Last time we talked about homes around {hood} - want to pick up where "
        "we left off?",
        "Our agent {agent} and I work together, so anything you share here goes straight to "
        "the team.",
    ),
    "budget": (
        "A range of {budget_min} to {budget} opens up quite a few options in {hood}, "
        "especially if you're flexible on a {feature}.",
        "At around {budget}, a {beds} bedroom {ptype} in {hood} is realistic, though the "
        "best ones tend to go within {dom} days.",
        "With {down} down on {budget}, your estimated payment would be around {payment} a "
        "month including taxes and insurance at {rate}.",
        "Most buyers in {city} set aside another 2-4% for closing costs on top of the down "
        "payment, so it's worth planning for that now.",
        "Keeping your payment under {payment} is a smart target. I'll filter listings so "
        "you're not seeing homes that push past it.",
        "Prices in {hood} have been running about {pct}% higher than last year, so {budget} "
        "is workable but competitive.",
        "If {budget} is your ceiling, I'd look at homes listed around {price_low} so there's "
        "room to handle a bidding situation.",
        "I've noted {budget_min} to {budget} as your comfortable range. We can always "
        "revisit once you've talked to a lender.",
        "On a household income of {income}, most lenders would approve somewhere near "
        "{budget_stretch}, but comfortable is often lower than approved.",
    ),
    "timeline": (
        "A {months}-month timeline works well. Closings usually take 30-45 days once an "
        "offer is accepted, so we'd want to start touring soon.",
        "Since your lease ends {date}, I'd aim to have an accepted offer about six weeks "
        "before that.",
        "No rush at all. I'll keep an eye on the market and send you the standouts in "
        "{hood} as they come up.",
        "If you need to sell first, we can look at a contingent offer or a rent-back, "
        "depending on what the seller will accept.",
        "Good to know about {month}. That gives us time to get pre-approved and see a few "
        "homes without feeling rushed.",
        "Spring inventory in {city} usually picks up in March, so starting the search now "
        "puts you ahead of most buyers.",
        "Working back from {date}: pre-approval this month, tours over the next few weeks, "
        "and an offer by {month} keeps things comfortable.",
    ),
    "financing": (
        "Pre-approval is worth doing before touring - sellers in {city} rarely take offers "
        "seriously without one, and it only takes a few days.",
        "Pre-qualification is a quick estimate; pre-approval means the lender has actually "
        "verified income, assets and credit.",
        "With a credit score around {credit} you should qualify for conventional financing. "
        "Pricing usually improves noticeably above 740.",
        "{down} down is plenty to get started. Below 20% you'll pay PMI, but it usually "
        "drops off once you reach 20% equity.",
        "Gift funds are fine for most loan types; the lender will just need a gift letter "
        "and a paper trail for the deposit.",
        "{lender} is reputable. It's still worth getting one more quote - even a quarter "
        "point on the rate adds up over 30 years.",
        "Self-employed buyers usually need two years of tax returns. Bank-statement loans "
        "are an option if your write-offs are large.",
        "There are down payment assistance programs in the county for first-time buyers, "
        "with income limits around {income}.",
        "Cash offers are strong here. We'll just need a proof of funds letter to attach to "
        "any offer you make.",
        "A 15-year loan saves a lot of interest, but the 30-year keeps your payment near "
        "{payment} and gives you more breathing room.",
        "Student loans matter mostly through your debt-to-income ratio; lenders typically "
        "want total debts under about 43% of gross income.",
    ),
    "preferences": (
        "Got it - {beds} bedrooms, {baths} baths, and {must} are now on your saved search.",
        "A {feature} narrows things a bit in {hood}, but I'm still seeing {count} active "
        "listings that fit.",
        "Would you trade a [slightly smaller yard|smaller lot|bit less square footage] for a "
        "shorter commute to {workplace}, or is [outdoor space|space] the priority?",
        "Homes built after {year} in {hood} tend to list around {price}, so newer "
        "construction is within reach.",
        "Finished basements are common in {other_hood}; you'd get the extra space without "
        "going over {budget}.",
        "I'll flag anything with a {feature} even if it's a little outside the area, so you "
        "can compare.",
        "Fixer-uppers can be a great value [here|in {hood}]. We'd want a thorough inspection and a "
        "contractor walk-through before making an offer.",
        "At {sqft} you'd have room for an office and a guest room - there are {count} like "
        "that in your range right now.",
    ),
    "neighborhoods": (
        "{hood} is popular with buyers who want {amenity} nearby; homes there typically sell "
        "in about {dom} days.",
        "If you like {hood}, take a look at {other_hood} too. It has a similar feel and "
        "prices are about {pct}% lower.",
        "Most of {hood} sits outside the flood zone, but a few streets near the creek require "
        "flood insurance. I'll note that on listings.",
        "{other_hood} has a newer mix of homes, mostly built after {year}, with HOAs around "
        "{hoa}.",
        "Crime stats vary block to block, so I'd recommend the city's public map and a drive "
        "through {hood} in the evening.",
        "Walkability in {hood} is strong near {street}; further out you'll want a car for "
        "most errands.",
        "Property taxes in {hood} run about {tax} on a home near {price}, a bit above the "
        "county average.",
    ),
    "schools": (
        "Most of {hood} feeds into {school}, which is well rated for elementary. Boundaries "
        "can shift, so it's worth confirming per address.",
        "Homes zoned for {school} tend to hold their value well, even if you don't have kids "
        "- it definitely helps at resale.",
        "I can filter listings to {school} only. That cuts the options to about {count} "
        "right now within your budget.",
        "There are a couple of charter schools near {other_hood}; enrollment is usually by "
        "lottery in the spring.",
        "The elementary serving {street} is about {miles} miles away, and there's a crossing "
        "guard on the main road.",
    ),
    "commute": (
        "From {hood} to {workplace} is usually {minutes} minutes at rush hour, a bit less if "
        "you leave before 7.",
        "If {commute} minutes is the limit, {hood} and {other_hood} both work; areas further "
        "out push past 45 in traffic.",
        "There's a commuter rail stop about {miles} miles from {hood}, which a lot of "
        "residents use to get downtown.",
        "Since you're in the office {office_days} days a week, a slightly longer drive could "
        "open up more space for the money.",
    ),
    "listings": (
        "Here are {count} new listings in {hood} that match your search, starting at "
        "{price_low}. The one on {addr} has a {feature}.",
        "{addr} is listed at {price}, {beds} bed / {baths} bath, {sqft}, built in {year}. "
        "It's been on the market {dom} days.",
        "That price drop on {street} usually means the sellers are motivated - it could be a "
        "good chance to negotiate.",
        "Online estimates are often off by 5-10%. I'll pull recent comparable sales [near "
        "{street}|in {hood}] so we can see what similar homes actually sold for.",
        "{addr} just came on the market at {price}. It checks the {must} box - want me to "
        "set up a showing?",
        "Homes sitting past {dom} days often have a pricing issue rather than a condition "
        "issue, but I'll ask the listing agent.",
        "Heads up: {addr} ({price}, {sqft}) hits the market {day}. Showings start at {time}.",
    ),
    "tours": (
        "I've requested a showing at {addr} for {day} at {time}. I'll confirm as soon as the "
        "listing agent replies.",
        "There are {count} open houses in {hood} this weekend. I'd start with {addr}, it's "
        "the closest match to your list.",
        "Video tours are easy to set up. Our agent {agent} can walk through live and answer "
        "questions as you go.",
        "Thanks for the feedback on {street}. Was it the layout or the size that didn't "
        "work? That helps me refine the search.",
        "After [a tour|each showing|{day}'s tours], jot down two or three things you loved and a "
        "couple you didn't - it makes comparing homes much easier later.",
        "{agent} will meet you at {addr} at {time} on {day}; the lockbox code goes out an "
        "hour before.",
    ),
    "hoa": (
        "The HOA at {addr} is {hoa}, which covers exterior maintenance, landscaping and the "
        "community pool.",
        "Before an offer on a condo, I'll request the HOA's reserve study and recent meeting "
        "minutes - that's where special assessments show up.",
        "HOA dues count toward your debt-to-income ratio, so {hoa} reduces your buying power by "
        "roughly {hoa_power}.",
        "Many HOAs in {city} allow fences and solar with architectural approval; I can get "
        "the rules for any home you like.",
        "There are non-HOA streets in {hood}, mostly the older homes built before {year_old}.",
    ),
    "inspection": (
        "{issue_cap} is fairly common in homes built around {year}. I'd get a contractor "
        "quote so we can ask for a credit rather than a repair.",
        "A sewer scope is usually a few hundred dollars and worth it for any house built "
        "before 1980.",
        "Focus on safety, structure, water and the big systems (roof, HVAC, electrical). "
        "Cosmetic items rarely justify renegotiating.",
        "Typical inspection periods here are 7-10 days. We'll book the inspector as soon as "
        "the offer is accepted.",
        "A credit of {small_money} at closing is a reasonable ask for that repair; sellers "
        "usually prefer it to coordinating contractors.",
    ),
    "rates": (
        "Rates are hovering around {rate} for a 30-year fixed. Nobody can time the market, "
        "and waiting risks higher prices if demand jumps.",
        "A 2-1 buydown lowers the rate by 2% in year one and 1% in year two. [The seller or "
        "builder usually pays for it.|On {addr} the builder is offering to cover it.]",
        "Refinancing later is possible, but I'd buy a home whose payment works at today's {rate} "
        "and treat a refinance as a bonus.",
        "On a {price} loan, every quarter point on the rate is roughly {quarter_point} a month.",
        "{points} points to get {rate} can make sense if you plan to stay more than five or "
        "six years; otherwise skip them.",
    ),
    "offer": (
        "Comparable sales near {addr} support about {price}. Offering {price_low} with a "
        "quick close could be competitive.",
        "With multiple offers, a clean offer often beats a higher one - flexible closing, a "
        "strong pre-approval and a short inspection window.",
        "An escalation clause raises your offer by a set amount above competing offers, up "
        "to a cap. We'd set yours at {budget}.",
        "Earnest money here is usually 1-3% of the price, so about {earnest} on this one.",
        "A counter at {price} is still within reach. We could meet in the middle or ask for "
        "{small_money} toward closing costs.",
        "I'm sorry about losing {street} - that's frustrating. Let's review what won and "
        "adjust the strategy for the next one.",
        "Offer submitted on {addr} at {price_low}, response deadline {day} at {time}. I'll "
        "text you the moment we hear back.",
    ),
    "decision": (
        "Totally makes sense to decide together. I can set up a second showing so your "
        "{partner} can see it in person.",
        "Would it help if I sent a side-by-side of {addr} and the other two you liked? It "
        "can make the conversation easier.",
        "Is there anything specific your {partner} is unsure about? I can pull info on it "
        "before you talk.",
        "Happy to hop on a call with you and your {partner} {day} to walk through the "
        "numbers together.",
    ),
    "closing": (
        "Never wire funds based on emailed instructions alone - call the title company at a "
        "number you've verified first. Wire fraud is common right now.",
        "The final walkthrough is usually 24-48 hours before closing. We'll check that "
        "agreed repairs are done and everything works.",
        "If the appraisal comes in low, we can ask the seller to reduce the price, cover part "
        "of the gap, or renegotiate.",
        "You'll need a homeowners insurance binder before the lender will clear to close, so "
        "it's smart to get quotes this week.",
        "Congratulations, {first}! Enjoy the new place, and let me know if you need "
        "recommendations for movers or contractors.",
        "Bring a photo ID and your cashier's check or wire confirmation on {date}; signing "
        "takes about an hour.",
    ),
    "logistics": (
        "No problem! I've resent the link for {addr} and saved it to your favorites.",
        "Sure - I'll send updates by text [from now on|to the number ending in {phone_tail}].",
        "I'll send a shared link so your {partner} can view and favorite listings too.",
        "Talk {day}! I'll have the latest listings in {hood} ready.",
        "Just resent it from a different address - check spam for anything mentioning "
        "{hood}.",
        "Safe travels! I'll keep watching {hood} and send anything new before {date}.",
    ),
}

PERSONA_ASSISTANT: dict[str, tuple[str, ...]] = {
    "first_time_buyer": (
        "No dumb questions here. The process is: pre-approval, define the search, tour, "
        "offer, inspection, appraisal, then closing.",
        "Renting longer can make sense if it gets you to a bigger down payment, but compare "
        "that with how fast prices in {hood} are moving.",
        "First-time buyers can often deduct mortgage interest and property taxes; a tax pro "
        "can tell you if itemizing beats the standard deduction.",
    ),
    "move_up_buyer": (
        "With about {equity} in equity you could put a strong down payment on the next "
        "place. A bridge loan or HELOC can help if timing is tight.",
        "Buying first gives you certainty, selling first gives you leverage. In {city} right "
        "now most move-up buyers list first with a rent-back.",
        "I can have {agent} do a quick valuation of your place on {street} so we know what "
        "you'll walk away with.",
    ),
    "investor": (
        "Comparable {beds}-bedroom rentals in {hood} are leasing for about {rent} a month "
        "with low vacancy.",
        "Short-term rentals need a permit in most of {city}, and some HOAs ban them "
        "outright, so I'll screen for that.",
        "At {price}, with {rent} in rent, the cap rate would be roughly {cap}% before "
        "management fees.",
    ),
    "relocating_professional": (
        "We can line up {count} showings in one weekend; I'll cluster them by area so you "
        "see {hood} and {other_hood} efficiently.",
        "Many buyers from {from_city} like {hood} for the walkability and the food scene.",
        "Relocation packages often cover closing costs - ask HR whether it's a lump sum or "
        "reimbursed, since that changes how we structure the offer.",
    ),
    "downsizer": (
        "There are a few 55+ communities near {other_hood} with single-level homes and HOA "
        "dues around {hoa}.",
        "Single-level homes in {hood} are in demand, so I'll set alerts to catch them the "
        "day they list.",
        "Using proceeds from your sale for a cash purchase makes your offer very strong.",
    ),
    "luxury_buyer": (
        "I have two off-market properties in {hood} I can share under NDA; both are gated "
        "with pools and guest quarters.",
        "Homes above {budget} in {city} move slower, so there's usually room to negotiate "
        "on price and terms.",
        "{agent} specializes in luxury properties and can arrange private showings on your "
        "schedule.",
    ),
}

#: (summary for objection_history, what the buyer says, how the bot answers).
OBJECTIONS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("Price too high: {addr} listed at {price}, above the {budget} budget",
     ("Honestly {addr} at {price} feels way overpriced for {hood}.",
      "Everything decent is over {budget}. I don't get how anyone affords this.",
      "Prices seem crazy right now, I'm not paying {price} for a {beds} bedroom."),
     ("I hear you on price. Recent sales near {street} closed around {price_low}, so "
      "there's a case for offering under asking.",
      "Let's focus on homes that have been listed {dom}+ days - sellers there are often "
      "open to {pct}% or more off.")),
    ("Wants to wait for mortgage rates to drop below {rate}",
     ("I think we'll wait until rates get under {rate}, the payment is just too much.",
      "Everyone says rates are dropping [soon|by {month}]. Why buy now?"),
     ("That's a fair concern. If rates drop, demand[ in {hood}|] tends to jump too, so waiting can "
      "trade a lower rate for a higher price.",
      "One option is buying now and refinancing later; we'd make sure the payment works "
      "at today's {rate} either way.")),
    ("{partner_cap} needs to see the property before deciding",
     ("My {partner} has to see it first, I can't decide on my own.",
      "Can't commit until my {partner} tours it, they're back {day}."),
     ("Of course - I'll ask for a second showing on {day} so your {partner} can see it.",
      "Makes total sense. I'll send a video walk-through of {addr} tonight so your "
      "{partner} can get a feel for it.")),
    ("HOA fee of {hoa} feels too high",
     ("The HOA is {hoa}, that's basically another car payment.",
      "I really don't want to pay {hoa} every month on top of the mortgage."),
     ("Understood. I'll filter out anything with dues over {hoa} and add non-HOA areas "
      "like {other_hood}.",
      "The {hoa} covers the roof and exterior, which you'd otherwise save for yourself, "
      "but I'll show you non-HOA options too.")),
    ("Property taxes in {hood} higher than expected ({tax})",
     ("Wait, taxes are {tax}?? Nobody told me that.",
      "The taxes in {hood} are killing the numbers for us."),
     ("Taxes there are on the high side. Homestead exemptions can cut that; I'll include "
      "the estimate on every listing I send.",
      "Neighboring {other_hood} is in a lower-tax district - similar homes, about {tax} "
      "less a year.")),
    ("Needs to sell current home first",
     ("We can't buy until our place in {other_hood} sells.",
      "I'm scared of carrying two mortgages if ours[ in {other_hood}|] doesn't sell."),
     ("A home-sale contingency can protect you; it weakens the offer a bit, so we'd "
      "balance it with a strong price.",
      "{agent} can list your home this month so it's under contract before we write an "
      "offer.")),
    ("Commute from {hood} over {long_minutes} minutes",
     ("I drove it on {day}, {long_minutes} minutes to {workplace}. Not doing that daily.",
      "The commute from {hood} is a dealbreaker honestly."),
     ("Thanks for testing the drive. Let's shift the search closer to {workplace}, around "
      "{other_hood}.",
      "Good call checking it at rush hour. I'll cap the search at {commute} minutes.")),
    ("Inspection flagged: {issue}",
     ("After the inspection ({issue}) I'm not sure we should go through with it.",
      "The inspection on {addr} scared us off a bit."),
     ("Totally fair. Let's get a repair quote first - often a credit of {small_money} "
      "solves it.",
      "You can still walk away during the inspection period if the numbers don't work.")),
    ("Prefers to keep renting until {month}",
     ("Honestly we might just keep renting until {month}.",
      "Starting to think renting another [year|{months} months] is smarter."),
     ("That's a valid choice. I'll check back in before {month} and keep an eye on {hood} "
      "meanwhile.",
      "Renting gives flexibility; if you want, I can run the rent-vs-buy numbers at "
      "{rent} a month.")),
    ("Down payment not saved yet ({down} target)",
     ("We're still short on the down payment, maybe another {months} months.",
      "Don't have {down} saved yet, is there any way around that?"),
     ("There are 3-5% down programs, and some offer assistance for first-time buyers.",
      "Let's set a target date and I'll send listings once you're close.")),
    ("Worried the market will dip after buying",
     ("What if prices [drop|fall {pct}%|tank] right after we buy?",
      "Feels like the top of the market[, kind of nervous.|. My {partner} thinks so too.]"),
     ("Short-term swings matter less if you plan to stay five years or more.",
      "Prices in {hood} have held steady even in slower years, mostly because inventory "
      "is tight.")),
    ("Lost bidding wars; frustrated with competition",
     ("Lost {addr} to a cash buyer. We're getting discouraged.",
      "Tired of getting outbid on everything[.| in {hood}.]"),
     ("That's really frustrating. Let's look at homes with {dom}+ days on market where "
      "there's less competition.",
      "We can strengthen the next offer with a shorter inspection window and a flexible "
      "closing date.")),
    ("Concerned about school ratings in {hood}",
     ("The school ratings in {hood} aren't great, right?",
      "Not sure about {school}, heard mixed things."),
     ("Ratings only tell part of the story - I can share test data and set up a visit.",
      "If schools are the priority, {other_hood} feeds into a stronger district.")),
    ("Closing costs higher than expected ({small_money})",
     ("Closing costs are how much?? {small_money} on top of the down payment?",
      "Didn't budget for closing costs[, kind of a shock.|. Is {small_money} normal?]"),
     ("We can ask the seller for a credit toward closing costs - common when a home has "
      "been listed a while.",
      "Some lenders offer lender credits in exchange for a slightly higher rate.")),
)

# ---------------------------------------------------------------------------------------
# How the conversation moves
# ---------------------------------------------------------------------------------------

#: topic -> (weight early, weight mid, weight late, minimum journey stage index). Topics
#: that belong to a later stage than the buyer has reached are down-weighted to 10%.
TOPIC_WEIGHTS: dict[str, tuple[float, float, float, int]] = {
    "greeting": (1.5, 0.2, 0.1, 0),
    "budget": (5.0, 1.5, 0.5, 0),
    "timeline": (4.0, 1.0, 0.5, 0),
    "financing": (4.0, 2.0, 1.0, 0),
    "preferences": (4.0, 3.0, 1.0, 0),
    "neighborhoods": (3.0, 3.0, 1.0, 0),
    "schools": (1.5, 2.0, 0.5, 0),
    "commute": (1.5, 2.0, 0.5, 0),
    "listings": (1.0, 4.0, 3.0, 1),
    "tours": (0.3, 3.0, 3.0, 1),
    "hoa": (0.3, 1.5, 1.0, 1),
    "inspection": (0.0, 0.5, 2.0, 3),
    "rates": (1.0, 2.0, 1.5, 0),
    "offer": (0.0, 0.8, 3.0, 3),
    "objection": (0.5, 1.5, 2.0, 0),
    "decision": (0.5, 1.0, 2.0, 1),
    "closing": (0.0, 0.2, 2.5, 4),
    "persona": (2.0, 2.0, 1.0, 0),
    "logistics": (1.0, 1.5, 1.5, 0),
}
TOPICS = tuple(TOPIC_WEIGHTS)

#: Per temperature: weights over URGENCY_LEVELS, FINANCING_STATUSES, QUALIFICATION_STEPS,
#: JOURNEY_STAGES, the number of objections (0-4), the chance one is resolved, and the
#: (low, high, mode) of the two scores.
_TEMPERATURE_PROFILES: dict[str, dict[str, Any]] = {
    "hot": {
        "urgency": (0.45, 0.40, 0.10, 0.02, 0.03),
        "financing": (0.55, 0.15, 0.20, 0.07, 0.03),
        "step": (0.02, 0.03, 0.10, 0.15, 0.25, 0.45),
        "stage": (0.02, 0.13, 0.35, 0.25, 0.17, 0.08),
        "objections": (0.35, 0.35, 0.20, 0.08, 0.02),
        "resolved": 0.75,
        "financial": (55.0, 100.0, 84.0),
        "motivation": (60.0, 100.0, 88.0),
    },
    "warm": {
        "urgency": (0.08, 0.35, 0.35, 0.12, 0.10),
        "financing": (0.30, 0.30, 0.07, 0.25, 0.08),
        "step": (0.10, 0.15, 0.25, 0.25, 0.15, 0.10),
        "stage": (0.15, 0.40, 0.30, 0.10, 0.04, 0.01),
        "objections": (0.25, 0.30, 0.25, 0.15, 0.05),
        "resolved": 0.5,
        "financial": (30.0, 85.0, 58.0),
        "motivation": (30.0, 85.0, 60.0),
    },
    "cold": {
        "urgency": (0.02, 0.08, 0.25, 0.40, 0.25),
        "financing": (0.05, 0.15, 0.03, 0.45, 0.32),
        "step": (0.40, 0.25, 0.15, 0.12, 0.05, 0.03),
        "stage": (0.60, 0.30, 0.08, 0.02, 0.0, 0.0),
        "objections": (0.20, 0.25, 0.25, 0.20, 0.10),
        "resolved": 0.25,
        "financial": (2.0, 60.0, 25.0),
        "motivation": (2.0, 55.0, 20.0),
    },
}
_QUALIFIED_CHANCE_BY_STEP = {"budget": 0.02, "timeline": 0.05, "financing": 0.15,
                             "preferences": 0.35, "decision_makers": 0.6, "complete": 0.92}
_QUALIFIED_SHIFT_BY_TEMPERATURE = {"hot": 0.1, "warm": 0.0, "cold": -0.1}
_PERSONA_WEIGHTS = (0.32, 0.2, 0.1, 0.15, 0.1, 0.05)
#: persona -> (budget max low, high), bedrooms (low, high), property type weights.
_PERSONA_SHAPES: dict[str, tuple[tuple[int, int], tuple[int, int], tuple[float, ...]]] = {
    "first_time_buyer": ((220_000, 520_000), (1, 3), (0.45, 0.3, 0.25, 0.0)),
    "move_up_buyer": ((380_000, 950_000), (3, 5), (0.85, 0.03, 0.12, 0.0)),
    "investor": ((150_000, 700_000), (2, 4), (0.4, 0.2, 0.1, 0.3)),
    "relocating_professional": ((350_000, 1_100_000), (2, 4), (0.6, 0.2, 0.2, 0.0)),
    "downsizer": ((250_000, 700_000), (1, 3), (0.35, 0.4, 0.25, 0.0)),
    "luxury_buyer": ((1_200_000, 4_500_000), (4, 6), (0.9, 0.1, 0.0, 0.0)),
}
_PROPERTY_PHRASES = {
    "single_family": ("house", "single-family home", "single family", "home"),
    "condo": ("condo", "condo", "condo unit", "unit"),
    "townhouse": ("townhouse", "townhome", "townhouse", "rowhouse"),
    "multi_family": ("duplex", "multi-family", "fourplex", "triplex"),
}
#: What a buyer might settle for; each reads after "a": "a {ptype_alt}".
_PROPERTY_ALTERNATIVES = ("townhouse", "condo", "smaller house", "townhome", "duplex",
                          "new build", "ranch-style house", "fixer-upper", "bungalow")


def _cumulative(weights: Sequence[float]) -> tuple[float, ...]:
    """Running totals, for picking by weight with one random() and a bisect."""
    total = 0.0
    out = []
    for weight in weights:
        total += weight
        out.append(total)
    return tuple(out)


_WEIGHTED_KEYS = ("urgency", "financing", "step", "stage", "objections")
_TEMPERATURE_TABLES = {
    temperature: {key: _cumulative(profile[key]) for key in _WEIGHTED_KEYS}
    for temperature, profile in _TEMPERATURE_PROFILES.items()
}
_DEFAULT_MIX_TABLE = _cumulative(DEFAULT_TEMPERATURE_MIX)
_PERSONA_TABLE = _cumulative(_PERSONA_WEIGHTS)
_PERSONA_TYPE_TABLES = {p: _cumulative(shape[2]) for p, shape in _PERSONA_SHAPES.items()}


def _weighted(rnd: Callable[[], float], items: Sequence[Any],
              cumulative: Sequence[float]) -> Any:
    """One item by weight; zero-weight items are never chosen."""
    index = bisect_right(cumulative, rnd() * cumulative[-1])
    return items[min(index, len(items) - 1)]


# ---------------------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------------------

def _round_to(value: float, step: int) -> int:
    return round(value / step) * step


def _money(amount: int) -> str:
    return f"${amount:,}"


def _money_casual(amount: int, r: float) -> str:
    """How people type prices: '$450k', '450K', '$1.2M', '$450,000'."""
    if amount >= 1_000_000:
        millions = f"{amount / 1_000_000:.2f}".rstrip("0").rstrip(".")
        if r < 0.4:
            return f"${millions}M"
        if r < 0.7:
            return f"{millions} million"
        return _money(amount)
    thousands = round(amount / 1000)
    if r < 0.35:
        return f"${thousands}k"
    if r < 0.55:
        return f"{thousands}k"
    if r < 0.65:
        return f"${thousands}K"
    return _money(_round_to(amount, 1000))


def _email_slug(text: str) -> str:
    """ASCII lower-case letters only: 'José' -> 'jose', "O'Brien" -> 'obrien'."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed.lower() if c in string.ascii_lowercase) or "buyer"


def _typo(text: str, r: Callable[[], float]) -> str:
    """One human slip: swapped, dropped or doubled letter, or lower-case and no full stop."""
    length = len(text)
    if length < 12:
        return text
    kind = r()
    pos = 1 + int(r() * (length - 3))
    if kind < 0.3:
        a, b = text[pos], text[pos + 1]
        if a.isalpha() and b.isalpha():
            return text[:pos] + b + a + text[pos + 2:]
        return text
    if kind < 0.5:  # only inside a word, so no one-letter word vanishes
        inside = text[pos - 1].isalpha() and text[pos].isalpha() and text[pos + 1].isalpha()
        return text[:pos] + text[pos + 1:] if inside else text
    if kind < 0.65:
        return text[:pos] + text[pos] + text[pos:] if text[pos].isalpha() else text
    lowered = text[0].lower() + text[1:]
    return lowered[:-1] if lowered.endswith(".") else lowered


# ---------------------------------------------------------------------------------------
# One buyer's profile and conversation
# ---------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Profile:
    """The facts a conversation keeps coming back to, so it reads as one buyer's chat."""

    first: str
    last: str
    temperature: str
    persona: str
    city: str
    neighborhoods: list[str]
    school: str
    workplace: str
    partner: str
    lender: str
    agent: str
    from_city: str
    budget_min: int
    budget_max: int
    down_pct: float
    bedrooms: int
    bathrooms: float
    property_type: str
    must_haves: list[str]
    max_commute: int
    stage_index: int
    casual: bool
    objection_kinds: list[int]
    phone: str
    email: str


Template = tuple[tuple[str, Callable[["_Writer"], str] | None], ...]


class _Writer:
    """Renders templates for one buyer; each ``_s_<slot>`` method fills one slot."""

    __slots__ = ("objection", "p", "previous", "r", "role", "table", "used")

    def __init__(self, rng: random.Random, profile: _Profile) -> None:
        self.r = rng.random
        self.p = profile
        self.role = "user"
        self.objection = 0
        self.used: set[int] = set()
        self.previous = 0
        self.table: tuple[float, ...] = _topic_tables(profile.stage_index)[0]

    # plumbing -----------------------------------------------------------------------
    def pick(self, items: Sequence[Any]) -> Any:
        return items[int(self.r() * len(items))]

    def between(self, low: int, high: int) -> int:
        """Inclusive random integer, cheaper than rng.randint."""
        return low + int(self.r() * (high - low + 1))

    def render(self, template: Template) -> str:
        text = ""
        for literal, slot in template:
            text = text + literal + slot(self) if slot is not None else text + literal
        return text

    def phrase(self, pool: Sequence[Template]) -> str:
        """Render a template from ``pool``, avoiding ones this buyer already used.

        One re-draw on a repeat keeps the chat from echoing itself without the cost of
        tracking exhaustion; the template just rendered is never drawn twice in a row,
        so one message never says the same sentence twice.
        """
        r = self.r
        size = len(pool)
        template = pool[int(r() * size)]
        used = self.used
        if id(template) in used:
            template = pool[int(r() * size)]
        while id(template) == self.previous and size > 1:
            template = pool[int(r() * size)]
        used.add(id(template))
        self.previous = id(template)
        text = ""  # render(), inlined: this is the hottest path of the generator
        for literal, slot in template:
            text = text + literal + slot(self) if slot is not None else text + literal
        return text

    def money(self, amount: int) -> str:
        """Bot messages use full figures; buyers type them however they like."""
        if self.role == "assistant":
            return _money(amount)
        return _money_casual(amount, self.r())

    # slots: the buyer ---------------------------------------------------------------
    def _s_first(self) -> str:
        return self.p.first

    def _s_first_agent(self) -> str:
        return self.p.agent

    def _s_agent(self) -> str:
        return self.p.agent

    def _s_city(self) -> str:
        return self.p.city

    def _s_hood(self) -> str:
        return self.pick(self.p.neighborhoods)

    def _s_other_hood(self) -> str:
        return self.pick(NEIGHBORHOODS)

    def _s_school(self) -> str:
        return self.p.school

    def _s_workplace(self) -> str:
        return self.p.workplace

    def _s_partner(self) -> str:
        return self.p.partner

    def _s_partner_cap(self) -> str:
        return "Buyer's " + self.p.partner

    def _s_lender(self) -> str:
        return self.p.lender

    def _s_from_city(self) -> str:
        return self.p.from_city

    def _s_beds(self) -> str:
        return str(self.p.bedrooms)

    def _s_beds_alt(self) -> str:
        return str(max(1, self.p.bedrooms - self.between(1, 2)))

    def _s_beds_old(self) -> str:
        return str(self.p.bedrooms + self.between(1, 3))

    def _s_baths(self) -> str:
        return f"{self.p.bathrooms:g}"

    def _s_ptype(self) -> str:
        return self.pick(_PROPERTY_PHRASES[self.p.property_type])

    def _s_ptype_alt(self) -> str:
        return self.pick(_PROPERTY_ALTERNATIVES)

    def _s_must(self) -> str:
        return self.pick(self.p.must_haves)

    def _s_must2(self) -> str:
        return self.pick(MUST_HAVES_BY_PERSONA[self.p.persona])

    def _s_commute(self) -> str:
        return str(self.p.max_commute)

    def _s_down(self) -> str:
        pct = self.p.down_pct
        return f"{pct:g}%" if self.r() < 0.7 else f"{pct:g} percent"

    def _s_down_amt(self) -> str:
        amount = self.p.budget_max * self.p.down_pct / 100 * (0.8 + 0.5 * self.r())
        return self.money(_round_to(amount, 500))

    def _s_budget(self) -> str:
        return self.money(self.p.budget_max)

    def _s_budget_min(self) -> str:
        return self.money(self.p.budget_min)

    def _s_budget_mid(self) -> str:
        return self.money(_round_to((self.p.budget_min + self.p.budget_max) / 2, 5000))

    def _s_budget_stretch(self) -> str:
        return self.money(_round_to(self.p.budget_max * (1.05 + 0.12 * self.r()), 5000))

    def _s_payment(self) -> str:
        payment = self.p.budget_max * (0.0055 + 0.0015 * self.r())
        return self.money(_round_to(payment, 10))

    def _s_income(self) -> str:
        return self.money(_round_to(self.p.budget_max * (0.22 + 0.1 * self.r()), 1000))

    def _s_rent(self) -> str:
        return self.money(_round_to(self.p.budget_max * (0.004 + 0.002 * self.r()), 25))

    def _s_equity(self) -> str:
        return self.money(_round_to(self.p.budget_max * (0.15 + 0.35 * self.r()), 5000))

    # slots: fresh numbers and places ------------------------------------------------
    def _s_price(self) -> str:
        return self.money(_round_to(self.p.budget_max * (0.85 + 0.3 * self.r()), 1000))

    def _s_price_low(self) -> str:
        return self.money(_round_to(self.p.budget_max * (0.78 + 0.17 * self.r()), 1000))

    def _s_quarter_point(self) -> str:
        """What a quarter point of rate costs a month on this buyer's kind of loan."""
        return self.money(_round_to(self.p.budget_max * (0.00014 + 0.00004 * self.r()), 5))

    def _s_hoa_power(self) -> str:
        return self.money(_round_to(15_000 + 90_000 * self.r(), 1000))

    def _s_phone_tail(self) -> str:
        return self.p.phone[-4:]

    def _s_small_money(self) -> str:
        return self.money(_round_to(150 + 14_000 * self.r() ** 2, 25))

    def _s_earnest(self) -> str:
        return self.money(_round_to(self.p.budget_max * (0.01 + 0.02 * self.r()), 500))

    def _s_student_loans(self) -> str:
        return self.money(_round_to(8_000 + 110_000 * self.r(), 1000))

    def _s_rate(self) -> str:
        return f"{5.5 + 0.125 * int(self.r() * 17):.3f}".rstrip("0").rstrip(".") + "%"

    def _s_points(self) -> str:
        return self.pick(("half a", "one", "1.5", "two", "0.75", "zero"))

    def _s_cap(self) -> str:
        return f"{3.5 + 4 * self.r():.1f}"

    def _s_hoa(self) -> str:
        fee = _round_to(90 + 600 * self.r() ** 1.5, 5)
        return self.pick((f"${fee}/month", f"${fee} a month", f"${fee}/mo", f"${fee} monthly"))

    def _s_tax(self) -> str:
        return self.money(_round_to(self.p.budget_max * (0.009 + 0.014 * self.r()), 10)) + (
            " a year" if self.r() < 0.6 else "/yr")

    def _s_sqft(self) -> str:
        base = 700 + self.p.bedrooms * 420
        size = _round_to(base * (0.8 + 0.6 * self.r()), 10)
        return self.pick((f"{size:,} sq ft", f"{size:,} square feet", f"{size}sqft",
                          f"{size:,} sf"))

    def _s_lot(self) -> str:
        return self.pick(("a quarter acre", "half an acre", "an acre", "a tenth of an acre",
                          f"0.{self.between(12, 45)} acres", f"{self.between(5, 12)},000 sq ft"))

    def _s_year(self) -> str:
        return str(self.between(1952, 2023))

    def _s_year_old(self) -> str:
        return str(self.between(1965, 1995))

    def _s_street(self) -> str:
        return f"{self.pick(STREET_NAMES)} {self.pick(STREET_SUFFIXES)}"

    def _s_addr(self) -> str:
        number = self.between(12, 9899)
        unit = f" #{self.between(101, 540)}" if self.p.property_type == "condo" and \
            self.r() < 0.5 else ""
        return f"{number} {self.pick(STREET_NAMES)} {self.pick(STREET_SUFFIXES)}{unit}"

    def _s_minutes(self) -> str:
        return str(self.between(8, 75))

    def _s_long_minutes(self) -> str:
        return str(self.between(max(35, self.p.max_commute + 5), 95))

    def _s_miles(self) -> str:
        return f"{0.3 + 4 * self.r():.1f}"

    def _s_office_days(self) -> str:
        return self.pick(("two", "three", "2", "3", "four", "1-2"))

    def _s_day(self) -> str:
        return self.pick(DAYS)

    def _s_time(self) -> str:
        return self.pick(TIMES)

    def _s_month(self) -> str:
        return self.pick(MONTHS)

    def _s_date(self) -> str:
        day = self.between(1, 28)
        month = self.pick(MONTHS)
        return f"{month} {day}" if self.r() < 0.6 else f"{self.between(1, 12)}/{day}"

    def _s_months(self) -> str:
        return str(self.between(2, 9))

    def _s_years(self) -> str:
        return str(self.between(2, 9))

    def _s_nth(self) -> str:
        return self.pick(("first", "second", "next", "third", "fourth"))

    def _s_feature(self) -> str:
        return self.pick(FEATURES)

    def _s_feature2(self) -> str:
        return self.pick(FEATURES)

    def _s_amenity(self) -> str:
        return self.pick(AMENITIES)

    def _s_issue(self) -> str:
        return self.pick(INSPECTION_ISSUES)

    def _s_issue_cap(self) -> str:
        issue = self.pick(INSPECTION_ISSUES)
        return issue[0].upper() + issue[1:]

    def _s_count(self) -> str:
        return str(self.between(2, 19))

    def _s_dom(self) -> str:
        return str(self.between(4, 95))

    def _s_pct(self) -> str:
        return str(self.between(2, 12))

    def _s_credit(self) -> str:
        return str(self.between(610, 815))

    def _s_pages(self) -> str:
        return str(self.between(28, 96))

    def _s_kid_age(self) -> str:
        return self.pick(("4", "5", "6", "7", "9", "11", "13", "two", "three", "14"))

    def _s_pets(self) -> str:
        return self.pick(("two dogs", "a big dog", "a golden retriever", "two cats",
                          "a very energetic puppy", "three kids and a dog", "a husky"))

    def _s_garage_cars(self) -> str:
        return self.pick(("three", "four", "five", "3", "4"))

    # messages -------------------------------------------------------------------------
    def user_message(self, topic: str) -> str:
        """Opener, one or two topic sentences, maybe a tail; casing and typos per buyer."""
        self.role = "user"
        r = self.r
        parts = []
        if r() < 0.3:
            parts.append(self.phrase(_USER_OPENERS))
        parts.append(self.phrase(self._user_pool(topic)))
        if r() < 0.3:
            extra = topic if r() < 0.6 else _weighted(r, TOPICS, self.table)
            if extra == "objection":
                extra = topic
            parts.append(self.phrase(self._user_pool(extra)))
        if r() < 0.25:
            parts.append(self.phrase(_USER_TAILS))
        text = " ".join(parts)
        if self.p.casual and r() < 0.7:
            text = text[0].lower() + text[1:]
            if text.endswith("."):
                text = text[:-1]
        if r() < 0.08:
            text = _typo(text, r)
        return text

    def assistant_message(self, topic: str) -> str:
        """Acknowledge, answer with one or two sentences, then usually ask the next thing."""
        self.role = "assistant"
        r = self.r
        parts = []
        if r() < 0.6:
            parts.append(self.phrase(_ASSISTANT_ACKS))
        parts.append(self.phrase(self._assistant_pool(topic)))
        if r() < 0.3 and topic != "greeting":
            parts.append(self.phrase(self._assistant_pool(topic)))
        if r() < 0.65:
            parts.append(self.phrase(_ASSISTANT_QUESTIONS))
        return " ".join(parts)

    def objection_summary(self, kind: int) -> str:
        self.role = "assistant"
        return self.render(_OBJECTION_SUMMARIES[kind])

    def _user_pool(self, topic: str) -> tuple[Template, ...]:
        if topic == "persona":
            return _PERSONA_USER[self.p.persona]
        if topic == "objection":
            return _OBJECTION_USER[self.objection]
        return _USER_TOPICS[topic]

    def _assistant_pool(self, topic: str) -> tuple[Template, ...]:
        if topic == "persona":
            return _PERSONA_ASSISTANT[self.p.persona]
        if topic == "objection":
            return _OBJECTION_ASSISTANT[self.objection]
        return _ASSISTANT_TOPICS[topic]

    def conversation(self, count: int, ends_at: datetime) -> list[dict[str, Any]]:
        """``count`` messages, mostly alternating, in sessions ending at ``ends_at``."""
        r = self.r
        tables = _topic_tables(self.p.stage_index)
        kinds = self.p.objection_kinds or list(range(len(OBJECTIONS)))
        role = "assistant" if r() < 0.15 else "user"
        topic = "greeting"
        drafted: list[tuple[str, str, int]] = []
        clock = 0
        for index in range(count):
            # The buyer steers: a new topic most turns (a first message is often hello).
            if role == "user" and r() < (0.75 if index else 0.4):
                progress = index / count
                self.table = tables[0] if progress < 0.25 else (
                    tables[1] if progress < 0.7 else tables[2])
                topic = _weighted(r, TOPICS, self.table)
                if topic == "objection":
                    self.objection = self.pick(kinds)
            text = (self.user_message(topic) if role == "user"
                    else self.assistant_message(topic))
            drafted.append((role, text, clock))
            next_role = role if r() < 0.06 else ("assistant" if role == "user" else "user")
            clock += _gap_seconds(r, role, next_role)
            role = next_role
        end = int(ends_at.timestamp())
        last = drafted[-1][2] if drafted else 0
        return [{"role": role, "content": text, "timestamp": _iso_utc(end - (last - at))}
                for role, text, at in drafted]


_EPOCH_DAY_CACHE: dict[int, str] = {}


def _iso_utc(epoch_seconds: int) -> str:
    """Same text as ``datetime.fromtimestamp(s, UTC).isoformat()``, several times faster."""
    day, second = divmod(epoch_seconds, 86_400)
    date = _EPOCH_DAY_CACHE.get(day)
    if date is None:
        date = datetime.fromtimestamp(day * 86_400, UTC).date().isoformat()
        if len(_EPOCH_DAY_CACHE) < 100_000:
            _EPOCH_DAY_CACHE[day] = date
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    return f"{date}T{hour:02d}:{minute:02d}:{second:02d}+00:00"


def _gap_seconds(r: Callable[[], float], role: str, next_role: str) -> int:
    """Seconds until the next message: the bot replies fast, buyers come back later."""
    if role == "user" and next_role == "assistant":
        return 4 + int(70 * r())
    if role == "user":
        return 8 + int(170 * r())
    if next_role == "assistant":  # the bot nudging a silent buyer
        return 86_400 + int(2 * 86_400 * r())
    if r() < 0.22:  # a new session: hours to days later
        return int(7_200 * 60 ** r())
    return int(25 * 60 ** r())


_TOPIC_TABLE_CACHE: dict[int, tuple[tuple[float, ...], ...]] = {}


def _topic_tables(stage_index: int) -> tuple[tuple[float, ...], ...]:
    """Cumulative topic weights for the early, middle and late part of a chat."""
    tables = _TOPIC_TABLE_CACHE.get(stage_index)
    if tables is None:
        tables = tuple(
            _cumulative([w[phase] * (1.0 if stage_index >= w[3] else 0.1)
                         for w in TOPIC_WEIGHTS.values()])
            for phase in range(3))
        _TOPIC_TABLE_CACHE[stage_index] = tables
    return tables


_ALTERNATION = re.compile(r"\[([^\[\]]*\|[^\[\]]*)\]")


def _alternation(options: tuple[Template, ...]) -> Callable[[_Writer], str]:
    """A slot that renders one of several phrasings: '[drop|fall|come down]'."""
    def render(writer: _Writer) -> str:
        return writer.render(options[int(writer.r() * len(options))])
    return render


def _compile_slots(template: str) -> list[tuple[str, Callable[[_Writer], str] | None]]:
    """Resolve ``{name}`` fields to ``_Writer._s_name``; a typo fails at import, not later."""
    compiled: list[tuple[str, Callable[[_Writer], str] | None]] = []
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        slot = None
        if field is not None:
            slot = getattr(_Writer, f"_s_{field}", None)
            if slot is None:
                raise KeyError(f"template slot {{{field}}} has no _Writer._s_{field}: "
                               f"{template!r}")
        compiled.append((literal, slot))
    return compiled


def _compile(template: str) -> Template:
    """Split a template into (literal, slot) pairs once, at import, so rendering is cheap.

    ``{name}`` calls ``_Writer._s_name``; ``[a|b|c]`` picks one phrasing (which may hold
    ``{slots}`` itself, or be empty).
    """
    compiled: list[tuple[str, Callable[[_Writer], str] | None]] = []
    position = 0
    for match in _ALTERNATION.finditer(template):
        compiled.extend(_compile_slots(template[position:match.start()]))
        options = tuple(_compile(option) for option in match.group(1).split("|"))
        compiled.append(("", _alternation(options)))
        position = match.end()
    compiled.extend(_compile_slots(template[position:]))
    # Drop the empty pairs left where an alternation or slot opens the text.
    return tuple((lit, slot) for lit, slot in compiled if lit or slot is not None)


def _compile_all(templates: Sequence[str]) -> tuple[Template, ...]:
    return tuple(_compile(t) for t in templates)


_USER_OPENERS = _compile_all(USER_OPENERS)
_USER_TAILS = _compile_all(USER_TAILS)
_ASSISTANT_ACKS = _compile_all(ASSISTANT_ACKS)
_ASSISTANT_QUESTIONS = _compile_all(ASSISTANT_QUESTIONS)
_USER_TOPICS = {topic: _compile_all(pool) for topic, pool in USER_TOPICS.items()}
_ASSISTANT_TOPICS = {topic: _compile_all(pool) for topic, pool in ASSISTANT_TOPICS.items()}
_PERSONA_USER = {p: _compile_all(pool) for p, pool in PERSONA_USER.items()}
_PERSONA_ASSISTANT = {p: _compile_all(pool) for p, pool in PERSONA_ASSISTANT.items()}
_OBJECTION_SUMMARIES = tuple(_compile(summary) for summary, _, _ in OBJECTIONS)
_OBJECTION_USER = tuple(_compile_all(said) for _, said, _ in OBJECTIONS)
_OBJECTION_ASSISTANT = tuple(_compile_all(answers) for _, _, answers in OBJECTIONS)


# ---------------------------------------------------------------------------------------
# States
# ---------------------------------------------------------------------------------------

#: Down payment percentages as buyers plan them (repeats weight the common choices).
_DOWN_PAYMENT_PERCENTS = (3, 3.5, 5, 5, 10, 10, 15, 20, 20, 25)
_LUXURY_DOWN_PERCENTS = (20, 25, 30, 40, 50)


def _score(rng: random.Random, shape: tuple[float, float, float], bonus: float) -> float:
    """A 0-100 score around the temperature's typical value, rounded like the bot's."""
    value = rng.triangular(shape[0], shape[1], shape[2]) + bonus
    return round(min(100.0, max(0.0, value)), 1)


def _make_profile(rng: random.Random, temperature: str, objection_count: int) -> _Profile:
    """Draw the facts about one buyer (no conversation yet)."""
    r = rng.random
    persona = _weighted(r, PERSONAS, _PERSONA_TABLE)
    (budget_low, budget_high), (beds_low, beds_high), _ = _PERSONA_SHAPES[persona]
    budget_max = _round_to(budget_low + (budget_high - budget_low) * r() ** 1.3, 5000)
    budget_min = _round_to(budget_max * (0.65 + 0.25 * r()), 5000)
    bedrooms = rng.randint(beds_low, beds_high)
    bathrooms = max(1.0, bedrooms - 1 + 0.5 * rng.randint(0, 2))
    musts = MUST_HAVES_BY_PERSONA[persona]
    stage = _weighted(r, JOURNEY_STAGES, _TEMPERATURE_TABLES[temperature]["stage"])
    kinds = rng.sample(range(len(OBJECTIONS)), objection_count)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    phone, email = _contact_details(rng, first, last)
    return _Profile(
        first=first, last=last, temperature=temperature,
        persona=persona, city=rng.choice(CITIES),
        neighborhoods=rng.sample(NEIGHBORHOODS, rng.randint(1, 4)),
        school=rng.choice(SCHOOL_DISTRICTS), workplace=rng.choice(WORKPLACES),
        partner=rng.choice(PARTNERS), lender=rng.choice(LENDERS),
        agent=rng.choice(AGENT_NAMES), from_city=rng.choice(FROM_CITIES),
        budget_min=budget_min, budget_max=budget_max,
        down_pct=rng.choice(_LUXURY_DOWN_PERCENTS if persona == "luxury_buyer"
                            else _DOWN_PAYMENT_PERCENTS),
        bedrooms=bedrooms, bathrooms=bathrooms,
        property_type=_weighted(r, PROPERTY_TYPES, _PERSONA_TYPE_TABLES[persona]),
        must_haves=rng.sample(musts, rng.randint(1, 4)),
        max_commute=5 * rng.randint(3, 12), stage_index=JOURNEY_STAGES.index(stage),
        casual=r() < 0.3, objection_kinds=kinds, phone=phone, email=email,
    )


def _contact_details(rng: random.Random, first: str, last: str) -> tuple[str, str]:
    """A fictional 555 phone number and an email at a reserved example domain."""
    phone = f"+1-555-0{rng.randrange(100):02d}-{rng.randrange(10_000):04d}"
    f, la = _email_slug(first), _email_slug(last)
    local = rng.choice((f"{f}.{la}", f"{f}{la}", f"{f[0]}{la}", f"{f}_{la}",
                        f"{f}.{la}{rng.randint(1, 99)}", f"{f}{rng.randint(70, 99)}",
                        f"{la}.{f}", f"{f}.{la[0]}"))
    return phone, f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def generate_state(rng: random.Random, *, temperature: str | None = None,
                   message_count: int | None = None,
                   ends_at: datetime | None = None) -> dict[str, Any]:
    """One realistic buyer state with every schema field filled (no ``qa_seed`` flag).

    ``temperature`` defaults to a draw from the default mix and ``message_count`` to a
    draw from :data:`DEFAULT_HISTORY_RANGE`. ``ends_at`` is when the last message was
    sent; it defaults to :data:`REFERENCE_TIME` so the state depends on ``rng`` alone.
    """
    if temperature is None:
        temperature = _weighted(rng.random, TEMPERATURES, _DEFAULT_MIX_TABLE)
    elif temperature not in TEMPERATURES:
        raise InvalidState(f"temperature={temperature!r} must be one of {TEMPERATURES}")
    if message_count is None:
        message_count = _history_length(rng, *DEFAULT_HISTORY_RANGE)
    elif not _is_int(message_count) or message_count < 0:
        raise InvalidState(f"message_count={message_count!r} must be a whole number >= 0")
    ends_at = _aware_utc(ends_at, "ends_at") if ends_at is not None else REFERENCE_TIME

    tables = _TEMPERATURE_TABLES[temperature]
    shape = _TEMPERATURE_PROFILES[temperature]
    objection_count = min(_weighted(rng.random, range(5), tables["objections"]),
                          message_count // 4)
    profile = _make_profile(rng, temperature, objection_count)
    writer = _Writer(rng, profile)
    history = writer.conversation(message_count, ends_at)

    financing = _weighted(rng.random, FINANCING_STATUSES, tables["financing"])
    step = _weighted(rng.random, QUALIFICATION_STEPS, tables["step"])
    qualified_chance = (_QUALIFIED_CHANCE_BY_STEP[step]
                        + _QUALIFIED_SHIFT_BY_TEMPERATURE[temperature])
    financing_bonus = {"cash": 8.0, "pre-approved": 5.0, "unknown": -5.0}.get(financing, 0.0)
    user_times = [m["timestamp"] for m in history if m["role"] == "user"] or [
        m["timestamp"] for m in history] or [ends_at.astimezone(UTC).isoformat()]
    objections = [
        {"objection": writer.objection_summary(kind),
         "raised_at": rng.choice(user_times),
         "resolved": rng.random() < shape["resolved"]}
        for kind in profile.objection_kinds
    ]
    objections.sort(key=lambda item: item["raised_at"])
    return {
        "conversation_history": history,
        "financial_readiness_score": _score(rng, shape["financial"], financing_bonus),
        "buying_motivation_score": _score(rng, shape["motivation"], 0.0),
        "budget_range": {"min": profile.budget_min, "max": profile.budget_max,
                         "currency": "USD"},
        "property_preferences": {
            "bedrooms": profile.bedrooms,
            "bathrooms": profile.bathrooms,
            "property_type": profile.property_type,
            "neighborhoods": list(profile.neighborhoods),
            "must_haves": list(profile.must_haves),
            "max_commute_minutes": profile.max_commute,
        },
        "urgency_level": _weighted(rng.random, URGENCY_LEVELS, tables["urgency"]),
        "financing_status": financing,
        "current_qualification_step": step,
        "current_journey_stage": JOURNEY_STAGES[profile.stage_index],
        "buyer_persona": profile.persona,
        "buyer_temperature": temperature,
        "is_qualified": rng.random() < qualified_chance,
        "objection_history": objections,
        "buyer_name": f"{profile.first} {profile.last}",
        "buyer_phone": profile.phone,
        "buyer_email": profile.email,
    }


def _history_length(rng: random.Random, low: int, high: int) -> int:
    """Triangular around the middle of the range: most chats medium, a few short or long."""
    if low == high:
        return low
    value = rng.triangular(low - 0.5, high + 0.5, (low + high) / 2)
    return min(high, max(low, round(value)))


def _aware_utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidState(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------

def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_range(value: object, name: str, low: int, high: int, unit: str) -> None:
    """A (lo, hi) pair of whole numbers with low <= lo <= hi <= high."""
    if not isinstance(value, tuple | list) or len(value) != 2 or not all(
            _is_int(v) for v in value):
        raise InvalidState(f"{name}={value!r} must be a pair of whole numbers (lo, hi)")
    lo, hi = value
    if lo > hi:
        raise InvalidState(f"{name}={value!r}: lo must be <= hi")
    if lo < low or hi > high:
        raise InvalidState(f"{name}={value!r}: both ends must be within {low}..{high} {unit}")


@dataclass(frozen=True)
class SeedOptions:
    """What to generate: how many buyers, from which seed, and in what shape."""

    count: int
    seed: int = 0
    temperature_mix: tuple[float, float, float] = DEFAULT_TEMPERATURE_MIX  # hot, warm, cold
    history_range: tuple[int, int] = DEFAULT_HISTORY_RANGE  # messages per buyer, inclusive
    ttl_days_range: tuple[int, int] | None = None  # None: the store's default TTL
    id_prefix: str = "qa-"

    def validate(self) -> None:
        """Raise :class:`InvalidState` naming the first option that cannot be used."""
        if not _is_int(self.count) or not 1 <= self.count <= MAX_COUNT:
            raise InvalidState(f"count={self.count!r} must be a whole number in "
                               f"1..{MAX_COUNT:,}")
        if not _is_int(self.seed):
            raise InvalidState(f"seed={self.seed!r} must be a whole number")
        mix = self.temperature_mix
        if not isinstance(mix, tuple | list) or len(mix) != 3:
            raise InvalidState(f"temperature_mix={mix!r} must be three weights (hot, warm, "
                               "cold)")
        for weight in mix:
            if isinstance(weight, bool) or not isinstance(weight, int | float) \
                    or not math.isfinite(weight) or weight < 0:
                raise InvalidState(f"temperature_mix={mix!r}: each weight must be a finite "
                                   "number >= 0")
        if sum(mix) <= 0:
            raise InvalidState(f"temperature_mix={mix!r}: the weights must not all be zero")
        _check_range(self.history_range, "history_range", 1, MAX_HISTORY_MESSAGES,
                     "messages")
        if self.ttl_days_range is not None:
            _check_range(self.ttl_days_range, "ttl_days_range", 1, MAX_TTL_DAYS, "days")
        if not isinstance(self.id_prefix, str):
            raise InvalidState(f"id_prefix={self.id_prefix!r} must be a string")
        try:
            validate_contact_id(self.contact_id(self.count - 1))
        except InvalidContactId as exc:
            raise InvalidState(f"id_prefix={self.id_prefix[:40]!r} makes invalid contact "
                               f"ids: {exc}") from None

    def contact_id(self, index: int) -> str:
        """The id of the index-th buyer of this run, e.g. 'qa-0-000042'."""
        return f"{self.id_prefix}{self.seed}-{index:06d}"


@dataclass(frozen=True)
class SeedBuyer:
    """One generated buyer, ready for ``save_many``."""

    contact_id: str
    state: dict[str, Any]  # every STATE_DEFAULTS field plus "qa_seed": True
    #: The TTL the buyer got at its last interaction; None: the store's default TTL.
    ttl_seconds: int | None
    interaction_time: datetime  # tz-aware UTC; the time the state is saved "as of"
    #: When the buyers were generated ("now"); None: as if saved at the interaction.
    generated_at: datetime | None = None

    def remaining_ttl_seconds(self, default_ttl_seconds: int | None = None) -> int | None:
        """What is left at ``generated_at`` of the TTL the buyer got at its last
        interaction, as if the bot had saved it then: 30 days given 20 days ago leave 10.

        Never less than :data:`MIN_REMAINING_TTL_SECONDS`, so seeds do not vanish at
        once. ``default_ttl_seconds`` stands for the store's TTL when ``ttl_seconds`` is
        None; with neither, None (the store's full TTL, counted from the write).
        """
        full = self.ttl_seconds if self.ttl_seconds is not None else default_ttl_seconds
        if full is None:
            return None
        age = (self.generated_at - self.interaction_time).total_seconds() \
            if self.generated_at is not None else 0
        return min(full, max(MIN_REMAINING_TTL_SECONDS, full - max(0, int(age))))

    def as_save_item(self, default_ttl_seconds: int | None = None
                     ) -> tuple[str, dict[str, Any], int | None, datetime]:
        """The (contact_id, state, ttl_override, now) tuple ``save_many`` takes; the TTL
        is the one left since the last interaction (:meth:`remaining_ttl_seconds`)."""
        return (self.contact_id, self.state, self.remaining_ttl_seconds(default_ttl_seconds),
                self.interaction_time)


def generate_buyers(options: SeedOptions, now: datetime | None = None) -> Iterator[SeedBuyer]:
    """Lazily yield ``options.count`` buyers; the same (options, now) gives the same buyers.

    Options are validated here, before the first buyer is asked for. Interaction times
    fall in the last :data:`INTERACTION_SPREAD_DAYS` days before ``now`` (default: the
    current time), skewed towards recent, and each conversation ends at its buyer's
    interaction time; with ``ttl_days_range`` it falls within the buyer's TTL. Written
    with :meth:`SeedBuyer.as_save_item`, a buyer keeps the TTL left since that
    interaction, as a buyer the bot saved then would.
    """
    options.validate()
    anchor = datetime.now(UTC) if now is None else _aware_utc(now, "now")
    return _buyers(options, anchor)


def _buyers(options: SeedOptions, now: datetime) -> Iterator[SeedBuyer]:
    rng = random.Random(options.seed)
    mix = _cumulative(options.temperature_mix)
    spread = INTERACTION_SPREAD_DAYS * 86_400
    ttl_range = options.ttl_days_range
    for index in range(options.count):
        temperature = _weighted(rng.random, TEMPERATURES, mix)
        message_count = _history_length(rng, *options.history_range)
        recency = rng.random() ** 1.3
        ttl = None if ttl_range is None else rng.randint(*ttl_range) * 86_400
        # A buyer the bot saved longer ago than its TTL would be gone: with a known TTL,
        # the last interaction falls within it (at least MIN_REMAINING_TTL_SECONDS left).
        window = spread if ttl is None else min(spread, ttl - MIN_REMAINING_TTL_SECONDS)
        interaction_time = now - timedelta(seconds=int(window * recency))
        state = generate_state(rng, temperature=temperature, message_count=message_count,
                               ends_at=interaction_time)
        state[QA_SEED_FIELD] = True
        yield SeedBuyer(contact_id=options.contact_id(index), state=state, ttl_seconds=ttl,
                        interaction_time=interaction_time, generated_at=now)
