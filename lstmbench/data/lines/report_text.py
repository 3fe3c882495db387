"""Technical-report prose made offline from templates and word lists, in the manner of the
journal pages UW3 was scanned from: claims with numbers, citations ("[12]", "[Aho et al.
1974]"), cross-references ("Fig. 3", "Sec. 4.2", "pp. 101-117"), simple formulas and the
title and address lines of a paper's first page.

The text is fixed by a seed, so every machine builds the same corpus and hence the same lines.
"""

from __future__ import annotations

import re

import numpy as np

NOUNS = (
    "algorithm", "matching", "graph", "vertex", "edge", "path", "tree", "heap", "queue",
    "network", "method", "procedure", "bound", "problem", "solution", "structure", "model",
    "sequence", "string", "pattern", "variable", "function", "theorem", "lemma", "proof",
    "system", "process", "machine", "program", "language", "grammar", "parser", "compiler",
    "memory", "processor", "channel", "signal", "image", "page", "document", "character",
    "recognizer", "classifier", "feature", "sample", "experiment", "measurement", "error",
    "estimate", "parameter", "matrix", "vector", "operator", "interval", "weight", "cost",
    "query", "database", "index", "record", "file", "protocol", "message", "scheme",
    "technique", "approach", "analysis", "result", "table", "figure", "section", "chapter",
    "reader", "author", "report", "survey", "journal", "volume", "issue", "theory", "case",
    "domain", "user", "interface", "device", "circuit", "layout", "block", "cell", "level",
)  # fmt: skip
PLURALS = {"vertex": "vertices", "matrix": "matrices", "index": "indices", "analysis": "analyses"}
ADJECTIVES = (
    "efficient", "simple", "general", "bipartite", "weighted", "maximum", "minimum", "optimal",
    "linear", "quadratic", "parallel", "sequential", "dynamic", "static", "random", "finite",
    "infinite", "recursive", "iterative", "standard", "classical", "modern", "practical",
    "theoretical", "complex", "primal", "dual", "sparse", "dense", "binary", "printed",
    "scanned", "noisy", "clean", "large", "small", "fast", "slow", "known", "open", "main",
    "previous", "following", "original", "improved", "augmenting", "shortest", "longest",
)  # fmt: skip
VERBS = (
    ("reduce", "reduces", "reduced"), ("compute", "computes", "computed"),
    ("find", "finds", "found"), ("solve", "solves", "solved"), ("use", "uses", "used"),
    ("show", "shows", "shown"), ("give", "gives", "given"), ("improve", "improves", "improved"),
    ("describe", "describes", "described"), ("require", "requires", "required"),
    ("contain", "contains", "contained"), ("define", "defines", "defined"),
    ("measure", "measures", "measured"), ("estimate", "estimates", "estimated"),
    ("extend", "extends", "extended"), ("apply", "applies", "applied"),
    ("maintain", "maintains", "maintained"), ("select", "selects", "selected"),
    ("replace", "replaces", "replaced"), ("examine", "examines", "examined"),
    ("justify", "justifies", "justified"), ("quantify", "quantifies", "quantified"),
)  # fmt: skip
ADVERBS = (
    "quickly", "usually", "clearly", "roughly", "exactly", "initially", "finally", "often",
    "rarely", "typically", "essentially", "simply", "only", "also", "therefore", "hence",
)  # fmt: skip
NAMES = (
    "Aho", "Hopcroft", "Ullman", "Galil", "Micali", "Gabow", "Tarjan", "Edmonds", "Karp",
    "Knuth", "Lawler", "Kuhn", "Hungarian", "Even", "Kariv", "Vazirani", "Breuel", "Baird",
    "Nagy", "Kanungo", "Haralick", "Phillips", "Jaisimha", "Quinlan", "Zadeh", "Yao", "Wirth",
    "Dijkstra", "Floyd", "Johnson", "Ochoa", "Valiant", "Xu", "Young", "Ziv", "Lempel",
)  # fmt: skip
PLACES = (
    "New York, N.Y. 10027", "Seattle, WA 98195", "Yorktown Heights, NY 10598",
    "Zurich, Switzerland", "Kyoto, Japan", "Oxford OX1 3QD, England", "Quebec, Canada",
    "Murray Hill, NJ 07974", "Palo Alto, CA 94304", "Jerusalem, Israel", "Vienna, Austria",
)  # fmt: skip
INSTITUTIONS = (
    "Columbia University", "University of Washington", "IBM T. J. Watson Research Center",
    "ETH Zurich", "Kyoto University", "Oxford University", "Laval University",
    "AT&T Bell Laboratories", "Xerox PARC", "Hebrew University", "Technical University",
)  # fmt: skip
JOURNALS = (
    "J. ACM", "SIAM J. Comput.", "Commun. ACM", "IEEE Trans. Pattern Anal. Mach. Intell.",
    "Inf. Process. Lett.", "J. Algorithms", "Quart. Appl. Math.", "ACM Comput. Surv.",
    "Pattern Recognition", "Math. Program.", "Proc. IEEE", "Z. Angew. Math. Phys.",
)  # fmt: skip
HEADINGS = (
    "INTRODUCTION", "RELATED WORK", "PRELIMINARIES", "METHODS", "EXPERIMENTS", "RESULTS",
    "DISCUSSION", "CONCLUSIONS", "REFERENCES", "APPENDIX", "ABSTRACT", "ACKNOWLEDGMENTS",
)  # fmt: skip
ABBREVIATIONS = ("e.g.,", "i.e.,", "cf.", "viz.", "etc.", "resp.", "w.r.t.")
SYMBOLS = ("x", "y", "z", "n", "m", "k", "i", "j", "G", "V", "E", "M", "T", "P", "Q", "S")

