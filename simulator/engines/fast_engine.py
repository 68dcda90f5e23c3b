"""The fast engine: the SimPy engine's discrete-event semantics, compiled with numba.

The scenario becomes arrays (`Params`), the event loop runs in `fast_kernel`, and the records
end in the same `freeze` as every engine's. Same processes, same event order (time, then
scheduling order), same distributions as the SimPy engine; the draws come from the same named
streams but in blocks, one row of numbers per stream and distribution, each from a generator
spawned from its stream (`Draws`), so results agree with the SimPy engine's in distribution,
not draw for draw.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from types import SimpleNamespace

import numpy as np

from simulator.cores import cores_for_this_process
from simulator.engines import fast_kernel as kernel
from simulator.engines.freed_memory import keep_freed_memory
from simulator.engines.sampling import LogNormalMonths, RandomStreams
from simulator.engines.simpy_engine import SimulationLimitError
from simulator.engines.timeline import Schedules
from simulator.ledger import AccountChanges, Ledger, SpendKind, freeze, spend_by_month
from simulator.scenario.models import DAYS_PER_MONTH, Scenario


def _padded(rows: list[list[float]], fill: float) -> np.ndarray:
    width = max(len(row) for row in rows) + 1  # at least one `fill` ends every row
    out = np.full((len(rows), width), fill)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def params(scenario: Scenario) -> kernel.Params:
    """The scenario as the kernel's arrays."""
    acq = scenario.acquisition
    schedules = Schedules(scenario)
    trial = scenario.monetization.trial
    gated = scenario.monetization.model in ("free_trial", "reverse_trial") and trial.card_required
    g = np.zeros(10)
    g[kernel.G_MARKET] = scenario.market.size
    g[kernel.G_SIGNUP_FACTOR] = trial.card_signup_factor if gated else 1.0
    g[kernel.G_STEP] = scenario.simulation.step_days / DAYS_PER_MONTH
    g[kernel.G_INNOVATION] = acq.organic.innovation_rate * scenario.market.size
    g[kernel.G_ORGANIC] = acq.organic.signups_per_month
    g[kernel.G_ORGANIC_GROWTH] = acq.organic.monthly_growth
    g[kernel.G_ORGANIC_POISSON] = acq.organic.arrivals == "poisson"
    g[kernel.G_IMITATION] = acq.word_of_mouth.imitation_rate
    g[kernel.G_MAX_USERS] = scenario.simulation.max_users
    g[kernel.G_EVEN] = acq.organic.arrivals == "even"

    flow_names = list(scenario.onboarding)
    flow = np.zeros((len(flow_names), 4))
    for i, f in enumerate(scenario.onboarding.values()):
        ttv = LogNormalMonths.from_days(f.time_to_value)
        flow[i] = (f.activation_probability, ttv.mu, ttv.sigma, f.cost_per_signup)

    segment_names = list(scenario.segments)
    seg = np.zeros((len(segment_names), kernel.SEG_COLUMNS))
    cumulative = np.cumsum(scenario.segment_shares())
    for i, (name, segment) in enumerate(scenario.segments.items()):
        churn = scenario.segment_churn(name)
        virality = scenario.segment_virality(name)
        cycle = LogNormalMonths.from_days(virality.cycle_time)
        monetization = scenario.segment_monetization(name)
        expansion = scenario.segment_expansion(name)
        row = seg[i]
        row[kernel.SEG_CUMULATIVE_SHARE] = cumulative[i]
        row[kernel.SEG_WTP_MU] = math.log(segment.wtp.median)
        row[kernel.SEG_WTP_SIGMA] = segment.wtp.sigma
        row[kernel.SEG_EXTRA_SEATS] = segment.seats.initial_mean - 1.0
        row[kernel.SEG_CHURN_ALPHA] = churn.alpha
        row[kernel.SEG_CHURN_BETA] = churn.beta
        row[kernel.SEG_FREE_HAZARD] = churn.free_hazard
        row[kernel.SEG_UNACTIVATED_HAZARD] = churn.unactivated_hazard
        row[kernel.SEG_DOWNGRADE_TO_FREE] = churn.downgrade_to_free_share
        row[kernel.SEG_PRICE_CHURN] = churn.price_increase_churn
        row[kernel.SEG_INVITES] = virality.invites_per_user
        row[kernel.SEG_DISPERSION] = virality.dispersion
        row[kernel.SEG_CYCLE_MU] = cycle.mu
        row[kernel.SEG_CYCLE_SIGMA] = cycle.sigma
        row[kernel.SEG_ACCEPTANCE] = virality.acceptance_rate
        row[kernel.SEG_SEAT_SHARE] = virality.seat_share
        row[kernel.SEG_REWARD] = virality.referral_reward
        row[kernel.SEG_CONVERSION_HAZARD] = monetization.conversion_hazard
        row[kernel.SEG_TRIAL_MONTHS] = monetization.trial.length_days / DAYS_PER_MONTH
        row[kernel.SEG_TRIAL_CONVERSION_ACTIVATED] = monetization.trial.conversion_activated
        row[kernel.SEG_TRIAL_CONVERSION_NOT_ACTIVATED] = monetization.trial.conversion_not_activated
        row[kernel.SEG_SEAT_ADD] = expansion.seat_add_rate
        row[kernel.SEG_SEAT_REMOVE] = expansion.seat_remove_rate
        row[kernel.SEG_DOWNGRADE] = expansion.downgrade_rate
        row[kernel.SEG_MODEL] = kernel.MODELS[monetization.model]

    flow_steps = [schedules.flows[name] for name in segment_names]
    flow_starts = _padded([s.starts for s in flow_steps], math.inf)
    flow_ids = np.zeros(flow_starts.shape, dtype=np.int64)
    for i, s in enumerate(flow_steps):
        ids = [flow_names.index(f) for f in s.values]
        flow_ids[i, : len(ids)] = ids
        flow_ids[i, len(ids) :] = ids[-1]

    plan_names = list(scenario.pricing.plans)
    plan = np.zeros((len(plan_names), 5))
    for i, p in enumerate(scenario.pricing.plans.values()):
        max_seats = math.inf if p.max_seats is None else p.max_seats
        plan[i] = (p.min_seats, max_seats, p.value, p.annual_share, p.annual_discount)
    prices = [schedules.prices[name] for name in plan_names]
    price_starts = _padded([s.starts for s in prices], math.inf)
    price_seat = _padded([[v.per_seat for v in s.values] for s in prices], 0.0)
    price_base = _padded([[v.base_fee for v in s.values] for s in prices], 0.0)

    budget = schedules.paid_budget
    budget_starts = np.array([*budget.starts, math.inf])
    paid_rate = np.array([*(acq.paid.signups_per_month(b) for b in budget.values), 0.0])

    repricings = schedules.repricings
    return kernel.new_params(
        g,
        seg,
        flow,
        flow_starts,
        flow_ids,
        plan,
        price_starts,
        price_seat,
        price_base,
        budget_starts,
        paid_rate,
        np.array([c.month for c in repricings], dtype=np.float64),
        np.array([plan_names.index(c.plan) for c in repricings], dtype=np.int64),
    )


