"""The sentence grammar of ``mini_synth``: home-assistant commands over a closed vocabulary.

Sentences such as "TURN OFF THE RED LAMP IN THE KITCHEN" or "SET A TIMER FOR TWENTY FIVE
MINUTES" come from a few templates with about 140 words in all, so that a small
Conformer-CTC learns them within minutes on a CPU. Only the caller's ``random.Random``
is drawn from, which keeps every sentence a function of the corpus seed.
"""
import random
from dataclasses import dataclass
from typing import Iterable, List, Tuple

_ONES = (
    "ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN ELEVEN TWELVE THIRTEEN FOURTEEN "
    "FIFTEEN SIXTEEN SEVENTEEN EIGHTEEN NINETEEN"
).split()
_TENS = "TWENTY THIRTY FORTY FIFTY SIXTY SEVENTY EIGHTY NINETY".split()

COLORS = "RED GREEN BLUE YELLOW WHITE BLACK ORANGE PURPLE".split()
DEVICES = "LAMP LIGHT FAN HEATER RADIO TELEVISION SPEAKER".split()
OBJECTS = "BOX CHAIR TABLE BOOK CUP BALL BAG".split()
PLACES = "KITCHEN BEDROOM BATHROOM GARAGE OFFICE HALLWAY GARDEN LIVING_ROOM".split()
OPENINGS = "DOOR WINDOW".split()
NAMES = "ANNA DAVID EMMA JAMES SARAH PETER".split()
FOODS = "APPLES BANANAS EGGS ORANGES POTATOES TOMATOES".split()
TIMES_OF_DAY = ("TODAY", "TOMORROW", "IN THE MORNING", "IN THE EVENING", "TONIGHT")


def number_words(n: int) -> str:
    """Spell ``n`` (1..99) as uppercase English words: 25 -> ``TWENTY FIVE``."""
    if not 1 <= n <= 99:
        raise ValueError(f"number_words covers 1..99, got {n}")
    if n < 20:
        return _ONES[n - 1]
    tens, ones = divmod(n, 10)
    return _TENS[tens - 2] + (f" {_ONES[ones - 1]}" if ones else "")


def _counted(numbers: Iterable[int], singular: str, plural: str) -> Tuple[str, ...]:
    """Number phrases with the unit in agreement: ``ONE MINUTE``, ``TWO MINUTES``."""
    return tuple(f"{number_words(n)} {singular if n == 1 else plural}" for n in numbers)


def _clock_times() -> Tuple[str, ...]:
    """Clock times as spoken: ``SEVEN``, ``SEVEN FIFTEEN``, ``SEVEN THIRTY``, ``SEVEN FORTY FIVE``."""
    minutes = ("", " FIFTEEN", " THIRTY", " FORTY FIVE")
    return tuple(number_words(h) + m for h in range(1, 13) for m in minutes)


def _places() -> Tuple[str, ...]:
    # LIVING_ROOM is one slot value but two spoken words
    return tuple(p.replace("_", " ") for p in PLACES)


def _optional(*phrases: str) -> Tuple[str, ...]:
    """A slot that may stay empty: the empty choice counts as much as each phrase."""
    return ("",) + phrases


@dataclass(frozen=True)
class Template:
    """A sentence pattern: one phrase is drawn from each slot, left to right."""

    name: str
    slots: Tuple[Tuple[str, ...], ...]


def _templates() -> Tuple[Template, ...]:
    places = _places()
    on_off = ("ON", "OFF")
    colors = tuple(COLORS)
    return (
        Template("switch_on", (_optional("PLEASE"), ("TURN", "SWITCH"), on_off, ("THE",),
                               _optional(*colors), tuple(DEVICES), ("IN THE",), places)),
        Template("switch_after", (("TURN", "SWITCH"), ("THE",), colors, tuple(DEVICES),
                                  on_off, _optional(*(f"IN THE {p}" for p in places)))),
        Template("timer", (_optional("PLEASE"), ("SET A TIMER FOR",),
                           _counted(range(1, 100), "MINUTE", "MINUTES")
                           + _counted(range(1, 60), "SECOND", "SECONDS")
                           + _counted(range(1, 13), "HOUR", "HOURS"),
                           _optional(*(f"IN THE {p}" for p in places)))),
        Template("temperature", (("SET THE TEMPERATURE IN THE",), places, ("TO",),
                                 _counted(range(10, 31), "DEGREE", "DEGREES"), _optional(*TIMES_OF_DAY))),
        Template("dim", (("DIM", "SET"), ("THE LIGHTS IN THE",), places, ("TO",),
                         _counted(range(5, 100, 5), "PERCENT", "PERCENT"), _optional(*TIMES_OF_DAY))),
        Template("move", (("MOVE", "BRING"), ("THE",), colors, tuple(OBJECTS), ("TO THE",), places)),
        Template("put", (("PUT THE",), colors, tuple(OBJECTS), ("IN THE", "ON THE"), places)),
        Template("find", (("WHERE IS MY", "FIND MY", "SHOW ME THE"), colors, tuple(OBJECTS),
                          _optional(*(f"IN THE {p}" for p in places)))),
        Template("play", (_optional("PLEASE"), ("PLAY", "STOP"), ("MUSIC", "THE RADIO", "THE NEWS"), ("IN THE",), places,
                          _optional(*TIMES_OF_DAY))),
        Template("open", (("OPEN", "CLOSE", "LOCK"), ("THE",), places, tuple(OPENINGS),
                          _optional(*(f"AT {t}" for t in _clock_times())))),
        Template("alarm", (_optional("PLEASE"), ("WAKE ME UP AT", "SET AN ALARM FOR"), _clock_times(),
                           _optional(*TIMES_OF_DAY))),
        Template("call", (("CALL", "SEND A MESSAGE TO", "REMIND"), tuple(NAMES),
                          _optional(*(f"AT {t}" for t in _clock_times())), TIMES_OF_DAY)),
        Template("shopping", (("ADD",), tuple(number_words(n) for n in range(2, 31)), _optional(*colors),
                              tuple(FOODS), ("TO THE SHOPPING LIST", "TO MY SHOPPING LIST"))),
        Template("weather", (("WHAT IS THE WEATHER LIKE", "WILL IT RAIN", "WILL IT BE COLD",
                              "WILL IT BE SUNNY"), TIMES_OF_DAY, _optional(*(f"AT {t}" for t in _clock_times())))),
    )


TEMPLATES: Tuple[Template, ...] = _templates()


def make_sentence(rng: random.Random) -> str:
    """Draw one sentence: a template uniformly, then one phrase per slot."""
    template = rng.choice(TEMPLATES)
    words = " ".join(rng.choice(slot) for slot in template.slots)
    return " ".join(words.split())


def vocabulary() -> List[str]:
    """Every word the grammar can produce, sorted."""
    return sorted({word for t in TEMPLATES for slot in t.slots for phrase in slot for word in phrase.split()})