# A sentence template per entry; {slot} is filled by `fill`. Sentences end in their own
# punctuation, so questions, lists and quoted terms occur as in real papers.
TEMPLATES = (
    "The {adj} {noun} {verb} the {noun} in {math} time {ref}.",
    "In {sec} we {verb0} a {adj} {noun} that {verb} the {adj} {noun}.",
    "As shown in {fig}, the {noun} {verb} the {nouns} {adv}.",
    "This {noun} was first {verb2} by {name} {ref}; see also {name} and {name} {ref}.",
    "{Adv}, the {nouns} are {verb2} in {num} steps, {abbr} {math}.",
    "Let {sym} be a {adj} {noun} with {math} and {math}.",
    "Table {small} lists the {nouns} for {sym} = {num}, {num} and {num}.",
    "The {noun} of {name} [{name}, {year}] {verb} {num}% of the {nouns}.",
    "For details see {name} {year}, {pp}, or the survey in {journal} {small} ({year}).",
    "Why does the {adj} {noun} {verb0} the {noun}? The answer is given in {sec}.",
    "Hence {math}, and the bound of Theorem {small} holds for every {noun} ({eqn}).",
    "We call a {noun} ``{adj}'' if it {verb} no {adj} {noun}.",
    'The term "{adj} {noun}" is due to {name} {ref}; it is not the {noun} of {fig}.',
    "The cost is {money} per {noun}, about {num} times the cost of the {adj} {noun}.",
    "{Name} and {name} {ref} {verb} the {adj} case; the {adj} case is still open.",
    "Each {noun} is {verb2} by its {noun} {sym}_{small} (the {adj} {noun}, {fig}).",
    "The {nouns} {s1}, {s2}, ... , {s3} form a set {set}, so |{sym}| <= {small}.",
    "Note: case #{small} is special; it occurs when {sym} ~ {num} (about {small} times).",
    "Step {small}. If {sym} > {num} then {verb0} the {noun}; otherwise go to Step {small}.",
    "{name}, {initial}. {title}. {journal} {small}, {small} ({year}), {pp}.",
    "{name}, {initial}., and {name}, {initial}. {title}. In Proc. {small}th Symp. on the "
    "Theory of Computing ({year}), {pp}.",
    "Author's address: Department of Computer Science, {institution}, {place}.",
    "Categories and Subject Descriptors: F.{small}.{small} [Analysis of Algorithms and Problem "
    "Complexity]: {title}; G.{small}.{small} [Discrete Mathematics]: Graph Theory.",
    "General Terms: {Nouns}, {Nouns}; Key Words: {adj} {noun}, {nouns}.",
    "Received {month} {year}; revised {month} {year}; accepted {month} {year}.",
    "The {noun} {verb} at most {math} operations (Lemma {small}.{small}) and O({sym} log "
    "{sym}) space.",
    "The error fell from {num}% to {num}% (Table {small}); the rate was {num} +/- {small}.",
    "Using {noun} \\{sym} and the {noun} {sym}^{small}, we get {sym} * {sym} = {num}.",
    "The {noun} is stored in {path} and read by the {noun} {ident}(); see {email}.",
    "Figure {small} plots the {noun} against {sym} for {sym} = {num} {{{s1}, {s2}}}.",
    "On a {noun} of {num} {nouns} the {adj} {noun} takes {num} s and {num} KB of memory!",
    "A {adj} {noun} (Sec. {small}.{small}) {verb} the {noun} & the {noun} [{small}, {small}].",
    "{heading}",
    "{small}. {heading}",
    "{small}.{small} {Adj} {Nouns}",
)
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")  # fmt: skip
TITLE_WORDS = ("Algorithms", "Matching", "Graphs", "Recognition", "Networks", "Complexity",
               "Structures", "Bounds", "Optical", "Character", "Documents", "Analysis")  # fmt: skip


