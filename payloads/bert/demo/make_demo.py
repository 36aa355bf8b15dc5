"""Writes the offline demo data (deterministic): a synthetic "domain" corpus about the harbours of an
invented archipelago, and a SQuAD v1.1-format QA set about them, split train / dev. Dev harbours,
people and islands never appear in train or the corpus, so dev F1 measures reading, not recall.

    python3 payloads/bert/demo/make_demo.py [--out payloads/bert/demo/data] [--seed 1234]
"""

from __future__ import annotations

import argparse
import json
import os
import random

SYLLABLES = ["ka", "vel", "mor", "ta", "rin", "os", "li", "bran", "dor", "e", "sa", "nu", "ther", "quil",
             "ar", "mo", "ven", "ix", "pol", "ra", "gan", "so", "ul", "fen", "tir", "a", "lo", "mer", "zan", "ku"]
FIRST = ["Ada", "Bram", "Cora", "Dario", "Edda", "Finn", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Lars",
         "Mira", "Nils", "Olga", "Pavel", "Rosa", "Sven", "Tilda", "Ugo", "Vera", "Wim", "Yara", "Zeno",
         "Alma", "Boris", "Clea", "Emil", "Frida", "Ivo"]
CARGO = ["copper", "saffron", "timber", "salt", "wool", "amber", "olive oil", "tin", "dried fish", "marble",
         "silk", "pepper", "glass beads", "iron nails", "barley", "wine", "cotton", "coal", "tea", "indigo",
         "cork", "honey", "rope", "slate", "pearls", "figs", "tar", "hemp", "cider", "clay pots"]
COLOURS = ["red", "white", "green", "blue", "yellow", "black", "grey", "orange", "striped red and white",
           "purple", "pale blue", "dark green"]

FACTS = {
    "island": (["{port} is a harbour on the island of {island}.", "The harbour of {port} lies on {island}.",
                "{island} is the island where {port} was built."],
               ["On which island is {port}?", "Where does the harbour of {port} lie?",
                "Which island is {port} on?"]),
    "master": (["The harbourmaster of {port} is {master}.", "{master} serves as harbourmaster of {port}.",
                "{port} is run by the harbourmaster {master}."],
               ["Who is the harbourmaster of {port}?", "Who runs the harbour of {port}?",
                "Who serves as harbourmaster in {port}?"]),
    "year": (["{port} was founded in {year}.", "The harbour of {port} was established in {year}.",
              "In {year} the first quay of {port} was built."],
             ["When was {port} founded?", "In which year was the harbour of {port} established?",
              "When was the first quay of {port} built?"]),
    "cargo": (["The main cargo shipped from {port} is {cargo}.", "Most ships leave {port} carrying {cargo}.",
               "{port} is known for its trade in {cargo}."],
              ["What is the main cargo of {port}?", "What do most ships leaving {port} carry?",
               "What is {port} known for trading?"]),
    "ships": (["About {ships} ships dock at {port} every year.", "Every year {ships} ships visit {port}.",
               "{port} receives {ships} ships a year."],
              ["How many ships dock at {port} each year?", "How many ships visit {port} every year?",
               "How many ships a year does {port} receive?"]),
    "light": (["The lighthouse of {port} is painted {light}.", "At {port} the lighthouse is {light}.",
               "Sailors know {port} by its {light} lighthouse."],
              ["What colour is the lighthouse of {port}?", "How is the lighthouse of {port} painted?",
               "What colour is the lighthouse at {port}?"]),
}
FILLER = ["The archipelago has a mild climate and long summers.", "Storms are common in the autumn months.",
          "Fishing boats leave before sunrise.", "The council of harbours meets once a year.",
          "Ferries connect the larger islands.", "Merchants pay a small fee at every quay."]


def word(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()


def make_port(rng: random.Random, used: set[str]) -> dict[str, str]:
    while True:
        name = word(rng, rng.choice([2, 3]))
        island = word(rng, rng.choice([2, 3])) + rng.choice(["", " Isle", " Major", " Minor"])
        master = f"{rng.choice(FIRST)} {word(rng, 2)}"
        if name not in used and island not in used:
            used.update((name, island))
            return {"port": name, "island": island.strip(), "master": master, "year": str(rng.randint(1450, 1890)),
                    "cargo": rng.choice(CARGO), "ships": str(rng.randint(12, 900)), "light": rng.choice(COLOURS)}


def two_ports(rng: random.Random) -> int:
    """How many harbours a paragraph is about. Two means the reader must also match the harbour's name,
    which a 2-layer model learns more slowly; 30% keeps that in the task without dominating it."""
    return 2 if rng.random() < 0.3 else 1


def paragraph(rng: random.Random, ports: list[dict[str, str]]) -> tuple[str, list[tuple[str, str, str]]]:
    """A context about one or two harbours and its (fact, port, answer) triples, sentences shuffled."""
    sentences, facts = [], []
    for port in ports:
        for fact in rng.sample(list(FACTS), rng.randint(3, 5)):
            sentences.append(rng.choice(FACTS[fact][0]).format(**port))
            facts.append((fact, port["port"], port[fact]))
    if rng.random() < 0.5:
        sentences.append(rng.choice(FILLER))
    rng.shuffle(sentences)
    return " ".join(sentences), facts


def qa_set(rng: random.Random, n_paragraphs: int, used: set[str], prefix: str) -> tuple[dict, list[str]]:
    paragraphs, texts = [], []
    for p in range(n_paragraphs):
        ports = [make_port(rng, used) for _ in range(two_ports(rng))]
        context, facts = paragraph(rng, ports)
        qas = []
        for q, (fact, name, answer) in enumerate(facts):
            port = next(x for x in ports if x["port"] == name)
            # The answer's offset inside the sentence stating this fact about this port.
            sentence = next(s for s in FACTS[fact][0] if s.format(**port) in context).format(**port)
            start = context.index(sentence) + sentence.index(answer)
            qas.append({"id": f"{prefix}-{p}-{q}", "question": rng.choice(FACTS[fact][1]).format(port=name),
                        "answers": [{"text": answer, "answer_start": start}]})
        paragraphs.append({"context": context, "qas": qas})
        texts.append(context)
    return {"version": "1.1", "data": [{"title": f"harbours-{prefix}", "paragraphs": paragraphs}]}, texts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--train-paragraphs", type=int, default=900)
    p.add_argument("--dev-paragraphs", type=int, default=150)
    p.add_argument("--corpus-paragraphs", type=int, default=600)
    args = p.parse_args()
    rng = random.Random(args.seed)
    used: set[str] = set()
    train, train_texts = qa_set(rng, args.train_paragraphs, used, "train")
    dev, _ = qa_set(rng, args.dev_paragraphs, used, "dev")
    # The corpus: the training contexts plus more harbours, one document per paragraph (sentences a line).
    extra = [paragraph(rng, [make_port(rng, used) for _ in range(two_ports(rng))])[0]
             for _ in range(args.corpus_paragraphs)]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "corpus.txt"), "w", encoding="utf-8") as f:
        for text in train_texts + extra:
            f.write(text.replace(". ", ".\n") + "\n\n")
    for name, obj in (("train.json", train), ("dev.json", dev)):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=None, separators=(",", ":"))
            f.write("\n")
    n = lambda d: sum(len(p["qas"]) for p in d["data"][0]["paragraphs"])  # noqa: E731
    print(f"wrote {args.out}: train {n(train)} questions, dev {n(dev)} questions, "
          f"corpus {len(train_texts) + len(extra)} documents")


if __name__ == "__main__":
    main()
