"""What the timeline of a scenario makes true at each moment: prices for new customers,
the paid budget, and each segment's onboarding flow. Pure functions of the scenario,
shared by every engine."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Generic, TypeVar

from simulator.scenario.models import (
    OnboardingSwitch,
    PaidBudgetChange,
    PriceChange,
    Scenario,
)

T = TypeVar("T")


@dataclass(frozen=True)
class PlanPrice:
    """List price of a plan from a moment on."""

    per_seat: float
    base_fee: float


class Step(Generic[T]):
    """A piecewise-constant value of time: `values[i]` holds from `starts[i]` on."""

    def __init__(self, starts: list[float], values: list[T]) -> None:
        self.starts = starts
        self.values = values

    def at(self, t: float) -> T:
        """The value in force at time t (a change at t is already in force)."""
        return self.values[bisect.bisect_right(self.starts, t) - 1]

    def next_change(self, t: float) -> float:
        """When the value next changes after time t (inf if never)."""
        i = bisect.bisect_right(self.starts, t)
        return self.starts[i] if i < len(self.starts) else float("inf")


class Schedules:
    """The scenario's timeline resolved into step functions."""

    def __init__(self, scenario: Scenario) -> None:
        events = sorted(scenario.timeline, key=lambda e: e.month)  # stable: file order on ties
        self.prices: dict[str, Step[PlanPrice]] = {}
        for name, plan in scenario.pricing.plans.items():
            steps = Step([0.0], [PlanPrice(plan.price_per_seat, plan.base_fee)])
            for event in events:
                if isinstance(event, PriceChange) and event.plan == name:
                    current = steps.values[-1]
                    if event.change is not None:
                        new = PlanPrice(current.per_seat * (1 + event.change), current.base_fee * (1 + event.change))
                    else:
                        assert event.price_per_seat is not None
                        new = PlanPrice(event.price_per_seat, current.base_fee)
                    _append(steps, event.month, new)
            self.prices[name] = steps

        budget = Step([0.0], [scenario.acquisition.paid.monthly_budget])
        for event in events:
            if isinstance(event, PaidBudgetChange):
                value = (
                    event.monthly_budget
                    if event.monthly_budget is not None
                    else budget.values[-1] * (event.multiplier or 0.0)
                )
                _append(budget, event.month, value)
        self.paid_budget = budget

        self.flows: dict[str, Step[str]] = {}
        for name, segment in scenario.segments.items():
            flows = Step([0.0], [segment.flow])
            for event in events:
                if isinstance(event, OnboardingSwitch) and (event.segments is None or name in event.segments):
                    _append(flows, event.month, event.flow)
            self.flows[name] = flows

        self.repricings = [e for e in events if isinstance(e, PriceChange) and e.applies_to == "all"]
        """Price changes that reach existing customers (at their next renewal)."""

    def paid_spend(self, month: int) -> float:
        """Paid budget spent over month `month`, prorating a change inside the month."""
        starts = [*self.paid_budget.starts, float("inf")]
        total = 0.0
        for i, value in enumerate(self.paid_budget.values):
            overlap = min(starts[i + 1], month + 1) - max(starts[i], month)
            if overlap > 0:
                total += value * overlap
        return total


def _append(steps: Step[T], start: float, value: T) -> None:
    if steps.starts[-1] == start:
        steps.values[-1] = value
    else:
        steps.starts.append(start)
        steps.values.append(value)