HELPER_THREAD = "plgsim-draws"
"""Name (prefix) of the thread that draws random numbers ahead during a run."""


class Draws:
    """Fills the kernel's rows of pre-drawn numbers from the scenario's named streams.

    NOTE: for performance reasons. The kernel takes its random numbers from these rows, not
    from generators: compiled code that calls twelve generators compiles for minutes. Each
    row holds one distribution's draws from a generator of its own, spawned from the row's
    named stream, and is topped up in place when the kernel stops because some row may run
    short. A row starts with `first` numbers and doubles at each top-up, up to `width`, so a
    row the run hardly uses costs a thousand draws, not sixty-five thousand.

    A row's numbers are one sequence, however often and by how much it is topped up: results
    do not depend on `first` and `width` (tested), and a row that runs short sooner in a
    scenario variant (more purchases, say) leaves the other rows' numbers as they were.

    With `ahead` (by default where this process may keep more than one core busy: not as one
    of several pool workers on as many cores), a helper thread draws each topped-up row's next
    block while the kernel runs (numpy and the kernel release the GIL), so a top-up mostly
    copies numbers already drawn: the same numbers in the same order, drawn on another core.
    Close it (`with`) after a run.
    """

    def __init__(
        self,
        scenario: Scenario,
        streams: RandomStreams,
        width: int = 65_536,
        first: int = 1_024,
        *,
        ahead: bool | None = None,
    ) -> None:
        if not 2 * kernel.DRAW_MARGIN <= first <= width:
            raise ValueError(f"Draws needs {2 * kernel.DRAW_MARGIN} <= first <= width (first={first}, width={width})")
        self.width, self.first = width, first

        def own(stream: str) -> np.random.Generator:
            return streams[stream].spawn(1)[0]  # the n-th spawn of a stream: fixed by the order here

        # Each sampler fills the array it is given. The plain distributions draw straight into
        # the row (`out=`: the same numbers as drawing a new array, without the copy).
        samplers: list[Callable[[np.ndarray], object]] = []
        for stream, kind in kernel.DRAW_ROWS:
            rng = own(stream)
            method = {"uniform": rng.random, "normal": rng.standard_normal, "exponential": rng.standard_exponential}
            samplers.append(partial(_into, method[kind]))
        # Then one row per segment for each of kernel.SEGMENT_DRAWS, in that order (see
        # kernel.segment_draw_row): θ, the profile's extra seats, the invite counts.
        names = list(scenario.segments)
        for churn in (scenario.segment_churn(n) for n in names):
            samplers.append(partial(_beta, own("account_profile"), churn.alpha, churn.beta))
        for name in names:
            extra_seats = scenario.segments[name].seats.initial_mean - 1.0
            samplers.append(partial(_poisson, own("account_profile"), extra_seats))
        for virality in (scenario.segment_virality(n) for n in names):
            mean, dispersion = virality.invites_per_user, virality.dispersion
            samplers.append(partial(_negative_binomial, own("invites"), own("invites"), mean, dispersion))
        assert len(samplers) == kernel.draw_rows(len(names))
        self.samplers = samplers
        self.sizes = [0] * len(samplers)
        """How many numbers each row was last filled with (0: not yet)."""
        self.spare = [np.empty(0) for _ in samplers]
        """Each row's numbers drawn ahead: the next of its sequence, taken before new draws."""
        if ahead is None:
            # On one core (or one core's share, as a pool worker) the helper would only take
            # turns with the loop.
            ahead = cores_for_this_process() > 1
        self._helper = ThreadPoolExecutor(1, thread_name_prefix=HELPER_THREAD) if ahead else None
        self._drawing: Future[None] | None = None

    def __enter__(self) -> Draws:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the helper thread (after its current draws)."""
        if self._helper is not None:
            self._helper.shutdown(wait=True, cancel_futures=True)
            self._helper, self._drawing = None, None

    def refill(self, s: kernel.State, segments: int) -> None:
        """Top up every row with less than half its last fill left; make room for an
        activation's invites."""
        if self._drawing is not None:
            self._drawing.result()  # the helper is done with the rows (an error surfaces here)
            self._drawing = None
        arrays = kernel.arrays(s)  # one call: each returns every array of the state (about 20 µs)
        c, ui, dr, dc, dn = (arrays[kernel.STATE_FIELDS.index(f)] for f in ("c", "ui", "dr", "dc", "dn"))
        needed = kernel.DRAW_MARGIN
        top = int(c[kernel.NEXT_PAYLOAD])  # 0 (an arrival wake-up) before the first event
        if top & 15 == kernel.K_ACTIVATE:
            row = kernel.segment_draw_row(kernel.SD_INVITES, segments, int(ui[top >> 4, kernel.U_SEGMENT]))
            needed += int(dr[row, dc[row]]) if dn[row] > dc[row] else 0
        if dr.shape[1] < max(self.width, 2 * needed):
            self.width = max(self.width, 2 * needed)
            wider = np.empty((dr.shape[0], self.width))
            wider[:, : dr.shape[1]] = dr
            dr = wider
            kernel.set_draws(s, dr)
        topped_up = []
        for row in range(len(self.samplers)):
            left, size = int(dn[row] - dc[row]), self.sizes[row]
            if size and left >= size // 2 and (row != kernel.D_INVITE_N or left >= needed):
                continue
            size = self._next_size(size)
            if row == kernel.D_INVITE_N:
                size = max(size, needed)
            dr[row, :left] = dr[row, dc[row] : dn[row]]
            self._fill(row, dr[row, left:size])
            dc[row], dn[row], self.sizes[row] = 0, size, size
            topped_up.append(row)
        c[kernel.STATUS] = 0
        if self._helper is not None:
            self._drawing = self._helper.submit(self._draw_ahead, topped_up)

    def _next_size(self, size: int) -> int:
        """How many numbers a row last filled with `size` (0: never) is filled with next."""
        return min(2 * size, self.width) if size else self.first

    def _fill(self, row: int, out: np.ndarray) -> None:
        """Fill `out` with the row's next numbers: those drawn ahead first, then new draws."""
        spare = self.spare[row]
        taken = min(spare.shape[0], out.shape[0])
        out[:taken] = spare[:taken]
        self.spare[row] = spare[taken:]
        if taken < out.shape[0]:
            self.samplers[row](out[taken:])

    def _draw_ahead(self, rows: list[int]) -> None:
        """Draw what each of `rows` takes at its next top-up (unless an activation's invites
        then need more): run on the helper thread while the kernel runs, as the rows' own
        generators are used nowhere else until the next refill has waited for this."""
        for row in rows:
            block = np.empty(max(0, self._next_size(self.sizes[row]) - self.spare[row].shape[0]))
            self.samplers[row](block)
            self.spare[row] = np.concatenate((self.spare[row], block))


