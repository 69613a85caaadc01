"""nmt's own offline corpus: English phrases with number words → German, by rule.

The task is small enough to learn in minutes on a CPU yet needs what real translation
needs. German number words put units before tens and write the whole number as one word
("three hundred forty-two" → "dreihundertzweiundvierzig"), so the decoder must look back
and forth in the source: a task for attention. Around the number, adjectives and verbs
agree with the noun's gender, number and case ("one red dog sleeps" → "ein roter Hund
schläft", "i see one red dog" → "ich sehe einen roten Hund"), which ties words that are
far apart.

Pairs are drawn by a fixed generator, so every machine gets the same corpus. A pair's
split is decided by a hash of its English side, so train, valid and test never share a
sentence.
"""

from __future__ import annotations

import random
import zlib

from nmt.errors import UserError

SPLITS = ("train", "valid", "test")
DEFAULT_SIZES = {"train": 30000, "valid": 500, "test": 500}

_UNITS_EN = "zero one two three four five six seven eight nine".split()
_TEENS_EN = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
_TENS_EN = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_UNITS_DE = "null eins zwei drei vier fünf sechs sieben acht neun".split()
_TEENS_DE = "zehn elf zwölf dreizehn vierzehn fünfzehn sechzehn siebzehn achtzehn neunzehn"
_TENS_DE = "_ _ zwanzig dreißig vierzig fünfzig sechzig siebzig achtzig neunzig".split()

# English noun: (German gender, singular, plural); English plural is regular unless listed.
_NOUNS = {
    "dog": ("m", "Hund", "Hunde"),
    "cat": ("f", "Katze", "Katzen"),
    "house": ("n", "Haus", "Häuser"),
    "bird": ("m", "Vogel", "Vögel"),
    "horse": ("n", "Pferd", "Pferde"),
    "car": ("n", "Auto", "Autos"),
    "tree": ("m", "Baum", "Bäume"),
    "flower": ("f", "Blume", "Blumen"),
    "book": ("n", "Buch", "Bücher"),
    "child": ("n", "Kind", "Kinder"),
    "woman": ("f", "Frau", "Frauen"),
    "man": ("m", "Mann", "Männer"),
    "apple": ("m", "Apfel", "Äpfel"),
    "boat": ("n", "Boot", "Boote"),
    "chair": ("m", "Stuhl", "Stühle"),
    "bottle": ("f", "Flasche", "Flaschen"),
    "ball": ("m", "Ball", "Bälle"),
    "mouse": ("f", "Maus", "Mäuse"),
}
_PLURAL_EN = {"child": "children", "woman": "women", "man": "men", "mouse": "mice"}
_ADJECTIVES = {
    "red": "rot",
    "small": "klein",
    "big": "groß",
    "old": "alt",
    "new": "neu",
    "green": "grün",
    "blue": "blau",
    "black": "schwarz",
    "white": "weiß",
    "young": "jung",
}
# Intransitive verbs with the noun phrase as subject: English (3sg, pl), German (3sg, pl).
_VERBS = {
    "sleep": ("sleeps", "sleep", "schläft", "schlafen"),
    "run": ("runs", "run", "läuft", "laufen"),
    "wait": ("waits", "wait", "wartet", "warten"),
    "stand": ("stands", "stand", "steht", "stehen"),
    "fall": ("falls", "fall", "fällt", "fallen"),
}
# Transitive clauses with the noun phrase as accusative object.
_SUBJECTS = {
    "i see": "ich sehe",
    "we see": "wir sehen",
    "i buy": "ich kaufe",
    "we buy": "wir kaufen",
    "i find": "ich finde",
    "they want": "sie wollen",
}
# Endings after "ein" (singular) and with no article (plural), by case and gender.
# Plural counts; 101, 201, ... are left out ("hundertein" declines awkwardly).
_COUNTS = tuple(k for k in range(2, 1000) if k % 100 != 1)
_ARTICLE = {
    ("nom", "m"): "ein",
    ("nom", "f"): "eine",
    ("nom", "n"): "ein",
    ("acc", "m"): "einen",
    ("acc", "f"): "eine",
    ("acc", "n"): "ein",
}
_NOUN_KEYS, _ADJECTIVE_KEYS = tuple(_NOUNS), tuple(_ADJECTIVES)
_VERB_KEYS, _SUBJECT_KEYS = tuple(_VERBS), tuple(_SUBJECTS)
_SINGULAR_ENDING = {
    ("nom", "m"): "er",
    ("nom", "f"): "e",
    ("nom", "n"): "es",
    ("acc", "m"): "en",
    ("acc", "f"): "e",
    ("acc", "n"): "es",
}


