"""The built-in moderation rules against the labelled evaluation set (labelled.jsonl).

    python -m benchmarks.moderation                  # offline rules only
    python -m benchmarks.moderation --openai         # also rules + OpenAI check against the fake
    python -m benchmarks.moderation --openai --fake-mode flag:violence

Prints recall (blocked or held) and false-positive rate per category and overall, the time per
prompt on one core, and every miss. Exit status 0 only when the targets are met (>= 97 % of the
disallowed prompts stopped, <= 2 % of the benign ones) and, with --openai, the combination stops
every prompt the rules alone stop.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SET = Path(__file__).with_name("labelled.jsonl")
RECALL_TARGET, FP_TARGET = 0.97, 0.02


def load_rows(path: Path = SET) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@dataclass
class Report:
    per_category: dict[str, dict[str, int]] = field(default_factory=dict)
    misses: list[dict] = field(default_factory=list)  # disallowed rows that were allowed
    false_positives: list[tuple[dict, str]] = field(default_factory=list)  # (row, why)
    stopped: set[str] = field(default_factory=set)  # prompts stopped, for comparisons

    @property
    def disallowed(self) -> int:
        return sum(c["stop"] for c in self.per_category.values())

    @property
    def benign(self) -> int:
        return sum(c["allow"] for c in self.per_category.values())

    @property
    def recall(self) -> float:
        caught = sum(c["caught"] for c in self.per_category.values())
        return caught / self.disallowed if self.disallowed else 1.0

    @property
    def false_positive_rate(self) -> float:
        wrong = sum(c["wrong"] for c in self.per_category.values())
        return wrong / self.benign if self.benign else 0.0


def evaluate(rows: list[dict], check: Callable[[str], object]) -> Report:
    """Run `check` (prompt -> Decision) over labelled rows; held and blocked count as stopped."""
    report = Report()
    for row in rows:
        counts = report.per_category.setdefault(
            row["category"], {"stop": 0, "caught": 0, "allow": 0, "wrong": 0}
        )
        decision = check(row["prompt"])
        stopped = not decision.allowed
        if stopped:
            report.stopped.add(row["prompt"])
        if row["label"] == "stop":
            counts["stop"] += 1
            counts["caught"] += stopped
            if not stopped:
                report.misses.append(row)
        else:
            counts["allow"] += 1
            counts["wrong"] += stopped
            if stopped:
                report.false_positives.append((row, f"{decision.action} {decision.detail}"))
    return report


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f} %" if whole else "    -  "


def print_report(title: str, report: Report) -> None:
    print(f"\n{title}")
    print(f"{'category':<20} {'disallowed':>10} {'recall':>8} {'benign':>7} {'FP rate':>8}")
    for category, c in sorted(report.per_category.items()):
        print(
            f"{category:<20} {c['stop']:>10} {_pct(c['caught'], c['stop']):>8}"
            f" {c['allow']:>7} {_pct(c['wrong'], c['allow']):>8}"
        )
    print(
        f"{'overall':<20} {report.disallowed:>10} {100 * report.recall:6.1f} %"
        f" {report.benign:>7} {100 * report.false_positive_rate:6.1f} %"
    )
    print(f"misses ({len(report.misses)}):")
    for row in report.misses:
        print(f"  [{row['category']}] {row['prompt']!r}  ({row.get('note') or '-'})")
    print(f"benign stopped ({len(report.false_positives)}):")
    for row, why in report.false_positives:
        print(f"  [{row['category']}] {row['prompt']!r} -> {why}")


def time_per_prompt(rows: list[dict], check: Callable[[str], object], repeat: int) -> float:
    """CPU milliseconds per prompt (process time: one core, not what other jobs take)."""
    prompts = [row["prompt"] for row in rows]
    for prompt in prompts:  # warm the compiled patterns and caches
        check(prompt)
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        for prompt in prompts:
            check(prompt)
        best = min(best, time.process_time() - started)
    return 1000 * best / len(prompts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.moderation", description=__doc__)
    parser.add_argument("--set", type=Path, default=SET, help="labelled JSONL file")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes (the best counts)")
    parser.add_argument(
        "--openai", action="store_true", help="also run prompt_check with the OpenAI check on"
    )
    parser.add_argument(
        "--fake-mode", default="clean", help="the fake's answer: clean, flag:<cats>, 500, ..."
    )
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    logging.disable(logging.INFO)  # one line per OpenAI request and per stop otherwise
    from django.test.utils import override_settings

    from moderation import rules
    from moderation.policy import get_policy

    rows = load_rows(args.set)
    policy = get_policy()

    def offline(prompt: str):
        return rules.check_text(policy, prompt)

    report = evaluate(rows, offline)
    print_report(f"offline rules ({len(rows)} prompts, {args.set.name})", report)
    ms = time_per_prompt(rows, offline, args.repeat)
    print(f"\ntime per prompt: {ms:.3f} ms CPU (best of {args.repeat} passes, one core)")
    ok = report.recall >= RECALL_TARGET and report.false_positive_rate <= FP_TARGET
    print(
        f"targets: recall {100 * report.recall:.1f} % (>= {100 * RECALL_TARGET:.0f} %), "
        f"benign stopped {100 * report.false_positive_rate:.1f} % (<= {100 * FP_TARGET:.0f} %)"
        f" -> {'met' if ok else 'NOT MET'}"
    )

    if args.openai:
        from moderation.services import prompt_check
        from tests.moderation.fakeopenai import FakeOpenAI

        fake = FakeOpenAI().start()
        fake.mode = args.fake_mode
        try:
            with override_settings(
                OPENAI_API_KEY="sk-bench-fake",
                OPENAI_BASE_URL=fake.base_url,
                OPENAI_MODERATION_TIMEOUT=2.0,
            ):
                combined = evaluate(
                    rows, lambda prompt: prompt_check(user=None, prompt=prompt, images=[])
                )
        finally:
            fake.stop()
        print_report(f"rules + OpenAI check (fake mode {args.fake_mode!r})", combined)
        lost = sorted(report.stopped - combined.stopped)
        print(f"stopped by the rules but not by the combination: {len(lost)}")
        for prompt in lost:
            print(f"  {prompt!r}")
        ok = ok and not lost and combined.recall >= report.recall
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
