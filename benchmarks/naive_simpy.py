"""The straightforward SimPy model that the engines are compared against.

Written the way a first model of a product-led funnel usually is: one SimPy process per user,
`timeout(1)` per billing month, and a coin flip each month for every decision. It reads the
same scenario file as the engines, follows the same lifecycle at a month's resolution and
writes the same ledger (through `LedgerWriter`), so its results go through the same metrics:

- signups from paid media, organic traffic (with the Bass innovation term) and word of mouth,
  as a Poisson process whose rate is recomputed at every arrival and scaled by the share of
  the market not yet reached; onboarding and referral costs recorded as spend;
- a segment drawn by share; activation at signup with the segment's onboarding flow's
  probability (the flow's days to value are shorter than the model's month);
- an account's traits drawn when it first weighs the plans: willingness to pay, seats wanted,
  monthly churn probability θ ~ Beta(α, β) and whether it would bill annually;
- each month, an activated free account upgrades with probability 1 − exp(−conversion_hazard)
  to the plan with the largest surplus (seats × willingness to pay × plan value − bill), if
  any (if none, it does not weigh the plans again in this free phase); otherwise it goes
  inactive with probability 1 − exp(−free_hazard); a never-activated account leaves with
  probability 1 − exp(−unactivated_hazard);
- each month, a paying account adds a seat, removes one and moves to a cheaper plan, each with
  its monthly probability; it churns with probability θ each month, or 1 − (1 − θ)^12 at each
  yearly renewal if it bills annually; a churning account moves back to the free plan with the
  scenario's share (and may buy again), and otherwise leaves;
- an activated user sends a negative-binomial number of invites, one a month while its account
  is active; an accepted invite brings a new user (viral channel) who joins the inviter's
  account with the scenario's seat share (a paying account then pays for one more seat) and
  otherwise opens an account of its own.

Left out, as a first model would leave them: trials and timeline interventions (the benchmark
scenarios have neither), and time within the month.

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

from simulator.ledger import AccountState, Channel, Ledger, LedgerWriter, SpendKind
from simulator.scenario import Scenario, load_scenario
from simulator.scenario.models import Plan

Process = Generator[simpy.Event, Any, None]


def monthly_probability(hazard: float) -> float:
    """Probability that an event with a constant `hazard` per month happens within a month."""
    return 1.0 - math.exp(-hazard)


@dataclass(frozen=True)
class _Segment:
    """What the naive model needs of one segment, read once from the scenario."""

    index: int
    share: float
    activation: float
    onboarding_cost: float
    wtp_mu: float
    wtp_sigma: float
    extra_seats_mean: float
    convert: float
    free_exit: float
    unactivated_exit: float
    churn_alpha: float
    churn_beta: float
    to_free: float
    seat_add: float
    seat_remove: float
    downgrade: float
    invites_mean: float
    invites_dispersion: float
    acceptance: float
    seat_share: float
    referral_reward: float


@dataclass(eq=False)
class _Account:
    """An account and its state; its traits are drawn when it first weighs the plans."""

    id: int
    segment: _Segment
    members: int = 1
    activated: bool = False
    gone: bool = False
    wtp: float = 0.0
    profile_seats: int = 0
    theta: float = 0.0
    annual_draw: float = 0.0
    paying: bool = False
    plan: Plan | None = None
    annual: bool = False
    seats: int = 0
    mrr: float = 0.0
    months_paid: int = 0
    found_no_plan: bool = False


@dataclass
class NaiveResult:
    """What a run of the naive model produced."""

    users: int
    """Users who signed up within the horizon (every channel)."""
    signups: dict[str, int]
    ledger: Ledger | None = None
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
        self.ledger = LedgerWriter(
            self.months,
            tuple(scenario.segments),
            currency=scenario.currency,
            gross_margin=scenario.costs.gross_margin,
            cost_to_serve_per_seat=scenario.costs.cost_to_serve_per_seat,
        )
        self.plans = list(scenario.pricing.plans.values())
        self.segments: list[_Segment] = []
        shares = scenario.segment_shares()  # scaled to sum to 1 exactly
        for index, (name, seg) in enumerate(scenario.segments.items()):
            flow = scenario.onboarding[seg.flow]
            churn = scenario.segment_churn(name)
            virality = scenario.segment_virality(name)
            expansion = scenario.segment_expansion(name)
            monetization = scenario.segment_monetization(name)
            has_free_plan = monetization.model in ("freemium", "reverse_trial")  # to move back to
            self.segments.append(
                _Segment(
                    index=index,
                    share=shares[index],
                    activation=flow.activation_probability,
                    onboarding_cost=flow.cost_per_signup,
                    wtp_mu=math.log(seg.wtp.median),
                    wtp_sigma=seg.wtp.sigma,
                    extra_seats_mean=seg.seats.initial_mean - 1.0,
                    convert=monthly_probability(monetization.conversion_hazard),
                    free_exit=monthly_probability(churn.free_hazard),
                    unactivated_exit=monthly_probability(churn.unactivated_hazard),
                    churn_alpha=churn.alpha,
                    churn_beta=churn.beta,
                    to_free=churn.downgrade_to_free_share if has_free_plan else 0.0,
                    seat_add=monthly_probability(expansion.seat_add_rate),
                    seat_remove=monthly_probability(expansion.seat_remove_rate),
                    downgrade=monthly_probability(expansion.downgrade_rate),
                    invites_mean=virality.invites_per_user,
                    invites_dispersion=virality.dispersion,
                    acceptance=virality.acceptance_rate,
                    seat_share=virality.seat_share,
                    referral_reward=virality.referral_reward,
                )
            )
        # Cumulative shares, for drawing a segment with one uniform number.
        self.cumulative_shares = list(itertools.accumulate(s.share for s in self.segments))
        self.signups = {channel.name.lower(): 0 for channel in Channel}
        self.users = 0
        self.active_users = 0
        self.paying_accounts = 0
        self.mrr = 0.0
        self.result = NaiveResult(users=0, signups=self.signups)

    def run(self) -> NaiveResult:
        """Simulate to the horizon and return the tallies and the closed ledger."""
        self.env.process(self._arrivals())
        self.env.process(self._month_ends())
        self.env.run(until=self.months)
        # The run stops just before events at the horizon, so the last month end is taken here.
        self._record()
        paid = self.scenario.acquisition.paid.monthly_budget
        for month in range(self.months):
            self.ledger.spent(month, SpendKind.PAID_MEDIA, paid)
        self.result.users = self.users
        self.result.ledger = self.ledger.close()
        return self.result

    def _remaining(self) -> float:
        return max(0.0, 1.0 - self.users / self.scenario.market.size)

    def _arrivals(self) -> Process:
        acq = self.scenario.acquisition
        market = self.scenario.market.size
        env = self.env
        while True:
            paid = acq.paid.signups_per_month(acq.paid.monthly_budget)
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
            channel = Channel.PAID if u < paid else Channel.ORGANIC if u < paid + organic else Channel.WORD_OF_MOUTH
            segment = min(bisect.bisect(self.cumulative_shares, self.rng.random()), len(self.segments) - 1)
            self._sign_up(channel, self.segments[segment], None, -1)

    def _month_ends(self) -> Process:
        for _ in range(self.months - 1):
            yield self.env.timeout(1.0)
            self._record()

    def _record(self) -> None:
        self.result.active_users.append(self.active_users)
        self.result.paying_accounts.append(self.paying_accounts)
        self.result.mrr.append(self.mrr)

    # --- users -------------------------------------------------------------------------------
    def _sign_up(self, channel: Channel, seg: _Segment, join: _Account | None, inviter: int) -> None:
        """A person signs up, into a new account of their own or into `join`; a user with
        something to do each month (an owner, or a member with invites to send) gets a process."""
        env, rng, ledger = self.env, self.rng, self.ledger
        self.users += 1
        self.signups[channel.name.lower()] += 1
        self.active_users += 1
        ledger.spent(env.now, SpendKind.ONBOARDING, seg.onboarding_cost)
        activated = rng.random() < seg.activation
        account = self._open_account(seg) if join is None else join
        user = ledger.user_signed_up(env.now, channel, seg.index, account.id, inviter)
        if join is None:
            account.activated = activated
        else:
            account.members += 1
            if account.paying:
                self._set_seats(account, account.seats + 1)
        invites = 0
        if activated:
            ledger.user_activated(env.now, user)
            if seg.invites_mean > 0:
                # Gamma–Poisson mixture: a negative binomial with the scenario's mean and shape.
                shape = seg.invites_dispersion
                invites = int(rng.poisson(rng.gamma(shape, seg.invites_mean / shape)))
        if join is None or invites > 0:
            env.process(self._user(user, account, owner=join is None, invites=invites))

    def _user(self, user: int, account: _Account, owner: bool, invites: int) -> Process:
        """A user's months until its account is gone: it sends its invites, one a month, and
        the account's owner also runs the account."""
        env, rng, seg = self.env, self.rng, account.segment
        while owner or invites > 0:
            yield env.timeout(1.0)
            if account.gone:
                return
            if invites > 0:
                invites -= 1
                accepted = rng.random() < seg.acceptance * self._remaining()
                self.ledger.invite_sent(env.now, user, accepted)
                if accepted:
                    if rng.random() < seg.seat_share:
                        self._sign_up(Channel.VIRAL, seg, account, user)
                    else:
                        self.ledger.spent(env.now, SpendKind.REFERRAL, seg.referral_reward)
                        self._sign_up(Channel.VIRAL, seg, None, user)
            if owner:
                self._account_month(account)

    # --- accounts ----------------------------------------------------------------------------
    def _open_account(self, seg: _Segment) -> _Account:
        account_id = self.ledger.new_account(self.env.now, self.ledger.next_user_id, AccountState.FREE)
        return _Account(id=account_id, segment=seg)

    def _draw_traits(self, account: _Account) -> None:
        """Willingness to pay, seats wanted, monthly churn probability and annual billing."""
        rng, seg = self.rng, account.segment
        account.wtp = math.exp(seg.wtp_mu + seg.wtp_sigma * rng.standard_normal())
        account.profile_seats = 1 + int(rng.poisson(seg.extra_seats_mean))
        account.theta = float(rng.beta(seg.churn_alpha, seg.churn_beta))
        account.annual_draw = float(rng.random())

    def _account_month(self, account: _Account) -> None:
        """One month's decisions of an account that is still there."""
        rng, seg = self.rng, account.segment
        if account.paying:
            account.months_paid += 1
            renewal = not account.annual or account.months_paid % 12 == 0
            churn = account.theta if not account.annual else 1.0 - (1.0 - account.theta) ** 12
            if renewal and rng.random() < churn:
                if rng.random() < seg.to_free:
                    self._stop_paying(account)
                    account.found_no_plan = False  # a new free phase
                    self.ledger.account_changed(self.env.now, account.id, AccountState.FREE, 0, 0)
                else:
                    self._close(account)
                return
            if rng.random() < seg.seat_add:
                self._set_seats(account, account.seats + 1)
            if account.seats > 1 and rng.random() < seg.seat_remove:
                self._set_seats(account, account.seats - 1)
            if rng.random() < seg.downgrade:
                self._downgrade(account)
        elif not account.activated:
            if rng.random() < seg.unactivated_exit:
                self._close(account)
        else:
            # A free account that weighed the plans and found none worth its price does not
            # weigh them again until its next free phase (as in the engines).
            if not account.found_no_plan and rng.random() < seg.convert:
                if account.profile_seats == 0:
                    self._draw_traits(account)
                seats = max(account.profile_seats, account.members)
                plan = self._best_plan(account, seats, require_gain=True)
                if plan is not None:
                    account.paying, account.plan, account.seats = True, plan, seats
                    account.annual = account.annual_draw < plan.annual_share
                    account.months_paid = 0
                    self.paying_accounts += 1
                    self._bill(account)
                    return
                account.found_no_plan = True
            if rng.random() < seg.free_exit:
                self._close(account)

    def _best_plan(
        self, account: _Account, seats: int, require_gain: bool, cheaper_than: float = math.inf
    ) -> Plan | None:
        """The plan allowing `seats` with the largest surplus (seats × wtp × value − bill), among
        those billing less than `cheaper_than`; with `require_gain`, only a positive surplus."""
        best, best_surplus = None, 0.0 if require_gain else -math.inf
        for plan in self.plans:
            if plan.max_seats is not None and seats > plan.max_seats:
                continue
            bill = max(seats, plan.min_seats) * plan.price_per_seat + plan.base_fee
            if bill >= cheaper_than:
                continue
            surplus = seats * account.wtp * plan.value - bill
            if surplus > best_surplus:
                best, best_surplus = plan, surplus
        return best

    def _set_seats(self, account: _Account, seats: int) -> None:
        assert account.plan is not None
        if account.plan.max_seats is not None and seats > account.plan.max_seats:
            plan = self._best_plan(account, seats, require_gain=False)
            if plan is None:
                return  # no plan allows that many seats
            account.plan = plan
        account.seats = seats
        self._bill(account)

    def _downgrade(self, account: _Account) -> None:
        assert account.plan is not None
        current = max(account.seats, account.plan.min_seats) * account.plan.price_per_seat + account.plan.base_fee
        plan = self._best_plan(account, account.seats, require_gain=False, cheaper_than=current)
        if plan is not None:
            account.plan = plan
            self._bill(account)

    def _bill(self, account: _Account) -> None:
        plan = account.plan
        assert plan is not None
        mrr = max(account.seats, plan.min_seats) * plan.price_per_seat + plan.base_fee
        if account.annual:
            mrr *= 1.0 - plan.annual_discount
        self.mrr += mrr - account.mrr
        account.mrr = mrr
        self.ledger.account_changed(self.env.now, account.id, AccountState.PAYING, round(mrr * 100), account.seats)

    def _stop_paying(self, account: _Account) -> None:
        """The account's tallies once it no longer pays (its record is the caller's)."""
        account.paying, account.plan = False, None
        self.paying_accounts -= 1
        self.mrr -= account.mrr
        account.mrr = 0.0

    def _close(self, account: _Account) -> None:
        if account.paying:
            self._stop_paying(account)
        account.gone = True
        self.active_users -= account.members
        self.ledger.account_changed(self.env.now, account.id, AccountState.GONE, 0, 0)


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
