"""How examples become text for a language model: marked tokens and the prompts' wording.

``mark(example)`` wraps the tokens a unit fires on in ``<<`` ``>>`` (runs of adjacent
firing tokens share one pair; a token's leading space stays outside):
``"In <<1999>> he left"``. The explainer's and scorers' prompts are few-shot: small
local models answer in the expected form only when shown it, and the answer's start is
prefilled ("Explanation:", "Answer:").
"""

from __future__ import annotations

from collections.abc import Sequence

from mechscope.autointerp.backends.base import Prompt
from mechscope.autointerp.records import Example

OPEN, CLOSE = "<<", ">>"


def mark(example: Example, threshold: float, positions: Sequence[int] | None = None) -> str:
    """The example's text with the firing tokens (or the given ``positions``) marked."""
    on = set(positions) if positions is not None else {i for i, a in enumerate(example.activations) if a > threshold}
    parts: list[str] = []
    inside = False
    for i, token in enumerate(example.str_tokens):
        if i in on and not inside:
            stripped = token.lstrip()
            parts.append(token[: len(token) - len(stripped)] + OPEN + stripped)
            inside = True
        elif i not in on and inside:
            parts.append(CLOSE + token)
            inside = False
        else:
            parts.append(token)
    if inside:
        parts.append(CLOSE)
    return one_line("".join(parts))


def one_line(text: str) -> str:
    """Newlines and tabs shown as spaces, so each example stays on one numbered line."""
    return " ".join(text.replace("\t", " ").split("\n")).strip()


def numbered(texts: Sequence[str]) -> str:
    return "\n".join(f"{i}. {text}" for i, text in enumerate(texts, start=1))


# ---------------------------------------------------------------------------- explaining
EXPLAIN_SYSTEM = (
    "We study the units of a language model. Each unit fires on particular tokens. You see texts in which "
    "the tokens it fires on are marked <<like this>>. Say in a few words what the marked tokens have in common."
)
_EXPLAIN_SHOTS = (
    ("1. the <<cat>> sat on the mat\n2. a big <<dog>> barked\n3. my <<horse>> ran away\n4. two <<birds>> sang",
     "names of animals"),
    ("1. x = <<[>>1, 2<<]>>\n2. print<<(>>a<<)>>\n3. f<<(>>x, y<<)>>\n4. list<<[>>0<<]>>", "brackets in code"),
    ("1. it was <<very>> cold\n2. a <<really>> good film\n3. <<extremely>> fast\n4. <<quite>> small",
     "words that intensify an adjective"),
)
CONTRAST_HEADER = "Texts in which it does NOT fire:"


def explain_prompt(activating: Sequence[str], negatives: Sequence[str] = ()) -> Prompt:
    """The explainer's chat: three worked examples, then the unit's marked texts (and,
    for the contrastive explainer, texts where it stays off)."""
    turns: list[tuple[str, str]] = [("system", EXPLAIN_SYSTEM)]
    for texts, answer in _EXPLAIN_SHOTS:
        turns += [("user", f"Texts:\n{texts}"), ("assistant", f"Explanation: {answer}")]
    query = f"Texts:\n{numbered(activating)}"
    if negatives:
        query += f"\n{CONTRAST_HEADER}\n{numbered(negatives)}"
    turns.append(("user", query))
    return Prompt.chat(*turns, prefill="Explanation:")


def clean_explanation(text: str) -> str:
    """The first non-empty line of a reply, without quotes, a trailing full stop or a repeated label."""
    line = next((line.strip() for line in text.split("\n") if line.strip()), "")
    if line.lower().startswith("explanation:"):
        line = line[len("explanation:") :].strip()
    line = line.rstrip(".").strip()
    if len(line) > 1 and line[0] == line[-1] and line[0] in "\"'`":
        line = line[1:-1].strip()  # a reply that is all one quotation
    return line


# ---------------------------------------------------------------------------- judging
JUDGE_SYSTEM = (
    "You check descriptions of the units of a language model. A description says which tokens a unit fires on. "
    "Answer Yes or No."
)
_DETECT_SHOTS = (("colours", "She wore a red dress to the party.", "Yes"),
                 ("colours", "The meeting starts at noon on Monday.", "No"))
_FUZZ_SHOTS = (("colours", "She wore a <<red>> dress to the party.", "Yes"),
               ("colours", "She wore a red dress <<to>> the party.", "No"))


def detection_prompt(explanation: str, text: str) -> Prompt:
    """Does the unit described by ``explanation`` fire anywhere in ``text``?"""
    return _judge(_DETECT_SHOTS, _detect_question, explanation, text)


def _judge(shots, question, explanation: str, text: str) -> Prompt:
    """A yes/no chat: worked examples, then the question about ``text``."""
    turns: list[tuple[str, str]] = [("system", JUDGE_SYSTEM)]
    for description, shot, answer in shots:
        turns += [("user", question(description, shot)), ("assistant", f"Answer: {answer}")]
    turns.append(("user", question(explanation, text)))
    return Prompt.chat(*turns, prefill="Answer:")


def _detect_question(explanation: str, text: str) -> str:
    return f"Description: {explanation}\nText: {text}\nDoes the text contain tokens that the description fits?"


def fuzzing_prompt(explanation: str, marked: str) -> Prompt:
    """Are the marked tokens of ``marked`` the ones ``explanation`` describes?"""
    return _judge(_FUZZ_SHOTS, _fuzz_question, explanation, marked)


def _fuzz_question(explanation: str, marked: str) -> str:
    return f"Description: {explanation}\nText: {marked}\nDoes the description fit the tokens marked <<like this>>?"


def intruder_prompt(marked: Sequence[str]) -> Prompt:
    """Which of these texts does not belong with the others?"""
    return Prompt.chat(
        ("system", "In all but one of these texts, the marked tokens <<like this>> share something. "
                   "Name the number of the text that does not fit."),
        ("user", f"Texts:\n{numbered(marked)}\nWhich text is the odd one out?"),
        prefill="The odd one out is text",
    )


# ---------------------------------------------------------------------------- simulating
SIMULATION_HEADER = (
    "We're studying neurons in a neural network. Each neuron looks for some particular thing in a short "
    "document. Look at an explanation of what the neuron does, and try to predict its activations on each "
    "token.\n\nThe activation format is token<tab>activation, activations go from 0 to 9, \"unknown\" "
    "indicates an unknown activation. Most activations will be 0.\n\n"
)
_SIMULATION_SHOT = (
    "Neuron 1\nExplanation of neuron 1 behavior: the main thing this neuron does is find numbers.\n"
    "Activations:\n<start>\nIn\t0\n \t0\n1999\t9\n,\t0\n about\t0\n 30\t8\n people\t0\n<end>\n\n"
)
UNKNOWN = "unknown"


def simulation_text(explanation: str, str_tokens: Sequence[str]) -> tuple[str, list[int]]:
    """Bills et al.'s all-at-once prompt and the character offset of each token's slot."""
    text = SIMULATION_HEADER + _SIMULATION_SHOT
    text += f"Neuron 2\nExplanation of neuron 2 behavior: the main thing this neuron does is find {explanation}.\n"
    text += "Activations:\n<start>\n"
    slots = []
    for token in str_tokens:
        shown = token.replace("\n", "\\n").replace("\t", "\\t") or " "
        text += f"{shown}\t"
        slots.append(len(text))
        text += f"{UNKNOWN}\n"
    return text + "<end>\n", slots
