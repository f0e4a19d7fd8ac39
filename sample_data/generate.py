#!/usr/bin/env python3
"""Generate dataaudit's bundled demo dataset: train.jsonl, production.jsonl and planted.jsonl.

Every text is synthetic and written for this project (Apache-2.0); nothing is copied from a
third-party dataset. Stdlib only and seeded, so ``python sample_data/generate.py [OUT_DIR]``
reproduces the bundled files byte for byte; the tests regenerate them and compare.

How it is laid out:
  * vocabularies and one ``make_<family>(rng)`` per task family, each returning a clean ``Example``;
  * ``build_train`` draws the clean records, then the planting section corrupts or copies chosen
    rows and records each change, which becomes ``planted.jsonl``: the ground truth that dataaudit's
    checks are scored against;
  * ``build_production`` draws prompts only: known families with fresh values, edge cases, and
    families that train never covers.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

SEED = 20250611
PRODUCTION_SEED = SEED + 1

# Intents and code questions are drawn from enumerated combinations (see their families), so
# their sizes are capped by how many combinations exist.
TRAIN_FAMILY_SIZES = {
    "intent_classification": 720,
    "math_word_problems": 760,
    "json_extraction": 600,
    "summarisation": 480,
    "python_code": 360,
}

# Production: known families with fresh values, edge cases inside known families, and
# families train never saw (the coverage gap dataaudit should report).
PRODUCTION_KNOWN_SIZES = {
    "intent_classification": 259,
    "math_word_problems": 120,
    "json_extraction": 90,
    "summarisation": 70,
    "python_code": 60,
}
PRODUCTION_UNSEEN_SIZES = {"translation": 55, "account_cancellation": 50, "sql_queries": 45}

PLANTED_KINDS = (
    "duplicate_original",
    "exact_duplicate",
    "near_duplicate",
    "conflicting_label",
    "label_vocabulary",
    "conflicting_answer",
    "format_deviation",
    "empty_response",
    "truncated_response",
    "refusal",
    "placeholder",
    "pii",
    "hostile",
)


@dataclass
class Example:
    """One clean record; ``meta`` keeps what the planting step needs to rewrite it."""

    family: str
    user: str
    assistant: str
    system: str | None = None
    meta: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Shared vocabularies and small text helpers
# ---------------------------------------------------------------------------------------------

FIRST_NAMES = (
    "Maria", "James", "Aisha", "Chen", "Olga", "Tom", "Priya", "Lucas", "Fatima", "Kenji",
    "Sofia", "Daniel", "Amara", "Noah", "Elena", "Omar", "Hannah", "Mateo", "Yuki", "Grace",
    "Ivan", "Leila", "Samuel", "Nina", "Diego", "Zara", "Peter", "Ines", "Kwame", "Lena",
    "Ravi", "Chloe", "Marek", "Ana", "Felix", "Mei", "Jonas", "Sara", "Tariq", "Emma",
)
SURNAMES = (
    "Lopez", "Okafor", "Schmidt", "Nguyen", "Kowalski", "Haddad", "Tanaka", "Silva", "Murphy",
    "Novak", "Rossi", "Andersen", "Petrova", "Garcia", "Mensah", "Cohen", "Ali", "Fischer",
    "Dubois", "Costa", "Larsen", "Ibrahim", "Park", "Moreau", "Bianchi", "Walsh", "Yilmaz",
    "Sato", "Kumar", "Jansen",
)
CITIES = (
    "Lisbon", "Leeds", "Lyon", "Porto", "Dublin", "Krakow", "Valencia", "Munich", "Rotterdam",
    "Turin", "Bristol", "Gdansk", "Seville", "Ghent", "Bergen", "Brno", "Cork", "Graz", "Malmo",
    "Nantes",
)
COUNTRIES = (
    "Spain", "Portugal", "Italy", "Germany", "Poland", "Greece", "Japan", "Mexico", "Canada",
    "Turkey", "Morocco", "Thailand", "Norway", "Ireland", "Brazil",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)
MERCHANTS = (
    "FreshMart", "Bolt Coffee", "Northwind Books", "CityFuel", "Parkside Pharmacy", "Urban Thread",
    "QuickCab", "Harbor Cinema", "TechNest", "GreenLeaf Grocers", "Metro Rail", "Pixel Games",
    "Sunny Side Bakery", "Atlas Hardware", "BlueWave Electronics",
)
CURRENCIES = ("EUR", "GBP", "USD", "PLN", "CHF", "SEK", "JPY")


def full_name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"


def normalise(text: str) -> str:
    """Lower-case, punctuation to spaces, whitespace collapsed: what an 'exact' duplicate ignores."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def add_typo(text: str, rng: random.Random) -> str:
    """Swap two inner letters of one lower-case word (names and numbers are left alone)."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha() and w.islower()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    word = words[i]
    j = rng.randrange(1, len(word) - 2)
    if word[j] == word[j + 1]:
        return text
    words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    return " ".join(words)


def casual(text: str, rng: random.Random, typo_rate: float = 0.07) -> str:
    """Realistic noise for clean prompts: an occasional typo, lower-casing or dropped full stop."""
    if rng.random() < typo_rate:
        text = add_typo(text, rng)
    if rng.random() < 0.08:
        text = text.lower()
    if rng.random() < 0.1 and text.endswith("."):
        text = text[:-1]
    return text


def money(amount: float, currency: str) -> str:
    symbol = {"EUR": "€", "GBP": "£", "USD": "$"}[currency]
    return f"{symbol}{amount:,.2f}" if amount != int(amount) else f"{symbol}{int(amount):,}"


# ---------------------------------------------------------------------------------------------
# Family 1: intent classification for a banking support assistant
# ---------------------------------------------------------------------------------------------

INTENT_SYSTEM_PROMPTS = (
    "Classify the customer message into one of the support intents. Reply with the intent label only.",
    "You are a triage assistant for a mobile bank. Classify the customer message and answer with "
    "the matching intent label, nothing else.",
)


@dataclass(frozen=True)
class Intent:
    """A message is a situation, optionally followed by a request; each pair is used once in train."""

    share: float                   # relative frequency in train
    situations: tuple[str, ...]
    requests: tuple[str, ...]


# contactless_not_working is rare in train but ordinary in production: a thin sub-cluster.
INTENTS: dict[str, Intent] = {
    "card_arrival": Intent(1.0, (
        "I ordered a new card {days} days ago and it still hasn't arrived.",
        "My replacement card was supposed to be delivered last {weekday} but nothing came.",
        "It's been {weeks} weeks since you said my {card_kind} card was posted.",
        "I still haven't received the card I requested when I opened my account.",
        "The app says my card was dispatched, but my mailbox in {city} is empty.",
        "I moved to a new flat in {city} recently and my new card never turned up.",
        "My card expired last month and the new one hasn't come in the post.",
    ), (
        "When will it get here?", "Can you check where it is?", "Is there a tracking number for the delivery?",
        "How long does card delivery normally take?", "Should I order another one?",
        "I need it before my trip to {country} - can you speed it up?", "Has it actually been sent?",
    )),
    "lost_or_stolen_card": Intent(1.0, (
        "I think my card was stolen at {place} earlier today.",
        "I lost my wallet with my {card_kind} card in it.",
        "I can't find my card anywhere and I've already searched the whole flat.",
        "Someone grabbed my bag on the {transport} in {city} and my card was inside.",
        "My card went missing while I was travelling in {country}.",
        "I dropped my card somewhere between home and {place}.",
        "I'm pretty sure I was pickpocketed on the way to work.",
    ), (
        "Please block it right away.", "How do I report it as lost?", "Can you freeze the card so nobody can use it?",
        "What should I do now?", "Please cancel it and send me a new one.", "Can I stop all payments on it?",
        "How do I report a stolen card?",
    )),
    "declined_card_payment": Intent(1.0, (
        "My card got declined at {merchant} even though I have money in my account.",
        "My payment of {amount} {currency} was refused this morning.",
        "I tried to pay for {item} online and the card was rejected {n} times.",
        "The terminal at {merchant} just said DECLINED.",
        "My card keeps getting declined at the petrol station, and my balance is fine.",
        "Every shop in {country} declines my card.",
        "My {card_brand} card was refused when I tried to buy {item}.",
    ), (
        "Why was it declined?", "What's going on with my card?", "Is there a block on my account?",
        "How do I make payments work again?", "Is something wrong with my card?",
        "Can you check why the payment failed?", "Please fix it, I need to pay today.",
    )),
    "change_pin": Intent(1.0, (
        "I keep forgetting the PIN for my card.",
        "My current PIN is too easy to guess.",
        "I typed my PIN wrong {n} times at an ATM.",
        "I'd like to use a different PIN on my {card_kind} card.",
        "Someone might have seen me type my PIN at {place}.",
        "I never liked the PIN that came with my card.",
        "I got a new card and want it to have the same PIN as my old one.",
    ), (
        "How can I change my PIN?", "Can I set a new PIN in the app or do I have to go to an ATM?",
        "Is it possible to choose my own PIN?", "Where in the settings do I reset it?", "How do I update the PIN code?",
        "Can you help me pick a new PIN?", "What are the steps to change the PIN number?",
    )),
    "exchange_rate": Intent(1.0, (
        "I'm paying in {currency} a lot at the moment.",
        "I'm going to {country} next month and will spend there with my card.",
        "I converted {amount} {currency} to {currency2} yesterday.",
        "The rate I got for {currency} was worse than the one I saw online.",
        "I want to move {amount} {currency} into my {currency2} balance.",
        "I noticed the {currency} to {currency2} rate in the app changed over the weekend.",
        "I'm comparing you with other banks for spending abroad.",
    ), (
        "What exchange rate do you use?", "Is the rate in the app the real market rate?",
        "How is the conversion rate calculated?", "Do your exchange rates change at the weekend?",
        "Which rate will I get?", "How much will that be after conversion?", "Where can I see today's rate?",
    )),
    "transfer_not_received": Intent(1.0, (
        "I sent {amount} {currency} to {name} {days} days ago and they still haven't received it.",
        "My transfer to my landlord hasn't arrived.",
        "{name} says the money I sent on {weekday} never reached their account.",
        "The bank transfer shows as completed but the person I paid has nothing.",
        "My transfer to {country} has been pending for {days} days.",
        "I paid {name} back last {weekday} but the money hasn't shown up on their side.",
        "The payment I sent to my friend still isn't there.",
    ), (
        "What's happening?", "Did it go through?", "Can you trace the transfer?", "How long should a transfer take?",
        "Where is the money now?", "Can you send me proof of payment?", "Please check whether it was received.",
    )),
    "cash_withdrawal_not_recognised": Intent(1.0, (
        "There's an ATM withdrawal of {amount} {currency} on my statement that I didn't make.",
        "I see a cash withdrawal in {city} and I've never even been there.",
        "Someone took out cash with my card - there are {n} withdrawals that weren't me.",
        "There's a cash machine withdrawal from last {weekday} that I don't recognise.",
        "My statement shows {amount} {currency} taken out at an ATM while I was at home.",
        "I have an unknown ATM transaction in {country}.",
        "My card is still in my wallet but cash was withdrawn with it.",
    ), (
        "Please investigate.", "What should I do?", "Can I get the money back?", "How do I dispute it?",
        "Who made this withdrawal?", "Can you block further withdrawals?", "Is my account safe?",
    )),
    "top_up_failed": Intent(1.0, (
        "My top-up didn't go through when I tried adding {amount} {currency}.",
        "I tried to top up with my {card_brand} card and it failed.",
        "I tried to top up my account by bank transfer and it was rejected.",
        "Adding money to my balance keeps failing with an error.",
        "The app says 'top-up unsuccessful'.",
        "I tried to load {amount} {currency} onto my account from my other bank and it bounced.",
        "My card top-up was cancelled halfway through.",
    ), (
        "Why did it fail?", "What am I doing wrong?", "How can I add money another way?",
        "Was I charged for the failed top-up?", "Can you tell me why it was rejected?", "When can I try again?",
        "Is there a limit on top-ups?",
    )),
    "refund_not_showing": Intent(1.0, (
        "{merchant} says they refunded me {days} days ago but I can't see it.",
        "The seller confirmed my refund on {weekday}.",
        "I returned {item} and the refund still isn't in my account.",
        "{merchant} sent my refund last week.",
        "My refund of {amount} {currency} is missing from my balance.",
        "The shop cancelled my order for {item} but the money hasn't come back.",
        "I was promised a refund for a cancelled booking weeks ago.",
    ), (
        "Where is my refund?", "How long does a refund take to appear?", "Can you check if it has arrived?",
        "Why isn't it showing yet?", "What can I do to get it?", "Should I contact the merchant again?",
        "When will I see the money?",
    )),
    "verify_identity": Intent(1.0, (
        "The app keeps asking me for documents to verify my identity.",
        "My {doc} photo was rejected during the identity check.",
        "The selfie step of the verification keeps failing.",
        "I only have a {doc} from {country}.",
        "I was asked to verify who I am again even though I did it last year.",
        "My verification has been pending for {days} days.",
        "I'm trying to open an account but I'm stuck at the ID check.",
    ), (
        "How do I verify my identity?", "Which ID documents do you accept?", "Why do I need to do this?",
        "How long does verification usually take?", "Can I use that to prove my identity?",
        "What should I upload instead?", "Can someone check my documents manually?",
    )),
    "card_swallowed": Intent(1.0, (
        "The ATM at {place} kept my card and didn't give it back.",
        "A cash machine swallowed my card.",
        "My card got stuck in the ATM in {city} and the machine kept it.",
        "The ATM ate my card halfway through my withdrawal.",
        "I left my card in the machine at {place} and it was retained.",
        "The machine retained my {card_kind} card after I entered my PIN.",
        "The cash point in {city} took my card and showed an error.",
    ), (
        "What do I do now?", "How do I get it back?", "Can the bank that owns the ATM return it?",
        "Do I need a replacement card?", "Is my card still safe to use?", "Should I cancel it?",
        "Who do I contact about the machine?",
    )),
    "wrong_cash_amount": Intent(1.0, (
        "I asked the ATM for {requested} {currency} but it only gave me {received}.",
        "The cash machine gave me less money than I asked for.",
        "I withdrew {requested} {currency} and got {received}.",
        "The ATM at {place} didn't dispense all of my cash.",
        "I only got part of my money from the ATM but my balance went down by {requested}.",
        "The machine in {city} gave me the wrong amount of cash.",
        "I counted the notes after my withdrawal and some were missing.",
    ), (
        "I was charged the full amount.", "Please fix this.", "Can you refund the difference?",
        "How do I claim the missing cash?", "What should I do?", "Can you check the ATM records?",
        "When will I get the rest back?",
    )),
    "transfer_fee_charged": Intent(1.0, (
        "I was charged a fee of {fee} {currency} for my transfer.",
        "I thought transfers were free, but there's an extra charge on my payment to {name}.",
        "There's a {fee} {currency} fee on my bank transfer.",
        "I'm about to send money to {country}.",
        "I got charged for a transfer to my own account.",
        "There's a transfer fee on my statement from last {weekday} that I didn't expect.",
        "I send money to my family in {country} every month.",
    ), (
        "Why was I charged?", "How much do you charge for transfers?", "What is this fee for?",
        "Can you refund the fee?", "Are international transfers free?", "How can I avoid transfer fees?",
        "Where can I see the fee before sending?",
    )),
    "contactless_not_working": Intent(0.3, (
        "Contactless isn't working on my card at {merchant}.",
        "Tap to pay doesn't work, so I have to insert my card every time.",
        "The reader just beeps when I try to pay contactless.",
        "My card doesn't work with contactless terminals in {country}.",
        "Contactless payments keep failing but chip and PIN works.",
    ), (
        "Why can't I pay contactless?", "How do I turn contactless on?", "Is there a contactless limit?",
        "Is my card's chip broken?", "Can you fix it?",
    )),
}
INTENT_OPENERS = ("", "", "", "", "Hi, ", "Hello! ", "Hey, ", "Good morning. ", "Quick question - ")
INTENT_CLOSERS = ("", "", "", "", " Thanks.", " Thank you!", " Cheers", " This is urgent.")
INTENT_CONTEXTS = (
    "I'm abroad at the moment.", "This is the second time this month.", "I use the app on Android.",
    "My account is in {currency}.", "I've been a customer for {n} years.", "I'm on the premium plan.",
)
INTENT_PLACES = ("the train station", "the supermarket", "a concert", "the airport", "the gym",
                 "my office", "a petrol station", "the shopping centre")
INTENT_ITEMS = ("concert tickets", "a new phone", "groceries", "a hotel room", "a flight",
                "running shoes", "a laptop bag", "a birthday present")


def intent_slots(rng: random.Random) -> dict[str, object]:
    currency, currency2 = rng.sample(CURRENCIES, 2)
    requested = rng.randrange(40, 510, 10)
    return {
        "days": rng.randint(3, 20), "weeks": rng.randint(2, 5), "n": rng.randint(2, 6),
        "amount": rng.choice((rng.randint(5, 900), rng.randrange(20, 1000, 10))),
        "fee": f"{rng.randint(1, 9)}.{rng.choice(('00', '50', '99', '25'))}",
        "currency": currency, "currency2": currency2,
        "requested": requested, "received": rng.randrange(10, requested, 10),
        "merchant": rng.choice(MERCHANTS), "city": rng.choice(CITIES), "country": rng.choice(COUNTRIES),
        "name": rng.choice(FIRST_NAMES), "weekday": rng.choice(WEEKDAYS),
        "item": rng.choice(INTENT_ITEMS), "place": rng.choice(INTENT_PLACES),
        "card_kind": rng.choice(("debit", "virtual", "metal", "new", "replacement")),
        "doc": rng.choice(("passport", "driving licence", "ID card", "residence permit")),
        "transport": rng.choice(("bus", "tram", "metro", "train")),
        "card_brand": rng.choice(("Visa", "Mastercard", "Maestro")),
    }


def intent_core(rng: random.Random, intent: str, situation: int, request: int | None) -> str:
    """The content of a message: one situation and, unless ``request`` is None, one request."""
    slots = intent_slots(rng)
    parts = [INTENTS[intent].situations[situation].format(**slots)]
    if request is not None:
        parts.append(INTENTS[intent].requests[request].format(**slots))
        if rng.random() < 0.15:
            parts.reverse()
    if rng.random() < 0.2:
        parts.insert(rng.choice((0, len(parts))), rng.choice(INTENT_CONTEXTS).format(**slots))
    return " ".join(parts)


def wrap_intent(core: str, rng: random.Random) -> str:
    """A greeting and sign-off around the content, with everyday noise."""
    opener = rng.choice(INTENT_OPENERS)
    if opener.endswith(", ") and not core.startswith(("I ", "I'")):
        core = core[0].lower() + core[1:]
    return casual(opener + core + rng.choice(INTENT_CLOSERS), rng)


def intent_combinations(intent: str) -> list[tuple[int, int | None]]:
    spec = INTENTS[intent]
    return [(s, r) for s in range(len(spec.situations)) for r in [None, *range(len(spec.requests))]]


def make_intent_classification(rng: random.Random, intent: str | None = None,
                               combination: tuple[int, int | None] | None = None) -> Example:
    """``combination`` pins the (situation, request) pair; train uses each pair once."""
    if intent is None:
        intent = rng.choice(list(INTENTS))
    situation, request = combination or rng.choice(intent_combinations(intent))
    core = intent_core(rng, intent, situation, request)
    system = INTENT_SYSTEM_PROMPTS[0] if rng.random() < 0.7 else INTENT_SYSTEM_PROMPTS[1]
    return Example("intent_classification", wrap_intent(core, rng), intent, system,
                   meta={"intent": intent, "core": core})


def draw_intent_classification(rng: random.Random, size: int) -> list[Example]:
    """Train intents: shares as in ``INTENTS``, every (situation, request) pair at most once."""
    total_share = sum(spec.share for spec in INTENTS.values())
    examples = []
    for intent, spec in INTENTS.items():
        combinations = intent_combinations(intent)
        count = round(size * spec.share / total_share)
        assert count <= len(combinations), f"{intent}: {count} messages but {len(combinations)} combinations"
        examples += [make_intent_classification(rng, intent, pair) for pair in rng.sample(combinations, count)]
    return examples


# ---------------------------------------------------------------------------------------------
# Family 2: extraction to JSON (payments, appointments, orders)
# ---------------------------------------------------------------------------------------------

EXTRACTION_SYSTEM = "You are a data extraction engine. Answer with a single JSON object and nothing else."
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                "ten", "eleven", "twelve")
PRODUCTS = (  # (singular, plural)
    ("USB-C cable", "USB-C cables"), ("desk lamp", "desk lamps"), ("coffee grinder", "coffee grinders"),
    ("yoga mat", "yoga mats"), ("water bottle", "water bottles"), ("office chair", "office chairs"),
    ("wireless mouse", "wireless mice"), ("notebook", "notebooks"), ("phone case", "phone cases"),
    ("backpack", "backpacks"), ("teapot", "teapots"), ("bike light", "bike lights"),
)
APPOINTMENT_KINDS = ("dentist", "physiotherapy", "eye test", "haircut", "job interview",
                     "tax advice", "vet", "car service")
LOCATIONS = ("Riverside Clinic", "Elm Street Office", "Room 4B", "Northgate Library",
             "Harbour View Centre", "Maple Court Surgery", "Station Road Garage", "City Hall Annex")
PAYMENT_ITEMS = ("the March rent", "a gym membership", "two concert tickets", "car repairs",
                 "a language course", "a new laptop", "the electricity bill", "a weekend trip")


def random_date(rng: random.Random) -> tuple[str, str]:
    """(how the text says it, ISO form)."""
    year, month, day = rng.randint(2023, 2025), rng.randint(1, 12), rng.randint(1, 28)
    name = MONTHS[month - 1]
    suffix = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    spoken = rng.choice((
        f"{day} {name} {year}", f"{name} {day}, {year}", f"{name} {day}{suffix}, {year}",
        f"{year}-{month:02d}-{day:02d}", f"the {day}{suffix} of {name} {year}",
    ))
    return spoken, f"{year}-{month:02d}-{day:02d}"


def random_time(rng: random.Random) -> tuple[str, str]:
    hour, minute = rng.randint(8, 18), rng.choice((0, 15, 30, 45))
    twelve = hour - 12 if hour > 12 else hour
    half = "am" if hour < 12 else "pm"
    spoken = rng.choice((f"{hour:02d}:{minute:02d}", f"{twelve}:{minute:02d} {half}", f"{twelve}.{minute:02d}{half}"))
    return spoken, f"{hour:02d}:{minute:02d}"


def extract_payment(rng: random.Random) -> tuple[str, str, dict]:
    name, (date_text, date_iso) = full_name(rng), random_date(rng)
    currency = rng.choice(("EUR", "GBP", "USD"))
    amount = rng.choice((rng.randint(10, 2000), round(rng.uniform(5, 900), 2)))
    shown = money(amount, currency) if rng.random() < 0.6 else f"{amount:.2f} {currency}"
    merchant, item = rng.choice(MERCHANTS), rng.choice(PAYMENT_ITEMS)
    text = rng.choice((
        f"On {date_text}, {name} paid {shown} to {merchant} for {item}.",
        f"{name} transferred {shown} to {merchant} on {date_text}.",
        f"Payment received from {name}: {shown}, dated {date_text}, for {item}.",
        f"{merchant} confirmed a payment of {shown} from {name} on {date_text}.",
        f"{name} was charged {shown} by {merchant} on {date_text} for {item}.",
    ))
    instruction = rng.choice((
        "Extract the payer's name, the date (YYYY-MM-DD), the amount and the currency from the text below. Return JSON.",
        "Return a JSON object with the keys name, date, amount and currency for this payment.",
        "Pull out who paid, when, how much and in which currency. Respond in JSON.",
        "Parse this payment note into JSON (name, date as YYYY-MM-DD, amount, currency).",
    ))
    value = int(amount) if amount == int(amount) else amount
    return instruction, text, {"name": name, "date": date_iso, "amount": value, "currency": currency}


def extract_appointment(rng: random.Random) -> tuple[str, str, dict]:
    name, (date_text, date_iso), (time_text, time_iso) = full_name(rng), random_date(rng), random_time(rng)
    kind, location = rng.choice(APPOINTMENT_KINDS), rng.choice(LOCATIONS)
    text = rng.choice((
        f"{name} has a {kind} appointment at {location} on {date_text} at {time_text}.",
        f"Reminder: {kind} with {name}, {date_text}, {time_text}, {location}.",
        f"Can you confirm that {name} is booked in at {location} for {time_text} on {date_text}? It's the {kind} slot.",
        f"{name}'s {kind} appointment was moved to {date_text} at {time_text}; it will take place at {location}.",
    ))
    instruction = rng.choice((
        "Extract the person, date (YYYY-MM-DD), time (24-hour HH:MM) and location from this message as JSON.",
        "Turn the appointment below into a JSON object with keys person, date, time and location.",
        "Read the note and give me the appointment details as JSON: person, date, time, location.",
    ))
    return instruction, text, {"person": name, "date": date_iso, "time": time_iso, "location": location}


def extract_order(rng: random.Random) -> tuple[str, str, dict]:
    name, (date_text, date_iso) = full_name(rng), random_date(rng)
    singular, plural = rng.choice(PRODUCTS)
    quantity = rng.randint(1, 12) if rng.random() < 0.7 else rng.randint(13, 60)
    spoken = NUMBER_WORDS[quantity] if quantity < len(NUMBER_WORDS) and rng.random() < 0.4 else str(quantity)
    noun = singular if quantity == 1 else plural
    text = rng.choice((
        f"{name} ordered {spoken} {noun} on {date_text}.",
        f"Order placed {date_text}: {quantity} x {singular}, customer {name}.",
        f"We received an order from {name} for {spoken} {noun} on {date_text}.",
        f"{name} bought {spoken} {noun} from our web shop on {date_text}.",
    ))
    instruction = rng.choice((
        "Extract customer, product, quantity and order_date (YYYY-MM-DD) from this order as JSON.",
        "Convert the order below to JSON with the keys customer, product, quantity, order_date.",
        "Give me the order details in JSON format (customer, product in singular form, quantity, order_date).",
    ))
    return instruction, text, {"customer": name, "product": singular, "quantity": quantity, "order_date": date_iso}


def make_json_extraction(rng: random.Random) -> Example:
    kind = rng.choice(("payment", "appointment", "order"))
    instruction, text, record = {"payment": extract_payment, "appointment": extract_appointment,
                                 "order": extract_order}[kind](rng)
    layout = rng.random()
    if layout < 0.5:
        user = f"{instruction}\n\n{text}"
    elif layout < 0.8:
        user = f"{instruction}\n\nText: {text}"
    else:
        user = f'{instruction}\n\n"""{text}"""'
    system = EXTRACTION_SYSTEM if rng.random() < 0.35 else None
    return Example("json_extraction", user, json.dumps(record, ensure_ascii=False), system,
                   meta={"record": record, "kind": kind})


# ---------------------------------------------------------------------------------------------
# Family 3: math word problems, answers end in "#### <number>"
# ---------------------------------------------------------------------------------------------

# A topic returns (question, working lines, final line as a function of the answer, answer), so the
# planting step can re-render the same working with a wrong final answer.
MathProblem = tuple[str, list[str], Callable[[int], str], int]

SHOP_ITEMS = (("notebook", "notebooks"), ("pencil", "pencils"), ("apple", "apples"), ("cinema ticket", "cinema tickets"),
              ("sandwich", "sandwiches"), ("plant pot", "plant pots"), ("comic book", "comic books"), ("candle", "candles"))
EXTRAS = ("pen", "bag", "drink", "map", "bookmark", "phone charger")
VEHICLES = ("train", "cyclist", "bus", "ferry", "delivery van", "runner")
SALE_ITEMS = ("jacket", "bicycle", "coffee machine", "pair of boots", "sofa", "tennis racket", "printer")
COUNTABLES = (("cookie", "cookies"), ("marble", "marbles"), ("sticker", "stickers"), ("egg", "eggs"),
              ("crayon", "crayons"), ("seed", "seeds"))
PLOTS = ("garden", "playground", "parking lot", "vegetable patch", "classroom floor", "swimming pool")
MACHINES = (("machine", "bottles", "fills"), ("printer", "pages", "prints"), ("bakery oven", "loaves", "bakes"),
            ("robot", "parcels", "sorts"))
GOALS = ("bike", "games console", "guitar", "school trip", "tent", "pair of headphones")


def math_shopping(rng: random.Random) -> MathProblem:
    name, (item, items), extra = rng.choice(FIRST_NAMES), rng.choice(SHOP_ITEMS), rng.choice(EXTRAS)
    n, price, extra_price = rng.randint(2, 12), rng.randint(2, 15), rng.randint(1, 20)
    subtotal = n * price
    question = rng.choice((
        f"{name} buys {n} {items} for ${price} each and a {extra} for ${extra_price}. How much does {name} spend altogether?",
        f"At the market, {items} cost ${price} each. {name} buys {n} of them and also a {extra} that costs ${extra_price}. What is the total cost?",
        f"How much does {name} pay for {n} {items} at ${price} per {item} plus one {extra} at ${extra_price}?",
    ))
    steps = [f"The {items} cost {n} * ${price} = ${subtotal}."]
    return question, steps, lambda a: f"Adding the {extra}: ${subtotal} + ${extra_price} = ${a}.", subtotal + extra_price


def math_change(rng: random.Random) -> MathProblem:
    name, (_item, items) = rng.choice(FIRST_NAMES), rng.choice(SHOP_ITEMS)
    n, price = rng.randint(2, 9), rng.randint(2, 12)
    cost = n * price
    budget = cost + rng.randint(1, 60)
    question = rng.choice((
        f"{name} has ${budget}. {name} buys {n} {items} at ${price} each. How much money does {name} have left?",
        f"With ${budget} in a wallet, {name} pays for {n} {items} costing ${price} apiece. How many dollars remain?",
        f"{name} takes ${budget} to the shop and spends it on {n} {items} at ${price} each. How much change is left?",
    ))
    steps = [f"{n} {items} cost {n} * ${price} = ${cost}."]
    return question, steps, lambda a: f"${budget} - ${cost} = ${a} left.", budget - cost


def math_distance(rng: random.Random) -> MathProblem:
    vehicle = rng.choice(VEHICLES)
    speed, hours = rng.randrange(10, 130, 5), rng.randint(2, 6)
    if rng.random() < 0.5:
        question = rng.choice((
            f"A {vehicle} travels at {speed} km per hour for {hours} hours. How many kilometres does it cover?",
            f"How far does a {vehicle} go in {hours} hours at a steady {speed} km/h?",
        ))
        return question, [], lambda a: f"Distance = {speed} * {hours} = {a} km.", speed * hours
    speed2, hours2 = rng.randrange(10, 130, 5), rng.randint(1, 4)
    first, second = speed * hours, speed2 * hours2
    question = rng.choice((
        f"A {vehicle} travels at {speed} km/h for {hours} hours and then at {speed2} km/h for {hours2} more hours. What is the total distance?",
        f"For the first {hours} hours a {vehicle} averages {speed} km per hour; for the next {hours2} hours it averages {speed2} km per hour. How many kilometres is that in total?",
    ))
    steps = [f"First part: {speed} * {hours} = {first} km.", f"Second part: {speed2} * {hours2} = {second} km."]
    return question, steps, lambda a: f"Total: {first} + {second} = {a} km.", first + second


def math_discount(rng: random.Random) -> MathProblem:
    item, price, percent = rng.choice(SALE_ITEMS), rng.randrange(40, 1000, 20), rng.choice((10, 15, 20, 25, 30, 40, 50))
    saving = price * percent // 100
    question = rng.choice((
        f"A {item} normally costs ${price}. It is on sale for {percent}% off. What is the sale price?",
        f"The shop takes {percent}% off a {item} priced at ${price}. How much does it cost now?",
        f"What do you pay for a ${price} {item} after a {percent}% discount?",
    ))
    steps = [f"The discount is {percent}% of ${price} = ${saving}."]
    return question, steps, lambda a: f"Sale price: ${price} - ${saving} = ${a}.", price - saving


def math_sharing(rng: random.Random) -> MathProblem:
    name, (_thing, things) = rng.choice(FIRST_NAMES), rng.choice(COUNTABLES)
    size, bags = rng.randint(3, 12), rng.randint(3, 15)
    if rng.random() < 0.5:
        total = size * bags
        question = rng.choice((
            f"{name} has {total} {things} and puts them into bags of {size}. How many bags can {name} fill?",
            f"{total} {things} are shared equally so that each child gets {size}. How many children get {things}?",
        ))
        return question, [], lambda a: f"{total} / {size} = {a}.", bags
    left = rng.randint(1, size - 1)
    total = size * bags + left
    question = rng.choice((
        f"{name} packs {total} {things} into boxes of {size}. How many {things} are left over?",
        f"If {total} {things} are split into groups of {size}, how many {things} do not fit into a full group?",
    ))
    steps = [f"{bags} full groups use {bags} * {size} = {bags * size} {things}."]
    return question, steps, lambda a: f"Left over: {total} - {bags * size} = {a}.", left


def math_rectangle(rng: random.Random) -> MathProblem:
    plot, length, width = rng.choice(PLOTS), rng.randint(4, 40), rng.randint(3, 25)
    shape = rng.choice(("area", "perimeter", "fence"))
    if shape == "area":
        question = f"A rectangular {plot} is {length} m long and {width} m wide. What is its area in square metres?"
        return question, [], lambda a: f"Area = {length} * {width} = {a} square metres.", length * width
    perimeter = 2 * (length + width)
    if shape == "perimeter":
        question = f"What is the perimeter, in metres, of a rectangular {plot} measuring {length} m by {width} m?"
        return question, [], lambda a: f"Perimeter = 2 * ({length} + {width}) = {a} m.", perimeter
    cost = rng.randint(3, 20)
    question = f"A rectangular {plot} is {length} m by {width} m. Fencing costs ${cost} per metre. How much does it cost to fence the whole {plot}?"
    steps = [f"Perimeter = 2 * ({length} + {width}) = {perimeter} m."]
    return question, steps, lambda a: f"Cost = {perimeter} * ${cost} = ${a}.", perimeter * cost


def math_ages(rng: random.Random) -> MathProblem:
    older, younger = rng.sample(FIRST_NAMES, 2)
    gap, years, future = rng.randint(2, 30), rng.randint(2, 10), rng.randint(12, 50)
    now = future - years
    question = rng.choice((
        f"{older} is {gap} years older than {younger}. In {years} years, {younger} will be {future}. How old is {older} now?",
        f"In {years} years {younger} will turn {future}. {older} is {gap} years older than {younger}. What is {older}'s age today?",
    ))
    steps = [f"{younger} is {future} - {years} = {now} now."]
    return question, steps, lambda a: f"{older} is {now} + {gap} = {a}.", now + gap


def math_rate(rng: random.Random) -> MathProblem:
    machine, outputs, verb = rng.choice(MACHINES)
    per_minute, hours = rng.randint(3, 40), rng.randint(2, 8)
    minutes = hours * 60
    question = rng.choice((
        f"A {machine} {verb} {per_minute} {outputs} per minute. How many {outputs} does it handle in {hours} hours?",
        f"If a {machine} {verb} {per_minute} {outputs} every minute, how many {outputs} is that after {hours} hours?",
    ))
    steps = [f"{hours} hours = {hours} * 60 = {minutes} minutes."]
    return question, steps, lambda a: f"{minutes} * {per_minute} = {a} {outputs}.", minutes * per_minute


def math_savings(rng: random.Random) -> MathProblem:
    name, goal = rng.choice(FIRST_NAMES), rng.choice(GOALS)
    weekly, weeks = rng.randint(5, 40), rng.randint(3, 20)
    if rng.random() < 0.5:
        target = weekly * weeks
        question = f"{name} saves ${weekly} every week for a {goal} that costs ${target}. How many weeks will it take?"
        return question, [], lambda a: f"${target} / ${weekly} = {a} weeks.", weeks
    start = rng.randint(5, 100)
    target = start + weekly * weeks
    question = rng.choice((
        f"A {goal} costs ${target}. {name} already has ${start} and saves ${weekly} a week. How many weeks until {name} can buy it?",
        f"{name} has ${start} and puts away ${weekly} each week. How many weeks before {name} has the ${target} needed for a {goal}?",
    ))
    steps = [f"Still needed: ${target} - ${start} = ${target - start}."]
    return question, steps, lambda a: f"${target - start} / ${weekly} = {a} weeks.", weeks


MATH_TOPICS: dict[str, Callable[[random.Random], MathProblem]] = {
    "shopping": math_shopping, "change": math_change, "distance": math_distance,
    "discount": math_discount, "sharing": math_sharing, "rectangle": math_rectangle,
    "ages": math_ages, "rate": math_rate, "savings": math_savings,
}


def math_response(steps: list[str], final_step: Callable[[int], str], answer: int) -> str:
    return "\n".join([*steps, final_step(answer), f"#### {answer}"])


def make_math_word_problems(rng: random.Random) -> Example:
    topic = rng.choice(list(MATH_TOPICS))
    question, steps, final_step, answer = MATH_TOPICS[topic](rng)
    if rng.random() < 0.15:
        question = rng.choice(("Solve: ", "Word problem: ", "Math question. ")) + question
    return Example("math_word_problems", casual(question, rng, typo_rate=0.05), math_response(steps, final_step, answer),
                   meta={"topic": topic, "steps": steps, "final_step": final_step, "answer": answer})


# ---------------------------------------------------------------------------------------------
# Family 4: summarisation (a short news-style paragraph -> one sentence)
# ---------------------------------------------------------------------------------------------

COMPANIES = ("Norvale Foods", "Brightwater Energy", "Kestrel Logistics", "Lumen Health", "Orbis Software",
             "Tidewell Retail", "Ashgrove Motors", "Cobalt Telecom", "Fernhill Pharma", "Quarry Lane Media")
GADGET_MAKERS = ("Arclight", "Nimbus Labs", "Veridian", "Solace Audio", "Pinecone Devices", "Halden Tech")


def summary_company(rng: random.Random) -> tuple[list[str], str]:
    company, city, boss = rng.choice(COMPANIES), rng.choice(CITIES), full_name(rng)
    quarter = rng.choice(("first-quarter", "second-quarter", "third-quarter", "fourth-quarter", "annual"))
    revenue, pct, up = rng.randint(40, 900), rng.randint(2, 35), rng.random() < 0.55
    reason = rng.choice(("strong demand in Asia", "higher prices", "a popular new product line",
                         "growth in online sales", "cost cuts made last year") if up else
                        ("weak consumer spending", "supply-chain delays", "a costly product recall",
                         "falling prices in its main market", "the loss of a major customer"))
    n = rng.randint(3, 40)
    outlook = rng.choice(("raised its forecast for the rest of the year", f"plans to hire {n * 10} more staff",
                          f"will open {n} new sites") if up else
                         ("cut its full-year forecast", f"plans to close {n} stores", "announced a review of its costs"))
    moved = "rose" if up else "fell"
    sentences = [
        rng.choice((
            f"{company}, the {city}-based group, reported {quarter} revenue of €{revenue} million on {rng.choice(WEEKDAYS)}, {'up' if up else 'down'} {pct}% from a year earlier.",
            f"{quarter.capitalize()} revenue at {company} {moved} {pct}% to €{revenue} million, the {city} company said on {rng.choice(WEEKDAYS)}.",
        )),
        rng.choice((f"Chief executive {boss} said the result reflected {reason}.",
                    f"The company put the {'increase' if up else 'decline'} down to {reason}.")),
        rng.choice((f"It also said it {outlook}.", f"Looking ahead, the firm {outlook}.")),
    ]
    if rng.random() < 0.6:
        sentences.append(f"Shares {'climbed' if up else 'dropped'} {rng.randint(1, 12)}% in early trading.")
    summary = rng.choice((
        f"{company}'s {quarter} revenue {moved} {pct}% to €{revenue} million on {reason}, and the company {outlook}.",
        f"{company} reported a {pct}% {'rise' if up else 'fall'} in {quarter} revenue, citing {reason}, and {outlook}.",
    ))
    return sentences, summary


def summary_weather(rng: random.Random) -> tuple[list[str], str]:
    city, other = rng.sample(CITIES, 2)
    event, measure, unit = rng.choice((("Heavy rain", "mm of rain", "mm"), ("A snowstorm", "cm of snow", "cm of snow"),
                                       ("Torrential rain", "mm of rain", "mm")))
    amount, hours, homes = rng.randint(20, 150), rng.randint(4, 36), rng.randrange(200, 20000, 100)
    impact_long, impact_short = rng.choice((
        (f"About {homes:,} homes lost power and several roads were closed", f"cut power to about {homes:,} homes"),
        (f"Train services between {city} and {other} were suspended for most of the day", f"suspended trains to {other}"),
        (f"Schools across the region stayed closed and {homes:,} households were left without electricity", "closed schools across the region"),
    ))
    outlook = rng.choice(("more bad weather is expected on " + rng.choice(WEEKDAYS), "conditions should improve by the weekend",
                          "temperatures will drop sharply overnight"))
    sentences = [
        f"{event} hit {city} on {rng.choice(WEEKDAYS)}, with {amount} {measure} falling in {hours} hours.",
        f"{impact_long}.",
        rng.choice(("Officials urged residents to avoid unnecessary travel.", "Emergency services said they had received hundreds of calls.")),
        f"Forecasters say {outlook}.",
    ]
    summary = f"{event} brought {amount} {unit} to {city} and {impact_short}; forecasters say {outlook}."
    return sentences, summary


def summary_sports(rng: random.Random) -> tuple[list[str], str]:
    city1, city2 = rng.sample(CITIES, 2)
    team1, team2 = f"{city1} {rng.choice(('Rovers', 'United', 'Falcons'))}", f"{city2} {rng.choice(('Lions', 'Harriers', 'Comets'))}"
    basketball = rng.random() < 0.4
    if basketball:
        s1, league, unit = rng.randint(80, 120), "national basketball league", "points"
        s2, scored = s1 - rng.randint(1, 20), rng.randint(18, 41)
    else:
        s1, league = rng.randint(1, 5), rng.choice(("first division", "regional league"))
        s2, scored = rng.randint(0, s1 - 1), rng.randint(1, s1)
        unit = "goals" if scored > 1 else "goal"
    player, coach = full_name(rng), full_name(rng)
    place = rng.choice(("second", "third", "fourth", "top spot"))
    sentences = [
        f"{team1} beat {team2} {s1}-{s2} on {rng.choice(WEEKDAYS)} night in front of {rng.randrange(2000, 40000, 500):,} fans.",
        f"{player} was the star of the match, scoring {scored} {unit}.",
        f"The win lifts {team1} to {place} in the {league}, while {team2} stay {rng.choice(('mid-table', 'near the bottom', 'in sixth place'))}.",
    ]
    if rng.random() < 0.6:
        sentences.append(f"Coach {coach} said afterwards that the team {rng.choice(('had deserved the result', 'still had a lot to improve', 'was proud of the defence'))}.")
    summary = f"{team1} beat {team2} {s1}-{s2}, with {player} scoring {scored} {unit}, to move up to {place} in the {league}."
    return sentences, summary


SCIENCE_FINDINGS = (  # (finding, subjects, duration unit)
    ("people who walk for at least {x} minutes a day sleep better", "adults", "year"),
    ("reading aloud to young children is linked to a larger vocabulary at school age", "families", "year"),
    ("urban gardens can lower local summer temperatures by up to {x} degrees", "city blocks", "month"),
    ("a common soil bacterium can break down certain kinds of plastic", "soil samples", "month"),
    ("bees can learn to recognise simple patterns after brief training", "bee colonies", "month"),
    ("short afternoon naps may improve memory in older adults", "volunteers over 65", "year"),
)


SCIENCE_VERDICTS = ("were stronger than the team had expected", "should be confirmed in larger trials",
                    "surprised even the sceptics on the team")
SCIENCE_NEXT_STEPS = ("repeat the work in other countries", "test the idea in a larger trial", "share its data with other groups")


def summary_science(rng: random.Random) -> tuple[list[str], str]:
    finding, subjects, unit = rng.choice(SCIENCE_FINDINGS)
    finding = finding.format(x=rng.randint(2, 40))
    city, author, count, span = rng.choice(CITIES), full_name(rng), rng.randrange(40, 5000, 10), rng.randint(2, 12)
    sentences = [
        f"Researchers at the University of {city} have found that {finding}.",
        f"The study followed {count:,} {subjects} over {span} {unit}s.",
        f"Lead author Dr {author} said the results {rng.choice(SCIENCE_VERDICTS)}.",
    ]
    if rng.random() < 0.6:
        sentences.append(f"The team now plans to {rng.choice(SCIENCE_NEXT_STEPS)}.")
    summary = f"A {span}-{unit} University of {city} study of {count:,} {subjects} found that {finding}."
    return sentences, summary


def summary_council(rng: random.Random) -> tuple[list[str], str]:
    city = rng.choice(CITIES)
    street = rng.choice(("Mill Road", "Harbour Street", "King's Avenue", "Station Lane", "Market Square"))
    decision = rng.choice((f"build a protected cycle lane along {street}", f"close {street} to cars at weekends",
                           "open a new public library in the old post office", "raise parking fees in the city centre",
                           f"plant {rng.randrange(200, 3000, 50):,} trees along the river", "extend night bus services to the suburbs"))
    votes_for = rng.randint(16, 40)
    votes_against = rng.randint(3, votes_for - 1)
    cost, year = f"€{rng.randint(2, 90)} million", rng.randint(2026, 2030)
    season = rng.choice(("spring", "summer", "autumn", "the end of"))
    sentences = [
        f"{city} city council voted {votes_for} to {votes_against} on {rng.choice(WEEKDAYS)} to {decision}.",
        f"The project is expected to cost {cost} and should be finished by {season} {year}.",
        f"Supporters say it will {rng.choice(('reduce traffic in the centre', 'make the area safer', 'bring more visitors to local shops'))}.",
        f"Critics argue that {rng.choice(('the money would be better spent on housing', 'local businesses were not consulted', 'the timetable is unrealistic'))}.",
    ]
    summary = f"{city} council voted {votes_for}-{votes_against} to {decision} at a cost of {cost}, with work due to finish by {season} {year}."
    return sentences, summary


LAUNCH_PRAISE = ("the design", "the screen", "the sound quality", "the build")
LAUNCH_DOUBTS = ("the price", "the battery claims", "the lack of accessories")


def summary_launch(rng: random.Random) -> tuple[list[str], str]:
    maker, city, month = rng.choice(GADGET_MAKERS), rng.choice(CITIES), rng.choice(MONTHS)
    product = rng.choice(("smartwatch", "pair of wireless earbuds", "e-reader", "electric scooter", "robot vacuum", "tablet"))
    feature = rng.choice((f"has a battery that lasts {rng.randint(2, 21)} days", f"weighs just {rng.randrange(30, 900, 5)} grams",
                          f"charges fully in {rng.randint(15, 90)} minutes", "works without an internet connection"))
    price, countries = rng.randrange(49, 1200, 10), rng.randint(3, 30)
    sentences = [
        f"{maker} unveiled its latest {product} at an event in {city} on {rng.choice(WEEKDAYS)}.",
        f"The new model {feature} and will sell for €{price}.",
        f"It goes on sale in {month}, initially in {countries} countries.",
    ]
    if rng.random() < 0.6:
        praised, questioned = rng.choice(LAUNCH_PRAISE), rng.choice(LAUNCH_DOUBTS)
        sentences.append(f"Early reviewers praised {praised} but questioned {questioned}.")
    summary = f"{maker} launched a €{price} {product} that {feature}, going on sale in {month} in {countries} countries."
    return sentences, summary


SUMMARY_TOPICS: dict[str, Callable[[random.Random], tuple[list[str], str]]] = {
    "company_results": summary_company, "weather": summary_weather, "sports": summary_sports,
    "science": summary_science, "council": summary_council, "product_launch": summary_launch,
}


def make_summarisation(rng: random.Random) -> Example:
    topic = rng.choice(list(SUMMARY_TOPICS))
    sentences, summary = SUMMARY_TOPICS[topic](rng)
    paragraph = " ".join(sentences)
    user = rng.choice((
        f"Summarise the following paragraph in one sentence:\n\n{paragraph}",
        f"Summarize this in a single sentence.\n\n{paragraph}",
        f"TL;DR in one sentence please:\n{paragraph}",
        f"{paragraph}\n\nGive me a one-sentence summary of the text above.",
        f"Write a one-line summary of this news item.\n\n{paragraph}",
        f"Can you condense this into one sentence?\n\n{paragraph}",
    ))
    return Example("summarisation", user, summary, meta={"topic": topic, "sentences": sentences})


# ---------------------------------------------------------------------------------------------
# Family 5: Python code questions, answered with a fenced ```python block and a short explanation
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CodeTask:
    asks: tuple[str, ...]               # "... a Python function that <ask>", "{x}" = the subject phrase
    subjects: tuple[tuple[str, str], ...]  # (what the input is, parameter name)
    names: tuple[str, ...]              # function names to choose from
    signature: str                      # with type hints, "{p}" = first parameter; hints dropped on request
    body: str                           # function body without indentation
    explanation: str
    example: tuple[str, str]            # (call arguments, result) for "For example, f(args) returns result."
    topic: str


CODE_TASKS = (
    CodeTask(("reverses {x}", "returns {x} backwards", "takes {x} and gives back its characters in reverse order"),
             (("a string", "text"), ("a username", "username"), ("a DNA sequence", "sequence"), ("a line of text", "line"), ("a word", "word")),
             ("reverse_string", "reverse_text", "backwards"), "({p}: str) -> str",
             "return {p}[::-1]",
             "Slicing with a step of -1 walks the string from the last character to the first.",
             ('"hello"', '"olleh"'), "strings"),
    CodeTask(("counts the vowels in {x}", "returns how many vowels {x} contains", "tells me the number of vowels in {x}"),
             (("a string", "text"), ("a sentence", "sentence"), ("a product name", "product_name"), ("a tweet", "tweet"), ("a person's name", "name")),
             ("count_vowels", "vowel_count", "num_vowels"), "({p}: str) -> int",
             'return sum(1 for ch in {p}.lower() if ch in "aeiou")',
             "Lower-casing first means upper-case vowels are counted too.",
             ('"Programming"', "3"), "strings"),
    CodeTask(("checks whether {x} is a palindrome", "tells me if {x} reads the same backwards, ignoring spaces and punctuation",
              "returns True when {x} is the same forwards and backwards"),
             (("a string", "text"), ("a sentence", "sentence"), ("a licence plate", "plate"), ("a word", "word"), ("a phrase", "phrase")),
             ("is_palindrome", "palindrome", "reads_same_backwards"), "({p}: str) -> bool",
             'cleaned = "".join(ch.lower() for ch in {p} if ch.isalnum())\nreturn cleaned == cleaned[::-1]',
             "It keeps only letters and digits, lower-cases them, and compares the result with its reverse.",
             ('"Never odd or even"', "True"), "strings"),
    CodeTask(("capitalises the first letter of every word in {x}", "converts {x} to title case without using str.title",
              "makes every word in {x} start with a capital letter"),
             (("a sentence", "sentence"), ("a book title", "title"), ("a person's full name", "full_name"), ("a street address", "address"), ("a headline", "headline")),
             ("capitalise_words", "title_case", "capitalize_each_word"), "({p}: str) -> str",
             'return " ".join(word.capitalize() for word in {p}.split())',
             "Splitting on whitespace gives the words; each is capitalised and they are joined back with single spaces.",
             ('"good morning world"', '"Good Morning World"'), "strings"),
    CodeTask(("counts how often each word appears in {x}", "returns a dictionary of word frequencies for {x}", "builds a word count for {x}"),
             (("a text", "text"), ("an email body", "body"), ("a product review", "review"), ("a song lyric", "lyrics"), ("a log message", "message")),
             ("word_counts", "word_frequencies", "count_words"), "({p}: str) -> dict",
             "counts = {}\nfor word in {p}.lower().split():\n    counts[word] = counts.get(word, 0) + 1\nreturn counts",
             "dict.get with a default of 0 avoids a KeyError the first time a word is seen.",
             ('"the cat and the hat"', "{'the': 2, 'cat': 1, 'and': 1, 'hat': 1}"), "strings"),
    CodeTask(("checks whether two {x} are anagrams of each other", "tells me if two {x} use exactly the same letters",
              "returns True when two {x} are anagrams"),
             (("strings", "first"), ("words", "word"), ("names", "name"), ("phrases", "phrase")),
             ("is_anagram", "are_anagrams", "same_letters"), "({p}: str, other: str) -> bool",
             'return sorted({p}.replace(" ", "").lower()) == sorted(other.replace(" ", "").lower())',
             "Sorting the letters of both inputs, ignoring spaces and case, gives equal lists exactly when they are anagrams.",
             ('"listen", "silent"', "True"), "strings"),
    CodeTask(("converts {x} from snake_case to camelCase", "turns {x} written in snake_case into camelCase", "rewrites {x} from snake_case in camelCase"),
             (("a variable name", "name"), ("a column name", "column"), ("an identifier", "identifier"), ("a JSON key", "key")),
             ("snake_to_camel", "to_camel_case", "camelize"), "({p}: str) -> str",
             'head, *rest = {p}.split("_")\nreturn head + "".join(part.capitalize() for part in rest)',
             "The first part stays as it is and every following part gets a capital first letter.",
             ('"user_first_name"', '"userFirstName"'), "strings"),
    CodeTask(("checks that {x} has at least 8 characters, a digit and an upper-case letter",
              "validates {x} against a simple rule: 8+ characters, one digit, one capital",
              "returns True if {x} is strong enough (8 characters, a number and a capital letter)"),
             (("a password", "password"), ("a new password", "new_password"), ("a passphrase", "passphrase"), ("a user's password", "candidate")),
             ("is_strong_password", "password_ok", "check_password"), "({p}: str) -> bool",
             "return len({p}) >= 8 and any(ch.isdigit() for ch in {p}) and any(ch.isupper() for ch in {p})",
             "Each any() call scans the characters once; all three conditions must hold.",
             ('"Sunny2024"', "True"), "strings"),
    CodeTask(("computes the factorial of {x}", "returns the factorial of {x} using a loop", "calculates the factorial of {x} without recursion"),
             (("a number", "n"), ("a non-negative integer", "number"), ("a given integer", "k"), ("n", "n")),
             ("factorial", "fact", "compute_factorial"), "({p}: int) -> int",
             "result = 1\nfor i in range(2, {p} + 1):\n    result *= i\nreturn result",
             "The loop multiplies the running product by every integer from 2 up to the input; 0 and 1 give 1.",
             ("5", "120"), "numbers"),
    CodeTask(("returns the Fibonacci number at {x}", "computes the Fibonacci number at {x} iteratively", "gives me the element at {x} of the Fibonacci sequence"),
             (("position n", "n"), ("a given index", "index"), ("position k", "k"), ("a given position", "position")),
             ("fibonacci", "fib", "nth_fibonacci"), "({p}: int) -> int",
             "a, b = 0, 1\nfor _ in range({p}):\n    a, b = b, a + b\nreturn a",
             "Keeping only the last two values makes it run in linear time and constant memory.",
             ("10", "55"), "numbers"),
    CodeTask(("checks if {x} is prime", "tells whether {x} is a prime number", "returns True if {x} has no divisors other than 1 and itself"),
             (("a number", "n"), ("an integer", "value"), ("a year", "year"), ("a ticket number", "ticket"), ("a positive integer", "number")),
             ("is_prime", "prime", "check_prime"), "({p}: int) -> bool",
             "if {p} < 2:\n    return False\nfor divisor in range(2, int({p} ** 0.5) + 1):\n    if {p} % divisor == 0:\n        return False\nreturn True",
             "Trying divisors up to the square root is enough, because any larger factor pairs with a smaller one.",
             ("29", "True"), "numbers"),
    CodeTask(("adds up the digits of {x}", "returns the sum of the digits in {x}", "computes the digit sum of {x}"),
             (("an integer", "n"), ("a number", "number"), ("an account number", "account_number"), ("a year", "year"), ("a barcode number", "barcode")),
             ("digit_sum", "sum_of_digits", "add_digits"), "({p}: int) -> int",
             "return sum(int(digit) for digit in str(abs({p})))",
             "Converting to a string gives the digits one by one; abs() handles negative numbers.",
             ("4096", "19"), "numbers"),
    CodeTask(("converts {x} from Celsius to Fahrenheit", "turns {x} given in degrees Celsius into Fahrenheit", "takes {x} in Celsius and returns it in Fahrenheit"),
             (("a temperature", "celsius"), ("an oven temperature", "oven_temp"), ("a body temperature", "body_temp"),
              ("a forecast temperature", "forecast"), ("a fridge temperature", "fridge_temp")),
             ("celsius_to_fahrenheit", "c_to_f", "to_fahrenheit"), "({p}: float) -> float",
             "return {p} * 9 / 5 + 32",
             "It applies the standard formula F = C * 9/5 + 32.",
             ("100", "212.0"), "numbers"),
    CodeTask(("finds the greatest common divisor of {x}", "computes the GCD of {x} with Euclid's algorithm", "returns the largest number that divides both of {x}"),
             (("two integers", "a"), ("two numbers", "a"), ("two positive whole numbers", "a")),
             ("gcd", "greatest_common_divisor", "euclid_gcd"), "({p}: int, b: int) -> int",
             "while b:\n    {p}, b = b, {p} % b\nreturn abs({p})",
             "Euclid's algorithm replaces the pair with (b, a mod b) until the remainder is zero.",
             ("48, 18", "6"), "numbers"),
    CodeTask(("converts {x} given in seconds to an HH:MM:SS string", "formats {x} in seconds as hours, minutes and seconds",
              "turns {x} measured in seconds into HH:MM:SS"),
             (("a duration", "seconds"), ("a video length", "video_seconds"), ("a race time", "race_seconds"),
              ("a phone call duration", "call_seconds"), ("a timer value", "timer")),
             ("format_duration", "to_hms", "seconds_to_clock"), "({p}: int) -> str",
             'hours, rest = divmod({p}, 3600)\nminutes, secs = divmod(rest, 60)\nreturn f"{hours:02d}:{minutes:02d}:{secs:02d}"',
             "divmod splits off whole hours, then whole minutes; :02d pads each part to two digits.",
             ("3725", '"01:02:05"'), "numbers"),
    CodeTask(("flattens {x} into a single list", "turns {x} into one flat list", "merges {x} into a single list, one level deep"),
             (("a list of lists", "nested"), ("a list of shopping lists", "shopping_lists"), ("a list of table rows", "rows"),
              ("a list of batches", "batches"), ("a list of weekly schedules", "schedules")),
             ("flatten", "flatten_list", "concat_lists"), "({p}: list) -> list",
             "return [item for sub in {p} for item in sub]",
             "The nested comprehension visits each inner list in order and collects its items.",
             ("[[1, 2], [3], [4, 5]]", "[1, 2, 3, 4, 5]"), "lists"),
    CodeTask(("removes duplicate {x} from a list but keeps the original order", "deduplicates a list of {x} while preserving order",
              "returns the unique {x} from a list in the order they first appear"),
             (("items", "items"), ("usernames", "usernames"), ("order IDs", "order_ids"), ("email addresses", "emails"), ("tags", "tags")),
             ("dedupe", "unique_in_order", "remove_duplicates"), "({p}: list) -> list",
             "return list(dict.fromkeys({p}))",
             "Dictionaries keep insertion order, so dict.fromkeys drops repeats without reordering.",
             ("[3, 1, 3, 2, 1]", "[3, 1, 2]"), "lists"),
    CodeTask(("returns the second largest value in a list of {x}", "finds the runner-up in a list of {x}", "gives the second highest of a list of {x}"),
             (("numbers", "numbers"), ("exam scores", "scores"), ("prices", "prices"), ("race times", "times"), ("salaries", "salaries")),
             ("second_largest", "runner_up", "second_max"), "({p}: list) -> int | None",
             "distinct = sorted(set({p}))\nreturn distinct[-2] if len(distinct) > 1 else None",
             "Removing duplicates first means [5, 5, 3] correctly gives 3; lists with one distinct value give None.",
             ("[4, 9, 9, 2]", "4"), "lists"),
    CodeTask(("splits a list of {x} into chunks of a given size", "breaks a list of {x} into batches of n elements", "groups a list of {x} into fixed-size pieces"),
             (("items", "items"), ("records", "records"), ("file names", "file_names"), ("user IDs", "user_ids"), ("sensor readings", "readings")),
             ("chunk", "chunked", "split_into_chunks"), "({p}: list, size: int) -> list",
             "return [{p}[i:i + size] for i in range(0, len({p}), size)]",
             "Stepping the start index by size and slicing gives each chunk; the last one may be shorter.",
             ("[1, 2, 3, 4, 5], 2", "[[1, 2], [3, 4], [5]]"), "lists"),
    CodeTask(("calculates the average of a list of {x}", "returns the mean of a list of {x}, or 0.0 for an empty list", "computes the arithmetic mean of {x} given as a list"),
             (("numbers", "numbers"), ("exam scores", "scores"), ("daily temperatures", "temperatures"), ("response times", "response_times"), ("prices", "prices")),
             ("average", "mean", "list_average"), "({p}: list) -> float",
             "return sum({p}) / len({p}) if {p} else 0.0",
             "The conditional avoids dividing by zero on an empty list.",
             ("[2, 4, 9]", "5.0"), "lists"),
    CodeTask(("returns the most common element in a list of {x}", "finds the value that appears most often in a list of {x}", "gives the mode of a list of {x}"),
             (("words", "words"), ("votes", "votes"), ("colours", "colours"), ("error codes", "error_codes"), ("product IDs", "product_ids")),
             ("most_common", "mode", "most_frequent"), "({p}: list) -> object",
             "counts = {}\nfor value in {p}:\n    counts[value] = counts.get(value, 0) + 1\nreturn max(counts, key=counts.get) if counts else None",
             "Counting in one pass and taking the key with the highest count avoids calling list.count repeatedly.",
             ('["red", "blue", "red"]', '"red"'), "lists"),
    CodeTask(("keeps only the even numbers in a list of {x}", "filters a list of {x} down to the even values", "returns the even entries from a list of {x}"),
             (("integers", "numbers"), ("page numbers", "pages"), ("ticket numbers", "tickets"), ("measurements", "measurements"), ("IDs", "ids")),
             ("only_even", "filter_even", "evens"), "({p}: list) -> list",
             "return [value for value in {p} if value % 2 == 0]",
             "The comprehension keeps a value when dividing it by 2 leaves no remainder.",
             ("[1, 2, 3, 4]", "[2, 4]"), "lists"),
    CodeTask(("returns the {x} that appear in both of two lists", "finds the common {x} between two lists", "computes the intersection of two lists of {x}, keeping the first list's order"),
             (("items", "items"), ("tags", "tags"), ("email addresses", "emails"), ("product IDs", "product_ids"), ("usernames", "usernames")),
             ("common_items", "intersection", "shared"), "({p}: list, others: list) -> list",
             "lookup = set(others)\nreturn [value for value in {p} if value in lookup]",
             "Turning the second list into a set makes each membership test fast.",
             ("[1, 2, 3], [2, 3, 4]", "[2, 3]"), "lists"),
    CodeTask(("merges two dictionaries of {x}, with the second one winning on conflicts", "combines two dicts of {x} into a new one",
              "joins two {x} dictionaries so later values override earlier ones"),
             (("settings", "settings"), ("word counts", "counts"), ("user profile fields", "profile"), ("configuration options", "config"), ("prices", "prices")),
             ("merge_dicts", "merged", "combine_dicts"), "({p}: dict, overrides: dict) -> dict",
             "return {**{p}, **overrides}",
             "Unpacking both into a new dict literal copies the keys; later keys overwrite earlier ones.",
             ('{"a": 1}, {"a": 2, "b": 3}', "{'a': 2, 'b': 3}"), "dicts_files"),
    CodeTask(("counts the words in {x}", "returns the number of words in {x} given its path", "tells me how many words {x} contains"),
             (("a text file", "path"), ("a log file", "log_path"), ("a CSV file", "csv_path"), ("an essay saved on disk", "essay_path"), ("a subtitle file", "subtitle_path")),
             ("count_words_in_file", "file_word_count", "words_in_file"), "({p}: str) -> int",
             'with open({p}, encoding="utf-8") as handle:\n    return sum(len(line.split()) for line in handle)',
             "Reading line by line keeps memory use low even for large files.",
             ('"notes.txt"', "the number of words in notes.txt"), "dicts_files"),
    CodeTask(("inverts a dictionary of {x} so values become keys", "swaps the keys and values of a dict of {x}", "builds the reverse lookup of a mapping of {x}"),
             (("country codes", "codes"), ("user IDs to names", "ids_to_names"), ("colour names to hex codes", "colours"),
              ("product SKUs", "skus"), ("abbreviations", "abbreviations")),
             ("invert_dict", "swap_keys_values", "inverted"), "({p}: dict) -> dict",
             "return {value: key for key, value in {p}.items()}",
             "A dict comprehension builds the reversed mapping; if values repeat, the last key wins.",
             ('{"a": 1, "b": 2}', "{1: 'a', 2: 'b'}"), "dicts_files"),
)
CODE_SYSTEM = "You are a helpful Python programming assistant."
CODE_OPENERS = ("Write a Python function that {ask}.", "Can you write a Python function that {ask}?",
                "I need a Python function which {ask}.", "Please write a python function that {ask}.",
                "Show me how to write a function in Python that {ask}.", "Implement a Python function that {ask}.")
CODE_CONTEXTS = ("", "", "", "I'm learning Python. ", "For a coding interview: ", "I'm building a small CLI tool. ",
                 "Homework question. ", "For a data cleaning script: ")
CODE_INTROS = ("Here is a simple implementation:", "Here's one way to do it:", "Sure! You can write it like this:",
               "This function does what you asked:", "A straightforward version:")


def strip_type_hints(signature: str) -> str:
    without_return = re.sub(r"\s*->.*$", "", signature)
    return re.sub(r":\s*[\w\[\] |]+?(?=[,)])", "", without_return)


def code_combinations() -> list[tuple[int, int, int]]:
    return [(t, s, a) for t, task in enumerate(CODE_TASKS) for s in range(len(task.subjects)) for a in range(len(task.asks))]


def make_python_code(rng: random.Random, combination: tuple[int, int, int] | None = None) -> Example:
    """``combination`` pins (task, subject, phrasing); train uses each at most once."""
    task_index, subject_index, ask_index = combination or rng.choice(code_combinations())
    task = CODE_TASKS[task_index]
    subject, param = task.subjects[subject_index]
    name = rng.choice(task.names)
    want_name, want_hints, want_docstring = rng.random() < 0.3, rng.random() < 0.2, rng.random() < 0.2
    typed = want_hints or rng.random() < 0.5
    docstring = want_docstring or rng.random() < 0.3
    ask = task.asks[ask_index].format(x=subject)
    prompt = rng.choice(CODE_CONTEXTS) + rng.choice(CODE_OPENERS).format(ask=ask)
    if want_name:
        prompt += f" Call it `{name}`."
    if want_hints:
        prompt += " Please use type hints."
    if want_docstring:
        prompt += " Include a docstring."
    signature = task.signature if typed else strip_type_hints(task.signature)
    lines = [f"def {name}{signature.replace('{p}', param)}:"]
    if docstring:
        lines.append(f'    """{ask[0].upper()}{ask[1:]}."""')
    lines += ["    " + line for line in task.body.replace("{p}", param).split("\n")]
    args, result = task.example
    answer = (f"{rng.choice(CODE_INTROS)}\n\n```python\n" + "\n".join(lines) + "\n```\n\n"
              f"{task.explanation} For example, `{name}({args})` returns {result}.")
    system = CODE_SYSTEM if rng.random() < 0.35 else None
    return Example("python_code", casual(prompt, rng, typo_rate=0.04), answer, system, meta={"topic": task.topic})


def draw_python_code(rng: random.Random, size: int) -> list[Example]:
    combinations = code_combinations()
    assert size <= len(combinations), f"{size} code questions but {len(combinations)} combinations"
    return [make_python_code(rng, combination) for combination in rng.sample(combinations, size)]


TRAIN_FAMILIES: dict[str, Callable[[random.Random], Example]] = {
    "intent_classification": make_intent_classification,
    "math_word_problems": make_math_word_problems,
    "json_extraction": make_json_extraction,
    "summarisation": make_summarisation,
    "python_code": make_python_code,
}


def draw_distinct(make: Callable[[random.Random], Example]) -> Callable[[random.Random, int], list[Example]]:
    """Draw ``size`` examples from ``make``, redrawing any whose normalised prompt was already drawn."""

    def draw(rng: random.Random, size: int) -> list[Example]:
        seen: set[str] = set()
        examples = []
        while len(examples) < size:
            example = make(rng)
            if prompt_key(example) not in seen:
                seen.add(prompt_key(example))
                examples.append(example)
        return examples

    return draw


TRAIN_DRAWS: dict[str, Callable[[random.Random, int], list[Example]]] = {
    "intent_classification": draw_intent_classification,
    "math_word_problems": draw_distinct(make_math_word_problems),
    "json_extraction": draw_distinct(make_json_extraction),
    "summarisation": draw_distinct(make_summarisation),
    "python_code": draw_python_code,
}


# ---------------------------------------------------------------------------------------------
# Production-only families (train never covers them)
# ---------------------------------------------------------------------------------------------

def make_translation(rng: random.Random) -> str:
    sentence = rng.choice((
        f"Where is the nearest {rng.choice(('pharmacy', 'train station', 'cash machine', 'bakery'))}?",
        f"I would like to book a table for {rng.randint(2, 8)} people at {rng.randint(6, 9)} pm.",
        f"My flight to {rng.choice(CITIES)} leaves tomorrow morning.",
        f"Could you help me find my {rng.choice(('hotel', 'suitcase', 'keys', 'umbrella'))}?",
        f"We are meeting at the {rng.choice(('museum', 'park', 'harbour', 'old bridge'))} after work.",
        f"The meeting has been moved to {rng.choice(WEEKDAYS)}.",
        f"Thank you very much for your help, {rng.choice(FIRST_NAMES)}.",
        "Is breakfast included in the price of the room?",
    ))
    language = rng.choice(("French", "German", "Spanish", "Italian", "Japanese", "Portuguese", "Dutch"))
    return rng.choice((
        f'Translate into {language}: "{sentence}"',
        f'How do I say "{sentence}" in {language}?',
        f"Please translate the following sentence to {language}.\n\n{sentence}",
        f"{language} translation of: {sentence}",
        f"Can you put this into {language} for me? {sentence}",
    ))


def make_account_cancellation(rng: random.Random) -> str:
    plan = rng.choice(("premium", "family", "student", "annual", "monthly"))
    text = rng.choice((
        f"How do I cancel my {plan} subscription?",
        "I want to delete my account and all of my personal data.",
        "Please close my account, I no longer use the service.",
        "Can I pause my membership instead of cancelling it?",
        f"How do I turn off automatic renewal for my {plan} plan?",
        f"If I cancel today, will I get money back for the rest of the {rng.choice(('month', 'year'))}?",
        "I signed up for the free trial by mistake - how do I cancel before I'm charged?",
        "Remove my profile permanently, I'm switching to another provider.",
        f"What happens to my data after I delete my account? I'm leaving after {rng.randint(2, 9)} years.",
        f"Cancel my {plan} plan effective immediately.",
    ))
    return rng.choice(INTENT_OPENERS) + text + rng.choice(INTENT_CLOSERS)


def make_sql_queries(rng: random.Random) -> str:
    table, column = rng.choice((("customers", "signup_date"), ("orders", "total"), ("employees", "salary"),
                                ("products", "price"), ("invoices", "amount_due")))
    return rng.choice((
        f"Write a SQL query that returns all rows from {table} where {column} is greater than {rng.randint(10, 5000)}.",
        f"How do I count the number of {table} per month in SQL?",
        f"SQL: find the top {rng.randint(3, 20)} {table} by {column}.",
        f"Write a query that joins the {table} table with the regions table on region_id.",
        f"How can I delete duplicate rows from the {table} table in PostgreSQL?",
        f"Give me a SQL statement that updates the {column} column of {table} for id {rng.randint(1, 999)}.",
        f"What's the SQL to get the average {column} from {table}, grouped by year?",
        f"In MySQL, how do I add an index on {table}.{column}?",
    ))


UNSEEN_FAMILIES: dict[str, Callable[[random.Random], str]] = {
    "translation": make_translation,
    "account_cancellation": make_account_cancellation,
    "sql_queries": make_sql_queries,
}


# ---------------------------------------------------------------------------------------------
# Production edge cases inside known families: very long, other languages, nearly empty
# ---------------------------------------------------------------------------------------------

LONG_PREAMBLE = (
    "I have been a customer of yours for {n} years and I have never had a problem until now.",
    "Last week I was travelling to {city} for work and everything was fine at first.",
    "I tried calling the helpline twice but both times I waited for more than forty minutes.",
    "My partner says I should just go to a branch, but there isn't one near {city}.",
    "I also read the help pages in the app, which did not answer my question at all.",
    "To be honest I am getting quite frustrated with the whole situation.",
    "I even checked my emails and spam folder in case you had written to me.",
    "My sister had the same issue last year and it took a month to sort out.",
    "I am writing this on my phone so sorry for any mistakes.",
    "I had also updated the app to the latest version, just in case.",
    "I would really appreciate a quick and clear answer this time.",
)
FOREIGN_INTENT_MESSAGES = (
    "Hola, pedí una tarjeta nueva hace dos semanas y todavía no ha llegado.",
    "Me han rechazado el pago con la tarjeta en el supermercado, ¿por qué?",
    "Ich habe meine Karte verloren, bitte sperren Sie sie sofort.",
    "Warum wurde mir für meine Überweisung eine Gebühr berechnet?",
    "Le distributeur a avalé ma carte ce matin, que dois-je faire ?",
    "Je ne reconnais pas un retrait d'espèces sur mon relevé.",
    "Fiz uma transferência há três dias e o destinatário ainda não recebeu.",
    "Come posso cambiare il PIN della mia carta?",
    "Mijn terugbetaling staat nog steeds niet op mijn rekening.",
    "Il pagamento contactless non funziona più con la mia carta.",
)
FOREIGN_CODE_REQUESTS = (
    "Schreibe eine Python-Funktion, die prüft, ob eine Zahl eine Primzahl ist.",
    "Écris une fonction Python qui inverse une chaîne de caractères.",
    "Escribe una función en Python que cuente las vocales de un texto.",
    "Schreibe eine Python-Funktion, die eine Liste von Listen flach macht.",
)
NEARLY_EMPTY = (  # (family, text)
    ("intent_classification", ""), ("intent_classification", " "), ("intent_classification", "?"),
    ("intent_classification", "hi"), ("intent_classification", "help"), ("intent_classification", "card"),
    ("math_word_problems", "???"), ("math_word_problems", "2+2"), ("python_code", "python"),
    ("python_code", "code pls"), ("summarisation", "Summarise:"), ("json_extraction", "Extract as JSON:"),
)


def long_intent_message(rng: random.Random) -> str:
    intent = rng.choice(list(INTENTS))
    preamble = " ".join(rng.sample(LONG_PREAMBLE, rng.randint(7, len(LONG_PREAMBLE))))
    preamble = preamble.format(n=rng.randint(2, 15), city=rng.choice(CITIES))
    message = make_intent_classification(rng, intent).user
    return f"{preamble} Anyway, here is my problem. {message} " + " ".join(rng.sample(LONG_PREAMBLE[5:], 3)).format(
        n=rng.randint(2, 15), city=rng.choice(CITIES))


def long_summary_request(rng: random.Random) -> str:
    topic = rng.choice(list(SUMMARY_TOPICS))
    paragraphs = [" ".join(SUMMARY_TOPICS[topic](rng)[0]) for _ in range(rng.randint(5, 8))]
    return "Summarise the following article in one sentence:\n\n" + "\n\n".join(paragraphs)


MATH_FILLER = (
    "It was a sunny Saturday morning and the town was busy.",
    "The shop had just reopened after being painted a bright shade of green.",
    "Everyone in the family had an opinion about what to buy.",
    "The radio was playing old songs that nobody could name.",
    "A dog was asleep by the door and did not move all day.",
    "Outside, a street market was selling flowers, cheese and second-hand books.",
    "The owner, who had run the place for thirty years, knew every customer by name.",
    "Nobody noticed that the clock on the wall was ten minutes fast.",
)


def long_math_problem(rng: random.Random) -> str:
    question = make_math_word_problems(rng).user
    before, after = rng.sample(MATH_FILLER, len(MATH_FILLER)), rng.sample(MATH_FILLER, len(MATH_FILLER))
    return " ".join([*before, question, *after])


def foreign_math_problem(rng: random.Random) -> str:
    name, n, price, extra = rng.choice(("Ana", "Luis", "Carmen", "Jorge")), rng.randint(2, 9), rng.randint(2, 12), rng.randint(1, 9)
    return rng.choice((
        f"{name} compra {n} cuadernos a {price} euros cada uno y un bolígrafo de {extra} euros. ¿Cuánto gasta en total?",
        f"Un tren viaja a {price * 10} km/h durante {n} horas. ¿Qué distancia recorre?",
        f"Ein Zug fährt {n} Stunden lang mit {price * 10} km/h. Wie weit kommt er?",
    ))


def make_edge_cases(rng: random.Random) -> list[tuple[str, str]]:
    """(family, user text) pairs that stress the audit: long, foreign-language and nearly empty inputs."""
    cases = [("intent_classification", long_intent_message(rng)) for _ in range(10)]
    cases += [("summarisation", long_summary_request(rng)) for _ in range(6)]
    cases += [("math_word_problems", long_math_problem(rng)) for _ in range(5)]
    cases += [("intent_classification", text) for text in FOREIGN_INTENT_MESSAGES]
    cases += [("math_word_problems", foreign_math_problem(rng)) for _ in range(4)]
    cases += [("python_code", text) for text in FOREIGN_CODE_REQUESTS]
    cases += list(NEARLY_EMPTY)
    return cases


# ---------------------------------------------------------------------------------------------
# Planting: corrupt or copy chosen rows, remembering what was done where
# ---------------------------------------------------------------------------------------------

@dataclass
class Row:
    example: Example
    kind: str | None = None
    group: int | None = None
    detail: str = ""


# kind -> number planted per family (spread so every family carries some issues).
IN_PLACE_PLAN: dict[str, dict[str, int]] = {
    "format_deviation": {"math_word_problems": 7, "python_code": 6, "json_extraction": 6, "summarisation": 6},
    "empty_response": {"intent_classification": 3, "math_word_problems": 3, "json_extraction": 2, "summarisation": 2, "python_code": 2},
    "truncated_response": {"math_word_problems": 4, "python_code": 4, "json_extraction": 3, "summarisation": 4},
    "refusal": {"intent_classification": 3, "math_word_problems": 3, "json_extraction": 3, "summarisation": 3, "python_code": 3},
    "placeholder": {"intent_classification": 3, "math_word_problems": 3, "json_extraction": 3, "summarisation": 3, "python_code": 3},
    "pii": {"python_code": 5, "summarisation": 4, "math_word_problems": 3},
    "label_vocabulary": {"intent_classification": 12},
}
EXACT_DUPLICATE_PLAN = {"intent_classification": 5, "math_word_problems": 4, "json_extraction": 3, "summarisation": 3, "python_code": 3}
NEAR_DUPLICATE_PLAN = {"intent_classification": 5, "math_word_problems": 5, "json_extraction": 4, "summarisation": 3, "python_code": 3}
CONFLICTING_LABEL_GROUPS = 12
CONFLICTING_ANSWER_GROUPS = 10

# A paraphrase or copy of an intent message relabelled with the intent it is easiest to confuse with.
CONFUSABLE_INTENTS = {
    "card_arrival": "lost_or_stolen_card", "lost_or_stolen_card": "card_swallowed",
    "declined_card_payment": "top_up_failed", "change_pin": "verify_identity",
    "exchange_rate": "transfer_fee_charged", "transfer_not_received": "refund_not_showing",
    "cash_withdrawal_not_recognised": "wrong_cash_amount", "top_up_failed": "declined_card_payment",
    "refund_not_showing": "transfer_not_received", "verify_identity": "change_pin",
    "card_swallowed": "lost_or_stolen_card", "wrong_cash_amount": "cash_withdrawal_not_recognised",
    "transfer_fee_charged": "exchange_rate", "contactless_not_working": "declined_card_payment",
}
REFUSALS = (
    "I'm sorry, but as an AI language model I cannot help with that request.",
    "I'm sorry, but as an AI language model I cannot provide that information.",
    "As an AI, I am unable to complete this task.",
    "I apologize, but I can't assist with that.",
    "Sorry, I cannot answer this question.",
)
PLACEHOLDERS = ("N/A", "<noinput>", "TODO", "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
                "TBD", "[insert answer here]", "<nooutput>")
EMPTY_RESPONSES = ("", " ", "\n", "  \n\t")
POLITE_PREFIXES = ("Please, ", "Hi! ", "Hello, ", "Quick question: ", "Hey there, ")
POLITE_SUFFIXES = (" Thanks!", " Thank you in advance.", " Thanks a lot.")


class Planter:
    """Picks clean rows at random and records each plant on the row it changes or inserts."""

    def __init__(self, *, rows: list[Row], rng: random.Random) -> None:
        self.rows = rows
        self.rng = rng
        self.groups = 0

    def pick(self, family: str) -> Row:
        candidates = [r for r in self.rows if r.kind is None and r.example.family == family]
        return self.rng.choice(candidates)

    def new_group(self) -> int:
        self.groups += 1
        return self.groups

    def mark(self, row: Row, kind: str, detail: str, group: int | None = None) -> None:
        row.kind, row.detail, row.group = kind, detail, group

    def insert_after(self, original: Row, copy: Row) -> None:
        position = next(i for i, r in enumerate(self.rows) if r is original)
        self.rows.insert(self.rng.randint(position + 1, len(self.rows)), copy)


def surface_variant(text: str, rng: random.Random) -> tuple[str, str]:
    """A copy that differs only in case, whitespace or punctuation (or not at all)."""
    how = rng.choice(("identical", "identical", "lowercased", "whitespace", "punctuation"))
    if how == "lowercased" and text.lower() != text:
        return text.lower(), "prompt lower-cased"
    if how == "whitespace":
        return "  " + text.replace(" ", "  ", 1) + " \n", "extra whitespace in prompt"
    if how == "punctuation":
        stripped = text.rstrip(".?!")
        return (stripped + "!!" if stripped != text else text + "."), "punctuation changed"
    return text, "verbatim copy"


def soft_typo(text: str, rng: random.Random) -> str:
    """A typo an embedding barely notices: a dropped apostrophe, or a letter swap in a long text.

    A letter swap in a short message changes MiniLM's tokens enough to fall to ~0.7 cosine,
    which no longer reads as a near duplicate to the tool (or to a person skimming).
    """
    contractions = [m.start() for m in re.finditer(r"[a-z]'[a-z]", text)]
    if contractions:
        i = rng.choice(contractions) + 1
        return text[:i] + text[i + 1 :]
    return add_typo(text, rng) if len(text.split()) >= 25 else text


def light_edit(text: str, rng: random.Random, allow_typo: bool = True) -> tuple[str, str]:
    """A near copy: a polite prefix or suffix, or a typo; never a pure case/punctuation change."""
    options = ["prefix", "suffix"] + (["typo"] if allow_typo else [])
    how = rng.choice(options)
    if how == "typo":
        edited = soft_typo(text, rng)
        if edited != text:
            return edited, "typo in prompt"
        how = "prefix"
    if how == "prefix":
        prefix = rng.choice(POLITE_PREFIXES)
        return prefix + text, f"polite prefix {prefix.strip()!r}"
    suffix = rng.choice(POLITE_SUFFIXES)
    return text + suffix, f"polite suffix {suffix.strip()!r}"


def plant_duplicates(planter: Planter) -> None:
    rng = planter.rng
    for family, count in EXACT_DUPLICATE_PLAN.items():
        for _ in range(count):
            original, group = planter.pick(family), planter.new_group()
            planter.mark(original, "duplicate_original", "original of an exact-duplicate group", group)
            for _ in range(2 if rng.random() < 0.25 else 1):
                user, how = surface_variant(original.example.user, rng)
                copy = Row(replace(original.example, user=user))
                planter.mark(copy, "exact_duplicate", how, group)
                planter.insert_after(original, copy)
    for family, count in NEAR_DUPLICATE_PLAN.items():
        for _ in range(count):
            original, group = planter.pick(family), planter.new_group()
            planter.mark(original, "duplicate_original", "original of a near-duplicate group", group)
            user, how = light_edit(original.example.user, rng, allow_typo=family != "json_extraction")
            copy = Row(replace(original.example, user=user))
            planter.mark(copy, "near_duplicate", f"{how}; same response", group)
            planter.insert_after(original, copy)


def plant_conflicting_labels(planter: Planter) -> None:
    rng = planter.rng
    for i in range(CONFLICTING_LABEL_GROUPS):
        original, group = planter.pick("intent_classification"), planter.new_group()
        intent = original.example.meta["intent"]
        other = CONFUSABLE_INTENTS[intent]
        style = ("copy", "edit", "rewrap")[i % 3]
        if style == "copy":
            user, how = original.example.user, "the same message"
        elif style == "edit":
            user, how = light_edit(original.example.user, rng)
            how = f"a near copy ({how})"
        else:
            user = original.example.user
            while normalise(user) == normalise(original.example.user):
                user = wrap_intent(original.example.meta["core"], rng)
            how = "the same message with a different greeting"
        copy = Row(replace(original.example, user=user, assistant=other, meta={**original.example.meta, "intent": other}))
        planter.mark(original, "conflicting_label", f"labelled {intent}; {how} elsewhere is labelled {other}", group)
        planter.mark(copy, "conflicting_label", f"{how} labelled {other}; the original says {intent}", group)
        planter.insert_after(original, copy)


def wrong_answer(answer: int, rng: random.Random) -> int:
    wrong = answer + rng.choice((-10, -2, -1, 1, 2, 10, answer if answer < 50 else 5))
    return wrong if wrong > 0 and wrong != answer else answer + 3


def plant_conflicting_answers(planter: Planter) -> None:
    rng = planter.rng
    for i in range(CONFLICTING_ANSWER_GROUPS):
        original, group = planter.pick("math_word_problems"), planter.new_group()
        meta = original.example.meta
        right, wrong = meta["answer"], wrong_answer(meta["answer"], rng)
        planter.mark(original, "conflicting_answer", f"correct answer {right}", group)
        members = [("wrong", wrong)] if i % 2 else [("right", right), ("wrong", wrong)]
        for verdict, answer in members:
            user, how = light_edit(original.example.user, rng)
            copy = Row(replace(original.example, user=user,
                               assistant=math_response(meta["steps"], meta["final_step"], answer)))
            detail = f"{how}; answers {answer}" + ("" if verdict == "right" else f" but the correct answer is {right}")
            planter.mark(copy, "conflicting_answer", detail, group)
            planter.insert_after(original, copy)


def deviate_format(example: Example) -> tuple[str, str]:
    """The same content in the wrong shape for its family."""
    if example.family == "math_word_problems":
        working = "\n".join(example.meta["steps"] + [example.meta["final_step"](example.meta["answer"])])
        return f"{working}\nThe answer is {example.meta['answer']}.", "'The answer is N.' instead of '#### N'"
    if example.family == "python_code":
        return example.assistant.replace("```python\n", "").replace("\n```", ""), "code without a ``` fence"
    if example.family == "json_extraction":
        parts = [f"the {key.replace('_', ' ')} is {value}" for key, value in example.meta["record"].items()]
        prose = ", ".join(parts[:-1]) + f" and {parts[-1]}."
        return prose[0].upper() + prose[1:], "prose instead of a JSON object"
    bullets = "\n".join(f"- {sentence}" for sentence in example.meta["sentences"][:3])
    return bullets, "bullet list instead of one sentence"


def truncate(example: Example, rng: random.Random) -> tuple[str, str]:
    """Cut the response mid-word; code answers are cut inside the fenced block."""
    text = example.assistant
    if example.family == "python_code":
        low, high = text.index("```python\n") + len("```python\n"), text.index("\n```\n")
    else:
        low, high = int(len(text) * 0.35), int(len(text) * 0.75)
    mid_word = [i for i in range(1, len(text)) if text[i - 1].isalpha() and text[i].isalpha()]
    cut = rng.choice([i for i in mid_word if low <= i < high] or mid_word)
    return text[:cut], "response cut mid-word" + (" inside an unclosed code fence" if example.family == "python_code" else "")


def add_pii(example: Example, rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
    if example.family == "python_code":
        key = "sk-" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(40))
        return example.assistant.replace("```python\n", f'```python\nAPI_KEY = "{key}"\n\n', 1), "API key (sk-...) in code"
    if example.family == "summarisation":
        if rng.random() < 0.5:
            return f"{example.assistant} Contact {first.lower()}.{last.lower()}@example.com for details.", "email address"
        return f"{example.assistant} Call {first} on +1-202-555-01{rng.randint(10, 99)}.", "phone number"
    lines = example.assistant.split("\n")
    lines.insert(-1, f"Questions? Email {first.lower()}.{last.lower()}@example.org or call 555-01{rng.randint(10, 99)}.")
    return "\n".join(lines), "email address and phone number"


def plant_in_place(planter: Planter) -> None:
    rng = planter.rng
    for kind, per_family in IN_PLACE_PLAN.items():
        for family, count in per_family.items():
            for _ in range(count):
                row = planter.pick(family)
                example = row.example
                if kind == "format_deviation":
                    response, detail = deviate_format(example)
                elif kind == "empty_response":
                    response = rng.choice(EMPTY_RESPONSES)
                    detail = f"response is {response!r}"
                elif kind == "truncated_response":
                    response, detail = truncate(example, rng)
                elif kind == "refusal":
                    response = rng.choice(REFUSALS)
                    detail = "canned refusal"
                elif kind == "placeholder":
                    response = rng.choice(PLACEHOLDERS)
                    detail = f"placeholder {response[:20]!r}"
                elif kind == "pii":
                    response, detail = add_pii(example, rng)
                else:  # label_vocabulary
                    label = example.assistant
                    response = rng.choice((label.title(), label.replace("_", "-"), label.replace("_", " "), label.upper(),
                                           label.split("_")[0] + "".join(w.title() for w in label.split("_")[1:])))
                    detail = f"label {response!r} instead of {label!r}"
                row.example = replace(example, assistant=response)
                planter.mark(row, kind, detail)
    # Markup in prompts: otherwise ordinary rows that check the HTML report escapes what it shows.
    row = planter.pick("intent_classification")
    row.example = replace(row.example, user=row.example.user + ' <script>alert("x")</script>')
    planter.mark(row, "hostile", "prompt contains a <script> tag")
    row = planter.pick("summarisation")
    first_break = row.example.user.index(". ") + 1
    row.example = replace(row.example, user=row.example.user[:first_break] + ' "><img src=x onerror=alert(1)>' + row.example.user[first_break:])
    planter.mark(row, "hostile", "prompt contains an <img onerror> attribute injection")


# ---------------------------------------------------------------------------------------------
# Assembly
# ---------------------------------------------------------------------------------------------

def prompt_key(example: Example) -> str:
    return normalise(f"{example.system or ''} {example.user}")


def draw_clean(rng: random.Random) -> list[Example]:
    """The clean records of every family, shuffled together."""
    examples = [example for family, size in TRAIN_FAMILY_SIZES.items() for example in TRAIN_DRAWS[family](rng, size)]
    rng.shuffle(examples)
    return examples


def check_nothing_accidental(rows: list[Row]) -> None:
    """Rows that share a normalised prompt, or prompt and response, must belong to one planted group."""
    for key_of in (prompt_key, lambda e: prompt_key(e) + "\x00" + normalise(e.assistant)):
        owners: dict[str, Row] = {}
        for row in rows:
            key = key_of(row.example)
            first = owners.setdefault(key, row)
            if first is not row:
                assert first.group is not None and first.group == row.group, f"accidental duplicate: {row.example.user!r}"


def build_train(rng: random.Random) -> list[Row]:
    rows = [Row(example) for example in draw_clean(rng)]
    planter = Planter(rows=rows, rng=rng)
    plant_duplicates(planter)
    plant_conflicting_labels(planter)
    plant_conflicting_answers(planter)
    plant_in_place(planter)
    check_nothing_accidental(rows)
    return rows


def build_production(rng: random.Random, train_prompts: set[str]) -> list[dict]:
    records = []
    for family, size in PRODUCTION_KNOWN_SIZES.items():
        made = 0
        while made < size:
            # Intents are uniform here, so the intent that is rare in train becomes ordinary traffic.
            example = TRAIN_FAMILIES[family](rng)
            if normalise(example.user) not in train_prompts:
                train_prompts.add(normalise(example.user))
                records.append((family, example.user, False))
                made += 1
    for family, size in PRODUCTION_UNSEEN_SIZES.items():
        records += [(family, UNSEEN_FAMILIES[family](rng), False) for _ in range(size)]
    records += [(family, text, True) for family, text in make_edge_cases(rng)]
    rng.shuffle(records)
    return [{"messages": [{"role": "user", "content": text}], "family": family, "edge_case": edge}
            for family, text, edge in records]


def train_record(example: Example) -> dict:
    system = [{"role": "system", "content": example.system}] if example.system is not None else []
    return {"messages": [*system, {"role": "user", "content": example.user},
                         {"role": "assistant", "content": example.assistant}], "family": example.family}


def planted_records(rows: list[Row]) -> list[dict]:
    """Planted rows in row order, with groups renumbered 0, 1, ... by first appearance."""
    renumbered: dict[int, int] = {}
    records = []
    for index, row in enumerate(rows):
        if row.kind is None:
            continue
        group = None if row.group is None else renumbered.setdefault(row.group, len(renumbered))
        records.append({"row": index, "kind": row.kind, "group": group, "detail": row.detail})
    return records


def write_jsonl(path: Path, records: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def main(out_dir: Path | str | None = None) -> dict[str, int]:
    """Write train.jsonl, production.jsonl and planted.jsonl to ``out_dir`` (default: next to this file)."""
    out = Path(out_dir) if out_dir is not None else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    rows = build_train(random.Random(SEED))
    production = build_production(random.Random(PRODUCTION_SEED), {normalise(r.example.user) for r in rows})
    planted = planted_records(rows)
    write_jsonl(out / "train.jsonl", [train_record(r.example) for r in rows])
    write_jsonl(out / "production.jsonl", production)
    write_jsonl(out / "planted.jsonl", planted)
    return {"train": len(rows), "production": len(production), "planted": len(planted)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default=None, help="where to write the files (default: sample_data/)")
    counts = main(parser.parse_args().out_dir)
    print(", ".join(f"{name}: {count} records" for name, count in counts.items()))