def _pick(rng: np.random.Generator, values):
    return values[int(rng.integers(len(values)))]


def _plural(noun: str) -> str:
    return PLURALS.get(noun, noun + ("es" if noun.endswith(("s", "x", "ch", "sh")) else "s"))


def number(rng: np.random.Generator) -> str:
    """A number as printed in a report: integer, decimal, thousands or a fraction."""
    kind = int(rng.integers(5))
    if kind == 0:
        return str(int(rng.integers(2, 100)))
    if kind == 1:
        return f"{rng.integers(0, 100)}.{rng.integers(0, 100):02d}"
    if kind == 2:
        return f"{int(rng.integers(1000, 100000)):,}"
    if kind == 3:
        return f"0.{rng.integers(0, 1000):03d}"
    return f"{rng.integers(1, 10)}/{rng.integers(2, 10)}"


def reference(rng: np.random.Generator) -> str:
    """A citation: numbered or by author and year."""
    kind = int(rng.integers(4))
    if kind == 0:
        return f"[{rng.integers(1, 60)}]"
    if kind == 1:
        return f"[{rng.integers(1, 30)}, {rng.integers(30, 60)}]"
    if kind == 2:
        return f"[{_pick(rng, NAMES)} et al. {rng.integers(1960, 1995)}]"
    return f"[{_pick(rng, NAMES)} and {_pick(rng, NAMES)} {rng.integers(1960, 1995)}]"


def formula(rng: np.random.Generator) -> str:
    """A short formula in the symbols a typewriter or a report's body text has."""
    a, b = _pick(rng, SYMBOLS), _pick(rng, SYMBOLS)
    forms = (
        f"O({a}^{rng.integers(2, 4)})",
        f"O({a} log {a})",
        f"O(sqrt({a}) {b})",
        f"{a} = {rng.integers(0, 100)}",
        f"{a} + {b} <= {rng.integers(2, 50)}",
        f"{a} >= 2{b} - 1",
        f"|{a}| < {b}",
        f"{a} - {b} = {rng.integers(1, 9)}",
        f"f({a}) = {a}^2 + {rng.integers(1, 9)}",
        f"{a} != {b}",
        f"{a} x {b} = {rng.integers(2, 99)}",
        f"{a} ± {rng.integers(1, 9)}",
        f"{rng.integers(10, 90)}° to {rng.integers(90, 180)}°",
        f"§{rng.integers(1, 9)}",
        f"{a} × {b}",
        f"({a} + {b})/2",
    )
    return _pick(rng, forms)


