"""Write the small chat dataset that the dev config and the tests train on.

The conversations follow a handful of templates with numbers drawn from a seeded generator, so a
tiny model can learn them within a minute on a CPU and its loss falls visibly. Running the script
again writes the same bytes: ``python configs/data/make_chat.py [OUT] [--count N]``.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from pathlib import Path

SYSTEM_PROMPTS = (
    "You are a concise assistant.",
    "You answer in one short sentence.",
    "You help people who rent GPUs.",
)
CITIES = ("Lisbon", "Oslo", "Denver", "Osaka", "Nairobi", "Lima", "Perth", "Tallinn", "Quebec")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SKIES = ("sunny", "cloudy", "rainy", "windy", "foggy", "snowy", "stormy")
GPUS = (("A100", 1.29), ("H100", 2.49), ("RTX 4090", 0.44), ("L40S", 0.86), ("A6000", 0.79))
WORDS = (
    "tensor",
    "gradient",
    "adapter",
    "token",
    "kernel",
    "shard",
    "epoch",
    "batch",
    "weights",
    "cluster",
    "sampler",
    "buffer",
    "layer",
    "vector",
    "matrix",
    "cache",
)

Message = dict[str, str]


def arithmetic(rng: random.Random) -> list[Message]:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    if rng.random() < 0.5:
        return [
            {"role": "user", "content": f"What is {a} + {b}?"},
            {"role": "assistant", "content": f"{a} + {b} = {a + b}."},
        ]
    return [
        {"role": "user", "content": f"What is {a} times {b}?"},
        {"role": "assistant", "content": f"{a} times {b} is {a * b}."},
    ]


def weather(rng: random.Random) -> list[Message]:
    city, day, sky = rng.choice(CITIES), rng.choice(DAYS), rng.choice(SKIES)
    high = rng.randint(-5, 35)
    low = high - rng.randint(3, 12)
    turns = [
        {"role": "user", "content": f"What's the weather in {city} on {day}?"},
        {
            "role": "assistant",
            "content": f"In {city} on {day} it will be {sky}, with a high of {high} C "
            f"and a low of {low} C.",
        },
    ]
    if rng.random() < 0.4:
        turns += [
            {"role": "user", "content": "And the high in Fahrenheit?"},
            {"role": "assistant", "content": f"The high is {round(high * 9 / 5 + 32)} F."},
        ]
    return turns


def conversion(rng: random.Random) -> list[Message]:
    km = rng.randint(1, 60)
    return [
        {"role": "user", "content": f"Convert {km} km to miles."},
        {"role": "assistant", "content": f"{km} km is about {km * 0.621371:.1f} miles."},
    ]


def rental(rng: random.Random) -> list[Message]:
    gpu, rate = rng.choice(GPUS)
    hours = rng.randint(1, 48)
    count = rng.choice((1, 1, 2, 4, 8))
    total = hours * rate * count
    unit = "GPU" if count == 1 else "GPUs"
    return [
        {
            "role": "user",
            "content": f"How much do {hours} hours on {count} {gpu} {unit} cost at "
            f"${rate:.2f} per GPU-hour?",
        },
        {
            "role": "assistant",
            "content": f"{hours} h x {count} x ${rate:.2f} = ${total:.2f}.",
        },
    ]


def spelling(rng: random.Random) -> list[Message]:
    word = rng.choice(WORDS)
    if rng.random() < 0.5:
        return [
            {"role": "user", "content": f"Spell '{word}' backwards."},
            {"role": "assistant", "content": f"'{word}' backwards is '{word[::-1]}'."},
        ]
    return [
        {"role": "user", "content": f"How many letters are in '{word}'?"},
        {"role": "assistant", "content": f"'{word}' has {len(word)} letters."},
    ]


TEMPLATES: tuple[Callable[[random.Random], list[Message]], ...] = (
    arithmetic,
    weather,
    conversion,
    rental,
    spelling,
)


def conversations(count: int, seed: int = 0) -> list[dict[str, list[Message]]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        messages = rng.choice(TEMPLATES)(rng)
        if rng.random() < 0.3:
            messages = [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}, *messages]
        rows.append({"messages": messages})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(Path(__file__).with_name("chat.jsonl")))
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    lines = [json.dumps(row, ensure_ascii=False) for row in conversations(args.count, args.seed)]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
