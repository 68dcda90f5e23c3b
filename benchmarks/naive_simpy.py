"""The straightforward SimPy model that the engines are compared against.

Written the way a first model of a product-led funnel usually is: one SimPy process per user,
`timeout(1)` per billing month, and a coin flip each month for every decision. It reads the
same scenario file as the engines and follows the same lifecycle, in its simplest form:

- signups from paid media, organic traffic (with the Bass innovation term) and word of mouth,
  as a Poisson process whose rate is recomputed at every arrival and scaled by the share of
  the market not yet reached;
- a segment drawn by share; activation at signup with the segment's onboarding flow's
  probability;
- each month, an activated free account upgrades with probability 1 − exp(−conversion_hazard)
  to the plan with the largest surplus (seats × willingness to pay × plan value − price), if
  any; otherwise it goes inactive with probability 1 − exp(−free_hazard); a never-activated
  account leaves with probability 1 − exp(−unactivated_hazard);
- a paying account's monthly churn probability θ is drawn once from the segment's
  Beta(α, β); each month it churns with probability θ;
- an activated user sends a negative-binomial number of invites, one per month while its
  account is active; an accepted invite brings a new user (viral channel, own account).

Left out on purpose, as a first model would: trials, seat moves and plan changes, annual
billing, reactivation, timeline interventions and the ledger's cohort tables. Monthly totals
(active users, paying accounts, MRR) are tallied at each month end.

    python benchmarks/naive_simpy.py benchmarks/scenarios/signups_10k.toml [--seed N]
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from simulator.scenario import Scenario, load_scenario

Process = Generator[simpy.Event, Any, None]
CHANNELS = ("paid", "organic", "word_of_mouth", "viral")


def monthly_probability(hazard: float) -> float:
    """Probability that an event with a constant `hazard` per month happens within a month."""
    return 1.0 - math.exp(-hazard)


@dataclass(frozen=True)
class _Segment:
    """What the naive model needs of one segment, read once from the scenario."""

    share: float
    activation: float
    wtp_mu: float
    wtp_sigma: float
    extra_seats_mean: float
    convert: float
    free_exit: float
    unactivated_exit: float
    churn_alpha: float
    churn_beta: float
    invites_mean: float
    invites_dispersion: float
    acceptance: float


@dataclass
class NaiveResult:
    """What a run of the naive model produced."""

    users: int
    """Users who signed up within the horizon (every channel)."""
    signups: dict[str, int]
    active_users: list[int] = field(default_factory=list)
    paying_accounts: list[int] = field(default_factory=list)
    mrr: list[float] = field(default_factory=list)


class NaiveModel:
    """One replication of the naive model of `scenario`."""

    def __init__(self, scenario: Scenario, seed: int | None = None) -> None:
        self.scenario = scenario
        self.months = scenario.simulation.months
        self.rng = np.random.default_rng(scenario.simulation.seed if seed is None else seed)
        self.env = simpy.Environment()
        self.segments: list[_Segment] = []
        for name, seg in scenario.segments.items():
            flow = scenario.onboarding[seg.flow]
            churn = scenario.segment_churn(name)
            virality = scenario.segment_virality(name)
            self.segments.append(
                _Segment(
                    share=seg.share,
                    activation=flow.activation_probability,
                    wtp_mu=math.log(seg.wtp.median),
                    wtp_sigma=seg.wtp.sigma,
                    extra_seats_mean=seg.seats.initial_mean - 1.0,
                    convert=monthly_probability(scenario.segment_monetization(name).conversion_hazard),
                    free_exit=monthly_probability(churn.free_hazard),
                    unactivated_exit=monthly_probability(churn.unactivated_hazard),
                    churn_alpha=churn.alpha,
                    churn_beta=churn.beta,
                    invites_mean=virality.invites_per_user,
                    invites_dispersion=virality.dispersion,
                    acceptance=virality.acceptance_rate,
                )
            )
        # Cumulative shares, for drawing a segment with one uniform number.
        self.cumulative_shares = list(itertools.accumulate(s.share for s in self.segments))
        self.signups = dict.fromkeys(CHANNELS, 0)
        self.users = 0
        self.active_users = 0
        self.paying_accounts = 0
        self.mrr = 0.0
        self.result = NaiveResult(users=0, signups=self.signups)

    def run(self) -> NaiveResult:
        """Simulate to the horizon and return the tallies."""
        self.env.process(self._arrivals())
        self.env.process(self._month_ends())
        self.env.run(until=self.months)
        # The run stops just before events at the horizon, so the last month end is taken here.
        self._record()
        self.result.users = self.users
        return self.result

    def _remaining(self) -> float:
        return max(0.0, 1.0 - self.users / self.scenario.market.size)

    def _arrivals(self) -> Process:
        acq = self.scenario.acquisition
        market = self.scenario.market.size
        env = self.env
        while True:
            budget = acq.paid.monthly_budget
            paid = budget / acq.paid.cost_per_signup
            if acq.paid.saturation_budget is not None:
                paid /= 1.0 + budget / acq.paid.saturation_budget
            organic = acq.organic.signups_per_month * (1.0 + acq.organic.monthly_growth) ** env.now
            organic += acq.organic.innovation_rate * market
            word_of_mouth = acq.word_of_mouth.imitation_rate * self.active_users
            remaining = self._remaining()
            total = (paid + organic + word_of_mouth) * remaining
            if total <= 0.0:
                yield env.timeout(1.0)
                continue
            yield env.timeout(self.rng.exponential(1.0 / total))
            u = self.rng.random() * (paid + organic + word_of_mouth)
            channel = "paid" if u < paid else "organic" if u < paid + organic else "word_of_mouth"
            segment = min(bisect.bisect(self.cumulative_shares, self.rng.random()), len(self.segments) - 1)
            env.process(self._user(channel, segment))

    def _month_ends(self) -> Process:
        for _ in range(self.months - 1):
            yield self.env.timeout(1.0)
            self._record()

    def _record(self) -> None:
        self.result.active_users.append(self.active_users)
        self.result.paying_accounts.append(self.paying_accounts)
        self.result.mrr.append(self.mrr)

    def _best_plan_mrr(self, wtp: float, seats: int) -> float:
        """MRR of the plan with the largest positive surplus for the account (0: none)."""
        best_surplus, best_mrr = 0.0, 0.0
        for plan in self.scenario.pricing.plans.values():
            if plan.max_seats is not None and seats > plan.max_seats:
                continue
            bill = max(seats, plan.min_seats) * plan.price_per_seat + plan.base_fee
            surplus = seats * wtp * plan.value - bill
            if surplus > best_surplus:
                best_surplus, best_mrr = surplus, bill
        return best_mrr

    def _user(self, channel: str, segment: int) -> Process:
        """A user (and its own account) from signup until it leaves or the horizon."""
        env, rng, seg = self.env, self.rng, self.segments[segment]
        self.users += 1
        self.signups[channel] += 1
        self.active_users += 1
        activated = rng.random() < seg.activation
        invites_left = 0
        if activated and seg.invites_mean > 0:
            # Gamma–Poisson mixture: a negative binomial with the scenario's mean and shape.
            shape = seg.invites_dispersion
            invites_left = int(rng.poisson(rng.gamma(shape, seg.invites_mean / shape)))
        paying, theta, account_mrr = False, 0.0, 0.0
        while True:
            yield env.timeout(1.0)
            if invites_left > 0:
                invites_left -= 1
                if rng.random() < seg.acceptance * self._remaining():
                    env.process(self._user("viral", segment))
            if paying:
                if rng.random() < theta:
                    break
            elif not activated:
                if rng.random() < seg.unactivated_exit:
                    break
            elif rng.random() < seg.convert:
                wtp = math.exp(seg.wtp_mu + seg.wtp_sigma * rng.standard_normal())
                seats = 1 + int(rng.poisson(seg.extra_seats_mean))
                account_mrr = self._best_plan_mrr(wtp, seats)
                if account_mrr > 0.0:
                    paying = True
                    theta = float(rng.beta(seg.churn_alpha, seg.churn_beta))
                    self.paying_accounts += 1
                    self.mrr += account_mrr
            elif rng.random() < seg.free_exit:
                break
        self.active_users -= 1
        if paying:
            self.paying_accounts -= 1
            self.mrr -= account_mrr


def run_naive(scenario: Scenario, seed: int | None = None) -> NaiveResult:
    """One replication of the naive model of `scenario`."""
    return NaiveModel(scenario, seed).run()


def main() -> None:
    """Run the naive model once and print its users, wall time and month-end totals as JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", type=Path, help="scenario file")
    parser.add_argument("--seed", type=int, default=None, help="seed (default: the scenario's)")
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    start = time.perf_counter()
    result = run_naive(scenario, args.seed)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "scenario": str(args.scenario),
                "simulated_users": result.users,
                "signups": result.signups,
                "wall_seconds": round(seconds, 3),
                "users_per_second": round(result.users / seconds),
                "active_users_end": result.active_users[-1] if result.active_users else 0,
                "paying_accounts_end": result.paying_accounts[-1] if result.paying_accounts else 0,
                "mrr_end": round(result.mrr[-1], 2) if result.mrr else 0.0,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
