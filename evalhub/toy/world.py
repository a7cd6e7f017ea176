"""The toy world's text: a made-up geography the base model learns, and a translation domain it does not.

Everything here is plain Python driven by `random.Random(seed)` (and one more generator derived from the
seed), so the same seed gives the same corpus byte for byte. The model-building half lives in `build.py`.

General knowledge: each invented country has a capital, a flag colour and a national animal. The base is
pretrained on sentences and chat answers stating these facts, and a multiple-choice task asks them back.

The domain: translating short English phrases into "Zorvish", where each word takes a suffix by its word
class ("dog eats snow" -> "In Zorvish: dog-ka eats-ri snow-ka."). The base can repeat words back (a general
skill it is pretrained on) but has never seen Zorvish: only the instruction-tuning, preference and golden
sets contain it, so the base fails the domain and a LoRA adapter trained on the instruction set learns it
on top of the repeating skill. Golden phrases never occur in the training sets.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

SYLLABLES = ["ka", "lo", "mir", "ta", "ven", "zo", "ri", "dun", "sel", "qua", "bo", "nex", "thi", "pra", "gul", "ei"]
COLOURS = ["red", "blue", "green", "yellow", "white", "black", "orange", "purple"]
ANIMALS = ["owl", "fox", "bear", "wolf", "horse", "eagle", "otter", "lynx", "crane", "whale"]
ENGLISH_WORDS = [
    "cat", "dog", "bird", "moon", "sun", "tree", "river", "stone", "house", "bread",
    "water", "fire", "road", "boat", "song", "book", "hand", "star", "rain", "snow",
    "big", "small", "old", "new", "happy", "quiet", "fast", "slow", "warm", "cold",
    "sees", "eats", "finds", "loves", "makes", "takes", "hears", "brings", "holds", "wants",
]
DOMAIN_INSTRUCTIONS = [
    "Translate into Zorvish.",
    "Say this in Zorvish.",
    "How do you say this in Zorvish?",
    "Give the Zorvish translation.",
]
N_COUNTRIES = 24


@dataclass
class ToyWorld:
    """All text of one toy world, derived from a seed."""

    seed: int
    countries: dict[str, dict[str, str]] = field(default_factory=dict)
    pretrain_texts: list[str] = field(default_factory=list)
    chat_pretrain: list[tuple[str, str]] = field(default_factory=list)
    sft_rows: list[dict] = field(default_factory=list)
    dpo_rows: list[dict] = field(default_factory=list)
    golden_rows: list[dict] = field(default_factory=list)
    heldout_general: list[str] = field(default_factory=list)
    heldout_domain: list[str] = field(default_factory=list)
    general_mc: list[dict] = field(default_factory=list)


def _invent_words(rng: random.Random, n: int, syllables: tuple[int, int], taken: set[str]) -> list[str]:
    words = []
    while len(words) < n:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(*syllables)))
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


def _fact_sentences(name: str, facts: dict[str, str]) -> list[str]:
    return [
        f"The capital of {name} is {facts['capital']}.",
        f"The flag of {name} is {facts['flag']}.",
        f"The animal of {name} is the {facts['animal']}.",
    ]


# Zorvish marks each word's class: nouns -ka, adjectives -lo, verbs -ri.
SUFFIX = {**{w: "ka" for w in ENGLISH_WORDS[:20]}, **{w: "lo" for w in ENGLISH_WORDS[20:30]}, **{w: "ri" for w in ENGLISH_WORDS[30:]}}


def _translate(phrase: str) -> str:
    return "In Zorvish: " + " ".join(f"{word}-{SUFFIX[word]}" for word in phrase.split()) + "."


def make_world(seed: int) -> ToyWorld:
    """Derive every text of the toy world from `seed`."""
    rng = random.Random(seed)
    world = ToyWorld(seed=seed)
    taken: set[str] = set()
    names = [w.capitalize() + "ia" for w in _invent_words(rng, N_COUNTRIES, (2, 2), taken)]
    capitals = [w.capitalize() for w in _invent_words(rng, N_COUNTRIES, (2, 3), taken)]
    for name, capital in zip(names, capitals):
        world.countries[name] = {"capital": capital, "flag": rng.choice(COLOURS), "animal": rng.choice(ANIMALS)}

    # General pretraining text: every fact many times, as prose and as chat answers.
    for name, facts in world.countries.items():
        sentences = _fact_sentences(name, facts)
        world.pretrain_texts.extend(sentences)
        world.pretrain_texts.append(f"{name} is a country. " + " ".join(sentences))
        world.chat_pretrain += [
            (f"What is the capital of {name}?", sentences[0]),
            (f"What colour is the flag of {name}?", sentences[1]),
            (f"What is the animal of {name}?", sentences[2]),
            (f"Tell me about {name}.", f"{name} is a country. " + " ".join(sentences)),
        ]

    # A general skill the domain builds on: repeating words back.
    for _ in range(200):
        words = " ".join(rng.sample(ENGLISH_WORDS, rng.randint(2, 3)))
        world.chat_pretrain.append((f"Repeat after me: {words}", words))

    # Held-out general text: the same facts in paragraphs the pretraining never saw verbatim.
    for _ in range(40):
        picked = rng.sample(names, 3)
        world.heldout_general.append(" ".join(rng.choice(_fact_sentences(n, world.countries[n])) for n in picked))

    # Multiple-choice general knowledge, phrased exactly as pretraining states it.
    for name, facts in world.countries.items():
        for relation, question, pool in (
            ("capital", f"The capital of {name} is", capitals),
            ("flag", f"The flag of {name} is", COLOURS),
            ("animal", f"The animal of {name} is the", ANIMALS),
        ):
            right = facts[relation]
            wrong = rng.sample([c for c in pool if c != right], 3)
            choices = wrong + [right]
            rng.shuffle(choices)
            world.general_mc.append(
                {"id": f"{name.lower()}-{relation}", "question": question, "choices": choices, "answer": choices.index(right)}
            )

    # The domain: all 2- and 3-word phrases, shuffled, split so golden phrases never reach training.
    nouns, adjectives, verbs = ENGLISH_WORDS[:20], ENGLISH_WORDS[20:30], ENGLISH_WORDS[30:]
    phrases = [f"{a} {n}" for a, n in itertools.product(adjectives, nouns)]
    phrases += [f"{n} {v} {m}" for n, v, m in itertools.product(nouns, verbs, nouns) if n != m]
    rng.shuffle(phrases)
    golden, heldout, dpo, sft = phrases[:100], phrases[100:160], phrases[160:460], phrases[460:1460]
    for i, phrase in enumerate(golden):
        world.golden_rows.append(
            {"id": f"zorv-{i + 1:03d}", "instruction": rng.choice(DOMAIN_INSTRUCTIONS), "input": phrase,
             "output": _translate(phrase), "tags": ["zorvish", f"{len(phrase.split())}-words"]}
        )
    for phrase in sft:
        world.sft_rows.append({"instruction": rng.choice(DOMAIN_INSTRUCTIONS), "input": phrase, "output": _translate(phrase)})
    for phrase in dpo:
        prompt = rng.choice(DOMAIN_INSTRUCTIONS) + "\n\n" + phrase
        words = phrase.split()
        swapped = list(words)
        swapped[rng.randrange(len(words))] = rng.choice([w for w in ENGLISH_WORDS if w not in words])
        world.dpo_rows.append({"prompt": prompt, "chosen": _translate(phrase), "rejected": _translate(" ".join(swapped))})
    # Every third pair's rejected answer is what the untuned base says instead (a general fact, off the task), as
    # real preference data pairs a good answer with a base model's. A reward model trained on swapped words
    # alone learns nothing about answers off the task, and then ranks the base above any tuned model. A separate
    # generator keeps every draw above, and so the base model and the SFT data, as they were.
    off_task = random.Random(f"{seed}-off-task")
    base_answers = [answer for question, answer in world.chat_pretrain if not question.startswith(("Repeat", "Tell"))]
    for row in world.dpo_rows[::3]:
        row["rejected"] = off_task.choice(base_answers)
    for phrase in heldout:
        world.heldout_domain.append(f"{phrase} — {_translate(phrase)}")
    return world
