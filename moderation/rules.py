"""Built-in policy rules: normalise the prompt, then match the policy's phrases on whole words.

Normalisation defeats the cheap tricks (accents, case, look-alike letters, leetspeak, letters
spaced or dotted apart, stretched letters, zero-width characters); whole-word matching keeps
innocent words that merely contain a term ("skill", "class", "therapist", "Assassin's Creed")
from tripping.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from .policy import ALLOWED, BLOCK, HOLD, Category, Decision, Policy, Rule

# Cyrillic and Greek letters that look like Latin ones (after NFKD and casefold).
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
        "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g",
        "һ": "h", "ԛ": "q", "ԝ": "w", "ѡ": "w", "ӏ": "l", "ɑ": "a", "ı": "i", "ȷ": "j", "ǀ": "l",
        "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
        "υ": "u", "χ": "x", "η": "n", "ω": "w", "γ": "y", "ϲ": "c", "ϳ": "j", "ϱ": "p", "ѵ": "v",
        "ß": "ss", "ø": "o", "ł": "l", "đ": "d", "ħ": "h", "æ": "ae", "œ": "oe", "þ": "p",
    }
)  # fmt: skip
_LEET = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s", "!": "i",
         "€": "e", "|": "l", "+": "t"}  # fmt: skip
# "1" reads as i or l ("k1ll", "1diot"): both readings are tried.
_LEET_ONE = ("i", "l")
_LEET_READINGS = tuple(str.maketrans({**_LEET, "1": one}) for one in _LEET_ONE)
_ASCII_CONTROLS = dict.fromkeys([*range(0x20), 0x7F])  # category Cc
_SEPARATORS = re.compile(r"[^a-z0-9]+")
_WORDS = re.compile(r"[a-z0-9]+")


def _base(text: str) -> str:
    """Strip accents and invisible characters, casefold, map look-alike letters."""
    if text.isascii():  # most prompts: nothing to decompose, only control characters to drop
        return text.translate(_ASCII_CONTROLS).lower()
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(
        ch for ch in decomposed if unicodedata.category(ch) not in ("Mn", "Me", "Cf", "Cc")
    )
    return kept.casefold().translate(_HOMOGLYPHS)


def _join_spaced_letters(text: str) -> list[str]:
    """'k i l l' / 'k.i.l.l' -> 'kill': runs of single letters become one word.

    Inside a run, a gap unlike the run's own separator ("N.U.D.E  t.e.e.n", "s e x y  k i d s",
    "c-o-o-k m-e-t-h") starts a new word. A leading 'a' or 'i' of a run of four or more is
    kept apart ("make a b o m b").
    """
    out: list[str] = []
    run: list[str] = []
    run_sep: str | None = None

    def flush():
        if len(run) >= 2:
            if run[0] in ("a", "i") and len(run) >= 4:
                out.append(run[0])
                out.append("".join(run[1:]))
            else:
                out.append("".join(run))
        else:
            out.extend(run)
        run.clear()

    position = 0
    for match in _WORDS.finditer(text):
        sep, token = text[position : match.start()], match.group(0)
        position = match.end()
        if len(token) == 1 and token.isalpha():
            if run:
                if run_sep is None:
                    run_sep = sep
                elif (
                    len(run) == 2
                    and run_sep.isspace()
                    and sep.isspace()
                    and len(sep) < len(run_sep)
                ):
                    # The wide gap came first: the run's first letter was a word of its own.
                    out.append(run.pop(0))
                    run_sep = sep
                elif sep != run_sep and any(ch.isspace() for ch in sep):
                    flush()
                    run_sep = None
            run.append(token)
        else:
            flush()
            run_sep = None
            out.append(token)
    flush()
    return out


def _stretchable(word: str) -> str:
    """A regex for `word` accepting stretched letters: 'kill' matches 'kiiilll', not 'kil'.

    'kill' gives 'kk*ii*lll*': starting with a plain letter rather than 'k+' lets the regex
    engine reject an alternative on one character comparison (see _any_phrase).
    """
    return "".join(
        re.escape(m.group(0)) + re.escape(m.group(1)) + "*" for m in re.finditer(r"(.)\1*", word)
    )


_NUMBER_NAMES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
)  # fmt: skip
_NUMBER_WORDS = {word: n for n, word in enumerate(_NUMBER_NAMES)}
_AGE_NUMBER = r"(\d{1,2}|" + "|".join(_NUMBER_WORDS) + r")"
# "14 year old", "13yo", "twelve-year-old", "aged 11", "age: 9", "a boy of 10", "she is 15",
# "girl, 12,", "canonically 12": a person's age written as a number or a word.
_AGE = re.compile(
    r"(?<![\w.])"
    + _AGE_NUMBER
    + r"[\s-]*(?:y\.?\s?o\b\.?|y/o|(?:yrs?|years?)[\s-]*(?:olds?|of\W+age)\b)"
    r"|\bage[ds]?\W{0,3}" + _AGE_NUMBER + r"\b"
    r"|\b(?:girl|boy|kid|child|daughter|son|she|he|who)\b\W{1,3}(?:is\W+|of\W+|aged?\W+|"
    r"just\W+turned\W+|canonically\W+)?" + _AGE_NUMBER + r"\b(?![\s-]*(?:%|percent|min|h\b|hours?|"
    r"days?|weeks?|months?|times|feet|ft|foot|meters?|m\b|kg|lbs?|pounds?|cm|inch|am|pm|o.?clock))"
    r"|\bcanonically\W+" + _AGE_NUMBER + r"\b"
)
# A marker word the policy's `minor` indicator lists (a prompt that types it only makes the
# check stricter).
MINOR_AGE_MARKER = "qqminorageqq"


def _age_markers(base: str) -> list[str]:
    """MINOR_AGE_MARKER when the text gives someone an age under 18."""
    for match in _AGE.finditer(base):
        number = next(group for group in match.groups() if group)
        age = int(number) if number.isdigit() else _NUMBER_WORDS[number]
        if age < 18:
            return [MINOR_AGE_MARKER]
    return []


def normalise(text: str) -> list[str]:
    """Every reading of `text` the rules are matched against: space-separated words."""
    base = _base(text)
    markers = _age_markers(base)
    # The plain reading too, so that leetspeak mapping never hides a literal match.
    mapped = dict.fromkeys([*(base.translate(leet) for leet in _LEET_READINGS), base])
    return list(
        dict.fromkeys(" ".join([*_join_spaced_letters(reading), *markers]) for reading in mapped)
    )


# A phrase matches whole words: from the start of a reading or a space, to a space or the end.
_WORD_START, _WORD_END = r"(?:^|(?<= ))", r"(?= |$)"


@lru_cache(maxsize=8192)
def _phrase_pattern(phrase: str) -> re.Pattern:
    return re.compile(f"{_WORD_START}(?:{_phrase_spellings(phrase)}){_WORD_END}")


def _phrase_words(phrase: str) -> list[str]:
    words = [w for w in _SEPARATORS.split(_base(phrase.rstrip("* "))) if w]
    if not words:
        raise ValueError(f"empty phrase {phrase!r}")
    return words


def _phrase_spellings(phrase: str) -> str:
    """The regex alternatives that spell the phrase, without the word boundaries."""
    wildcard = phrase.rstrip().endswith("*")
    words = _phrase_words(phrase)
    tail = "[a-z0-9]*" if wildcard else ""
    spaced = r"\ ".join(_stretchable(w) for w in words) + tail
    options = [spaced]
    if len(words) > 1:  # "k i l l y o u" is read as one word "killyou"
        options.append(_stretchable("".join(words)) + tail)
    return "|".join(options)


def _phrase_found(phrase: str, readings: list[str]) -> bool:
    pattern = _phrase_pattern(phrase)
    return any(pattern.search(reading) for reading in readings)


def _close_in_order(first: list[str], second: list[str], readings: list[str], within: int):
    """Whether a phrase of `second` starts at most `within` words after one of `first` ends."""
    for reading in readings:
        ends = [
            reading.count(" ", 0, m.end())
            for phrase in first
            for m in _phrase_pattern(phrase).finditer(reading)
        ]
        if not ends:
            continue
        for phrase in second:
            for m in _phrase_pattern(phrase).finditer(reading):
                start = reading.count(" ", 0, m.start())
                if any(0 < start - end <= within + 1 for end in ends):
                    return True
    return False


def _rule_matches(
    rule: Rule,
    found: Callable[[str], bool] | set[str],
    has_image: bool,
    readings: list[str] = (),
) -> list[str] | None:
    """The phrases that made the rule match, or None.

    `found` is the set of phrases that occur, or a function telling whether one does;
    `readings` (normalise) are needed for rules whose phrases must be close and in order.
    """
    if rule.with_image and not has_image:
        return None
    if isinstance(found, set):
        # Groups hold hundreds of phrases (the public figures); the found set holds a few.
        cached = _rule_sets.get(id(rule))
        if cached is None or cached[0] is not rule:
            cached = _rule_cache(rule)
        hits = []
        for group, phrases in zip(cached[1], rule.groups, strict=True):
            hit = group & found
            if not hit:
                return None
            # The first in the policy's order, as the function-based path below names it.
            hits.append(next(iter(hit)) if len(hit) == 1 else next(p for p in phrases if p in hit))
        if rule.unless and not found.isdisjoint(cached[2]):
            return None
        if rule.within and not _close_in_order(
            [p for p in rule.groups[0] if p in found],
            [p for p in rule.groups[1] if p in found],
            readings,
            rule.within,
        ):
            return None
        return hits
    hits = []
    for group in rule.groups:
        hit = next((phrase for phrase in group if found(phrase)), None)
        if hit is None:
            return None
        hits.append(hit)
    if any(found(phrase) for phrase in rule.unless):
        return None
    if rule.within and not _close_in_order(
        [p for p in rule.groups[0] if found(p)],
        [p for p in rule.groups[1] if found(p)],
        readings,
        rule.within,
    ):
        return None
    return hits


_rule_sets: dict[int, tuple[Rule, tuple[frozenset[str], ...], frozenset[str]]] = {}


def _rule_cache(rule: Rule):
    cached = _rule_sets.get(id(rule))
    if cached is None or cached[0] is not rule:
        cached = (rule, tuple(frozenset(g) for g in rule.groups), frozenset(rule.unless))
        _rule_sets[id(rule)] = cached
    return cached


def _decision(category: Category, action: str, rule: Rule, phrases: list[str]) -> Decision:
    return Decision(
        action=action,
        category=category.id,
        title=category.title,
        explanation=category.explanation
        if action == category.decision
        else (
            "This request is waiting for a moderator because it may fall under our policy on "
            f"{category.title.lower()}. We will tell you what they decide."
        ),
        source="rules",
        rule=rule.name,
        detail=f"{category.id} / {rule.name}: " + " + ".join(repr(p) for p in phrases),
    )


@lru_cache(maxsize=65536)
def _collapsed(word: str) -> str:
    """'kiiilll' -> 'kil': a stretched spelling and the word itself have the same key."""
    return _RUNS.sub(r"\1", word)


_RUNS = re.compile(r"(.)\1+")


@dataclass(frozen=True)
class _PhraseIndex:
    """Which of a policy's phrases occur in a text, by a dictionary look-up per word.

    A phrase's words, with repeated letters collapsed, are its keys: a text word can only be
    the start of a phrase when its collapsed form is the phrase's first key (or, for a
    wildcard phrase of one word, starts with it). Those few candidates are then confirmed by
    their own patterns (_phrase_found), so the index finds exactly what trying every phrase
    would, in a few dozen dictionary look-ups instead of a regex per phrase: with about 1,500
    phrases that is 0.1 ms where one search per phrase takes several.
    """

    exact: dict[str, tuple[str, ...]]  # collapsed first word (or joined words) -> phrases
    prefix: dict[str, tuple[str, ...]]  # collapsed prefix of a one-word wildcard -> phrases
    prefix_lengths: tuple[int, ...]
    # Every phrase of each category's rules and review rules, in the policy's order.
    category_phrases: tuple[frozenset[str], ...]

    def candidates(self, readings: list[str]) -> set[str]:
        out: set[str] = set()
        exact, prefix, lengths = self.exact, self.prefix, self.prefix_lengths
        for word in {w for reading in readings for w in reading.split(" ")}:
            key = _collapsed(word)
            if key in exact:
                out.update(exact[key])
            for length in lengths:
                if length > len(key):
                    break
                found = prefix.get(key[:length])
                if found:
                    out.update(found)
        return out

    def phrases_found(self, readings: list[str]) -> set[str]:
        return {phrase for phrase in self.candidates(readings) if _phrase_found(phrase, readings)}


_indexes: dict[int, tuple[Policy, _PhraseIndex | None]] = {}


def _any_phrase(policy: Policy) -> _PhraseIndex | None:
    """The policy's phrase index; None when a rule would match without any phrase."""
    cached = _indexes.get(id(policy))
    if cached is not None and cached[0] is policy:
        return cached[1]
    rules = [rule for c in policy.categories for rule in (*c.rules, *c.review_rules)]
    index = None
    if all(rule.groups for rule in rules):
        phrases = sorted(
            {phrase for rule in rules for group in (*rule.groups, rule.unless) for phrase in group}
        )
        exact: dict[str, list[str]] = {}
        prefix: dict[str, list[str]] = {}
        for phrase in phrases:
            words = [_collapsed(w) for w in _phrase_words(phrase)]
            wildcard = phrase.rstrip().endswith("*")
            joined = _collapsed("".join(words))
            if len(words) == 1:
                (prefix if wildcard else exact).setdefault(words[0], []).append(phrase)
                continue
            exact.setdefault(words[0], []).append(phrase)  # only the last word is a wildcard
            # "k i l l y o u" read as one word "killyou" (_phrase_spellings)
            (prefix if wildcard else exact).setdefault(joined, []).append(phrase)
        index = _PhraseIndex(
            exact={key: tuple(group) for key, group in exact.items()},
            prefix={key: tuple(group) for key, group in prefix.items()},
            prefix_lengths=tuple(sorted({len(key) for key in prefix})),
            category_phrases=tuple(
                frozenset(
                    phrase
                    for rule in (*c.rules, *c.review_rules)
                    for group in rule.groups
                    for phrase in group
                )
                for c in policy.categories
            ),
        )
    _indexes[id(policy)] = (policy, index)
    return index