def fill(template: str, rng: np.random.Generator) -> str:
    """One sentence: the template's slots filled at random."""
    verb = _pick(rng, VERBS)
    values = {
        "noun": lambda: _pick(rng, NOUNS),
        "nouns": lambda: _plural(_pick(rng, NOUNS)),
        "Nouns": lambda: _plural(_pick(rng, NOUNS)).capitalize(),
        "adj": lambda: _pick(rng, ADJECTIVES),
        "Adj": lambda: _pick(rng, ADJECTIVES).capitalize(),
        "verb": lambda: _pick(rng, VERBS)[1],
        "verb0": lambda: verb[0],
        "verb2": lambda: _pick(rng, VERBS)[2],
        "adv": lambda: _pick(rng, ADVERBS),
        "Adv": lambda: _pick(rng, ADVERBS).capitalize(),
        "name": lambda: _pick(rng, NAMES),
        "Name": lambda: _pick(rng, NAMES),
        "initial": lambda: chr(ord("A") + int(rng.integers(26))),
        "year": lambda: str(rng.integers(1955, 1996)),
        "month": lambda: _pick(rng, MONTHS),
        "ref": lambda: reference(rng),
        "fig": lambda: (
            f"Fig. {rng.integers(1, 15)}" if rng.random() < 0.7 else f"Figure {rng.integers(1, 15)}"
        ),
        "sec": lambda: (
            f"Sec. {rng.integers(1, 9)}.{rng.integers(1, 9)}"
            if rng.random() < 0.6
            else f"Section {rng.integers(1, 9)}"
        ),
        "pp": lambda: f"pp. {(p := int(rng.integers(1, 900)))}-{p + int(rng.integers(4, 40))}",
        "eqn": lambda: f"{rng.integers(1, 40)}",
        "math": lambda: formula(rng),
        "num": lambda: number(rng),
        "small": lambda: str(rng.integers(1, 10)),
        "money": lambda: f"${rng.integers(1, 900)}.{rng.integers(0, 100):02d}",
        "sym": lambda: _pick(rng, SYMBOLS),
        "s1": lambda: _pick(rng, SYMBOLS).lower() + "1",
        "s2": lambda: _pick(rng, SYMBOLS).lower() + "2",
        "s3": lambda: _pick(rng, SYMBOLS).lower() + "k",
        "set": lambda: "{" + ", ".join(str(rng.integers(1, 20)) for _ in range(3)) + "}",
        "abbr": lambda: _pick(rng, ABBREVIATIONS),
        "journal": lambda: _pick(rng, JOURNALS),
        "title": lambda: " ".join(_pick(rng, TITLE_WORDS) for _ in range(int(rng.integers(2, 5)))),
        "institution": lambda: _pick(rng, INSTITUTIONS),
        "place": lambda: _pick(rng, PLACES),
        "heading": lambda: _pick(rng, HEADINGS),
        "path": lambda: f"/usr/{_pick(rng, NOUNS)}/{_pick(rng, NOUNS)}_{rng.integers(1, 9)}.dat",
        "ident": lambda: f"{_pick(rng, VERBS)[0]}_{_pick(rng, NOUNS)}",
        "email": lambda: f"{_pick(rng, NAMES).lower()}@{_pick(rng, ('cs', 'ee', 'math'))}.edu",
    }
    sentence = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)](), template)
    sentence = sentence.replace("{{", "{").replace("}}", "}")
    sentence = re.sub(r"\b([Aa]) ([aeiou])", r"\1n \2", sentence)  # "an open", not "a open"
    return sentence[0].upper() + sentence[1:]


def report_paragraphs(sentences: int, seed: int) -> str:
    """`sentences` sentences of report text in paragraphs of 3 to 8."""
    rng = np.random.default_rng(seed)
    paragraphs, current = [], []
    for _ in range(sentences):
        current.append(fill(_pick(rng, TEMPLATES), rng))
        if len(current) >= int(rng.integers(3, 9)):
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n".join(paragraphs) + "\n"
