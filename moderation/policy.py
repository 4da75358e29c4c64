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


def _rule(raw, where: str) -> Rule:
    if isinstance(raw, str):
        return Rule(groups=((raw,),))
    if isinstance(raw, dict) and isinstance(raw.get("all"), list) and raw["all"]:
        groups = []
        for group in raw["all"]:
            if (
                not isinstance(group, list)
                or not group
                or not all(isinstance(p, str) for p in group)
            ):
                raise PolicyError(
                    f"{where}: every group of 'all' must be a non-empty list of phrases"
                )
            groups.append(tuple(group))
        return Rule(groups=tuple(groups), with_image=bool(raw.get("with_image")))
    raise PolicyError(f"{where}: a rule is a phrase or {{'all': [[...], ...]}}, not {raw!r}")


def parse_policy(data: dict) -> Policy:
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
                rules=tuple(_rule(r, f"{where}.rules") for r in raw.get("rules", [])),
                review_rules=tuple(
                    _rule(r, f"{where}.review_rules") for r in raw.get("review_rules", [])
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
        return parse_policy(json.load(handle))


def get_policy() -> Policy:
    path = Path(settings.MODERATION_POLICY_FILE)
    return _load(str(path), path.stat().st_mtime)
