"""The content policy, loaded from a JSON data file (moderation/policy.json by default).

Framework-light on purpose: the rules engine, the policy pages and the admin share these types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from django.conf import settings

ALLOW = "allow"
HOLD = "hold"
BLOCK = "block"
SEVERITY = {ALLOW: 0, HOLD: 1, BLOCK: 2}
# The file says "review"; a request that needs review is held.
_FILE_DECISIONS = {"block": BLOCK, "review": HOLD}


class PolicyError(ValueError):
    """The policy file is malformed; the message says where."""


@dataclass(frozen=True)
class Rule:
    groups: tuple[tuple[str, ...], ...]  # one phrase from every group must occur
    with_image: bool = False
    # What a moderator reads in the decision: "minor+sexual", or the phrase of a one-phrase rule.
    name: str = ""
    # Benign context: the rule does not fire when any of these phrases occurs.
    unless: tuple[str, ...] = ()
    # With two groups: the second group's phrase starts at most this many words after the
    # first group's phrase ends ("kicking a puppy", not "a horse kicking up dust"). 0: anywhere.
    within: int = 0


@dataclass(frozen=True)
class Category:
    id: str
    title: str
    summary: str
    explanation: str
    decision: str  # BLOCK or HOLD, for `rules`
    rules: tuple[Rule, ...]
    review_rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Policy:
    version: str
    categories: tuple[Category, ...]
    # OpenAI category name -> (our category id, BLOCK | HOLD)
    openai: dict[str, tuple[str, str]] = field(default_factory=dict)
    unmapped_title: str = "Possible policy violation"
    unmapped_explanation: str = "A moderator will review this request."
    unavailable_title: str = "Automatic check unavailable"
    unavailable_explanation: str = "A moderator will review this request."

    def category(self, category_id: str) -> Category | None:
        return next((c for c in self.categories if c.id == category_id), None)

    def choices(self) -> list[tuple[str, str]]:
        return [(c.id, c.title) for c in self.categories]


@dataclass(frozen=True)
class Decision:
    """The outcome of a prompt check.

    action: "allow", "hold" or "block". category / title / explanation say which policy and
    what the user is told; detail is for moderators only (matched phrases, OpenAI categories,
    the error that made the check fail closed). source: "rules", "openai" or "error".
    """

    action: str
    category: str = ""
    title: str = ""
    explanation: str = ""
    source: str = ""
    detail: str = ""
    rule: str = ""  # the rule that fired, for "rules" decisions

    @property
    def allowed(self) -> bool:
        return self.action == ALLOW

    @property
    def held(self) -> bool:
        return self.action == HOLD

    @property
    def blocked(self) -> bool:
        return self.action == BLOCK

    def worse_than(self, other: Decision) -> bool:
        return SEVERITY[self.action] > SEVERITY[other.action]


ALLOWED = Decision(action=ALLOW)


def _expand(phrases, indicators: dict[str, tuple[str, ...]], where: str) -> tuple[str, ...]:
    """A group's phrases, with every "@name" replaced by that indicator's phrases."""
    if isinstance(phrases, str):
        phrases = [phrases]
    if not isinstance(phrases, list) or not phrases or not all(isinstance(p, str) for p in phrases):
        raise PolicyError(f"{where}: every group of 'all' must be a non-empty list of phrases")
    out: list[str] = []
    for phrase in phrases:
        if phrase.startswith("@"):
            if phrase[1:] not in indicators:
                raise PolicyError(f"{where}: unknown indicator {phrase!r}")
            out.extend(indicators[phrase[1:]])
        else:
            out.append(phrase)
    return tuple(dict.fromkeys(out))


def _default_name(raw_groups) -> str:
    names = []
    for group in raw_groups:
        group = [group] if isinstance(group, str) else group
        refs = [p[1:] for p in group if p.startswith("@")]
        names.append("|".join(refs) if refs else group[0])
    return "+".join(names)


def _rule(raw, where: str, indicators: dict[str, tuple[str, ...]] | None = None) -> Rule:
    indicators = indicators or {}
    if isinstance(raw, str):
        if raw.startswith("@"):
            return Rule(groups=(_expand(raw, indicators, where),), name=raw[1:])
        return Rule(groups=((raw,),), name=raw)
    if isinstance(raw, dict) and isinstance(raw.get("all"), list) and raw["all"]:
        groups = tuple(_expand(group, indicators, where) for group in raw["all"])
        unless = _expand(raw["unless"], indicators, f"{where}.unless") if "unless" in raw else ()
        within = raw.get("within", 0)
        if not isinstance(within, int) or within < 0 or (within and len(groups) != 2):
            raise PolicyError(f"{where}: 'within' is a number of words, for a rule of two groups")
        return Rule(
            within=within,
            groups=groups,
            with_image=bool(raw.get("with_image")),
            name=str(raw.get("name") or _default_name(raw["all"])),
            unless=unless,
        )
    raise PolicyError(f"{where}: a rule is a phrase or {{'all': [[...], ...]}}, not {raw!r}")


def _indicators(data: dict, base_dir: Path | None) -> dict[str, tuple[str, ...]]:
    """Named phrase lists: {"name": [...]} or {"name": {"file": "x.txt"}} (one phrase a line)."""
    indicators: dict[str, tuple[str, ...]] = {}
    for name, raw in (data.get("indicators") or {}).items():
        if isinstance(raw, dict) and isinstance(raw.get("file"), str):
            if base_dir is None:
                raise PolicyError(f"indicators.{name}: a file needs the policy's directory")
            lines = (base_dir / raw["file"]).read_text(encoding="utf-8").splitlines()
            raw = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        # An indicator may use indicators defined before it.
        indicators[name] = _expand(raw, indicators, f"indicators.{name}")
    return indicators


def parse_policy(data: dict, base_dir: Path | None = None) -> Policy:
    """The policy in `data`; `base_dir` is where indicator files named in it are read from."""
    indicators = _indicators(data, base_dir)
    categories = []
    seen = set()
    for index, raw in enumerate(data.get("categories") or []):
        where = f"categories[{index}]"
        try:
            cid = raw["id"]
            decision = _FILE_DECISIONS[raw["decision"]]
            category = Category(
                id=cid,
                title=raw["title"],
                summary=raw.get("summary", ""),
                explanation=raw["explanation"],
                decision=decision,
                rules=tuple(_rule(r, f"{where}.rules", indicators) for r in raw.get("rules", [])),
                review_rules=tuple(
                    _rule(r, f"{where}.review_rules", indicators)
                    for r in raw.get("review_rules", [])
                ),
            )
        except KeyError as exc:
            raise PolicyError(f"{where}: missing or invalid {exc}") from None
        if cid in seen:
            raise PolicyError(f"{where}: duplicate id {cid!r}")
        seen.add(cid)
        categories.append(category)
    if not categories:
        raise PolicyError("the policy has no categories")
    openai = {}
    for category in data["categories"]:
        for name, decision in (category.get("openai") or {}).items():
            if decision not in _FILE_DECISIONS:
                raise PolicyError(f"{category['id']}.openai.{name}: decision must be block/review")
            openai[name] = (category["id"], _FILE_DECISIONS[decision])
    unmapped = data.get("openai_unmapped") or {}
    unavailable = data.get("check_unavailable") or {}
    return Policy(
        version=str(data.get("version", "")),
        categories=tuple(categories),
        openai=openai,
        unmapped_title=unmapped.get("title", Policy.unmapped_title),
        unmapped_explanation=unmapped.get("explanation", Policy.unmapped_explanation),
        unavailable_title=unavailable.get("title", Policy.unavailable_title),
        unavailable_explanation=unavailable.get("explanation", Policy.unavailable_explanation),
    )


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> Policy:
    with open(path, encoding="utf-8") as handle:
        return parse_policy(json.load(handle), Path(path).parent)


def get_policy() -> Policy:
    path = Path(settings.MODERATION_POLICY_FILE)
    return _load(str(path), path.stat().st_mtime)
