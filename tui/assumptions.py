"""The key inputs a person may change in the terminal UI, with units and allowed ranges."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from simulator.scenario import Scenario, load_scenario
from simulator.scenario.loading import field_at
from simulator.scenario.reference import allowed_range


@dataclass(frozen=True)
class Assumption:
    """One editable input: its dotted scenario key, label, unit, current value and range."""

    key: str
    label: str
    unit: str
    value: float | int
    allowed: str
    integer: bool = False


def assumptions(scenario: Scenario) -> list[Assumption]:
    """The editable inputs of `scenario`: plan prices, activation and time to value of the
    onboarding flows its segments use, invites, acceptance, sBG churn, paid budget, trial length."""
    money = f"{scenario.currency}/seat/month"
    keys: list[tuple[str, str, str]] = [
        (f"pricing.plans.{plan}.price_per_seat", f"{plan} price", money) for plan in scenario.pricing.plans
    ]
    for flow in dict.fromkeys(segment.flow for segment in scenario.segments.values()):
        keys.append((f"onboarding.{flow}.activation_probability", f"{flow} activation", "probability"))
        keys.append((f"onboarding.{flow}.time_to_value.median_days", f"{flow} time to value", "days (median)"))
    keys += [
        ("virality.invites_per_user", "invites per user", "per activated user"),
        ("virality.acceptance_rate", "invite acceptance", "probability"),
        ("churn.alpha", "churn α (sBG)", "shape"),
        ("churn.beta", "churn β (sBG)", "shape"),
        ("acquisition.paid.monthly_budget", "paid budget", f"{scenario.currency}/month"),
    ]
    if scenario.monetization.model in ("free_trial", "reverse_trial"):
        keys.append(("monetization.trial.length_days", "trial length", "days"))
    found = []
    for key, label, unit in keys:
        value = value_at(scenario, key)
        field = field_at(key)
        if isinstance(value, int | float) and field is not None:
            found.append(Assumption(key, label, unit, value, allowed_range(field), isinstance(value, int)))
    return found


def value_at(scenario: Scenario, dotted: str) -> Any:
    """The value at a dotted key of a loaded scenario."""
    node: Any = scenario
    for part in dotted.split("."):
        node = getattr(node, part) if isinstance(node, BaseModel) else node[part]
    return node


def parse_number(text: str, integer: bool) -> float | int:
    """A typed number; ValueError with a reason when it is not one."""
    text = text.strip().replace(",", "").replace("_", "")
    if integer:
        try:
            return int(text)
        except ValueError:
            raise ValueError("a whole number is needed") from None
    try:
        return float(text)
    except ValueError:
        raise ValueError("a number is needed") from None


def apply_edits(path: Path, edits: dict[str, Any]) -> Scenario:
    """The scenario of `path` with `edits` (dotted key → value) applied, validated; raises
    ScenarioError naming the key when an edit is out of range."""
    return load_scenario(path, edits)