def number_en(n: int) -> str:
    """English words for 1 ≤ n ≤ 999, American style: "three hundred forty-two"."""
    hundreds, rest = divmod(n, 100)
    words = [f"{_UNITS_EN[hundreds]} hundred"] if hundreds else []
    if rest >= 20:
        tens, units = divmod(rest, 10)
        words.append(_TENS_EN[tens] + (f"-{_UNITS_EN[units]}" if units else ""))
    elif rest >= 10:
        words.append(_TEENS_EN.split()[rest - 10])
    elif rest:
        words.append(_UNITS_EN[rest])
    return " ".join(words)


def number_de(n: int) -> str:
    """German number word for 2 ≤ n ≤ 999: units before tens, one word."""
    hundreds, rest = divmod(n, 100)
    word = f"{_UNITS_DE[hundreds]}hundert".replace("einshundert", "einhundert") if hundreds else ""
    if rest >= 20:
        tens, units = divmod(rest, 10)
        unit = "ein" if units == 1 else _UNITS_DE[units]
        word += f"{unit}und{_TENS_DE[tens]}" if units else _TENS_DE[tens]
    elif rest >= 10:
        word += _TEENS_DE.split()[rest - 10]
    elif rest:
        word += _UNITS_DE[rest]
    return word


def _noun_phrase(rng: random.Random, case: str) -> tuple[str, str, bool]:
    """(English, German, plural?) for a number + optional adjective + noun."""
    noun = rng.choice(_NOUN_KEYS)
    gender, singular, plural = _NOUNS[noun]
    adjective = rng.choice(_ADJECTIVE_KEYS) if rng.random() < 0.6 else None
    n = 1 if rng.random() < 0.25 else rng.choice(_COUNTS)
    if n == 1:
        en = ["one"] + ([adjective] if adjective else []) + [noun]
        de = [_ARTICLE[case, gender]]
        if adjective:
            de.append(_ADJECTIVES[adjective] + _SINGULAR_ENDING[case, gender])
        de.append(singular)
        return " ".join(en), " ".join(de), False
    en = [number_en(n)] + ([adjective] if adjective else []) + [_PLURAL_EN.get(noun, noun + "s")]
    de = [number_de(n)] + ([_ADJECTIVES[adjective] + "e"] if adjective else []) + [plural]
    return " ".join(en), " ".join(de), True


def _sentence(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.5:
        en, de, plural = _noun_phrase(rng, "nom")
        en_sg, en_pl, de_sg, de_pl = _VERBS[rng.choice(_VERB_KEYS)]
        return f"{en} {en_pl if plural else en_sg}", f"{de} {de_pl if plural else de_sg}"
    subject = rng.choice(_SUBJECT_KEYS)
    en, de, _ = _noun_phrase(rng, "acc")
    return f"{subject} {en}", f"{_SUBJECTS[subject]} {de}"


def split_of(english: str) -> str:
    """The split a sentence belongs to, by a stable hash: 96% train, 2% valid, 2% test."""
    bucket = zlib.crc32(english.encode("utf-8")) % 100
    return "train" if bucket < 96 else "valid" if bucket < 98 else "test"


def numbers(split: str, size: int | None = None) -> list[tuple[str, str]]:
    """`size` distinct (English, German) pairs of `split` ("train", "valid" or "test")."""
    if split not in SPLITS:
        raise ValueError(f"toy split must be one of {', '.join(SPLITS)}, got {split!r}")
    size = DEFAULT_SIZES[split] if size is None else size
    rng = random.Random(f"nmt-toy-numbers-{split}")
    pairs: dict[str, str] = {}
    misses = 0  # draws since the last new pair: many in a row mean the split is exhausted
    while len(pairs) < size:
        en, de = _sentence(rng)
        if split_of(en) == split and en not in pairs:
            pairs[en], misses = de, 0
        elif (misses := misses + 1) > 200_000:
            raise UserError(
                f"the toy {split} split holds only about {len(pairs)} distinct "
                f"pairs; ask for fewer than {size}"
            )
    return list(pairs.items())


TASKS = {"numbers": numbers}
