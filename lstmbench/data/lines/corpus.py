"""The default text for generated lines: fixed prose and technical-report text built offline
from templates (so a seed rebuilds the same lines on any machine), mixed with generated
numbers, citations, cross-references and formulas; and the characters it can produce."""

from __future__ import annotations

import string
from functools import lru_cache

import numpy as np

from lstmbench.data.lines.report_text import HEADINGS, NAMES, formula, reference, report_paragraphs

PROSE = """\
This paper describes a simple method for measuring how well recurrent networks learn to read
printed text. The method has three stages. First, each scanned page is cut into lines, and
every line is straightened and scaled to a fixed height of 48 pixels. Second, a network reads
the line one column at a time, from left to right (and, in the bidirectional case, also from
right to left). Third, the outputs are aligned with the transcript by the forward-backward
algorithm, and the error is measured as the edit distance divided by the length of the text.
In our experiments (Section 4), the error fell below 1% after about 200,000 lines; see Table 2
and Fig. 3 for details. The learning rate was 0.0001, the momentum 0.9, and the batch size 1.
Why should this work at all? A line of text is a long sequence: a typical line has 60 to 90
characters and more than 1,000 columns. The network must remember what it has seen for many
steps, yet it must also forget quickly when a new character begins. Gated cells (the input,
forget and output gates of an LSTM) make both possible; plain recurrent units do not.
We compared eleven variants on two tasks. On the digit task, every variant reached 1.2% to
1.5% error; on the text task, the differences were larger (0.6% vs. 2.8%). Peephole
connections did not help, and a linear output nonlinearity was about as good as tanh.
Several questions remain open. How does the error depend on the number of hidden units, say
50, 100 or 200? Does the result hold for other scripts, such as Greek or Cyrillic? What is the
effect of noise, blur and skew on the accuracy of the trained model? We hope to answer these
in a later report [Graves et al. 2009; Hochreiter & Schmidhuber 1997].
Let G = (V, E) be a graph with n = |V| vertices and m = |E| edges. A matching M is a set of
edges, no two of which share a vertex; its size is |M|. The algorithm runs in O(n^3) time and
uses O(m + n) space. For n > 10,000 this is too slow, so we use the heuristic of Section 5.2.
The results are summarized below. Method A: 94.3% correct, 12.5 s per page. Method B: 97.1%
correct, 31.0 s per page. Method C (ours): 99.4% correct, 8.2 s per page. All timings are on a
single processor at 2.4 GHz with 16 GB of memory; the code is written in C++ and Python.
Acknowledgments. We thank the reviewers for their careful reading and helpful comments. This
work was supported in part by grant no. 02-117/B from the Foundation for Research, and by a
fellowship of the University of Kaiserslautern, Germany.
Categories and Subject Descriptors: I.2.6 [Artificial Intelligence]: Learning; I.5.4 [Pattern
Recognition]: Applications - text processing. General Terms: Algorithms, Experimentation,
Measurement. Additional Key Words and Phrases: handwriting, OCR, neural networks, sequences.
Received May 1998; revised January 2000; accepted March 2001. Authors' address: Department of
Computer Science, 1234 University Avenue, Springfield, IL 62704; e-mail: editor@journal.org.
Permission to copy without fee all or part of this material is granted provided that the
copies are not made or distributed for direct commercial advantage, the notice and the title
of the publication appear, and notice is given that copying is by permission of the
Association. To copy otherwise, or to republish, requires a fee and/or specific permission.
The printing industry has changed more in the last thirty years than in the three hundred
before. Type was once set by hand, one letter at a time; later it was cast in lines of hot
metal; today it is drawn on a screen. Yet the shapes of the letters have hardly changed: a
reader from 1900 would have no trouble with a page from 2020, and most readers do not notice
the typeface at all. That is exactly what a good typeface is for.
Example 3. Suppose that x = 2.5 and y = -0.75; then x + y = 1.75, x * y = -1.875, and
x / y = -3.333... (rounded to four digits). If the input is "abc", the output is 'cba'; if it
is empty, the program prints ``nothing to do'' and stops. Note: the case #17 is special.
Questions about the benchmark should be sent to the authors. The data, the programs and the
trained models are available on request; the total size is about 4.7 GB (compressed). Please
cite this work as: Smith, J., Jones, K. and Miller, L. Reading printed lines with recurrent
networks. Journal of Pattern Analysis 12, 3 (2004), 211-239.
"""

REPORT_SENTENCES = 6000  # about 80,000 words: 2,700 stretches, so lines rarely repeat text
REPORT_SEED = 1993  # fixed: the corpus, and so every generated set, is the same everywhere
# Every character the built-in text produces: printable ASCII and a few symbols of report
# typesetting. UW3's transcripts use a subset (tests/test_lines_text.py checks both ways).
ALPHABET = frozenset(string.ascii_letters + string.digits + string.punctuation + " ±×°§")


@lru_cache(maxsize=1)
def builtin_corpus() -> str:
    """The built-in text: the fixed prose, then the generated report text."""
    return PROSE + report_paragraphs(REPORT_SENTENCES, REPORT_SEED)


def corpus_words(text: str) -> list[str]:
    """The words of a corpus text, in order."""
    return text.split()


def generated_token(rng: np.random.Generator) -> str:
    """A number, citation, cross-reference or formula, as found in printed reports."""
    kind = rng.integers(12)
    if kind == 0:
        return f"{rng.integers(1, 100000):,}"
    if kind == 1:
        return f"{rng.integers(0, 1000)}.{rng.integers(0, 100):02d}"
    if kind == 2:
        return f"({rng.integers(1, 40)})"
    if kind == 3:
        return reference(rng)
    if kind == 4:
        return f"{rng.integers(1, 10)}.{rng.integers(1, 10)}"
    if kind == 5:
        return f"{rng.integers(0, 100)}%"
    if kind == 6:
        return formula(rng).replace(" ", "")
    if kind == 7:
        return f"{rng.integers(1, 999)}-{rng.integers(1, 999)}"
    if kind == 8:
        return f"Fig. {rng.integers(1, 15)}"
    if kind == 9:
        return f"Sec. {rng.integers(1, 9)}.{rng.integers(1, 9)}"
    if kind == 10:
        return f"pp. {rng.integers(1, 500)}-{rng.integers(500, 999)}"
    return (
        HEADINGS[rng.integers(len(HEADINGS))]
        if rng.random() < 0.5
        else NAMES[rng.integers(len(NAMES))]
    )
