"""The fast engine: the SimPy engine's lifecycle, sampled with numpy over whole batches.

Time advances in steps of `1 / steps_per_month` months (31 steps a month with the default
`simulation.step_days = 1`, so a step is under one day and months are whole steps). In each
step the engine handles, as arrays:

1. signups from paid, organic and word-of-mouth channels: a Poisson process at the rates of
   the step's start (market saturation and active users as they stand); each new user's
   activation and invite times are drawn at signup;
2. account events due in the step (trial ends, upgrade decisions, seat and plan moves,
   renewals that churn, price rises reaching a renewal);
3. invites due in the step: accepted at the saturation of the moment, each bringing a user
   into the inviter's account or into a new one.

A free account's leaving is booked when it becomes certain, not run as an event.

Every event keeps its exact time, and each draw follows the same distribution as in the
SimPy engine; what is discretised is only the order of events inside one step (a decision
sees the members that joined before the step, rates are updated once per step). Results
agree with the SimPy engine in distribution, not draw for draw (the equivalence suite in
tests/test_equivalence.py checks it), and exactly when nothing is random.

Pending events live in a calendar of steps; an entry whose account has since been
rescheduled is dropped when its step comes, so nothing needs removing early.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simulator.engines.sampling import LogNormalMonths, RandomStreams
from simulator.engines.simpy_engine import SimulationLimitError
from simulator.engines.timeline import Schedules, Step
from simulator.ledger import AccountChanges, AccountState, Channel, Ledger, SpendKind, freeze
from simulator.scenario.models import DAYS_PER_MONTH, LogNormalDays, Scenario

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]

INF = math.inf
NEVER = 2**31  # renewals survived when the churn probability is 0


class Due(IntEnum):
    """What an account does at its next event time."""

    NOTHING = 0
    TRIAL_END = 1
    UPGRADE = 2  # a free account weighs the plans
    PAY_AT_ACTIVATION = 3  # paid_only: buy when the owner activates, or leave
    MOVE = 4  # a paying account adds or removes a seat or moves down a plan
    RENEWAL_CHURN = 5  # the renewal at which a paying account stops paying


NOTHING = int(Due.NOTHING)
FREE, TRIAL, PAYING, GONE = (
    int(s) for s in (AccountState.FREE, AccountState.TRIAL, AccountState.PAYING, AccountState.GONE)
)
"""Plain ints for the hot paths (an enum member costs an attribute lookup each time)."""
MODELS = ("freemium", "free_trial", "reverse_trial", "paid_only")
FREEMIUM, FREE_TRIAL, REVERSE_TRIAL, PAID_ONLY = range(len(MODELS))
"""Monetization models by index, as `segment_models` holds them."""


class Columns:
    """Named numpy columns that grow by doubling; rows are users, accounts or invites."""

    def __init__(self, spec: dict[str, tuple[type, float]], capacity: int = 4096) -> None:
        self.size = 0
        self._spec = spec
        self.data: dict[str, NDArray[Any]] = {
            name: np.empty(capacity, dtype=dtype) for name, (dtype, _) in spec.items()
        }

    def add(self, count: int) -> slice:
        """Room for `count` new rows (filled with each column's default); their slice."""
        start, end = self.size, self.size + count
        capacity = len(next(iter(self.data.values())))
        if end > capacity:
            # Empty, not filled: pages are touched only when rows are used.
            new_capacity = max(end, 2 * capacity)
            for name, (dtype, _) in self._spec.items():
                grown: NDArray[Any] = np.empty(new_capacity, dtype=dtype)
                grown[:start] = self.data[name][:start]
                self.data[name] = grown
        for name, (_, fill) in self._spec.items():
            self.data[name][start:end] = fill
        self.size = end
        return slice(start, end)

    def __getitem__(self, name: str) -> NDArray[Any]:
        return self.data[name]

    def used(self, name: str) -> NDArray[Any]:
        """The filled rows of a column."""
        return self.data[name][: self.size]


class Calendar:
    """Row ids due in each step of time. Entries may go stale; callers filter them.

    NOTE: for performance reasons. Filing each push under its steps costs a sort and a
    Python loop over the steps it spans, many times a step. Instead, everything due after
    the current month waits in one unsorted pile that is split once a month, and the current
    month's entries are picked out of their own small pile with one comparison per step.
    """

    def __init__(self, steps: int, steps_per_month: int) -> None:
        self.steps = steps
        self.steps_per_month = steps_per_month
        self._month_end = 0  # first step after the month being run
        self._month: list[tuple[Ints, Ints]] = []  # (ids, steps) due in the month being run
        self._month_first = steps  # earliest step in self._month
        self._later: list[tuple[Ints, Ints]] = []  # due in a later month

    def step_of(self, t: Floats) -> Ints:
        """The step in which each time falls."""
        return np.floor(t * self.steps_per_month).astype(np.int64)

    def push(self, ids: Ints, t: Floats) -> None:
        """File `ids` under the steps of their times; times at or past the horizon are dropped."""
        if len(ids) == 0:
            return
        # Times are ≥ 0, so truncation is floor; at or past the horizon (or never: inf) becomes
        # step `self.steps`, which is never run and dropped at the next month.
        steps = np.minimum(t * self.steps_per_month, self.steps).astype(np.int64)
        soon = steps < self._month_end
        n_soon = int(np.count_nonzero(soon))
        if n_soon == len(ids):
            self._month.append((ids, steps))
            self._month_first = min(self._month_first, int(steps.min()))
        elif n_soon == 0:
            self._later.append((ids, steps))
        else:
            self._month.append((ids[soon], steps[soon]))
            self._month_first = min(self._month_first, int(steps[soon].min()))
            self._later.append((ids[~soon], steps[~soon]))

    def pop(self, step: int) -> Ints | None:
        """Everything due in `step` (None if nothing). Steps must be popped in order."""
        if step >= self._month_end:
            self._start_month(step)
        if self._month_first > step:
            return None
        ids, steps = _joined(self._month)
        now = steps <= step
        n_now = int(np.count_nonzero(now))
        if n_now == len(ids):
            self._month, self._month_first = [], self.steps
            return ids
        later = ~now
        self._month = [(ids[later], steps[later])]
        self._month_first = int(steps[later].min())
        return ids[now] if n_now else None

    def _start_month(self, step: int) -> None:
        self._month_end = (step // self.steps_per_month + 1) * self.steps_per_month
        if not self._later:
            return
        ids, steps = _joined(self._later)
        soon = steps < self._month_end
        if np.count_nonzero(soon):
            self._month.append((ids[soon], steps[soon]))
            self._month_first = min(self._month_first, int(steps[soon].min()))
        later = ~soon & (steps < self.steps)
        self._later = [(ids[later], steps[later])] if np.count_nonzero(later) else []


def _joined(parts: list[tuple[Ints, Ints]]) -> tuple[Ints, Ints]:
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class Reservoir:
    """Draws of one distribution, served as slices of blocks drawn ahead.

    NOTE: for performance reasons. A numpy sampler call costs microseconds however few values
    it returns, and the engine asks for a handful of values many times a step.
    """

    def __init__(self, draw: Callable[[int], Any], block: int = 8192) -> None:
        self._draw = draw
        self._block = self._first_block = block
        self._values: NDArray[Any] = draw(0)
        self._next = 0

    def take(self, count: int) -> NDArray[Any]:
        """The next `count` draws (a read-only view)."""
        end = self._next + count
        if end > len(self._values):
            # Blocks grow with demand (up to 64 times the first), so big runs refill rarely.
            self._block = min(64 * self._first_block, max(self._block, 8 * count))
            self._values = np.concatenate([self._values[self._next :], self._draw(self._block)])
            self._next, end = 0, count
        out = self._values[self._next : end]
        self._next = end
        return out


class Draws:
    """Standard uniform, normal and exponential draws from each named stream."""

    def __init__(self, streams: RandomStreams) -> None:
        self._streams = streams
        self._reservoirs: dict[tuple[str, str], Reservoir] = {}

    def _reservoir(self, stream: str, kind: str) -> Reservoir:
        key = (stream, kind)
        if key not in self._reservoirs:
            self._reservoirs[key] = Reservoir(getattr(self._streams[stream], kind))
        return self._reservoirs[key]

    def uniform(self, stream: str, count: int) -> Floats:
        return self._reservoir(stream, "random").take(count)

    def normal(self, stream: str, count: int) -> Floats:
        return self._reservoir(stream, "standard_normal").take(count)

    def exponential(self, stream: str, count: int) -> Floats:
        return self._reservoir(stream, "standard_exponential").take(count)


def _by_segment(reservoirs: list[Reservoir | None], segment: Ints, fill: float) -> NDArray[Any]:
    """One draw per row from its segment's reservoir (`fill` where a segment has none)."""
    if len(reservoirs) == 1:
        only = reservoirs[0]
        return only.take(len(segment)) if only is not None else np.full(len(segment), fill)
    out = np.full(len(segment), fill)
    for s, reservoir in enumerate(reservoirs):
        if reservoir is not None:
            mine = segment == s
            count = int(np.count_nonzero(mine))
            if count:
                out[mine] = reservoir.take(count)
    return out


def _step_values(step: Step[float], t: Floats) -> Floats | float:
    """A piecewise-constant schedule at many times (one number if it never changes)."""
    if len(step.starts) == 1:
        return step.values[0]
    index = np.searchsorted(np.asarray(step.starts), t, side="right") - 1
    return np.asarray(step.values, dtype=np.float64)[index]


@dataclass(frozen=True)
class Signups:
    """A batch of people signing up; `join` is the account each joins (−1: a new account of
    their own) and `inviter` the user who invited them (−1: none)."""

    t: Floats
    channel: NDArray[np.int8]
    segment: Ints
    join: Ints
    inviter: Ints

    @staticmethod
    def join_batches(*batches: Signups | None) -> Signups | None:
        """One batch of all the given ones."""
        present = [b for b in batches if b is not None]
        if len(present) <= 1:
            return present[0] if present else None
        return Signups(
            *(
                np.concatenate([getattr(b, name) for b in present])
                for name in ("t", "channel", "segment", "join", "inviter")
            )
        )


class FastEngine:
    """Runs one replication of a scenario and returns its ledger."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int | None = None,
        on_progress: Callable[[float], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.on_progress = on_progress
        self.months = months = scenario.simulation.months
        self.steps_per_month = math.ceil(DAYS_PER_MONTH / scenario.simulation.step_days - 1e-9)
        self.dt = 1.0 / self.steps_per_month
        self.n_steps = months * self.steps_per_month
        self.streams = RandomStreams(scenario.simulation.seed if seed is None else seed)
        self.draws = Draws(self.streams)
        self.schedules = Schedules(scenario)
        self.segment_names = tuple(scenario.segments)
        self._set_parameters(scenario)

        self.signups = 0
        self.active_users = 0
        self.leaving = np.zeros(self.n_steps, dtype=np.int64)  # members of booked leavers, by step
        self.paid_rates = self._paid_rates()
        self.organic_rates = self._organic_rates()
        # Room for the signups the channels alone bring (saturation and word of mouth aside),
        # so that the columns rarely grow: growing copies every column.
        expected = float((self.paid_rates + self.organic_rates).sum() * self.dt) * self.signup_factor
        capacity = int(min(scenario.simulation.max_users, max(4096.0, 1.25 * expected)))
        self.users = Columns(
            {
                "signup_t": (np.float64, np.nan),
                "channel": (np.int8, 0),
                "segment": (np.int16, 0),
                "account": (np.int64, -1),
                "inviter": (np.int64, -1),
                "activated_t": (np.float64, np.nan),
                "invites_sent": (np.int32, 0),
                "invites_accepted": (np.int32, 0),
            },
            capacity,
        )
        self.accounts = Columns(
            {
                "owner": (np.int64, -1),
                "segment": (np.int16, 0),
                "owner_activation_t": (np.float64, INF),
                "wtp": (np.float64, 0.0),
                "churn_probability": (np.float64, 0.0),
                "profile_seats": (np.int64, 0),  # 0 until the traits are drawn
                "annual_draw": (np.float64, 0.0),
                "first_exit_draw": (np.float64, 0.0),
                "first_conversion_draw": (np.float64, 0.0),
                "members": (np.int64, 1),
                "state": (np.int8, 0),
                "epoch": (np.int64, 0),
                "plan": (np.int64, -1),
                "annual": (np.bool_, False),
                "per_seat": (np.float64, 0.0),
                "base_fee": (np.float64, 0.0),
                "seats": (np.int64, 0),
                "paying_since": (np.float64, 0.0),
                "churn_t": (np.float64, INF),
                "exit_t": (np.float64, INF),
                "due": (np.int8, NOTHING),
                "due_t": (np.float64, INF),
                "first_paid_t": (np.float64, np.nan),
                "trial_end_t": (np.float64, np.nan),
                "trial_converted": (np.bool_, False),
                "end_t": (np.float64, INF),
            },
            capacity,
        )
        self._scratch = np.zeros(capacity, dtype=np.int64)  # per account, for deduplication
        self._handlers = (
            (int(Due.TRIAL_END), self._trial_end),
            (int(Due.UPGRADE), self._upgrade),
            (int(Due.PAY_AT_ACTIVATION), self._pay_at_activation),
            (int(Due.MOVE), self._move),
            (int(Due.RENEWAL_CHURN), self._renewal_churn),
        )
        self.invites = Columns({"inviter": (np.int64, -1), "t": (np.float64, 0.0)})
        self.repricings = Columns(
            {
                "account": (np.int64, -1),
                "epoch": (np.int64, 0),
                "plan": (np.int64, -1),
                "per_seat": (np.float64, 0.0),
                "base_fee": (np.float64, 0.0),
                "t": (np.float64, 0.0),
            }
        )
        self.account_calendar = Calendar(self.n_steps, self.steps_per_month)
        self.invite_calendar = Calendar(self.n_steps, self.steps_per_month)
        self.repricing_calendar = Calendar(self.n_steps, self.steps_per_month)
        self.spend = np.zeros((len(SpendKind), months))
        self._changes: list[tuple[Ints, Floats, int | Ints, Ints, Ints]] = []
        self._even_now = 0.0
        self._clock = np.cumsum(self.draws.exponential("arrivals", 64))
        self._even_next: float | None = None

    # --- parameters as arrays by segment, flow and plan ----------------------------------
    def _set_parameters(self, scenario: Scenario) -> None:
        segments = [scenario.segments[name] for name in self.segment_names]
        virality = [scenario.segment_virality(name) for name in self.segment_names]
        monetization = [scenario.segment_monetization(name) for name in self.segment_names]
        expansion = [scenario.segment_expansion(name) for name in self.segment_names]
        churn = [scenario.segment_churn(name) for name in self.segment_names]

        def by_segment(values: Sequence[float]) -> Floats:
            return np.asarray(values, dtype=np.float64)

        self.segment_shares = by_segment([s.share for s in segments])
        self.wtp_log_median = by_segment([math.log(s.wtp.median) for s in segments])
        self.wtp_sigma = by_segment([s.wtp.sigma for s in segments])
        self.extra_seats_mean = by_segment([s.seats.initial_mean - 1.0 for s in segments])
        self.churn_alpha = by_segment([c.alpha for c in churn])
        self.churn_beta = by_segment([c.beta for c in churn])
        self.free_hazard = by_segment([c.free_hazard for c in churn])
        self.unactivated_hazard = by_segment([c.unactivated_hazard for c in churn])
        self.to_free_share = by_segment(
            [
                c.downgrade_to_free_share if m.model in ("freemium", "reverse_trial") else 0.0
                for c, m in zip(churn, monetization, strict=True)
            ]
        )
        self.price_increase_churn = by_segment([c.price_increase_churn for c in churn])
        self.invites_mean = by_segment([v.invites_per_user for v in virality])
        self.invites_dispersion = by_segment([v.dispersion for v in virality])
        self.cycle_log_median, self.cycle_sigma = _log_normal_months([v.cycle_time for v in virality])
        self.acceptance = by_segment([v.acceptance_rate for v in virality])
        self.seat_share = by_segment([v.seat_share for v in virality])
        self.referral_reward = by_segment([v.referral_reward for v in virality])
        self.conversion_hazard = by_segment([m.conversion_hazard for m in monetization])
        self.trial_months = by_segment([m.trial.length_days / DAYS_PER_MONTH for m in monetization])
        self.conversion_activated = by_segment([m.trial.conversion_activated for m in monetization])
        self.conversion_not_activated = by_segment([m.trial.conversion_not_activated for m in monetization])
        self.seat_add = by_segment([e.seat_add_rate for e in expansion])
        self.seat_remove = by_segment([e.seat_remove_rate for e in expansion])
        self.downgrade = by_segment([e.downgrade_rate for e in expansion])
        self.move_rate = self.seat_add + self.seat_remove + self.downgrade
        self.segment_models = np.asarray([MODELS.index(m.model) for m in monetization], dtype=np.int64)

        self.flow_names = list(scenario.onboarding)
        flows = [scenario.onboarding[name] for name in self.flow_names]
        self.flow_activation = np.asarray([f.activation_probability for f in flows])
        self.flow_ttv_log_median, self.flow_ttv_sigma = _log_normal_months([f.time_to_value for f in flows])
        self.flow_cost = np.asarray([f.cost_per_signup for f in flows])
        self.segment_flow_steps = [
            Step(
                self.schedules.flows[name].starts,
                [float(self.flow_names.index(f)) for f in self.schedules.flows[name].values],
            )
            for name in self.segment_names
        ]

        self.plan_names = list(scenario.pricing.plans)
        plans = [scenario.pricing.plans[name] for name in self.plan_names]
        self.plan_min_seats = np.asarray([p.min_seats for p in plans], dtype=np.int64)
        self.plan_max_seats = np.asarray([p.max_seats or np.iinfo(np.int64).max for p in plans], dtype=np.int64)
        self.plan_value = np.asarray([p.value for p in plans])
        self.plan_annual_share = np.asarray([p.annual_share for p in plans])
        self.plan_annual_discount = np.asarray([p.annual_discount for p in plans])
        self.plan_per_seat = [
            Step(self.schedules.prices[name].starts, [p.per_seat for p in self.schedules.prices[name].values])
            for name in self.plan_names
        ]
        self.plan_base_fee = [
            Step(self.schedules.prices[name].starts, [p.base_fee for p in self.schedules.prices[name].values])
            for name in self.plan_names
        ]

        profile, invites = self.streams["account_profile"], self.streams["invites"]
        self.churn_draws: list[Reservoir | None] = [
            Reservoir(partial(profile.beta, a, b))
            for a, b in zip(self.churn_alpha.tolist(), self.churn_beta.tolist(), strict=True)
        ]
        self.extra_seat_draws: list[Reservoir | None] = [
            Reservoir(partial(profile.poisson, m)) if m > 0 else None for m in self.extra_seats_mean.tolist()
        ]
        # Invites per activated user: Gamma–Poisson with mean m and shape k, i.e. negative binomial.
        self.invite_draws: list[Reservoir | None] = [
            Reservoir(partial(invites.negative_binomial, k, k / (k + m))) if m > 0 else None
            for m, k in zip(self.invites_mean.tolist(), self.invites_dispersion.tolist(), strict=True)
        ]
        self.cumulative_shares = np.cumsum(self.segment_shares)[:-1]
        switching = any(len(steps.starts) > 1 for steps in self.segment_flow_steps)
        self.fixed_flow = (
            None
            if switching
            else np.asarray([int(steps.values[0]) for steps in self.segment_flow_steps], dtype=np.int64)
        )

        repriced = any(len(s.starts) > 1 for s in [*self.plan_per_seat, *self.plan_base_fee])
        self.fixed_prices = (
            None
            if repriced
            else (
                np.asarray([s.values[0] for s in self.plan_per_seat]),
                np.asarray([s.values[0] for s in self.plan_base_fee]),
            )
        )

        trial = scenario.monetization.trial
        gated = scenario.monetization.model in ("free_trial", "reverse_trial") and trial.card_required
        self.signup_factor = trial.card_signup_factor if gated else 1.0
        self.market = scenario.market.size

    # --- running ----------------------------------------------------------------------------
    def run(self) -> Ledger:
        """Simulate to the horizon and return the ledger."""
        repricings = sorted(self.schedules.repricings, key=lambda change: change.month)
        paid_rates, organic_rates = self.paid_rates, self.organic_rates
        for step in range(self.n_steps):
            t0 = step * self.dt
            if step:
                self.active_users -= int(self.leaving[step - 1])
            while repricings and repricings[0].month < t0 + self.dt:
                change = repricings.pop(0)
                self._announce_repricing(self.plan_names.index(change.plan), change.month)
            self._settle(step, self._arrivals(t0, paid_rates[step], organic_rates[step]))
            if self.on_progress is not None and (step + 1) % self.steps_per_month == 0:
                self.on_progress((step + 1) / self.n_steps)
        for month in range(self.months):
            self.spend[SpendKind.PAID_MEDIA, month] += self.schedules.paid_spend(month)
        return self._ledger()

    def _settle(self, step: int, arrivals: Signups | None) -> None:
        """Handle everything due in `step`, including what it causes within the same step."""
        while True:
            accounts = self.account_calendar.pop(step)
            repricings = self.repricing_calendar.pop(step)
            invites = self.invite_calendar.pop(step)
            if accounts is None and repricings is None and invites is None:
                if arrivals is not None:
                    self._signup(arrivals)
                    arrivals = None
                    continue
                return
            # Accounts first: an invite later in the step must see a close in it.
            while accounts is not None or repricings is not None:
                if accounts is not None:
                    self._account_events(step, accounts)
                if repricings is not None:
                    self._reprice(repricings)
                accounts = self.account_calendar.pop(step)
                repricings = self.repricing_calendar.pop(step)
            viral = self._send_invites(invites) if invites is not None else None
            # One batch of signups per round: the step's arrivals and the invites accepted.
            batch = Signups.join_batches(arrivals, viral)
            arrivals = None
            if batch is not None:
                self._signup(batch)

    def _remaining_share(self) -> float:
        return max(0.0, 1.0 - self.signups / self.market)

    # --- acquisition ----------------------------------------------------------------------
    def _paid_rates(self) -> Floats:
        """Unsaturated paid signups per month, averaged over each step (budget changes may
        fall inside a step)."""
        paid = self.scenario.acquisition.paid
        budget = self.schedules.paid_budget
        edges = np.arange(self.n_steps + 1) * self.dt
        rates = np.zeros(self.n_steps)
        starts = [*budget.starts, INF]
        for i, value in enumerate(budget.values):
            rate = paid.signups_per_month(value)
            overlap = np.clip(np.minimum(edges[1:], starts[i + 1]) - np.maximum(edges[:-1], starts[i]), 0.0, None)
            rates += rate * overlap / self.dt
        return rates

    def _organic_rates(self) -> Floats:
        """Poisson-part organic signups per month, averaged over each step."""
        organic = self.scenario.acquisition.organic
        edges = np.arange(self.n_steps + 1) * self.dt
        rates = np.full(self.n_steps, organic.innovation_rate * self.market)
        if organic.arrivals == "poisson" and organic.signups_per_month > 0:
            growth = math.log1p(organic.monthly_growth)
            if growth == 0.0:
                rates += organic.signups_per_month
            else:  # exact mean of (1 + g)^t over the step
                level = np.exp(growth * edges)
                rates += organic.signups_per_month * (level[1:] - level[:-1]) / (growth * self.dt)
        return rates

    def _arrivals(self, t0: float, paid_rate: float, organic_rate: float) -> Signups | None:
        """The step's signups from paid, organic and word-of-mouth channels: a Poisson process
        at the rates of the step's start, generated as the SimPy engine does, by unit
        exponential gaps on the integrated rate. A variant whose rates differ slightly then
        gets the same arrivals slightly moved (common random numbers), not other ones."""
        scale = self._remaining_share() * self.signup_factor
        word_of_mouth = self.scenario.acquisition.word_of_mouth.imitation_rate * self.active_users
        paid, organic, wom = paid_rate * scale, organic_rate * scale, word_of_mouth * scale
        total = paid + organic + wom
        times = self._poisson_arrivals(t0, total)
        even = self._even_arrivals(t0 + self.dt) if self.scenario.acquisition.organic.arrivals == "even" else []
        if len(times) == 0 and not even:
            return None
        u = self.draws.uniform("channel", len(times)) * total
        channel = np.where(
            u < paid, Channel.PAID, np.where(u < paid + organic, Channel.ORGANIC, Channel.WORD_OF_MOUTH)
        ).astype(np.int8)
        if even:
            times = np.concatenate([times, np.asarray(even, dtype=np.float64)])
            channel = np.concatenate([channel, np.full(len(even), Channel.ORGANIC, dtype=np.int8)])
        none = np.full(len(times), -1, dtype=np.int64)
        return Signups(times, channel, self._draw_segments(len(times)), join=none, inviter=none)

    def _poisson_arrivals(self, t0: float, rate: float) -> Floats:
        """Arrival times in [t0, t0 + dt) at a constant `rate` per month. `self._clock` holds
        the integrated rate still to run before each coming arrival (cumulative unit
        exponential gaps), carried over from step to step."""
        budget = rate * self.dt
        if budget <= 0.0:
            return np.zeros(0)
        while self._clock[-1] <= budget:  # draw ahead until the step is covered
            extra = int(budget + 4.0 * math.sqrt(budget) + 16.0)
            gaps = self.draws.exponential("arrivals", extra)
            self._clock = np.concatenate([self._clock, self._clock[-1] + np.cumsum(gaps)])
        count = int(np.searchsorted(self._clock, budget, side="right"))
        times = t0 + self._clock[:count] / rate
        self._clock = self._clock[count:] - budget
        return times

    def _even_arrivals(self, until: float) -> list[float]:
        """Evenly spaced organic signups before `until`, with the SimPy engine's arithmetic
        (each gap is 1 / rate at the previous signup), so deterministic scenarios agree exactly."""
        organic = self.scenario.acquisition.organic
        step = self.scenario.simulation.step_days / DAYS_PER_MONTH
        times: list[float] = []
        while True:
            if self._even_next is None:
                remaining = max(0.0, 1.0 - (self.signups + len(times)) / self.market)
                rate = organic.signups_per_month * (1 + organic.monthly_growth) ** self._even_now
                rate *= remaining * self.signup_factor
                if rate <= 0:
                    if self._even_now + step >= until:
                        self._even_now += step
                        return times
                    self._even_now += step
                    continue
                self._even_next = self._even_now + 1.0 / rate
            if self._even_next >= until:
                return times
            times.append(self._even_next)
            self._even_now, self._even_next = self._even_next, None

    def _draw_segments(self, count: int) -> Ints:
        if len(self.segment_shares) == 1:
            return np.zeros(count, dtype=np.int64)
        return np.searchsorted(self.cumulative_shares, self.draws.uniform("segment", count), side="right")

    def _flows_at(self, segment: Ints, t: Floats) -> Ints:
        if self.fixed_flow is not None:
            return self.fixed_flow[segment]
        flow = np.zeros(len(t), dtype=np.int64)
        for s, steps in enumerate(self.segment_flow_steps):
            mine = segment == s
            flow[mine] = np.asarray(_step_values(steps, t[mine]))
        return flow

    def _signup(self, batch: Signups) -> None:
        """People sign up: into new accounts of their own, or (where `join` ≥ 0) into that account."""
        t, channel, segment, join, inviter = batch.t, batch.channel, batch.segment, batch.join, batch.inviter
        n = len(t)
        self.signups += n
        limit = self.scenario.simulation.max_users
        if self.signups > limit:
            when = float(np.sort(t)[min(n - 1, max(0, n - (self.signups - limit)))])
            raise SimulationLimitError(
                f"simulation.max_users ({limit:,}) reached at month {when:.1f}; raise it, or check market.size "
                "and virality (a viral coefficient above 1 grows until the market is exhausted)"
            )
        flow = self._flows_at(segment, t)
        activates = self.draws.uniform("activation", n) < self.flow_activation[flow]
        sigma = self.flow_ttv_sigma[flow]
        time_to_value = np.exp(self.flow_ttv_log_median[flow] + sigma * self.draws.normal("activation", n))
        activation_t = np.where(activates, t + time_to_value, INF)
        self._spend(SpendKind.ONBOARDING, t, self.flow_cost[flow])

        users = self.users
        rows = users.add(n)
        ids = np.arange(rows.start, rows.stop, dtype=np.int64)
        users["signup_t"][rows] = t
        users["channel"][rows] = channel
        users["segment"][rows] = segment
        users["inviter"][rows] = inviter

        own = join < 0
        account = join.copy()
        n_own = int(np.count_nonzero(own))
        if n_own == n:
            account = self._open_accounts(ids, t, segment, activation_t)
        elif n_own:
            account[own] = self._open_accounts(ids[own], t[own], segment[own], activation_t[own])
        left_already = 0
        if n_own < n:
            joining = ~own
            left_already = self._join(account[joining], t[joining])
        users["account"][rows] = account
        self.active_users += n - left_already
        activates = np.isfinite(activation_t)
        self._activate(ids[activates], activation_t[activates])

    def _join(self, account: Ints, t: Floats) -> int:
        """Members join existing accounts (a seat each on a paying account). Returns how many
        joined an account that has already closed later in this step (they leave with it)."""
        accounts = self.accounts
        np.add.at(accounts["members"], account, 1)
        state = accounts["state"][account]
        gone = int(np.count_nonzero(state == GONE))
        # Joining an account whose leaving is already booked: leave with it.
        end_t = accounts["end_t"][account]
        booked = (state != GONE) & np.isfinite(end_t)
        if np.count_nonzero(booked):
            np.add.at(self.leaving, self.account_calendar.step_of(end_t[booked]), 1)
        paying = state == PAYING
        if np.count_nonzero(paying):
            pending_account, pending_t = account[paying], t[paying]
            order = np.argsort(pending_t, kind="stable")
            pending_account, pending_t = pending_account[order], pending_t[order]
            while len(pending_account):  # one seat at a time per account, in time order
                _, first = np.unique(pending_account, return_index=True)
                self._change_seats(
                    pending_account[first], accounts["seats"][pending_account[first]] + 1, pending_t[first]
                )
                rest = np.ones(len(pending_account), dtype=bool)
                rest[first] = False
                pending_account, pending_t = pending_account[rest], pending_t[rest]
        return gone

    def _open_accounts(self, owner: Ints, t: Floats, segment: Ints, owner_activation_t: Floats) -> Ints:
        n = len(owner)
        draws = self.draws
        accounts = self.accounts
        rows = accounts.add(n)
        if len(self._scratch) < rows.stop:
            self._scratch = np.zeros(len(accounts["owner"]), dtype=np.int64)
        ids = np.arange(rows.start, rows.stop, dtype=np.int64)
        accounts["owner"][rows] = owner
        accounts["segment"][rows] = segment
        accounts["owner_activation_t"][rows] = owner_activation_t
        accounts["first_conversion_draw"][rows] = draws.exponential("account_profile", n)
        accounts["first_exit_draw"][rows] = draws.exponential("account_profile", n)
        model = self.segment_models[segment]
        trial = (model == FREE_TRIAL) | (model == REVERSE_TRIAL)
        state = np.where(trial, TRIAL, FREE).astype(np.int8)
        accounts["state"][rows] = state
        self._record(ids, t, state.astype(np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64))
        if np.count_nonzero(trial):
            self._schedule(ids[trial], t[trial] + self.trial_months[segment[trial]], Due.TRIAL_END)
        freemium = model == FREEMIUM
        if np.count_nonzero(freemium):
            self._start_free(ids[freemium], t[freemium], None)
        paid_only = model == PAID_ONLY
        if np.count_nonzero(paid_only):
            po_ids, po_t = ids[paid_only], t[paid_only]
            activated = np.isfinite(owner_activation_t[paid_only])
            self._schedule(po_ids[activated], owner_activation_t[paid_only][activated], Due.PAY_AT_ACTIVATION)
            self._leave_unactivated(
                po_ids[~activated], po_t[~activated], accounts["first_exit_draw"][po_ids[~activated]]
            )
        return ids

    # --- scheduling -------------------------------------------------------------------------
    def _schedule(self, ids: Ints, t: Floats, due: Due) -> None:
        self.accounts["due"][ids] = due
        self.accounts["due_t"][ids] = t
        self.account_calendar.push(ids, t)

    def _leave_unactivated(self, ids: Ints, now: Floats, exit_draw: Floats) -> None:
        hazard = self.unactivated_hazard[self.accounts["segment"][ids]]
        leaves = hazard > 0
        self._leave_at(ids[leaves], now[leaves] + exit_draw[leaves] / hazard[leaves])

    def _start_free(self, ids: Ints, now: Floats, draws: tuple[Floats, Floats] | None) -> None:
        """A free phase from `now`: weigh the plans once, or go inactive, whichever comes first
        (exponential clocks from the owner's activation). `draws` are (exit, conversion)
        standard exponentials; None uses the account's first ones."""
        accounts = self.accounts
        if draws is None:
            exit_draw, conversion_draw = accounts["first_exit_draw"][ids], accounts["first_conversion_draw"][ids]
        else:
            exit_draw, conversion_draw = draws
        activation_t = accounts["owner_activation_t"][ids]
        unactivated = ~np.isfinite(activation_t)
        if np.count_nonzero(unactivated):
            self._leave_unactivated(ids[unactivated], now[unactivated], exit_draw[unactivated])
            keep = ~unactivated
            ids, now, activation_t = ids[keep], now[keep], activation_t[keep]
            exit_draw, conversion_draw = exit_draw[keep], conversion_draw[keep]
        segment = accounts["segment"][ids]
        start = np.maximum(now, activation_t)
        with np.errstate(divide="ignore"):
            to_exit = np.where(self.free_hazard[segment] > 0, exit_draw / self.free_hazard[segment], INF)
            to_buy = np.where(
                self.conversion_hazard[segment] > 0, conversion_draw / self.conversion_hazard[segment], INF
            )
        buys = to_buy < to_exit
        accounts["exit_t"][ids] = start + to_exit
        self._schedule(ids[buys], (start + to_buy)[buys], Due.UPGRADE)
        leaves = ~buys & np.isfinite(to_exit)
        self._leave_at(ids[leaves], (start + to_exit)[leaves])
        never = ~buys & ~leaves
        accounts["due"][ids[never]] = NOTHING

    # --- account events -------------------------------------------------------------------
    def _account_events(self, step: int, ids: Ints) -> None:
        accounts = self.accounts
        # An account filed twice under this step counts once (its last filing is kept).
        self._scratch[ids] = np.arange(len(ids))
        due = accounts["due"][ids]
        t = accounts["due_t"][ids]
        current = (self._scratch[ids] == np.arange(len(ids))) & (due != NOTHING)
        current &= self.account_calendar.step_of(t) == step
        ids, due, t = ids[current], due[current], t[current]
        if len(ids) == 0:
            return
        accounts["due"][ids] = NOTHING
        counts = np.bincount(due, minlength=len(Due)).tolist()
        for kind, handler in self._handlers:
            if counts[kind]:
                if counts[kind] == len(ids):
                    handler(ids, t)
                    continue
                mine = due == kind
                handler(ids[mine], t[mine])

    def _draw_traits(self, ids: Ints) -> None:
        """An account's willingness to pay, churn probability, seats and billing-period draw,
        drawn when it first weighs the plans.

        NOTE: for performance reasons, not when it opens (as the SimPy engine does): most
        accounts never weigh a plan, and the traits are independent of all that happens
        before, so the distribution is the same."""
        accounts = self.accounts
        ids = ids[accounts["profile_seats"][ids] == 0]
        n = len(ids)
        if n == 0:
            return
        segment = accounts["segment"][ids]
        draws = self.draws
        log_wtp = self.wtp_log_median[segment] + self.wtp_sigma[segment] * draws.normal("account_profile", n)
        accounts["wtp"][ids] = np.exp(log_wtp)
        accounts["churn_probability"][ids] = _by_segment(self.churn_draws, segment, 0.0)
        accounts["profile_seats"][ids] = 1 + _by_segment(self.extra_seat_draws, segment, 0)
        accounts["annual_draw"][ids] = draws.uniform("account_profile", n)

    def _trial_end(self, ids: Ints, t: Floats) -> None:
        accounts = self.accounts
        segment = accounts["segment"][ids]
        activated = accounts["owner_activation_t"][ids] <= t
        p_buy = np.where(activated, self.conversion_activated[segment], self.conversion_not_activated[segment])
        wants = self.draws.uniform("conversion", len(ids)) < p_buy
        plan = np.full(len(ids), -1, dtype=np.int64)
        if np.count_nonzero(wants):
            self._draw_traits(ids[wants])
            plan[wants] = self._best_plan(ids[wants], self._seats_wanted(ids[wants]), t[wants])
        buys = plan >= 0
        accounts["trial_end_t"][ids] = t
        accounts["trial_converted"][ids] = buys
        if np.count_nonzero(buys):
            self._start_paying(ids[buys], t[buys], plan[buys])
        rest = ~buys
        reverse = self.segment_models[segment] == REVERSE_TRIAL
        self._close(ids[rest & ~reverse], t[rest & ~reverse])
        to_free = rest & reverse
        if np.count_nonzero(to_free):
            self._set_free(ids[to_free], t[to_free])
            self._start_free(ids[to_free], t[to_free], None)

    def _buy_what_is_worth_it(self, ids: Ints, t: Floats) -> Bools:
        """Accounts weigh the plans now; those for which one is worth its price start paying.
        Returns which did."""
        self._draw_traits(ids)
        plan = self._best_plan(ids, self._seats_wanted(ids), t)
        buys = plan >= 0
        if np.count_nonzero(buys):
            self._start_paying(ids[buys], t[buys], plan[buys])
        return buys

    def _upgrade(self, ids: Ints, t: Floats) -> None:
        buys = self._buy_what_is_worth_it(ids, t)
        # Found no plan worth its price: stays free until it goes inactive, never weighs again.
        rest = ids[~buys]
        exit_t = self.accounts["exit_t"][rest]
        leaves = np.isfinite(exit_t)
        self._leave_at(rest[leaves], exit_t[leaves])

    def _pay_at_activation(self, ids: Ints, t: Floats) -> None:
        buys = self._buy_what_is_worth_it(ids, t)
        self._close(ids[~buys], t[~buys])

    def _start_paying(self, ids: Ints, t: Floats, plan: Ints) -> None:
        accounts = self.accounts
        n = len(ids)
        annual = accounts["annual_draw"][ids] < self.plan_annual_share[plan]
        period = np.where(annual, 12.0, 1.0)
        accounts["annual"][ids] = annual
        accounts["seats"][ids] = self._seats_wanted(ids)
        accounts["plan"][ids] = plan
        self._set_list_price(ids, plan, t)
        accounts["paying_since"][ids] = t
        accounts["epoch"][ids] += 1
        accounts["state"][ids] = PAYING
        first = np.isnan(accounts["first_paid_t"][ids])
        accounts["first_paid_t"][ids[first]] = t[first]
        self._bill(ids, t)
        theta = accounts["churn_probability"][ids]
        # Renewals survived ~ Geometric(1 − (1 − θ)^period), by inversion of a uniform.
        log_survival = period * np.log1p(-theta)
        u = 1.0 - self.draws.uniform("paid_lifetime", n)  # in (0, 1]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            periods = np.ceil(np.log(u) / log_survival)
        renewals = np.where(log_survival < 0, np.clip(np.nan_to_num(periods, nan=1.0), 1, NEVER), NEVER).astype(
            np.int64
        )
        accounts["churn_t"][ids] = t + renewals * period
        self._next_move(ids, t)

    def _next_move(self, ids: Ints, now: Floats) -> None:
        """The next seat or plan move, unless the churning renewal comes first."""
        accounts = self.accounts
        rate = self.move_rate[accounts["segment"][ids]]
        with np.errstate(divide="ignore"):
            wait = np.where(rate > 0, self.draws.exponential("expansion", len(ids)) / rate, INF)
        move_t = now + wait
        churn_t = accounts["churn_t"][ids]
        moves = move_t < churn_t
        self._schedule(ids[moves], move_t[moves], Due.MOVE)
        self._schedule(ids[~moves], churn_t[~moves], Due.RENEWAL_CHURN)

    def _move(self, ids: Ints, t: Floats) -> None:
        accounts = self.accounts
        segment = accounts["segment"][ids]
        add, remove = self.seat_add[segment], self.seat_remove[segment]
        u = self.draws.uniform("expansion", len(ids)) * self.move_rate[segment]
        seats = accounts["seats"][ids]
        adds = u < add
        removes = ~adds & (u < add + remove)
        if np.count_nonzero(adds):
            self._change_seats(ids[adds], seats[adds] + 1, t[adds])
        removes &= seats > 1
        if np.count_nonzero(removes):
            self._change_seats(ids[removes], seats[removes] - 1, t[removes])
        downs = u >= add + remove
        if np.count_nonzero(downs):
            self._downgrade(ids[downs], t[downs])
        self._next_move(ids, t)

    def _renewal_churn(self, ids: Ints, t: Floats) -> None:
        accounts = self.accounts
        accounts["epoch"][ids] += 1
        to_free = self.draws.uniform("expansion", len(ids)) < self.to_free_share[accounts["segment"][ids]]
        self._close(ids[~to_free], t[~to_free])
        if np.count_nonzero(to_free):
            free_ids, free_t = ids[to_free], t[to_free]
            self._set_free(free_ids, free_t)
            count = len(free_ids)
            draws = (
                self.draws.exponential("free_lifetime", count),
                self.draws.exponential("conversion", count),
            )
            self._start_free(free_ids, free_t, draws)

    # --- price rises for existing customers -------------------------------------------------
    def _announce_repricing(self, plan: int, month: float) -> None:
        """Every account paying on `plan` meets its new price at its next renewal after `month`."""
        accounts = self.accounts
        state = accounts.used("state")
        ids = np.flatnonzero((state == PAYING) & (accounts.used("plan") == plan))
        if len(ids) == 0:
            return
        period = np.where(accounts["annual"][ids], 12.0, 1.0)
        since = accounts["paying_since"][ids]
        renewal_t = since + (np.floor((month - since) / period) + 1) * period
        records = self.repricings
        rows = records.add(len(ids))
        records["account"][rows] = ids
        records["epoch"][rows] = accounts["epoch"][ids]
        records["plan"][rows] = plan
        records["per_seat"][rows] = self.plan_per_seat[plan].at(month)
        records["base_fee"][rows] = self.plan_base_fee[plan].at(month)
        records["t"][rows] = renewal_t
        self.repricing_calendar.push(np.arange(rows.start, rows.stop, dtype=np.int64), renewal_t)

    def _reprice(self, rows: Ints) -> None:
        accounts, records = self.accounts, self.repricings
        ids = records["account"][rows]
        valid = (accounts["epoch"][ids] == records["epoch"][rows]) & (accounts["plan"][ids] == records["plan"][rows])
        rows, ids = rows[valid], ids[valid]
        if len(ids) == 0:
            return
        t, plan = records["t"][rows], records["plan"][rows]
        per_seat, base_fee = records["per_seat"][rows], records["base_fee"][rows]
        seats = accounts["seats"][ids]
        value = accounts["wtp"][ids] * self.plan_value[plan]
        surplus = seats * value - np.maximum(seats, self.plan_min_seats[plan]) * per_seat - base_fee
        leaves = (surplus < 0) & (
            self.draws.uniform("price_response", len(ids)) < self.price_increase_churn[accounts["segment"][ids]]
        )
        if np.count_nonzero(leaves):
            accounts["epoch"][ids[leaves]] += 1
            self._close(ids[leaves], t[leaves])
        stays = ~leaves
        ids = ids[stays]
        accounts["per_seat"][ids] = per_seat[stays]
        accounts["base_fee"][ids] = base_fee[stays]
        self._bill(ids, t[stays])

    # --- plans and billing --------------------------------------------------------------------
    def _seats_wanted(self, ids: Ints) -> Ints:
        return np.maximum(self.accounts["profile_seats"][ids], self.accounts["members"][ids])

    def _best_plan(
        self, ids: Ints, seats: Ints, t: Floats, require_gain: bool = True, cheaper_than: Floats | None = None
    ) -> Ints:
        """For each account, the plan with the largest surplus (−1 if none is worth its price
        when `require_gain`), among plans allowing `seats` and billing less than `cheaper_than`.
        Ties go to the plan listed first."""
        wtp = self.accounts["wtp"][ids]
        best = np.full(len(ids), -1, dtype=np.int64)
        best_surplus = np.full(len(ids), 0.0 if require_gain else -INF)
        for plan in range(len(self.plan_names)):
            per_seat = _step_values(self.plan_per_seat[plan], t)
            base_fee = _step_values(self.plan_base_fee[plan], t)
            bill = np.maximum(seats, self.plan_min_seats[plan]) * per_seat + base_fee
            surplus = seats * (wtp * self.plan_value[plan]) - bill
            better = (seats <= self.plan_max_seats[plan]) & (surplus > best_surplus)
            if cheaper_than is not None:
                better &= bill < cheaper_than
            best[better] = plan
            best_surplus[better] = surplus[better]
        return best

    def _set_list_price(self, ids: Ints, plan: Ints, t: Floats) -> None:
        accounts = self.accounts
        if self.fixed_prices is not None:
            accounts["per_seat"][ids] = self.fixed_prices[0][plan]
            accounts["base_fee"][ids] = self.fixed_prices[1][plan]
            return
        for p in np.unique(plan).tolist():
            mine = plan == p
            accounts["per_seat"][ids[mine]] = _step_values(self.plan_per_seat[p], t[mine])
            accounts["base_fee"][ids[mine]] = _step_values(self.plan_base_fee[p], t[mine])

    def _current_bill(self, ids: Ints) -> Floats:
        accounts = self.accounts
        plan = accounts["plan"][ids]
        return (
            np.maximum(accounts["seats"][ids], self.plan_min_seats[plan]) * accounts["per_seat"][ids]
            + (accounts["base_fee"][ids])
        )

    def _change_seats(self, ids: Ints, seats: Ints, t: Floats) -> None:
        accounts = self.accounts
        too_many = seats > self.plan_max_seats[accounts["plan"][ids]]
        if np.count_nonzero(too_many):
            plan = self._best_plan(ids[too_many], seats[too_many], t[too_many], require_gain=False)
            allowed = np.ones(len(ids), dtype=bool)
            allowed[np.flatnonzero(too_many)[plan < 0]] = False  # no plan allows that many seats
            moving = plan >= 0
            moved_ids = ids[too_many][moving]
            accounts["plan"][moved_ids] = plan[moving]
            self._set_list_price(moved_ids, plan[moving], t[too_many][moving])
            ids, seats, t = ids[allowed], seats[allowed], t[allowed]
        accounts["seats"][ids] = seats
        self._bill(ids, t)

    def _downgrade(self, ids: Ints, t: Floats) -> None:
        plan = self._best_plan(
            ids, self.accounts["seats"][ids], t, require_gain=False, cheaper_than=self._current_bill(ids)
        )
        moves = plan >= 0
        ids, t, plan = ids[moves], t[moves], plan[moves]
        self.accounts["plan"][ids] = plan
        self._set_list_price(ids, plan, t)
        self._bill(ids, t)

    def _bill(self, ids: Ints, t: Floats) -> None:
        accounts = self.accounts
        amount = self._current_bill(ids)
        annual = accounts["annual"][ids]
        amount = np.where(annual, amount * (1.0 - self.plan_annual_discount[accounts["plan"][ids]]), amount)
        mrr_cents = np.rint(amount * 100).astype(np.int64)
        self._record(ids, t, PAYING, mrr_cents, accounts["seats"][ids].copy())

    def _set_free(self, ids: Ints, t: Floats) -> None:
        self.accounts["state"][ids] = FREE
        zeros = np.zeros(len(ids), dtype=np.int64)
        self._record(ids, t, FREE, zeros, zeros)

    def _leave_at(self, ids: Ints, t: Floats) -> None:
        """Free accounts that will go inactive at `t`, with nothing able to intervene (no
        decision is due before; joins and invites do not change it). Closed now, at their future
        times, instead of through the calendar: the members leave the active count in their
        step (`self.leaving`), and invites and activations already check `end_t`."""
        if len(ids) == 0:
            return
        inside = t * self.steps_per_month < self.n_steps  # later than the horizon: never
        ids, t = ids[inside], t[inside]
        accounts = self.accounts
        accounts["due"][ids] = NOTHING
        accounts["end_t"][ids] = t
        np.add.at(self.leaving, self.account_calendar.step_of(t), accounts["members"][ids])
        zeros = np.zeros(len(ids), dtype=np.int64)
        self._record(ids, t, GONE, zeros, zeros)

    def _close(self, ids: Ints, t: Floats) -> None:
        """Accounts leave now (at `t`, in the step being run)."""
        if len(ids) == 0:
            return
        accounts = self.accounts
        accounts["state"][ids] = GONE
        accounts["due"][ids] = NOTHING
        accounts["end_t"][ids] = t
        self.active_users -= int(accounts["members"][ids].sum())
        zeros = np.zeros(len(ids), dtype=np.int64)
        self._record(ids, t, GONE, zeros, zeros)

    def _record(self, ids: Ints, t: Floats, state: int | Ints, mrr_cents: Ints, seats: Ints) -> None:
        if len(ids):
            self._changes.append((ids, t.copy(), state, mrr_cents, seats))

    def _spend(self, kind: SpendKind, t: Floats, amount: Floats) -> None:
        month = np.floor(t).astype(np.int64)
        inside = month < self.months
        self.spend[kind] += np.bincount(month[inside], weights=amount[inside], minlength=self.months)[: self.months]

    # --- users: activation and invites -------------------------------------------------------
    def _activate(self, ids: Ints, t: Floats) -> None:
        """Users who will activate at `t`: their activation and invites, drawn at signup.

        NOTE: for performance reasons, not at activation time: nothing that happens between
        signup and activation changes either. An activation whose account has closed by then
        does not happen; the ledger drops it (`_ledger`), and its invites are dropped when
        their time comes, as every invite from a closed account is (`_send_invites`)."""
        users = self.users
        users["activated_t"][ids] = t
        segment = users["segment"][ids]
        mean = self.invites_mean[segment]
        inviting = mean > 0
        if not np.count_nonzero(inviting):
            return
        ids, t, segment, mean = ids[inviting], t[inviting], segment[inviting], mean[inviting]
        counts = _by_segment(self.invite_draws, segment, 0).astype(np.int64)
        total = int(counts.sum())
        if total == 0:
            return
        inviter = np.repeat(ids, counts)
        seg = np.repeat(segment, counts)
        delay = np.exp(self.cycle_log_median[seg] + self.cycle_sigma[seg] * self.draws.normal("invites", total))
        invites = self.invites
        rows = invites.add(total)
        invites["inviter"][rows] = inviter
        send_t = np.repeat(t, counts) + delay
        invites["t"][rows] = send_t
        self.invite_calendar.push(np.arange(rows.start, rows.stop, dtype=np.int64), send_t)

    def _send_invites(self, rows: Ints) -> Signups | None:
        """Invites due now: those accepted, as signups."""
        users, accounts, invites = self.users, self.accounts, self.invites
        inviter = invites["inviter"][rows]
        t = invites["t"][rows]
        account = users["account"][inviter]
        # An account that has closed sends no more invites (its users have left).
        alive = accounts["end_t"][account] > t
        inviter, t, account = inviter[alive], t[alive], account[alive]
        n = len(inviter)
        if n == 0:
            return None
        np.add.at(users["invites_sent"], inviter, 1)
        segment = users["segment"][inviter].astype(np.int64)
        p_accept = self.acceptance[segment] * self._remaining_share() * self.signup_factor
        accepted = self.draws.uniform("acceptance", n) < p_accept
        joins = self.draws.uniform("acceptance", n) < self.seat_share[segment]
        if not np.count_nonzero(accepted):
            return None
        inviter, t, account, segment, joins = (
            inviter[accepted],
            t[accepted],
            account[accepted],
            segment[accepted],
            joins[accepted],
        )
        np.add.at(users["invites_accepted"], inviter, 1)
        new_accounts = ~joins
        self._spend(SpendKind.REFERRAL, t[new_accounts], self.referral_reward[segment[new_accounts]])
        join = np.where(joins, account, -1)
        return Signups(t, np.full(len(t), Channel.VIRAL, dtype=np.int8), segment, join=join, inviter=inviter)

    # --- the ledger -----------------------------------------------------------------------
    def _ledger(self) -> Ledger:
        """The ledger, with users numbered in signup order and accounts in their owners' order,
        as the SimPy engine numbers them (batches within a step are not in time order)."""
        users, accounts = self.users, self.accounts
        if self._changes:
            account = np.concatenate([c[0] for c in self._changes])
            t = np.concatenate([c[1] for c in self._changes])
            state = np.concatenate(
                [np.broadcast_to(np.asarray(c[2], dtype=np.int64), len(c[0])) for c in self._changes]
            )
            mrr = np.concatenate([c[3] for c in self._changes])
            seats = np.concatenate([c[4] for c in self._changes])
        else:
            account, state, mrr, seats = (np.zeros(0, np.int64) for _ in range(4))
            t = np.zeros(0)

        user_order = np.argsort(users.used("signup_t"), kind="stable")
        user_rank = _inverse(user_order)
        owner = user_rank[accounts.used("owner")]
        account_order = np.argsort(owner, kind="stable")
        account_rank = _inverse(account_order)
        inviter = users.used("inviter")[user_order]
        invited = inviter >= 0
        inviter[invited] = user_rank[inviter[invited]]

        def by_user(name: str) -> NDArray[Any]:
            return users.used(name)[user_order]

        def by_account(name: str) -> NDArray[Any]:
            return accounts.used(name)[account_order]

        activated_t = by_user("activated_t")
        end_t = by_account("end_t")
        account_of_user = account_rank[by_user("account")]
        # Activations past the horizon, or after the account closed, did not happen.
        activated_t[(activated_t >= self.months) | (end_t[account_of_user] <= activated_t)] = np.nan
        return freeze(
            months=self.months,
            currency=self.scenario.currency,
            gross_margin=self.scenario.costs.gross_margin,
            cost_to_serve_per_seat=self.scenario.costs.cost_to_serve_per_seat,
            segment_names=self.segment_names,
            user_signup_t=by_user("signup_t"),
            user_channel=by_user("channel"),
            user_segment=by_user("segment"),
            user_account=account_of_user,
            user_inviter=inviter,
            user_activated_t=activated_t,
            user_invites_sent=by_user("invites_sent"),
            user_invites_accepted=by_user("invites_accepted"),
            account_owner=owner[account_order],
            account_first_paid_t=by_account("first_paid_t"),  # set by events, all before the horizon
            account_trial_end_t=by_account("trial_end_t"),
            account_trial_converted=by_account("trial_converted"),
            account_end_t=end_t,
            changes=AccountChanges(account=account_rank[account], t=t, state=state, mrr_cents=mrr, seats=seats),
            spend=self.spend,
        )


def _inverse(order: Ints) -> Ints:
    """The inverse of a permutation: new position of each old index."""
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank


def _log_normal_months(specs: Sequence[LogNormalDays]) -> tuple[Floats, Floats]:
    """(log median in months, sigma) arrays of lognormal durations given in days; a median of
    0 has log median −inf, so that exp(...) samples 0."""
    durations = [LogNormalMonths.from_days(spec) for spec in specs]
    return np.asarray([d.mu for d in durations]), np.asarray([d.sigma for d in durations], dtype=np.float64)


def run_fast(
    scenario: Scenario,
    seed: int | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> Ledger:
    """One replication of `scenario` with the fast engine."""
    return FastEngine(scenario, seed=seed, on_progress=on_progress).run()