def _into(method: Callable[..., object], out: np.ndarray) -> None:
    method(out=out)


def _beta(rng: np.random.Generator, alpha: float, beta: float, out: np.ndarray) -> None:
    out[:] = rng.beta(alpha, beta, out.shape[0])


def _poisson(rng: np.random.Generator, mean: float, out: np.ndarray) -> None:
    out[:] = rng.poisson(mean, out.shape[0])


def _negative_binomial(
    rates: np.random.Generator, counts: np.random.Generator, mean: float, dispersion: float, out: np.ndarray
) -> None:
    """Counts with the given mean and shape (Gamma–Poisson mixture), as sampling.py draws them.
    The Gamma rates and the Poisson counts come from two generators, so that each is one
    sequence however the draws are split into blocks."""
    out[:] = counts.poisson(rates.gamma(dispersion, mean / dispersion, out.shape[0])) if mean > 0 else 0.0


INITIAL_ROWS = 1 << 17
"""Users (and as many accounts, heap entries, ...) a new state has room for: pages never
written cost nothing, and a run of 10^5 users then never copies its arrays to grow them."""

_spare_states: list[kernel.State] = []
"""The state of this process's last finished run, for the next run to take over (see
kernel.renew_state). At most one: between runs, a process keeps the arrays of one run, which
are as large as the largest run's that they served."""
_spare_lock = threading.Lock()


