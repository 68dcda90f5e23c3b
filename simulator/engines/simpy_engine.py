"""The reference engine: a SimPy discrete-event simulation of every user and account.

Event-minimal: each user and account costs events in proportion to its state changes, not
to the months it lives. Lifetimes are sampled, not flipped month by month; MRR is recorded
only when it changes and is accrued into months by the ledger.

Processes, for what has several steps to go through:
- `_even_arrivals`: organic signups at evenly spaced times;
- `_trial`: a trial account's trial, and what follows it;
- `_paying` (within `_trial` or `_paying_then_free`, or alone for a paid-only account): a
  paying phase, with its seat and plan moves, down to churn at a renewal;
- `_price_rise_for_existing`: at a price rise for existing customers, a `_reprice` for each
  account on the plan, which meets the new price at its next renewal.

Chains of single events, each doing its work and scheduling the next:
- `_Arrivals`: paid, organic and word-of-mouth signups, whose rate is recomputed at every
  arrival and at least once per `simulation.step_days`;
- `_send_invite`: the invites a user sends, from its activation on.

A user's activation, a free phase (ending in an exit or a purchase, whichever comes first), a
paid-only account's purchase decision and a never-activated account's departure are single
events too. A process would cost two more events (its start and its end) and a resumption of
its generator at every step, and most users and accounts have nothing else to do.

Events wait in a `CalendarEnvironment`: SimPy's environment, processing events in SimPy's
order, with a cheaper store for the many events that are months ahead. Single events are its
timed calls (`_after`), which it orders exactly as timeouts with one callback; a single event
at or past the horizon, which the run would never reach, is not scheduled.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from enum import Enum
from typing import IO, Any

import numpy as np
import simpy

from simulator.engines.collector_pause import cyclic_collector_paused
from simulator.engines.event_calendar import CalendarEnvironment
from simulator.engines.sampling import (
    LogNormalMonths,
    RandomStreams,
    buffered,
    negative_binomial_draws,
    periods_survived,
)
from simulator.engines.timeline import PlanPrice, Schedules
from simulator.ledger import AccountState, Channel, Ledger, LedgerWriter, SpendKind
from simulator.scenario.models import DAYS_PER_MONTH, PriceChange, Scenario

INF = math.inf
TRIAL_MODELS = ("free_trial", "reverse_trial")
Process = Generator[simpy.Event, Any, Any]


class SimulationLimitError(RuntimeError):
    """The run hit `simulation.max_users`."""


class PhaseEnd(Enum):
    """How a paying phase ended."""

    CHURNED = "churned"
    TO_FREE = "to_free"
    ENDED_ELSEWHERE = "ended_elsewhere"


NO_PRICE = PlanPrice(0.0, 0.0)
"""The list price of an account that does not pay (frozen: one is shared)."""


@dataclass(eq=False, slots=True)
class Account:
    """An account's live state. Its fixed traits are drawn once, when it opens, from one stream,
    so that a price change alters decisions, not the traits of the accounts that face them."""

    id: int
    segment: int
    owner_activation_t: float
    wtp: float  # per seat per month
    churn_probability: float  # monthly θ ~ Beta(α, β)
    profile_seats: int
    annual_draw: float  # uniform; annual billing if below the plan's annual share
    first_conversion_draw: float  # standard exponential for the first free phase
    first_exit_draw: float  # standard exponential for the first free phase
    state: AccountState
    members: int = 1
    epoch: int = 0  # bumped when a paying phase starts or ends, to cancel stale events
    plan: str = ""
    annual: bool = False
    price: PlanPrice = NO_PRICE
    seats: int = 0
    paying_since: float = 0.0

    @property
    def gone(self) -> bool:
        """Whether the account (and so each of its users) has left."""
        return self.state == AccountState.GONE


@dataclass(frozen=True)
class _Flow:
    activation_probability: float
    time_to_value: LogNormalMonths
    cost_per_signup: float


class SimpyEngine:
    """Runs one replication of a scenario and returns its ledger."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int | None = None,
        events: IO[str] | None = None,
        on_progress: Callable[[float], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.on_progress = on_progress
        self.months = scenario.simulation.months
        self.env = CalendarEnvironment()
        self.streams = RandomStreams(scenario.simulation.seed if seed is None else seed)
        self.schedules = Schedules(scenario)
        self.segment_names = tuple(scenario.segments)
        self.ledger = LedgerWriter(
            self.months,
            self.segment_names,
            currency=scenario.currency,
            gross_margin=scenario.costs.gross_margin,
            cost_to_serve_per_seat=scenario.costs.cost_to_serve_per_seat,
            events=events,
        )
        self.flows = {
            name: _Flow(f.activation_probability, LogNormalMonths.from_days(f.time_to_value), f.cost_per_signup)
            for name, f in scenario.onboarding.items()
        }
        self.virality = [scenario.segment_virality(s) for s in self.segment_names]
        self.cycle_time = [LogNormalMonths.from_days(v.cycle_time) for v in self.virality]
        self.monetization = [scenario.segment_monetization(s) for s in self.segment_names]
        self.expansion = [scenario.segment_expansion(s) for s in self.segment_names]
        self.churn = [scenario.segment_churn(s) for s in self.segment_names]
        self.plans = scenario.pricing.plans
        trial = scenario.monetization.trial
        gated = scenario.monetization.model in TRIAL_MODELS and trial.card_required
        self.signup_factor = trial.card_signup_factor if gated else 1.0
        self.max_users = scenario.simulation.max_users
        self._market_size = float(scenario.market.size)
        self.signups = 0
        self.active_users = 0
        self.paying: set[Account] = set()
        self._exp = {
            name: buffered(self.streams[name].standard_exponential)
            for name in ("arrivals", "free_lifetime", "conversion", "expansion")
        }
        self._uniform = {
            name: buffered(self.streams[name].random)
            for name in ("channel", "segment", "activation", "acceptance", "expansion")
        }
        self._normal = buffered(self.streams["activation"].standard_normal)
        # Where each segment but the last ends on [0, 1): the last takes the rest, as its end
        # may fall a rounding error short of 1.
        self._segment_ends = list(itertools.accumulate(scenario.segment_shares()))[:-1]
        self._segment_draw = self._uniform["segment"]
        # NOTE: for performance reasons. What a signup looks up, resolved once per segment.
        self._flow_schedule = [self.schedules.flows[name] for name in self.segment_names]
        self._model = [m.model for m in self.monetization]
        self._initial_state = [
            AccountState.TRIAL if model in TRIAL_MODELS else AccountState.FREE for model in self._model
        ]
        self._wtp_log_median = [math.log(scenario.segments[name].wtp.median) for name in self.segment_names]
        self._wtp_sigma = [scenario.segments[name].wtp.sigma for name in self.segment_names]
        profile = self.streams["account_profile"]
        self._profile_normal = buffered(profile.standard_normal)
        self._profile_uniform = buffered(profile.random)
        self._profile_exp = buffered(profile.standard_exponential)
        self._profile_churn = [_beta_draws(profile, c.alpha, c.beta) for c in self.churn]
        self._profile_extra_seats = [
            _poisson_draws(profile, scenario.segments[name].seats.initial_mean - 1.0) for name in self.segment_names
        ]
        invites = self.streams["invites"]
        self._invite_count = [negative_binomial_draws(invites, v.invites_per_user, v.dispersion) for v in self.virality]
        self._invite_normal = buffered(invites.standard_normal)

    # --- running ------------------------------------------------------------------------
    def run(self) -> Ledger:
        """Simulate to the horizon and return the ledger."""
        env = self.env
        _Arrivals(self).draw_next()
        if self.scenario.acquisition.organic.arrivals == "even":
            env.process(self._even_arrivals())
        for change in self.schedules.repricings:
            env.process(self._price_rise_for_existing(change))
        with cyclic_collector_paused():
            if self.on_progress is None:
                env.run(until=self.months)
            else:
                # Month by month, so a caller sees progress and may stop a stale run by raising
                # from the callback. Same events in the same order as one run to the horizon.
                for month in range(1, self.months + 1):
                    env.run(until=month)
                    self.on_progress(month / self.months)
            self._drop_pending_events()
            for month in range(self.months):
                self.ledger.spent(month, SpendKind.PAID_MEDIA, self.schedules.paid_spend(month))
            return self.ledger.close()

    def _drop_pending_events(self) -> None:
        """Unlink the events still pending at the horizon from the processes waiting on them.

        NOTE: for performance reasons. A waiting process and its event refer to each other, so
        each process alive at the horizon was left behind as cyclic garbage (about a million
        objects at 10^6 signups), which the cyclic collector then had to find. Unlinked, they
        are freed as soon as the run's environment is.
        """
        self.env.discard_pending()

    # --- acquisition ----------------------------------------------------------------------
    def _remaining_share(self) -> float:
        return max(0.0, 1.0 - self.signups / self._market_size)

    def _signup_scale(self) -> float:
        """The share of would-be signups who sign up now: those in the part of the market not
        reached yet, and past the card wall of a trial that asks for one."""
        return self._remaining_share() * self.signup_factor

    def _even_arrivals(self) -> Process:
        """Organic signups at evenly spaced, deterministic times."""
        env = self.env
        organic = self.scenario.acquisition.organic
        step = self.scenario.simulation.step_days / DAYS_PER_MONTH
        while True:
            rate = organic.signups_per_month * (1 + organic.monthly_growth) ** env.now
            rate *= self._signup_scale()
            if rate <= 0:
                yield env.timeout(step)
                continue
            yield env.timeout(1.0 / rate)
            self._signup(Channel.ORGANIC, self._draw_segment(), join=None, inviter=-1)

    def _draw_segment(self) -> int:
        ends = self._segment_ends
        return bisect.bisect(ends, self._segment_draw()) if ends else 0

    def _signup(self, channel: Channel, segment: int, join: Account | None, inviter: int) -> None:
        """A person signs up: into a new account of their own, or into `join` as a member."""
        env = self.env
        now = env.now
        self.signups += 1
        if self.signups > self.max_users:
            raise SimulationLimitError(
                f"simulation.max_users ({self.scenario.simulation.max_users:,}) reached at month "
                f"{now:.1f}; raise it, or check market.size and virality "
                "(a viral coefficient above 1 grows until the market is exhausted)"
            )
        flow = self.flows[self._flow_schedule[segment].at(now)]
        activates = self._uniform["activation"]() < flow.activation_probability
        time_to_value = flow.time_to_value.of_normal(self._normal())
        activation_t = now + time_to_value if activates else INF
        if flow.cost_per_signup > 0:
            self.ledger.spent(now, SpendKind.ONBOARDING, flow.cost_per_signup)
        if join is None:
            account = self._open_account(segment, activation_t)
            user = self.ledger.user_signed_up(now, channel, segment, account.id, inviter)
            # Scheduled before the owner's activation below: at the same instant, the account
            # acts first (a paid-only account that buys nothing leaves before its owner counts
            # as activated, as in the fast engine).
            model = self._model[segment]
            if model == "freemium":
                self._start_free_phase(account, account.first_exit_draw, account.first_conversion_draw)
            elif model == "paid_only":
                if activates:
                    self._after(time_to_value, self._buy_or_leave, account)
                else:
                    self._leave_unactivated_later(account)
            else:
                env.process(self._trial(account))
        else:
            account = join
            user = self.ledger.user_signed_up(now, channel, segment, account.id, inviter)
            account.members += 1
            if account.state == AccountState.PAYING:
                self._change_seats(account, account.seats + 1)
        self.active_users += 1
        if activates:
            self._after(time_to_value, self._activate, user, account, segment)

    def _open_account(self, segment: int, owner_activation_t: float) -> Account:
        state = self._initial_state[segment]
        # Owner id: the user about to be recorded.
        account_id = self.ledger.new_account(self.env.now, self.ledger.next_user_id, state)
        # NOTE: for performance reasons. Arguments by position, in the order of the fields: a
        # call with their ten names took 491 ns against 226 ns, once per account.
        return Account(
            account_id,
            segment,
            owner_activation_t,
            math.exp(self._wtp_log_median[segment] + self._wtp_sigma[segment] * self._profile_normal()),  # wtp
            self._profile_churn[segment](),  # churn_probability
            1 + self._profile_extra_seats[segment](),  # profile_seats
            self._profile_uniform(),  # annual_draw
            self._profile_exp(),  # first_conversion_draw
            self._profile_exp(),  # first_exit_draw
            state,
        )

    # --- users ---------------------------------------------------------------------------
    def _activate(self, user: int, account: Account, segment: int) -> None:
        """The user reaches first value, unless its account left first; then its invites."""
        if account.gone:
            return
        self.ledger.user_activated(self.env.now, user)
        count = self._invite_count[segment]()
        if count > 0:
            self._send_invites(user, account, segment, count)

    def _send_invites(self, user: int, account: Account, segment: int, count: int) -> None:
        """`count` invites at their cycle times after activation, while the user's account
        lives: a chain of single events, each sending one invite and scheduling the next."""
        cycle, normal = self.cycle_time[segment], self._invite_normal
        delays = sorted(cycle.of_normal(normal()) for _ in range(count))
        self._after(delays[0], self._send_invite, user, account, segment, delays, 0)

    def _send_invite(self, user: int, account: Account, segment: int, delays: list[float], sent: int) -> None:
        """Invite number `sent` (from 0) of `user`, at `delays[sent]` after its activation."""
        if account.gone:
            return  # churned before sending the rest: the realised K drops
        virality = self.virality[segment]
        accept_draw = self._uniform["acceptance"]
        # Multiplied in this order, as in the fast engine: the same rounding.
        accepted = accept_draw() < virality.acceptance_rate * self._remaining_share() * self.signup_factor
        joins = accept_draw() < virality.seat_share
        now = self.env.now
        self.ledger.invite_sent(now, user, accepted)
        if accepted:
            if joins:
                self._signup(Channel.VIRAL, segment, join=account, inviter=user)
            else:
                self.ledger.spent(now, SpendKind.REFERRAL, virality.referral_reward)
                self._signup(Channel.VIRAL, segment, join=None, inviter=user)
        if sent + 1 < len(delays):
            wait = delays[sent + 1] - delays[sent]
            self._after(wait, self._send_invite, user, account, segment, delays, sent + 1)

    # --- accounts --------------------------------------------------------------------------
    def _trial(self, account: Account) -> Process:
        """A trial account's trial, and what follows it."""
        env = self.env
        monetization = self.monetization[account.segment]
        trial = monetization.trial
        yield env.timeout(trial.length_days / DAYS_PER_MONTH)
        activated = account.owner_activation_t <= env.now
        p_buy = trial.conversion_activated if activated else trial.conversion_not_activated
        wants = self.streams["conversion"].random() < p_buy
        plan = self._best_plan(account, self._seats_wanted(account)) if wants else None
        self.ledger.trial_ended(env.now, account.id, plan is not None)
        if plan is not None:
            ended = yield from self._paying(account, plan)
            if ended == PhaseEnd.TO_FREE:
                self._start_free_phase(account, account.first_exit_draw, account.first_conversion_draw)
            return
        if monetization.model == "free_trial":
            self._close(account)
            return
        self._set_state(account, AccountState.FREE)
        self._start_free_phase(account, account.first_exit_draw, account.first_conversion_draw)

    def _buy_or_leave(self, account: Account) -> None:
        """A paid-only account at its owner's activation: the best plan worth its price, or it leaves."""
        plan = self._best_plan(account, self._seats_wanted(account))
        if plan is None:
            self._close(account)
        else:
            self.env.process(self._paying(account, plan))

    def _leave_unactivated_later(self, account: Account) -> None:
        """Without a trial, an account whose owner never activates only leaves: one event."""
        hazard = self.churn[account.segment].unactivated_hazard
        if hazard > 0:
            self._after(account.first_exit_draw / hazard, self._close, account)

    def _start_free_phase(self, account: Account, exit_draw: float, conversion_draw: float) -> None:
        """Free, from the owner's activation on, until the account goes inactive or buys: one
        event, at whichever comes first. `exit_draw` and `conversion_draw` are standard
        exponentials (the account's first ones in its first free phase)."""
        if account.owner_activation_t == INF:
            self._leave_unactivated_later(account)
            return
        churn = self.churn[account.segment]
        conversion_hazard = self.monetization[account.segment].conversion_hazard
        to_exit = exit_draw / churn.free_hazard if churn.free_hazard > 0 else INF
        to_buy = conversion_draw / conversion_hazard if conversion_hazard > 0 else INF
        wait = max(account.owner_activation_t - self.env.now, 0.0)
        if to_buy < to_exit:
            self._after(wait + to_buy, self._weigh_plans, account, to_exit - to_buy)
        elif to_exit < INF:
            self._after(wait + to_exit, self._close, account)

    def _weigh_plans(self, account: Account, to_exit: float) -> None:
        """A free account's time to buy: the best plan, if one is worth its price, or back to
        waiting for the exit `to_exit` months away (INF: none)."""
        plan = self._best_plan(account, self._seats_wanted(account))
        if plan is not None:
            self.env.process(self._paying_then_free(account, plan))
        elif to_exit < INF:
            self._after(to_exit, self._close, account)

    def _paying_then_free(self, account: Account, plan: str) -> Process:
        ended = yield from self._paying(account, plan)
        if ended == PhaseEnd.TO_FREE:
            self._start_free_phase(account, self._exp["free_lifetime"](), self._exp["conversion"]())

    def _after(self, delay: float, action: Callable[..., None], *args: Any) -> None:
        """Call `action(*args)` `delay` months from now, as one event; nothing if that is at or
        past the horizon, where the run stops before it."""
        env = self.env
        if env.now + delay < self.months:
            env.call_later(delay, action, *args)

    def _paying(self, account: Account, plan: str) -> Generator[simpy.Event, Any, PhaseEnd]:
        """A paying phase: seat and plan moves until churn at a renewal."""
        env = self.env
        account.annual = account.annual_draw < self.plans[plan].annual_share
        period = 12 if account.annual else 1
        account.seats = self._seats_wanted(account)
        account.plan = plan
        account.price = self.schedules.prices[plan].at(env.now)
        account.paying_since = env.now
        account.epoch += 1
        epoch = account.epoch
        self.paying.add(account)
        self._set_state(account, AccountState.PAYING)
        renewals = periods_survived(self.streams["paid_lifetime"], account.churn_probability, period)
        churn_t = env.now + renewals * period
        expansion = self.expansion[account.segment]
        add, remove, down = expansion.seat_add_rate, expansion.seat_remove_rate, expansion.downgrade_rate
        rate = add + remove + down
        move_draw = self._uniform["expansion"]
        draw = self._exp["expansion"]
        while True:
            # Competing seat and plan moves at a constant total rate: a move that does not
            # apply (removing the last seat) is skipped, which keeps the sampling exact.
            wait = draw() / rate if rate > 0 else INF
            if env.now + wait >= churn_t:
                yield env.timeout(churn_t - env.now)
                break
            yield env.timeout(wait)
            if account.epoch != epoch:
                return PhaseEnd.ENDED_ELSEWHERE
            u = move_draw() * rate
            if u < add:
                self._change_seats(account, account.seats + 1)
            elif u < add + remove:
                if account.seats > 1:
                    self._change_seats(account, account.seats - 1)
            else:
                self._downgrade(account)
        if account.epoch != epoch:
            return PhaseEnd.ENDED_ELSEWHERE
        account.epoch += 1
        self.paying.discard(account)
        model = self.monetization[account.segment].model
        has_free_plan = model in ("freemium", "reverse_trial")
        if has_free_plan and move_draw() < self.churn[account.segment].downgrade_to_free_share:
            self._set_state(account, AccountState.FREE)
            return PhaseEnd.TO_FREE
        self._close(account)
        return PhaseEnd.CHURNED

    def _price_rise_for_existing(self, change: PriceChange) -> Process:
        """At `change.month`, every account on the plan meets the new price at its next renewal."""
        env = self.env
        yield env.timeout(change.month - env.now)
        new_price = self.schedules.prices[change.plan].at(env.now)
        for account in sorted(self.paying, key=lambda a: a.id):
            if account.plan == change.plan:
                period = 12 if account.annual else 1
                periods_done = math.floor((env.now - account.paying_since) / period) + 1
                renewal_t = account.paying_since + periods_done * period
                env.process(self._reprice(account, account.epoch, renewal_t, change.plan, new_price))

    def _reprice(self, account: Account, epoch: int, renewal_t: float, plan: str, price: PlanPrice) -> Process:
        env = self.env
        yield env.timeout(renewal_t - env.now)
        if account.epoch != epoch or account.plan != plan:
            return
        value = account.wtp * self.plans[plan].value
        priced_out = self._surplus(plan, price, account.seats, value) < 0
        if priced_out and self.streams["price_response"].random() < self.churn[account.segment].price_increase_churn:
            account.epoch += 1
            self.paying.discard(account)
            self._close(account)
            return
        account.price = price
        self._bill(account)

    # --- plans and billing --------------------------------------------------------------------
    def _seats_wanted(self, account: Account) -> int:
        return max(account.profile_seats, account.members)

    def _surplus(self, plan: str, price: PlanPrice, seats: int, value: float) -> float:
        billed = max(seats, self.plans[plan].min_seats)
        return seats * value - billed * price.per_seat - price.base_fee

    def _eligible(self, plan: str, seats: int) -> bool:
        limit = self.plans[plan].max_seats
        return limit is None or seats <= limit

    def _best_plan(
        self, account: Account, seats: int, require_gain: bool = True, cheaper_than: float = INF
    ) -> str | None:
        """The plan with the largest surplus for the account (None if none is worth its price
        when `require_gain`), among those allowing `seats` and billing less than `cheaper_than`."""
        best, best_surplus = None, 0.0 if require_gain else -INF
        for name, plan in self.plans.items():
            if not self._eligible(name, seats):
                continue
            price = self.schedules.prices[name].at(self.env.now)
            if self._bill_for(plan.min_seats, seats, price) >= cheaper_than:
                continue
            surplus = self._surplus(name, price, seats, account.wtp * plan.value)
            if surplus > best_surplus:
                best, best_surplus = name, surplus
        return best

    @staticmethod
    def _bill_for(min_seats: int, seats: int, price: PlanPrice) -> float:
        return max(seats, min_seats) * price.per_seat + price.base_fee

    def _change_seats(self, account: Account, seats: int) -> None:
        if not self._eligible(account.plan, seats):
            plan = self._best_plan(account, seats, require_gain=False)
            if plan is None:
                return  # no plan allows that many seats
            account.plan = plan
            account.price = self.schedules.prices[plan].at(self.env.now)
        account.seats = seats
        self._bill(account)

    def _downgrade(self, account: Account) -> None:
        current = self._bill_for(self.plans[account.plan].min_seats, account.seats, account.price)
        plan = self._best_plan(account, account.seats, require_gain=False, cheaper_than=current)
        if plan is not None:
            account.plan = plan
            account.price = self.schedules.prices[plan].at(self.env.now)
            self._bill(account)

    def _bill(self, account: Account) -> None:
        plan = self.plans[account.plan]
        amount = self._bill_for(plan.min_seats, account.seats, account.price)
        if account.annual:
            amount *= 1.0 - plan.annual_discount
        self.ledger.account_changed(self.env.now, account.id, account.state, round(amount * 100), account.seats)

    def _set_state(self, account: Account, state: AccountState) -> None:
        account.state = state
        if state == AccountState.PAYING:
            self._bill(account)
        else:
            self.ledger.account_changed(self.env.now, account.id, state, 0, 0)

    def _close(self, account: Account) -> None:
        self.active_users -= account.members
        self._set_state(account, AccountState.GONE)


class _Arrivals:
    """Paid, organic and word-of-mouth signups: a chain of single events, each an arrival or a
    wake-up to redraw at an updated rate, each scheduling the next.

    NOTE: for performance reasons. A process would resume a generator through SimPy at every
    arrival; a timed call costs less.
    """

    def __init__(self, engine: SimpyEngine) -> None:
        self.engine = engine
        self.env = engine.env
        acq = engine.scenario.acquisition
        self.paid_signups = acq.paid.signups_per_month
        self.innovation = acq.organic.innovation_rate * engine.scenario.market.size
        self.poisson_organic = acq.organic.arrivals == "poisson"
        self.organic_per_month = acq.organic.signups_per_month
        self.organic_growth = 1.0 + acq.organic.monthly_growth
        self.imitation = acq.word_of_mouth.imitation_rate
        self.step = engine.scenario.simulation.step_days / DAYS_PER_MONTH
        self.budget = engine.schedules.paid_budget
        self.channel_draw = engine._uniform["channel"]
        self.wait_draw = engine._exp["arrivals"]
        self.paid_rate, self.budget_until = 0.0, -INF  # the budget's rate, and when it next changes
        self.paid = self.organic = self.total = 0.0  # the rates the pending arrival was drawn at

    def draw_next(self) -> None:
        """Schedule the next arrival at the rates of now, or a wake-up to redraw them."""
        engine, env = self.engine, self.env
        now = env.now
        if now >= self.budget_until:
            self.paid_rate = self.paid_signups(self.budget.at(now))
            self.budget_until = self.budget.next_change(now)
        organic = self.innovation
        if self.poisson_organic:
            organic += self.organic_per_month * self.organic_growth**now
        scale = engine._signup_scale()
        self.paid = paid = self.paid_rate * scale
        self.organic = organic = organic * scale
        wom = self.imitation * engine.active_users * scale
        self.total = total = paid + organic + wom
        # Memorylessness: waking after `step` without an arrival and redrawing with the
        # updated rate is exact for a rate that is constant over the step.
        wait = self.wait_draw() / total if total > 0 else INF
        # Never let a wait drawn at the old rate cross a scheduled budget change.
        until_update = min(self.step, self.budget_until - now)
        if wait > until_update:
            env.call_later(until_update, self.draw_next)
        else:
            env.call_later(wait, self._arrive)

    def _arrive(self) -> None:
        u = self.channel_draw() * self.total
        paid = self.paid
        channel = Channel.PAID if u < paid else Channel.ORGANIC if u < paid + self.organic else Channel.WORD_OF_MOUTH
        self.engine._signup(channel, self.engine._draw_segment(), join=None, inviter=-1)
        self.draw_next()


def _beta_draws(rng: np.random.Generator, alpha: float, beta: float) -> Callable[[], Any]:
    return buffered(lambda n: rng.beta(alpha, beta, n))


def _poisson_draws(rng: np.random.Generator, mean: float) -> Callable[[], Any]:
    return buffered(lambda n: rng.poisson(mean, n))


def run_simpy(
    scenario: Scenario,
    seed: int | None = None,
    events: IO[str] | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> Ledger:
    """One replication of `scenario` with the SimPy engine."""
    return SimpyEngine(scenario, seed=seed, events=events, on_progress=on_progress).run()