def check_text(policy: Policy, text: str, *, has_image: bool = False) -> Decision:
    """The most severe decision any category's rules give for `text`."""
    if not text or not text.strip():
        return ALLOWED
    readings = normalise(text)
    index = _any_phrase(policy)
    if index is None:
        categories = policy.categories

        def found(phrase: str) -> bool:
            return _phrase_found(phrase, readings)
    else:
        found_phrases = index.phrases_found(readings)
        if not found_phrases:
            return ALLOWED
        found = found_phrases
        # Every rule needs a phrase: a category none of whose phrases occur decides nothing.
        categories = [
            category
            for category, phrases in zip(policy.categories, index.category_phrases, strict=True)
            if not found_phrases.isdisjoint(phrases)
        ]
    worst = ALLOWED
    for category in categories:
        for rule in category.rules:
            phrases = _rule_matches(rule, found, has_image, readings)
            if phrases is not None:
                candidate = _decision(category, category.decision, rule, phrases)
                if candidate.action == BLOCK:
                    return candidate
                if candidate.worse_than(worst):
                    worst = candidate
        if worst.action == HOLD:
            continue
        for rule in category.review_rules:
            phrases = _rule_matches(rule, found, has_image, readings)
            if phrases is not None:
                worst = _decision(category, HOLD, rule, phrases)
                break
    return worst