def _state_for(months: int, segments: int, initial_rows: int | None) -> kernel.State:
    """A finished run's state, renewed, or (with `initial_rows`, or none spare) a new one."""
    if initial_rows is None:
        with _spare_lock:
            spare = _spare_states.pop() if _spare_states else None
        if spare is not None:
            kernel.renew_state(spare, float(months), kernel.draw_rows(segments))
            return spare
    return kernel.new_state(float(months), initial_rows or INITIAL_ROWS, segments)


def _keep_spare(s: kernel.State) -> None:
    with _spare_lock:
        _spare_states[:] = [s]


def run_fast(
    scenario: Scenario,
    seed: int | None = None,
    on_progress: Callable[[float], None] | None = None,
    *,
    initial_rows: int | None = None,
) -> Ledger:
    """One replication of `scenario` with the fast engine. Its state takes over the arrays of
    the process's last finished run, or starts with room for INITIAL_ROWS users; it grows as
    needed. Tests pass `initial_rows` for a new state of that size (small, to exercise the
    growth)."""
    keep_freed_memory()
    months = scenario.simulation.months
    streams = RandomStreams(scenario.simulation.seed if seed is None else seed)
    p = params(scenario)
    segments = len(scenario.segments)
    s = _state_for(months, segments, initial_rows)
    counters, scalars = kernel.arrays(s)[:2]
    with Draws(scenario, streams) as draws:
        draws.refill(s, segments)
        kernel.start(s, p)
        # Month by month when a caller wants progress (and may stop a stale run by raising
        # from the callback); the same events in the same order as one stretch to the horizon.
        for until in range(1, months + 1) if on_progress is not None else [months]:
            kernel.advance(s, p, float(until))
            while counters[kernel.STATUS] == kernel.STATUS_NEEDS_DRAWS:
                draws.refill(s, segments)
                kernel.advance(s, p, float(until))
            if counters[kernel.STATUS]:
                break
            if on_progress is not None:
                on_progress(until / months)
    if counters[kernel.STATUS] == kernel.STATUS_MAX_USERS:
        raise SimulationLimitError(
            f"simulation.max_users ({scenario.simulation.max_users:,}) reached at month "
            f"{scalars[kernel.NOW]:.1f}; raise it, or check market.size and virality "
            "(a viral coefficient above 1 grows until the market is exhausted)"
        )
    ledger = _ledger(scenario, s)  # copies what it keeps of the state
    _keep_spare(s)
    return ledger


