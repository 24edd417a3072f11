"""Texts to render: keyword phrases, near-miss phrases that share sounds with them, and general sentences."""

from __future__ import annotations

import gzip
import random
import re
from collections.abc import Sequence
from pathlib import Path

ASTERISK_TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")

# General sentences so the model hears ordinary speech from the same voices (negatives).
GENERAL_SENTENCES = (
    "the weather will be cloudy this afternoon",
    "please bring the blue folder to the meeting",
    "I think we should leave before the traffic starts",
    "my brother lives in a small town by the sea",
    "could you pass me the salt and pepper",
    "the train to the city leaves at seven fifteen",
    "she painted the kitchen a bright yellow colour",
    "we watched a documentary about whales last night",
    "the children are playing football in the park",
    "do you remember where I put my glasses",
    "the shop on the corner sells fresh bread every morning",
    "turn left at the second set of traffic signals",
    "he ordered a coffee and a slice of cake",
    "this report needs to be finished by friday",
    "the garden looks beautiful in the spring",
    "there is a strange noise coming from the engine",
    "I would like to book a table for four people",
    "the museum opens at ten and closes at five",
    "they are building a new bridge across the river",
    "the dog barked at the postman again",
    "can you help me carry these boxes upstairs",
    "the concert was cancelled because of the rain",
    "our flight was delayed by almost three hours",
    "the soup needs a little more salt",
    "he reads the newspaper every morning at breakfast",
    "I forgot to charge my phone last night",
    "the price of vegetables has gone up again",
    "we need to buy milk eggs and butter",
    "the new teacher is very patient with the students",
    "please close the window it is getting cold",
    "the team scored two goals in the first half",
    "my sister is studying chemistry at university",
    "let me know when you arrive at the station",
    "the printer on the third floor is broken",
    "what would you like to eat for dinner tonight",
    "the movie starts in twenty minutes",
    "somebody left the front door open",
    "the baby finally fell asleep after lunch",
    "there are seven days in a week",
    "the old castle stands on top of the hill",
    "how much does this jacket cost",
    "I have an appointment with the dentist tomorrow",
    "the river flooded the fields after the storm",
    "the news tonight was mostly about the election",
    "thank you very much for your help",
    "good morning everyone and welcome back",
    "it is time to feed the cat",
    "the meeting has been moved to thursday",
    "a cup of tea would be lovely",
    "the stars are very bright tonight",
    "hello there how are you doing",
    "hey what are you doing later",
    "hey can you hear me",
    "okay let us get started",
    "right now I am busy",
    "lights camera action",
    "light the candles please",
    "the music was too loud at the party",
    "I like this song",
    "stop it right now",
    "the time is almost up",
    "on and off all day",
    "play the game fairly",
    "stream the video later",
    "a dream about summer",
)

# Syllable-sharing substitutes used to build near-miss phrases for any keyword.
_CONFUSERS = (
    "hey",
    "hay",
    "say",
    "day",
    "pay",
    "they",
    "way",
    "stay",
    "hi",
    "hello",
    "okay",
    "a",
    "stream",
    "steamer",
    "screamer",
    "dreamer",
    "streaming",
    "stream her",
    "extreme",
    "supreme",
    "schemer",
    "eastern",
    "summer",
    "streamline",
    "stranger",
    "trainer",
    "drummer",
    "light",
    "lights",
    "lie",
    "likes",
    "nights",
    "sights",
    "flights",
    "rights",
    "bites",
    "light zone",
    "on",
    "one",
    "own",
    "off",
    "in",
    "upon",
    "gone",
    "lion",
    "play",
    "plays",
    "played",
    "place",
    "plate",
    "player",
    "pray",
    "blame",
    "music",
    "musical",
    "museum",
    "magic",
    "mosaic",
    "amusing",
    "news",
    "muse",
    "stop",
    "shop",
    "top",
    "stock",
    "step",
    "stopped",
    "stopping",
    "stuff",
    "timer",
    "time",
    "timing",
    "tiny",
    "tire",
    "climber",
    "timber",
    "dimmer",
    "tamer",
    "computer",
    "remember",
    "number",
    "volume",
    "open",
    "close",
)


def words_of(phrase: str) -> list[str]:
    return re.findall(r"[a-z']+", phrase.lower())


def normalise(phrase: str) -> str:
    return " ".join(words_of(phrase))


def asterisk_sentences() -> list[str]:
    """The transcripts of the asterisk prompts (real speech files we also use as negatives), as plain text."""
    if not ASTERISK_TRANSCRIPTS.exists():
        return []
    sentences = []
    with gzip.open(ASTERISK_TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if ":" not in line or line.startswith(";"):
                continue
            text = line.split(":", 1)[1].strip()
            if text and "[" not in text:
                sentences.append(text)
    return sentences


def contains_keyword(text: str, keywords: Sequence[str]) -> bool:
    padded = f" {normalise(text)} "
    return any(f" {normalise(k)} " in padded for k in keywords)


def near_misses(keyword: str, keywords: Sequence[str], rng: random.Random, count: int) -> list[str]:
    """Phrases that share words or syllables with `keyword` but are none of `keywords`: first the parts of the
    phrase (each word alone, every prefix and suffix), then random one-word swaps and sound-alikes."""
    words = words_of(keyword)
    parts: set[str] = set(words)
    for cut in range(1, len(words)):
        parts.add(" ".join(words[:cut]))
        parts.add(" ".join(words[cut:]))
    swaps: set[str] = set()
    # One word swapped for a confuser; the phrase with its words reversed.
    for index in range(len(words)):
        for confuser in _CONFUSERS:
            swaps.add(" ".join([*words[:index], confuser, *words[index + 1 :]]))
    if len(words) > 1:
        swaps.add(" ".join(reversed(words)))
    # Confusers that share a 3-letter start or end with a keyword word, alone or in a short carrier phrase.
    for word in words:
        for confuser in _CONFUSERS:
            if confuser != word and (confuser[:3] == word[:3] or confuser[-3:] == word[-3:]):
                swaps.add(confuser)
                swaps.add(f"the {confuser} is here")
    allowed_parts = sorted(c for c in parts if c and not contains_keyword(c, keywords))
    allowed_swaps = sorted(c for c in swaps - parts if c and not contains_keyword(c, keywords))
    rng.shuffle(allowed_parts)
    rng.shuffle(allowed_swaps)
    return [*allowed_parts, *allowed_swaps][:count]


def is_sentence(text: str) -> bool:
    """Whether a negative text is ordinary speech (not a near miss built from a keyword)."""
    return text in _sentence_pool()


def _sentence_pool() -> frozenset[str]:
    global _SENTENCES
    if _SENTENCES is None:
        _SENTENCES = frozenset((*GENERAL_SENTENCES, *asterisk_sentences()))
    return _SENTENCES


_SENTENCES: frozenset[str] | None = None


def general_sentences(keywords: Sequence[str], rng: random.Random, count: int) -> list[str]:
    """Ordinary sentences (built-in list and asterisk transcripts) that contain none of `keywords`."""
    pool = [s for s in (*GENERAL_SENTENCES, *asterisk_sentences()) if not contains_keyword(s, keywords)]
    rng.shuffle(pool)
    return pool[:count]