def _ledger(scenario: Scenario, state: kernel.State) -> Ledger:
    months = scenario.simulation.months
    s = SimpleNamespace(**dict(zip(kernel.STATE_FIELDS, kernel.arrays(state), strict=True)))
    n_changes, n_spend = int(s.c[kernel.N_CHANGES]), int(s.c[kernel.N_SPEND])
    spend = spend_by_month(s.sf[:n_spend, kernel.S_T], s.sk[:n_spend], s.sf[:n_spend, kernel.S_AMOUNT], months)
    schedules = Schedules(scenario)
    spend[SpendKind.PAID_MEDIA] += [schedules.paid_spend(month) for month in range(months)]
    ci = s.ci[:, :n_changes]
    # The ledger keeps the user and account columns: new arrays, as the next run in this process
    # takes over the state's (_keep_spare). Change records are only read by freeze: views.
    return freeze(
        months=months,
        currency=scenario.currency,
        gross_margin=scenario.costs.gross_margin,
        cost_to_serve_per_seat=scenario.costs.cost_to_serve_per_seat,
        segment_names=tuple(scenario.segments),
        **dict(zip(kernel.LEDGER_COLUMNS, kernel.ledger_columns(state), strict=True)),
        changes=AccountChanges(
            account=ci[kernel.C_ACCOUNT],
            t=s.ct[:n_changes],
            state=ci[kernel.C_STATE],
            mrr_cents=ci[kernel.C_MRR],
            seats=ci[kernel.C_SEATS],
        ),
        spend=spend,
        money_changes=s.cm[: int(s.c[kernel.N_MONEY_CHANGES])],
    )
