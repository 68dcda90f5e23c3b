"""The fast engine's event loop: the SimPy engine's processes as one numba-compiled loop.

Each SimPy process of `simpy_engine.py` becomes a chain of events in one event queue (a
calendar of buckets under a day wide, see `_push`), and each `yield env.timeout(...)` a push
of the event that resumes it. Events keep SimPy's order: by
time, then by the order in which they were scheduled. The state lives in a few 2-D arrays,
one row per user, account, account change, spend record or heap entry, with named columns
(the constants below), so that numba compiles the loop without Python objects.

`State` and `Params` are numba structrefs: passed by reference, so a call costs one pointer
and the loop may replace a full array by a larger one. `advance` runs the events before a
given time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import literal_unroll
from numba.experimental import structref

from simulator.engines import array_fields
from simulator.engines.compiled import compiled
from simulator.engines.huge_pages import advise_huge_pages
from simulator.engines.prefetch import prefetch
from simulator.ledger import AccountState, Channel, SpendKind

INF = math.inf

# --- account states and channels (the values of simulator.ledger's enums) -----------------
FREE, TRIAL, PAYING, GONE = (
    int(s) for s in (AccountState.FREE, AccountState.TRIAL, AccountState.PAYING, AccountState.GONE)
)
PAID, ORGANIC, WORD_OF_MOUTH, VIRAL = (
    int(c) for c in (Channel.PAID, Channel.ORGANIC, Channel.WORD_OF_MOUTH, Channel.VIRAL)
)
SPEND_ONBOARDING, SPEND_REFERRAL = int(SpendKind.ONBOARDING), int(SpendKind.REFERRAL)
FREEMIUM, FREE_TRIAL, REVERSE_TRIAL, PAID_ONLY = 0, 1, 2, 3
MODELS = {"freemium": FREEMIUM, "free_trial": FREE_TRIAL, "reverse_trial": REVERSE_TRIAL, "paid_only": PAID_ONLY}

# --- event kinds: an event's payload is id * 16 + kind -------------------------------------
K_ARRIVAL_WAKE, K_ARRIVAL = 0, 1  # the channels' Poisson process: redraw the rate / a signup
K_EVEN_WAKE, K_EVEN = 2, 3  # evenly spaced organic signups
K_ACTIVATE, K_INVITE = 4, 5  # a user (id): activation (aux: OWNER_STEP or 0), one invite
K_TRIAL_END, K_UNACTIVATED_LEAVE = 6, 7  # an account (id) ...
K_FREE_START, K_FREE_BUY, K_FREE_EXIT = 8, 9, 10
K_PAY_MOVE, K_PAY_END = 11, 12  # aux: the paying phase's epoch
K_PRICE_RISE, K_REPRICE = 13, 14  # id: the repricing k; aux: epoch * repricings + k
OWNER_STEP = 1
"""An activation's aux when its account's first step (a free account's first phase, a paid-only
account's decision) comes first, at the same moment (see _start_account)."""

# --- where a paying phase returns when it ends back on the free plan ----------------------
ORIGIN_TOP, ORIGIN_LOOP = 0, 1  # the free phases from the start (first draws) / with new draws

# --- columns ---------------------------------------------------------------------------------
# counters (state.c)
N_USERS, N_ACCOUNTS, N_CHANGES, N_SPEND, HEAP_SIZE, SEQ, SIGNUPS, ACTIVE_USERS, STATUS = range(9)
# the calendar: current bucket, chunks used and free, the current bucket's run (next, end); the
# next event (its payload, and where it comes from: FROM_*); the pending signup or wake-up of
# the channels' arrivals (its sequence number and payload; its time is f[ARRIVAL_T])
BUCKET, CHUNKS_USED, CHUNKS_FREE, RUN_AT, RUN_END, NEXT_PAYLOAD, NEXT_FROM = range(9, 16)
ARRIVAL_SEQ, ARRIVAL_PAYLOAD = range(16, 18)
# events that may still run before room is checked again (see _events)
ROOM_IN = 18
# account changes that move money or seats (their indices in cm)
N_MONEY_CHANGES = 19
# rows allocated in the arrays that grow, kept here so that checking for room reads one array
CAP_USERS, CAP_ACCOUNTS, CAP_CHANGES, CAP_SPEND, CAP_HEAP, CAP_CHUNKS, CAP_RUN = range(20, 27)
COUNTERS = 27
FROM_HEAP, FROM_RUN, FROM_ARRIVAL = range(3)
STATUS_MAX_USERS, STATUS_NEEDS_DRAWS = 1, 2
# scalars (state.f)
NOW, HORIZON, ARRIVAL_PAID, ARRIVAL_ORGANIC, ARRIVAL_TOTAL, ARRIVAL_T = range(6)
SCALARS = 6
# users: floats (uf), ints (ui), a row each: an event reads one or two cache lines of a user
U_SIGNUP_T, U_ACTIVATED_T = range(2)
UF_COLUMNS = 2
U_CHANNEL, U_SEGMENT, U_ACCOUNT, U_INVITER, U_SENT, U_ACCEPTED = range(6)
UI_COLUMNS = 6
# accounts: floats (af), ints (ai)
(
    A_OWNER_ACTIVATION_T,
    A_WTP,
    A_CHURN_P,
    A_ANNUAL_DRAW,
    A_FIRST_CONVERSION,
    A_FIRST_EXIT,
    A_PRICE_SEAT,
    A_PRICE_BASE,
    A_PAYING_SINCE,
    A_CHURN_T,
    A_TO_EXIT,
) = range(11)
AF_COLUMNS = 11
(
    A_SEGMENT,
    A_PROFILE_SEATS,
    A_MEMBERS,
    A_STATE,
    A_EPOCH,
    A_PLAN,
    A_ANNUAL,
    A_SEATS,
    A_ORIGIN,
) = range(9)
AI_COLUMNS = 9
# accounts: what the ledger keeps (al), apart from the rows the events read most, so that taking
# these columns reads 32 bytes an account, not the 160 of its other rows. An account's owner is not
# kept: it is the user who opened it (ledger_columns).
L_FIRST_PAID_T, L_TRIAL_END_T, L_END_T, L_TRIAL_CONVERTED = range(4)
AL_COLUMNS = 4
# account changes: time (ct), ints (ci), one row per column (the ledger reads them by column);
# the indices of those that move money or seats (cm, see _record_change)
C_ACCOUNT, C_STATE, C_MRR, C_SEATS = range(4)
# spend: floats (sf: time, amount), kind (sk)
S_T, S_AMOUNT = range(2)
# heap (ht: time, hi), calendar chunks (qt, qi) and the current bucket's run (rt, ri): these ints
H_SEQ, H_PAYLOAD, H_AUX = range(3)
# calendar buckets (bq): first and last chunk, events in the last chunk and in all
B_HEAD, B_TAIL, B_FILL, B_COUNT = range(4)
B_COLUMNS = 4
BUCKETS_PER_MONTH = 31
"""The calendar's buckets are 1/31 month (under a day) wide."""
CHUNK = 32
"""Events per chunk of a bucket's list."""

# --- rows of pre-drawn random numbers (state.dr), with the stream each comes from -----------
(
    D_ARRIVAL_EXP,
    D_CHANNEL_U,
    D_SEGMENT_U,
    D_ACTIVATION_U,
    D_ACTIVATION_N,
    D_PROFILE_N,
    D_PROFILE_U,
    D_PROFILE_EXP,
    D_INVITE_N,
    D_ACCEPTANCE_U,
    D_FREE_EXP,
    D_CONVERSION_U,
    D_CONVERSION_EXP,
    D_PAID_U,
    D_EXPANSION_EXP,
    D_EXPANSION_U,
    D_PRICE_U,
) = range(17)
DRAW_ROWS = (
    ("arrivals", "exponential"),
    ("channel", "uniform"),
    ("segment", "uniform"),
    ("activation", "uniform"),
    ("activation", "normal"),
    ("account_profile", "normal"),
    ("account_profile", "uniform"),
    ("account_profile", "exponential"),
    ("invites", "normal"),
    ("acceptance", "uniform"),
    ("free_lifetime", "exponential"),
    ("conversion", "uniform"),
    ("conversion", "exponential"),
    ("paid_lifetime", "uniform"),
    ("expansion", "exponential"),
    ("expansion", "uniform"),
    ("price_response", "uniform"),
)
"""(stream, distribution) of each fixed row; then one row per segment of each of SEGMENT_DRAWS."""
D_CHURN_BETA = len(DRAW_ROWS)  # + segment: monthly churn θ ~ Beta(α, β)
SEGMENT_DRAWS = (("account_profile", "churn_beta"), ("account_profile", "extra_seats"), ("invites", "invites"))
SD_CHURN_P, SD_EXTRA_SEATS, SD_INVITES = range(3)  # which of SEGMENT_DRAWS (segment_draw_row)
DRAW_MARGIN = 4
"""Draws of one row that an event may take, beyond an activation's invite delays."""

# --- parameter columns ---------------------------------------------------------------------
(
    G_MARKET,
    G_SIGNUP_FACTOR,
    G_STEP,
    G_INNOVATION,
    G_ORGANIC,
    G_ORGANIC_GROWTH,
    G_ORGANIC_POISSON,
    G_IMITATION,
    G_MAX_USERS,
    G_EVEN,
) = range(10)
(
    SEG_CUMULATIVE_SHARE,
    SEG_WTP_MU,
    SEG_WTP_SIGMA,
    SEG_EXTRA_SEATS,
    SEG_CHURN_ALPHA,
    SEG_CHURN_BETA,
    SEG_FREE_HAZARD,
    SEG_UNACTIVATED_HAZARD,
    SEG_DOWNGRADE_TO_FREE,
    SEG_PRICE_CHURN,
    SEG_INVITES,
    SEG_DISPERSION,
    SEG_CYCLE_MU,
    SEG_CYCLE_SIGMA,
    SEG_ACCEPTANCE,
    SEG_SEAT_SHARE,
    SEG_REWARD,
    SEG_CONVERSION_HAZARD,
    SEG_TRIAL_MONTHS,
    SEG_TRIAL_CONVERSION_ACTIVATED,
    SEG_TRIAL_CONVERSION_NOT_ACTIVATED,
    SEG_SEAT_ADD,
    SEG_SEAT_REMOVE,
    SEG_DOWNGRADE,
    SEG_MODEL,
) = range(25)
SEG_COLUMNS = 25
FLOW_ACTIVATION, FLOW_TTV_MU, FLOW_TTV_SIGMA, FLOW_COST = range(4)
PLAN_MIN_SEATS, PLAN_MAX_SEATS, PLAN_VALUE, PLAN_ANNUAL_SHARE, PLAN_ANNUAL_DISCOUNT = range(5)


@array_fields.register
class _ParamsType(array_fields.ArrayFields):
    pass


@array_fields.register
class _StateType(array_fields.ArrayFields):
    pass


class Params(structref.StructRefProxy):
    """A scenario as arrays. Step functions of time are rows of starts (padded with +inf)
    and the values that hold from each start on.

    g (G,) global scalars; seg (S, SEG_COLUMNS); flow (F, 4); flow_starts, flow_ids (S, J):
    each segment's onboarding flow; plan (P, 5), max seats +inf when unlimited; price_starts,
    price_seat, price_base (P, J); budget_starts, paid_rate (J,): paid signups per month
    before saturation; repricing_t, repricing_plan (K,): price changes for existing customers.
    """


PARAMS_FIELDS = (
    "g",
    "seg",
    "flow",
    "flow_starts",
    "flow_ids",
    "plan",
    "price_starts",
    "price_seat",
    "price_base",
    "budget_starts",
    "paid_rate",
    "repricing_t",
    "repricing_plan",
)
structref.define_proxy(Params, _ParamsType, list(PARAMS_FIELDS))  # type: ignore[no-untyped-call]


class State(structref.StructRefProxy):
    """Everything that changes during a run, passed by reference (see the column constants):
    counters c, scalars f; users uf, ui; accounts af, ai, al; account changes ct (time), ci,
    and the indices of those that move money or seats cm;
    spend sf, sk (kind); heap ht (time), hi; pre-drawn numbers dr, row i used from dc[i] to
    dn[i]; the calendar of later events: chunks of CHUNK events qt (time), qi, each chunk's
    next chunk qn, free chunks qf, each bucket's first and last chunk, events in the last chunk
    and in all (bq: B_HEAD, B_TAIL, B_FILL, B_COUNT; chunks but the last are full);
    the current bucket's events rt (time), ri, in order, and its slice counts rk; scratch room xd (an
    activation's invite delays)."""


STATE_FIELDS = (
    "c",
    "f",
    "uf",
    "ui",
    "af",
    "ai",
    "al",
    "ct",
    "ci",
    "cm",
    "sf",
    "sk",
    "ht",
    "hi",
    "dr",
    "dc",
    "dn",
    "qt",
    "qi",
    "qn",
    "qf",
    "bq",
    "rt",
    "ri",
    "rk",
    "xd",
)
structref.define_proxy(State, _StateType, list(STATE_FIELDS))  # type: ignore[no-untyped-call]


StateRef = Any
"""A State as compiled code sees it: fields are attributes (which type checkers cannot see)."""
ParamsRef = Any
"""A Params as compiled code sees it."""


@compiled()
def arrays(s: StateRef) -> tuple[Any, ...]:
    """The state's arrays, in STATE_FIELDS order (the same arrays, not copies)."""
    return (
        s.c,
        s.f,
        s.uf,
        s.ui,
        s.af,
        s.ai,
        s.al,
        s.ct,
        s.ci,
        s.cm,
        s.sf,
        s.sk,
        s.ht,
        s.hi,
        s.dr,
        s.dc,
        s.dn,
        s.qt,
        s.qi,
        s.qn,
        s.qf,
        s.bq,
        s.rt,
        s.ri,
        s.rk,
        s.xd,
    )


LEDGER_COLUMNS = (
    "user_signup_t",
    "user_channel",
    "user_segment",
    "user_account",
    "user_inviter",
    "user_activated_t",
    "user_invites_sent",
    "user_invites_accepted",
    "account_owner",
    "account_first_paid_t",
    "account_trial_end_t",
    "account_trial_converted",
    "account_end_t",
)
"""The ledger's fields that ledger_columns returns, in its order."""


@compiled()
def ledger_columns(s: StateRef) -> tuple[Any, ...]:
    """The user and account columns the ledger keeps, as new arrays of the ledger's types: one
    pass over each table's rows, where a copy of each column would read every row again."""
    users, accounts = s.c[N_USERS], s.c[N_ACCOUNTS]
    uf, ui, al = s.uf, s.ui, s.al
    signup_t, activated_t = np.empty(users), np.empty(users)
    channel, segment = np.empty(users, dtype=np.int8), np.empty(users, dtype=np.int16)
    account, inviter = np.empty(users, dtype=np.int64), np.empty(users, dtype=np.int64)
    sent, accepted = np.empty(users, dtype=np.int32), np.empty(users, dtype=np.int32)
    # Accounts are opened only by a signup, for the user signing up: account n is the n-th
    # account that a user is the first to join, and that user is its owner.
    owner, opened = np.empty(accounts, dtype=np.int64), 0
    for u in range(users):
        signup_t[u], activated_t[u] = uf[u, U_SIGNUP_T], uf[u, U_ACTIVATED_T]
        channel[u], segment[u] = ui[u, U_CHANNEL], ui[u, U_SEGMENT]
        account[u], inviter[u] = ui[u, U_ACCOUNT], ui[u, U_INVITER]
        sent[u], accepted[u] = ui[u, U_SENT], ui[u, U_ACCEPTED]
        if account[u] == opened:
            owner[opened] = u
            opened += 1
    if opened != accounts:
        raise AssertionError("an account was opened without its owner's signup")
    converted = np.empty(accounts, dtype=np.bool_)
    first_paid_t, trial_end_t, end_t = np.empty(accounts), np.empty(accounts), np.empty(accounts)
    for a in range(accounts):
        first_paid_t[a], trial_end_t[a], end_t[a] = al[a, L_FIRST_PAID_T], al[a, L_TRIAL_END_T], al[a, L_END_T]
        converted[a] = al[a, L_TRIAL_CONVERTED] != 0.0
    return (
        signup_t,
        channel,
        segment,
        account,
        inviter,
        activated_t,
        sent,
        accepted,
        owner,
        first_paid_t,
        trial_end_t,
        converted,
        end_t,
    )


@compiled()
def set_draws(s: StateRef, dr: Any) -> None:
    """Replace the pre-drawn numbers (rows keep their cursors)."""
    s.dr = dr


def draw_rows(segments: int) -> int:
    """Rows of pre-drawn numbers for `segments` segments."""
    return D_CHURN_BETA + len(SEGMENT_DRAWS) * segments


@compiled(reference_counted=False)
def segment_draw_row(which: int, segments: int, segment: int) -> int:
    """The row of pre-drawn numbers of SEGMENT_DRAWS[which] for `segment` (of `segments`)."""
    return D_CHURN_BETA + which * segments + segment


def new_state(horizon: float, users: int, segments: int) -> State:
    """Empty state with room for about `users` users (the arrays grow as needed)."""
    return _new_state(float(horizon), max(64, users), draw_rows(segments))


# NOTE: for performance reasons. A structref built from Python compiles its constructor in
# every process (about 1.5 s); built by a cached compiled function, it loads in milliseconds.
@compiled()
def _new_state(horizon: float, rows: int, draws: int) -> State:
    f = np.zeros(SCALARS)
    f[HORIZON], f[ARRIVAL_T] = horizon, INF
    buckets = int(horizon * BUCKETS_PER_MONTH) + 2
    c = np.zeros(COUNTERS, dtype=np.int64)
    c[CAP_USERS], c[CAP_ACCOUNTS], c[CAP_SPEND], c[CAP_HEAP], c[CAP_RUN] = rows, rows, rows, rows, rows
    c[CAP_CHANGES] = 2 * rows
    chunks = rows // CHUNK + buckets
    c[CAP_CHUNKS] = chunks
    # The arrays that grow with the run (users, accounts, changes, spend, heap, calendar).
    uf, ui = np.empty((rows, UF_COLUMNS)), np.empty((rows, UI_COLUMNS), dtype=np.int64)
    af, ai = np.empty((rows, AF_COLUMNS)), np.empty((rows, AI_COLUMNS), dtype=np.int64)
    al = np.empty((rows, AL_COLUMNS))
    ct, ci, cm = np.empty(2 * rows), np.empty((4, 2 * rows), dtype=np.int64), np.empty(2 * rows, dtype=np.int64)
    sf, sk = np.empty((rows, 2)), np.empty(rows, dtype=np.int64)
    ht, hi = np.empty(rows), np.empty((rows, 3), dtype=np.int64)
    qt, qi = np.empty(chunks * CHUNK), np.empty((chunks * CHUNK, 3), dtype=np.int64)
    for a in literal_unroll((uf, ui, af, ai, al, ct, ci, cm, sf, sk, ht, hi, qt, qi)):
        advise_huge_pages(a)
    return State(  # type: ignore[no-untyped-call]
        c,
        f,
        uf,
        ui,
        af,
        ai,
        al,
        ct,
        ci,
        cm,
        sf,
        sk,
        ht,
        hi,
        np.empty((draws, 0)),
        np.zeros(draws, dtype=np.int64),
        np.zeros(draws, dtype=np.int64),
        qt,
        qi,
        np.empty(chunks, dtype=np.int64),
        np.empty(chunks, dtype=np.int64),
        _empty_buckets(np.empty((buckets, B_COLUMNS), dtype=np.int64)),
        np.empty(rows),
        np.empty((rows, 3), dtype=np.int64),
        np.empty(0, dtype=np.int64),
        np.empty(64),
    )


@compiled()
def renew_state(s: StateRef, horizon: float, draws: int) -> None:
    """Make `s` the empty state of a new run (of `horizon` months, with `draws` rows of draws),
    keeping the arrays that grow as they are: a run writes their rows before it reads them.

    NOTE: for performance reasons. The arrays of a run of a million users are about 600 MiB:
    new memory from the system, which it clears page by page when first written (about a sixth
    of such a run, perf). A run that takes over a finished run's state writes memory already
    handed out.
    """
    c, f = s.c, s.f
    c[:CAP_USERS] = 0  # the counters; the capacities (CAP_*, the last ones) stay
    f[:] = 0.0
    f[HORIZON], f[ARRIVAL_T] = horizon, INF
    buckets = int(horizon * BUCKETS_PER_MONTH) + 2
    if s.bq.shape[0] == buckets:
        _empty_buckets(s.bq)
    else:
        s.bq = _empty_buckets(np.empty((buckets, B_COLUMNS), dtype=np.int64))
    s.dr = np.empty((draws, 0))
    s.dc, s.dn = np.zeros(draws, dtype=np.int64), np.zeros(draws, dtype=np.int64)


@compiled()
def new_params(*arrays: Any) -> Params:
    """Params of these arrays, in PARAMS_FIELDS order, built by compiled code (see _new_state)."""
    return Params(*arrays)  # type: ignore[no-untyped-call]


# --- growing ---------------------------------------------------------------------------------
@compiled()
def _grown(a: Any, rows: int) -> Any:
    new = np.empty((rows, *a.shape[1:]), dtype=a.dtype)
    advise_huge_pages(new)
    new[: a.shape[0]] = a
    return new


@compiled()
def _grown_columns(a: Any, columns: int) -> Any:
    new = np.empty((a.shape[0], columns), dtype=a.dtype)
    advise_huge_pages(new)
    new[:, : a.shape[1]] = a
    return new


# Rows one event may fill, beyond the heap rows its caller names: _with_room grows an array
# with fewer free rows.
ROOM_USERS, ROOM_ACCOUNTS, ROOM_CHANGES, ROOM_SPEND, ROOM_QUEUE = 4, 4, 16, 8, 16


@compiled(reference_counted=False)
def _with_room(s: StateRef, heap_rows: int) -> None:
    """Room for one event and `heap_rows` more pushes: the arrays short of it are doubled.
    Named pushes end the stretch of events counted on the room found before (_events)."""
    if _short_of_room(s, heap_rows):
        _grow(s, heap_rows)
    if heap_rows > 0:
        s.c[ROOM_IN] = 0


@compiled(reference_counted=False)
def _events_with_room(s: StateRef) -> int:
    """How many events in a row have room, counted right after `_with_room(s, 0)`: each fills
    at most ROOM_* rows of each array and opens at most ROOM_QUEUE chunks (at least 1)."""
    c = s.c
    return min(
        (c[CAP_USERS] - c[N_USERS]) // ROOM_USERS,
        (c[CAP_ACCOUNTS] - c[N_ACCOUNTS]) // ROOM_ACCOUNTS,
        (c[CAP_CHANGES] - c[N_CHANGES]) // ROOM_CHANGES,
        (c[CAP_SPEND] - c[N_SPEND]) // ROOM_SPEND,
        (c[CAP_HEAP] - c[HEAP_SIZE]) // ROOM_QUEUE,
        (c[CAP_CHUNKS] - c[CHUNKS_USED]) // ROOM_QUEUE,
    )


@compiled(reference_counted=False)
def _chunks_for(s: StateRef, heap_rows: int) -> int:
    # n pushes open at most one chunk each, and at most n // CHUNK plus one per bucket in all.
    return min(heap_rows, heap_rows // CHUNK + s.bq.shape[0]) + ROOM_QUEUE


@compiled(reference_counted=False)
def _short_of_room(s: StateRef, heap_rows: int) -> bool:
    """Whether `_with_room` must grow an array (read from the counters: cheap)."""
    c = s.c
    return (
        c[N_USERS] + ROOM_USERS > c[CAP_USERS]
        or c[N_ACCOUNTS] + ROOM_ACCOUNTS > c[CAP_ACCOUNTS]
        or c[N_CHANGES] + ROOM_CHANGES > c[CAP_CHANGES]
        or c[N_SPEND] + ROOM_SPEND > c[CAP_SPEND]
        or c[HEAP_SIZE] + heap_rows + ROOM_QUEUE > c[CAP_HEAP]
        or c[CHUNKS_USED] + _chunks_for(s, heap_rows) > c[CAP_CHUNKS]
    )


@compiled()
def _grow(s: StateRef, heap_rows: int) -> None:
    c = s.c
    if c[N_USERS] + ROOM_USERS > c[CAP_USERS]:
        c[CAP_USERS] *= 2
        s.uf, s.ui = _grown(s.uf, c[CAP_USERS]), _grown(s.ui, c[CAP_USERS])
    if c[N_ACCOUNTS] + ROOM_ACCOUNTS > c[CAP_ACCOUNTS]:
        c[CAP_ACCOUNTS] *= 2
        s.af, s.ai = _grown(s.af, c[CAP_ACCOUNTS]), _grown(s.ai, c[CAP_ACCOUNTS])
        s.al = _grown(s.al, c[CAP_ACCOUNTS])
    if c[N_CHANGES] + ROOM_CHANGES > c[CAP_CHANGES]:
        c[CAP_CHANGES] *= 2
        s.ct, s.ci = _grown(s.ct, c[CAP_CHANGES]), _grown_columns(s.ci, c[CAP_CHANGES])
        s.cm = _grown(s.cm, c[CAP_CHANGES])
    if c[N_SPEND] + ROOM_SPEND > c[CAP_SPEND]:
        c[CAP_SPEND] *= 2
        s.sf, s.sk = _grown(s.sf, c[CAP_SPEND]), _grown(s.sk, c[CAP_SPEND])
    if c[HEAP_SIZE] + heap_rows + ROOM_QUEUE > c[CAP_HEAP]:
        c[CAP_HEAP] = max(2 * c[CAP_HEAP], c[HEAP_SIZE] + heap_rows + ROOM_QUEUE)
        s.ht, s.hi = _grown(s.ht, c[CAP_HEAP]), _grown(s.hi, c[CAP_HEAP])
    chunks = _chunks_for(s, heap_rows)
    if c[CHUNKS_USED] + chunks > c[CAP_CHUNKS]:
        c[CAP_CHUNKS] = max(2 * c[CAP_CHUNKS], c[CHUNKS_USED] + chunks)
        s.qt, s.qi = _grown(s.qt, c[CAP_CHUNKS] * CHUNK), _grown(s.qi, c[CAP_CHUNKS] * CHUNK)
        s.qn, s.qf = _grown(s.qn, c[CAP_CHUNKS]), _grown(s.qf, c[CAP_CHUNKS])


@compiled()
def _grow_scratch(s: StateRef, rows: int) -> None:
    s.xd = np.empty(max(rows, 2 * s.xd.shape[0]))


# --- the event queue: ordered by (time, sequence) as SimPy orders its events ---------------
# NOTE: for performance reasons. One binary heap of every pending event grows to hundreds of
# thousands of entries in a large run, and each push and pop then misses the cache at most of
# its ~20 levels. So later events wait in their bucket (under a day wide: a calendar queue),
# appended to the bucket's chunks of CHUNK events, which are contiguous in memory. When its
# bucket comes up, a bucket's events (appended in scheduling order) are sorted by time, stably,
# into the run; events scheduled into the current bucket meanwhile go on a small heap. The
# channels' pending signup waits apart (_schedule_arrival), and the next event is the earliest
# of the run's, the heap's and that one. The order of events is unchanged.
# The queue's functions run several times an event: they are inlined, which saves each call
# and the reference counting of its arguments (about 7% of a run).
@compiled(inline="always")
def _push(s: StateRef, t: float, payload: int, aux: int) -> None:
    if t >= s.f[HORIZON]:
        return  # never reached: the run stops at the horizon
    c = s.c
    seq = c[SEQ]
    c[SEQ] = seq + 1
    bucket = int(t * BUCKETS_PER_MONTH)
    if bucket <= c[BUCKET]:
        _heap_insert(s, t, seq, payload, aux)
        return
    bq = s.bq
    chunk, fill = bq[bucket, B_TAIL], bq[bucket, B_FILL]
    if fill == CHUNK:  # the last chunk is full, or there is none (see _empty_buckets)
        if c[CHUNKS_FREE] > 0:
            c[CHUNKS_FREE] -= 1
            fresh = s.qf[c[CHUNKS_FREE]]
        else:
            fresh = c[CHUNKS_USED]
            c[CHUNKS_USED] = fresh + 1
        s.qn[fresh] = -1
        if chunk < 0:
            bq[bucket, B_HEAD] = fresh
        else:
            s.qn[chunk] = fresh
        chunk, fill = fresh, 0
        bq[bucket, B_TAIL] = chunk
    slot = chunk * CHUNK + fill
    bq[bucket, B_FILL] = fill + 1
    bq[bucket, B_COUNT] += 1
    s.qt[slot] = t
    qi = s.qi
    qi[slot, H_SEQ], qi[slot, H_PAYLOAD], qi[slot, H_AUX] = seq, payload, aux


@compiled()
def _empty_buckets(bq: Any) -> Any:
    """Mark the buckets of `bq` empty: no chunk, and a "full" last one, so that a push takes a
    fresh chunk. Returns `bq`."""
    for b in range(bq.shape[0]):
        bq[b, B_HEAD], bq[b, B_TAIL], bq[b, B_FILL], bq[b, B_COUNT] = -1, -1, CHUNK, 0
    return bq


@compiled()
def _load_bucket(s: StateRef, bucket: int) -> None:
    """Make `bucket`'s events the run, in order of (time, sequence), and free its chunks.

    NOTE: for performance reasons. A comparison sort of each bucket took about a tenth of the
    run. Times spread over the bucket, so a counting sort into as many slices as events, then
    an insertion sort by (time, sequence) that rarely moves anything, orders them in linear
    time; a bucket that would take too many moves (times bunched in one slice, out of order)
    falls back to a stable merge sort. The counting sort moves each event from its chunk
    straight to its place in the run (reading the run in order, next, costs no lookup), and
    keeps events of equal time in sequence order (the chunks', slice by slice).
    """
    c, qn = s.c, s.qn
    head, tail, fill, count = s.bq[bucket, B_HEAD], s.bq[bucket, B_TAIL], s.bq[bucket, B_FILL], s.bq[bucket, B_COUNT]
    if count > c[CAP_RUN]:
        c[CAP_RUN] = max(2 * c[CAP_RUN], count)
        s.rt, s.ri = np.empty(c[CAP_RUN]), np.empty((c[CAP_RUN], 3), dtype=np.int64)
    if count + 1 > s.rk.shape[0]:
        s.rk = np.empty(max(count + 1, 2 * s.rk.shape[0]), dtype=np.int64)
    n, rt, ri, qt, qi, qf, starts = count, s.rt, s.ri, s.qt, s.qi, s.qf, s.rk
    starts[: n + 1] = 0
    chunk = head
    while chunk >= 0:
        first = chunk * CHUNK
        after = qn[chunk]
        if after >= 0:  # a bucket's chunks lie apart: ask for the next one's times meanwhile
            for line in range(0, CHUNK, 8):  # 8 numbers a cache line
                prefetch(qt, after * CHUNK + line)
        for i in range(first, first + (fill if chunk == tail else CHUNK)):
            starts[_slice(qt[i], bucket, n) + 1] += 1
        chunk = after
    for k in range(n):
        starts[k + 1] += starts[k]
    chunk = head
    while chunk >= 0:
        first = chunk * CHUNK
        after = qn[chunk]
        if after >= 0:  # and for the next one's events (3 numbers each)
            for line in range(0, 3 * CHUNK, 8):
                prefetch(qi, after * CHUNK * 3 + line)
        for i in range(first, first + (fill if chunk == tail else CHUNK)):
            k = _slice(qt[i], bucket, n)
            at = starts[k]
            starts[k] = at + 1
            rt[at] = qt[i]
            ri[at, 0], ri[at, 1], ri[at, 2] = qi[i, 0], qi[i, 1], qi[i, 2]
        qf[c[CHUNKS_FREE]] = chunk
        c[CHUNKS_FREE] += 1
        chunk = after
    _empty_buckets(s.bq[bucket : bucket + 1])
    if not _insertion_sorted(rt, ri, n, 16 * n + 64):
        order = np.argsort(rt[:n], kind="mergesort")  # stable: equal times stay in sequence order
        rt[:n], ri[:n] = rt[:n][order], ri[:n][order]
    c[RUN_AT], c[RUN_END] = 0, n


@compiled(inline="always")
def _slice(t: float, bucket: int, slices: int) -> int:
    """The slice of the bucket (of `slices` equal ones) that time `t` falls in."""
    return min(slices - 1, max(0, int((t * BUCKETS_PER_MONTH - bucket) * slices)))


@compiled(reference_counted=False)
def _insertion_sorted(rt: Any, ri: Any, n: int, budget: int) -> bool:
    """Sort the run's first `n` events by (time, sequence) in place, by insertion; False (and
    part sorted) if that takes more than `budget` moves."""
    moves = 0
    for i in range(1, n):
        t, seq = rt[i], ri[i, H_SEQ]
        j = i
        while j > 0 and (rt[j - 1] > t or (rt[j - 1] == t and ri[j - 1, H_SEQ] > seq)):
            j -= 1
        if j < i:
            payload, aux = ri[i, H_PAYLOAD], ri[i, H_AUX]
            for k in range(i, j, -1):
                rt[k] = rt[k - 1]
                ri[k, 0], ri[k, 1], ri[k, 2] = ri[k - 1, 0], ri[k - 1, 1], ri[k - 1, 2]
            rt[j], ri[j, H_SEQ], ri[j, H_PAYLOAD], ri[j, H_AUX] = t, seq, payload, aux
            moves += i - j
            if moves > budget:
                return False
    return True


@compiled(inline="always")
def _next_time(s: StateRef) -> float:
    """Time of the next event (inf if none), loading the next bucket when nothing is left."""
    c = s.c
    while c[RUN_AT] == c[RUN_END] and c[HEAP_SIZE] == 0:
        bucket = c[BUCKET] + 1
        if bucket >= s.bq.shape[0] or s.f[ARRIVAL_T] * BUCKETS_PER_MONTH < bucket:
            break  # no bucket left; or the pending arrival comes first (load no bucket early)
        c[BUCKET] = bucket
        _load_bucket(s, bucket)
    # The earliest of the run's next event, the heap's top and the pending arrival; at equal
    # times, the one scheduled first.
    t, seq, source, payload = s.f[ARRIVAL_T], c[ARRIVAL_SEQ], FROM_ARRIVAL, c[ARRIVAL_PAYLOAD]
    if c[RUN_AT] < c[RUN_END]:
        j = c[RUN_AT]
        if s.rt[j] < t or (s.rt[j] == t and s.ri[j, H_SEQ] < seq):
            t, seq, source, payload = s.rt[j], s.ri[j, H_SEQ], FROM_RUN, s.ri[j, H_PAYLOAD]
    if c[HEAP_SIZE] > 0 and (s.ht[0] < t or (s.ht[0] == t and s.hi[0, H_SEQ] < seq)):
        t, source, payload = s.ht[0], FROM_HEAP, s.hi[0, H_PAYLOAD]
    c[NEXT_FROM], c[NEXT_PAYLOAD] = source, payload
    return t


@compiled(inline="always")
def _heap_insert(s: StateRef, t: float, seq: int, payload: int, aux: int) -> None:
    ht, hi, c = s.ht, s.hi, s.c
    i = c[HEAP_SIZE]
    c[HEAP_SIZE] = i + 1
    while i > 0:
        parent = (i - 1) >> 1
        pt = ht[parent]
        if pt < t or (pt == t and hi[parent, H_SEQ] < seq):
            break
        ht[i] = pt
        hi[i, 0], hi[i, 1], hi[i, 2] = hi[parent, 0], hi[parent, 1], hi[parent, 2]
        i = parent
    ht[i] = t
    hi[i, H_SEQ], hi[i, H_PAYLOAD], hi[i, H_AUX] = seq, payload, aux


PREFETCH_AHEAD = 8
"""How many events ahead in the bucket's run the loop asks for the rows an event reads."""


@compiled(inline="always")
def _pop(s: StateRef) -> tuple[float, int, int]:
    """Take the event `_next_time` found."""
    c = s.c
    if c[NEXT_FROM] == FROM_ARRIVAL:
        t = s.f[ARRIVAL_T]
        s.f[ARRIVAL_T] = INF
        return t, c[ARRIVAL_PAYLOAD], 0
    if c[NEXT_FROM] == FROM_RUN:
        at = c[RUN_AT]
        c[RUN_AT] = at + 1
        ri = s.ri
        if at + PREFETCH_AHEAD < c[RUN_END]:
            _prefetch_rows(s, ri[at + PREFETCH_AHEAD, H_PAYLOAD])
            _prefetch_account_of_user(s, ri[at + PREFETCH_AHEAD // 2, H_PAYLOAD])
        return s.rt[at], ri[at, H_PAYLOAD], ri[at, H_AUX]
    ht, hi = s.ht, s.hi
    t, payload, aux = ht[0], hi[0, H_PAYLOAD], hi[0, H_AUX]
    n = c[HEAP_SIZE] - 1
    c[HEAP_SIZE] = n
    if n > 0:
        last_t, last_seq, last_payload, last_aux = ht[n], hi[n, 0], hi[n, 1], hi[n, 2]
        i = 0
        while True:
            child = 2 * i + 1
            if child >= n:
                break
            right = child + 1
            if right < n and (ht[right] < ht[child] or (ht[right] == ht[child] and hi[right, 0] < hi[child, 0])):
                child = right
            if ht[child] > last_t or (ht[child] == last_t and hi[child, 0] > last_seq):
                break
            ht[i] = ht[child]
            hi[i, 0], hi[i, 1], hi[i, 2] = hi[child, 0], hi[child, 1], hi[child, 2]
            i = child
        ht[i] = last_t
        hi[i, 0], hi[i, 1], hi[i, 2] = last_seq, last_payload, last_aux
    return t, payload, aux


@compiled(inline="always")
def _prefetch_rows(s: StateRef, payload: int) -> None:
    """Ask for the rows of the user or account that the event `payload` reads (prefetch.py)."""
    kind, ident = payload & 15, payload >> 4
    if kind in (K_ACTIVATE, K_INVITE):
        prefetch(s.ui, ident * UI_COLUMNS)
        prefetch(s.ui, ident * UI_COLUMNS + UI_COLUMNS - 1)
        prefetch(s.uf, ident * UF_COLUMNS)
    elif K_TRIAL_END <= kind <= K_PAY_END or kind == K_REPRICE:
        _prefetch_account(s, ident)


@compiled(inline="always")
def _prefetch_account_of_user(s: StateRef, payload: int) -> None:
    """Ask for the account rows of a user's event, once the user's row has arrived."""
    kind = payload & 15
    if kind in (K_ACTIVATE, K_INVITE):
        _prefetch_account(s, s.ui[payload >> 4, U_ACCOUNT])


@compiled(inline="always")
def _prefetch_account(s: StateRef, a: int) -> None:
    # A row (72 and 88 bytes) spans two or three cache lines: ask for each, 8 columns apart;
    # and for the ledger's row (32 bytes), which a change of state writes.
    prefetch(s.ai, a * AI_COLUMNS)
    prefetch(s.ai, a * AI_COLUMNS + AI_COLUMNS - 1)
    prefetch(s.af, a * AF_COLUMNS)
    prefetch(s.af, a * AF_COLUMNS + 8)
    prefetch(s.af, a * AF_COLUMNS + AF_COLUMNS - 1)
    prefetch(s.al, a * AL_COLUMNS)


@compiled(inline="always")
def _schedule(s: StateRef, t: float, ident: int, kind: int, aux: int = 0) -> None:
    _push(s, t, ident * 16 + kind, aux)


@compiled(inline="always")
def _schedule_arrival(s: StateRef, t: float, kind: int) -> None:
    """Schedule the channels' next signup or wake-up (K_ARRIVAL, K_ARRIVAL_WAKE, id 0): one is
    pending at a time, kept apart from the queue with its sequence number.

    NOTE: for performance reasons. A third of a run's events are these signups, most of them
    due within the current bucket: on the heap, each was pushed and popped there.
    """
    if t >= s.f[HORIZON]:
        return  # never reached, as in _push
    c = s.c
    s.f[ARRIVAL_T], c[ARRIVAL_SEQ], c[ARRIVAL_PAYLOAD] = t, c[SEQ], kind
    c[SEQ] += 1


# --- sampling ---------------------------------------------------------------------------------
@compiled(reference_counted=False)
def _draw(s: StateRef, row: int) -> float:
    """The next pre-drawn value of a row of draws (the caller made sure there is one)."""
    i = s.dc[row]
    s.dc[row] = i + 1
    dr = s.dr
    # A row is read in order, a cache line every 8 draws, among some 20 rows: ask ahead.
    prefetch(dr, row * dr.shape[1] + min(i + 16, dr.shape[1] - 1))
    return dr[row, i]


@compiled(reference_counted=False)
def _lognormal(s: StateRef, row: int, mu: float, sigma: float) -> float:
    """A lognormal duration in months; 0 without a draw when the median is 0 (mu = −inf)."""
    if mu == -INF:
        return 0.0
    return math.exp(mu + sigma * _draw(s, row))


@compiled(reference_counted=False)
def _periods_survived(s: StateRef, monthly_churn: float, period: int) -> int:
    """Billing periods paid before churn at a renewal: geometric, by inversion of a uniform."""
    per_period = 1.0 - (1.0 - monthly_churn) ** period
    if per_period <= 0.0:
        return 2**31
    if per_period >= 1.0:
        return 1
    periods = math.ceil(math.log1p(-_draw(s, D_PAID_U)) / math.log1p(-per_period))
    return max(1, min(periods, 2**31))


# --- the timeline -------------------------------------------------------------------------------
@compiled(reference_counted=False)
def _step_index(starts: Any, t: float) -> int:
    return int(np.searchsorted(starts, t, side="right")) - 1


@compiled(reference_counted=False)
def _price(p: ParamsRef, plan: int, t: float) -> tuple[float, float]:
    j = _step_index(p.price_starts[plan], t)
    return p.price_seat[plan, j], p.price_base[plan, j]


@compiled(reference_counted=False)
def _remaining_share(s: StateRef, p: ParamsRef) -> float:
    return max(0.0, 1.0 - s.c[SIGNUPS] / p.g[G_MARKET])


# --- ledger records ---------------------------------------------------------------------------
@compiled(reference_counted=False)
def _record_change(s: StateRef, account: int, state: int, mrr_cents: int, seats: int, moves_money: bool) -> None:
    """Record a change of `account`. `moves_money`: it may change the account's MRR or seats (only
    a paying account has either: it is billed, or it stops paying); its index is kept in `cm`, so
    that the ledger finds these few records without reading all (ledger.freeze's `money_changes`)."""
    c = s.c
    n = c[N_CHANGES]
    c[N_CHANGES] = n + 1
    s.ct[n] = s.f[NOW]
    s.ci[C_ACCOUNT, n], s.ci[C_STATE, n], s.ci[C_MRR, n], s.ci[C_SEATS, n] = account, state, mrr_cents, seats
    if moves_money:
        s.cm[c[N_MONEY_CHANGES]] = n
        c[N_MONEY_CHANGES] += 1


@compiled(reference_counted=False)
def _spend(s: StateRef, kind: int, amount: float) -> None:
    if amount > 0:
        n = s.c[N_SPEND]
        s.c[N_SPEND] = n + 1
        s.sf[n, S_T], s.sf[n, S_AMOUNT] = s.f[NOW], amount
        s.sk[n] = kind


@compiled(reference_counted=False)
def _account_changed(s: StateRef, account: int, state: int, mrr_cents: int, seats: int, moves_money: bool) -> None:
    if state == PAYING and math.isnan(s.al[account, L_FIRST_PAID_T]):
        s.al[account, L_FIRST_PAID_T] = s.f[NOW]
    if state == GONE:
        s.al[account, L_END_T] = s.f[NOW]
    _record_change(s, account, state, mrr_cents, seats, moves_money)


# --- plans and billing ---------------------------------------------------------------------------
@compiled(reference_counted=False)
def _bill_for(p: ParamsRef, plan: int, seats: int, per_seat: float, base_fee: float) -> float:
    return max(seats, p.plan[plan, PLAN_MIN_SEATS]) * per_seat + base_fee


@compiled(reference_counted=False)
def _best_plan(s: StateRef, p: ParamsRef, a: int, seats: int, require_gain: bool, cheaper_than: float) -> int:
    """The plan with the largest surplus for account `a` (-1 if none is worth its price when
    `require_gain`), among those allowing `seats` and billing less than `cheaper_than`."""
    best, best_surplus = -1, 0.0 if require_gain else -INF
    wtp = s.af[a, A_WTP]
    for plan in range(p.plan.shape[0]):
        if seats > p.plan[plan, PLAN_MAX_SEATS]:
            continue
        per_seat, base_fee = _price(p, plan, s.f[NOW])
        bill = _bill_for(p, plan, seats, per_seat, base_fee)
        if bill >= cheaper_than:
            continue
        surplus = seats * wtp * p.plan[plan, PLAN_VALUE] - bill
        if surplus > best_surplus:
            best, best_surplus = plan, surplus
    return best


@compiled(reference_counted=False)
def _seats_wanted(s: StateRef, p: ParamsRef, a: int) -> int:
    profile = s.ai[a, A_PROFILE_SEATS]
    if profile == 0:  # not drawn yet (see _open_account)
        profile = 1 + int(_draw(s, segment_draw_row(SD_EXTRA_SEATS, p.seg.shape[0], s.ai[a, A_SEGMENT])))
        s.ai[a, A_PROFILE_SEATS] = profile
    return max(profile, s.ai[a, A_MEMBERS])


@compiled(reference_counted=False)
def _churn_p(s: StateRef, p: ParamsRef, a: int) -> float:
    """The account's monthly churn probability θ, drawn the first time it pays."""
    theta = s.af[a, A_CHURN_P]
    if math.isnan(theta):
        theta = _draw(s, segment_draw_row(SD_CHURN_P, p.seg.shape[0], s.ai[a, A_SEGMENT]))
        s.af[a, A_CHURN_P] = theta
    return theta


@compiled(reference_counted=False)
def _bill(s: StateRef, p: ParamsRef, a: int) -> None:
    plan, seats = s.ai[a, A_PLAN], s.ai[a, A_SEATS]
    amount = _bill_for(p, plan, seats, s.af[a, A_PRICE_SEAT], s.af[a, A_PRICE_BASE])
    if s.ai[a, A_ANNUAL]:
        amount *= 1.0 - p.plan[plan, PLAN_ANNUAL_DISCOUNT]
    # np.rint rounds half to even, as Python's round() in the SimPy engine does.
    _account_changed(s, a, s.ai[a, A_STATE], int(np.rint(amount * 100)), seats, True)


@compiled(reference_counted=False)
def _set_state(s: StateRef, p: ParamsRef, a: int, state: int) -> None:
    was_paying = s.ai[a, A_STATE] == PAYING
    s.ai[a, A_STATE] = state
    if state == PAYING:
        _bill(s, p, a)
    else:
        _account_changed(s, a, state, 0, 0, was_paying)


@compiled(reference_counted=False, inline="always")
def _close(s: StateRef, p: ParamsRef, a: int) -> None:
    s.c[ACTIVE_USERS] -= s.ai[a, A_MEMBERS]
    _set_state(s, p, a, GONE)


@compiled(reference_counted=False)
def _set_plan(s: StateRef, p: ParamsRef, a: int, plan: int) -> None:
    s.ai[a, A_PLAN] = plan
    s.af[a, A_PRICE_SEAT], s.af[a, A_PRICE_BASE] = _price(p, plan, s.f[NOW])


@compiled(reference_counted=False)
def _change_seats(s: StateRef, p: ParamsRef, a: int, seats: int) -> None:
    if seats > p.plan[s.ai[a, A_PLAN], PLAN_MAX_SEATS]:
        plan = _best_plan(s, p, a, seats, False, INF)
        if plan < 0:
            return  # no plan allows that many seats
        _set_plan(s, p, a, plan)
    s.ai[a, A_SEATS] = seats
    _bill(s, p, a)


@compiled(reference_counted=False)
def _downgrade(s: StateRef, p: ParamsRef, a: int) -> None:
    current = _bill_for(p, s.ai[a, A_PLAN], s.ai[a, A_SEATS], s.af[a, A_PRICE_SEAT], s.af[a, A_PRICE_BASE])
    plan = _best_plan(s, p, a, s.ai[a, A_SEATS], False, current)
    if plan >= 0:
        _set_plan(s, p, a, plan)
        _bill(s, p, a)


# --- acquisition ------------------------------------------------------------------------------
# NOTE: for performance reasons. The handlers of the most frequent events (an arrival, a
# signup's account opening and first step, an activation, an invite, a departure) are inlined
# into their callers: the event loop took 8% less time at 10^6 signups, and the first compile
# 27 s as before. numba inlines before typing, so every inlined call site is compiled anew:
# inlining also `_free_from_start` or the free phases (each called from several places, with
# callees of their own) took it to 34-60 s for no more gain, so they stay calls. See also
# `_signup_inlined`.
@compiled(reference_counted=False, inline="always")
def _arrival_wake(s: StateRef, p: ParamsRef) -> None:
    """The channels' rates now; the next signup, or a wake-up to redraw at a new rate."""
    now, g = s.f[NOW], p.g
    remaining = _remaining_share(s, p)
    paid = p.paid_rate[_step_index(p.budget_starts, now)]
    organic = g[G_INNOVATION]
    if g[G_ORGANIC_POISSON] > 0:
        organic += g[G_ORGANIC] * (1.0 + g[G_ORGANIC_GROWTH]) ** now
    word_of_mouth = g[G_IMITATION] * s.c[ACTIVE_USERS]
    scale = remaining * g[G_SIGNUP_FACTOR]
    paid, organic, word_of_mouth = paid * scale, organic * scale, word_of_mouth * scale
    total = paid + organic + word_of_mouth
    wait = _draw(s, D_ARRIVAL_EXP) / total if total > 0 else INF
    # Memorylessness: waking after a step without an arrival and redrawing at the updated
    # rate is exact for a rate that is constant over the step.
    next_budget = p.budget_starts[_step_index(p.budget_starts, now) + 1]
    until_update = min(g[G_STEP], next_budget - now)
    if wait > until_update:
        _schedule_arrival(s, now + until_update, K_ARRIVAL_WAKE)
        return
    s.f[ARRIVAL_PAID], s.f[ARRIVAL_ORGANIC], s.f[ARRIVAL_TOTAL] = paid, organic, total
    _schedule_arrival(s, now + wait, K_ARRIVAL)


@compiled(reference_counted=False, inline="always")
def _arrival(s: StateRef, p: ParamsRef) -> None:
    u = _draw(s, D_CHANNEL_U) * s.f[ARRIVAL_TOTAL]
    paid, organic = s.f[ARRIVAL_PAID], s.f[ARRIVAL_ORGANIC]
    channel = PAID if u < paid else ORGANIC if u < paid + organic else WORD_OF_MOUTH
    _signup_inlined(s, p, channel, _draw_segment(s, p), -1, -1)


@compiled(reference_counted=False)
def _even_wake(s: StateRef, p: ParamsRef) -> None:
    now, g = s.f[NOW], p.g
    rate = g[G_ORGANIC] * (1.0 + g[G_ORGANIC_GROWTH]) ** now * _remaining_share(s, p) * g[G_SIGNUP_FACTOR]
    if rate <= 0:
        _schedule(s, now + g[G_STEP], 0, K_EVEN_WAKE)
    else:
        _schedule(s, now + 1.0 / rate, 0, K_EVEN)


@compiled(reference_counted=False, inline="always")
def _draw_segment(s: StateRef, p: ParamsRef) -> int:
    n = p.seg.shape[0]
    if n == 1:
        return 0
    u = _draw(s, D_SEGMENT_U)
    for segment in range(n - 1):
        if u < p.seg[segment, SEG_CUMULATIVE_SHARE]:
            return segment
    return n - 1


@compiled(reference_counted=False)
def _signup(s: StateRef, p: ParamsRef, channel: int, segment: int, join: int, inviter: int) -> None:
    """A person signs up: into a new account of their own, or into `join` as a member."""
    c, now = s.c, s.f[NOW]
    c[SIGNUPS] += 1
    if c[SIGNUPS] > p.g[G_MAX_USERS]:
        c[STATUS] = STATUS_MAX_USERS
        return
    flow = p.flow_ids[segment, _step_index(p.flow_starts[segment], now)]
    activates = _draw(s, D_ACTIVATION_U) < p.flow[flow, FLOW_ACTIVATION]
    time_to_value = _lognormal(s, D_ACTIVATION_N, p.flow[flow, FLOW_TTV_MU], p.flow[flow, FLOW_TTV_SIGMA])
    _spend(s, SPEND_ONBOARDING, p.flow[flow, FLOW_COST])
    account = _open_account(s, p, segment, now + time_to_value if activates else INF) if join < 0 else join
    user = c[N_USERS]
    c[N_USERS] = user + 1
    s.uf[user, U_SIGNUP_T], s.uf[user, U_ACTIVATED_T] = now, np.nan
    ui = s.ui
    ui[user, U_CHANNEL], ui[user, U_SEGMENT], ui[user, U_ACCOUNT] = channel, segment, account
    ui[user, U_INVITER], ui[user, U_SENT], ui[user, U_ACCEPTED] = inviter, 0, 0
    owner_step = False
    if join < 0:
        owner_step = _start_account(s, p, account)
    else:
        s.ai[account, A_MEMBERS] += 1
        if s.ai[account, A_STATE] == PAYING:
            _change_seats(s, p, account, s.ai[account, A_SEATS] + 1)
    c[ACTIVE_USERS] += 1
    if activates:
        _schedule(s, now + time_to_value, user, K_ACTIVATE, OWNER_STEP if owner_step else 0)


# NOTE: for performance reasons. The same signup, inlined into the channels' arrivals (a third of
# all events): the event loop took 4% less time at 10^6 signups, and the first compile 32 s
# against 27 s. Invites and evenly spaced signups call `_signup`.
_signup_inlined = compiled(reference_counted=False, inline="always")(_signup.py_func)  # type: ignore[attr-defined]


@compiled(reference_counted=False, inline="always")
def _open_account(s: StateRef, p: ParamsRef, segment: int, owner_activation_t: float) -> int:
    a = s.c[N_ACCOUNTS]
    s.c[N_ACCOUNTS] = a + 1
    seg, af, ai = p.seg[segment], s.af, s.ai
    model = int(seg[SEG_MODEL])
    state = TRIAL if model in (FREE_TRIAL, REVERSE_TRIAL) else FREE
    af[a, A_OWNER_ACTIVATION_T] = owner_activation_t
    af[a, A_WTP] = math.exp(seg[SEG_WTP_MU] + seg[SEG_WTP_SIGMA] * _draw(s, D_PROFILE_N))
    # NOTE: for performance reasons. θ and the profile's seats are drawn when first needed
    # (_churn_p, _seats_wanted): seats when the account first weighs the plans, θ when it
    # first pays (about 3% of accounts at 10^5 signups). Drawing these two (Beta, Poisson) for
    # every account took about 8% of a run; independent of everything else, they have the
    # same distribution drawn later.
    af[a, A_CHURN_P] = np.nan
    ai[a, A_PROFILE_SEATS] = 0
    af[a, A_ANNUAL_DRAW] = _draw(s, D_PROFILE_U)
    af[a, A_FIRST_CONVERSION] = _draw(s, D_PROFILE_EXP)
    af[a, A_FIRST_EXIT] = _draw(s, D_PROFILE_EXP)
    af[a, A_PRICE_SEAT], af[a, A_PRICE_BASE], af[a, A_PAYING_SINCE] = 0.0, 0.0, 0.0
    af[a, A_CHURN_T], af[a, A_TO_EXIT] = INF, INF
    al = s.al
    al[a, L_FIRST_PAID_T], al[a, L_TRIAL_END_T], al[a, L_END_T], al[a, L_TRIAL_CONVERTED] = np.nan, np.nan, INF, 0.0
    ai[a, A_SEGMENT], ai[a, A_MEMBERS], ai[a, A_STATE], ai[a, A_EPOCH] = segment, 1, state, 0
    ai[a, A_PLAN], ai[a, A_ANNUAL], ai[a, A_SEATS], ai[a, A_ORIGIN] = 0, 0, 0, ORIGIN_TOP
    _record_change(s, a, state, 0, 0, False)
    return a


# --- users ----------------------------------------------------------------------------------------
@compiled()
def _sort(a: Any) -> None:
    a.sort()  # numba's sort needs reference counting


@compiled(reference_counted=False, inline="always")
def _activate(s: StateRef, p: ParamsRef, user: int) -> None:
    """Activation: the invites the user will send are scheduled, in order of their delays."""
    a = s.ui[user, U_ACCOUNT]
    if s.ai[a, A_STATE] == GONE:
        return
    s.uf[user, U_ACTIVATED_T] = s.f[NOW]
    segment = s.ui[user, U_SEGMENT]
    seg = p.seg[segment]
    count = int(_draw(s, segment_draw_row(SD_INVITES, p.seg.shape[0], segment)))
    if count > s.xd.shape[0]:
        _grow_scratch(s, count)
    delays = s.xd[:count]
    for i in range(count):
        delays[i] = _lognormal(s, D_INVITE_N, seg[SEG_CYCLE_MU], seg[SEG_CYCLE_SIGMA])
    if count > 16:
        _sort(delays)
    else:  # a few values: an insertion sort, without a call into the general sort
        for i in range(1, count):
            d, j = delays[i], i
            while j > 0 and delays[j - 1] > d:
                delays[j] = delays[j - 1]
                j -= 1
            delays[j] = d
    _with_room(s, count)  # grows other arrays than xd: `delays` stays valid
    now = s.f[NOW]
    for delay in delays:
        _schedule(s, now + delay, user, K_INVITE)


@compiled(reference_counted=False, inline="always")
def _invite(s: StateRef, p: ParamsRef, user: int) -> None:
    a = s.ui[user, U_ACCOUNT]
    if s.ai[a, A_STATE] == GONE:
        return  # left before sending the rest: the realised K drops
    segment = s.ui[user, U_SEGMENT]
    seg = p.seg[segment]
    accepted = _draw(s, D_ACCEPTANCE_U) < seg[SEG_ACCEPTANCE] * _remaining_share(s, p) * p.g[G_SIGNUP_FACTOR]
    joins = _draw(s, D_ACCEPTANCE_U) < seg[SEG_SEAT_SHARE]
    s.ui[user, U_SENT] += 1
    if not accepted:
        return
    s.ui[user, U_ACCEPTED] += 1
    if joins:
        _signup(s, p, VIRAL, segment, a, user)
    else:
        _spend(s, SPEND_REFERRAL, seg[SEG_REWARD])
        _signup(s, p, VIRAL, segment, -1, user)


# --- accounts -----------------------------------------------------------------------------------
@compiled(reference_counted=False, inline="always")
def _start_account(s: StateRef, p: ParamsRef, a: int) -> bool:
    """The new account's first step, or True when that step falls due at its owner's
    activation, later: the caller then schedules the activation to take that step first.

    NOTE: for performance reasons. Scheduled as events of their own, the step and the
    activation would be two events at the same time with consecutive sequence numbers, which
    nothing can come between: one event that runs both, in that order, runs the same events in
    the same order (about one event in nine of a freemium run).
    """
    seg = p.seg[s.ai[a, A_SEGMENT]]
    model = int(seg[SEG_MODEL])
    now, owner_activation_t = s.f[NOW], s.af[a, A_OWNER_ACTIVATION_T]
    if model in (FREE_TRIAL, REVERSE_TRIAL):
        _schedule(s, now + seg[SEG_TRIAL_MONTHS], a, K_TRIAL_END)
    elif owner_activation_t == INF:
        _leave_unactivated(s, p, a)
    elif model == PAID_ONLY or owner_activation_t > now:
        return True  # paid-only: decides at the activation; freemium: free from it on
    else:
        _first_free_phase(s, p, a)  # free from now on
    return False


@compiled(reference_counted=False)
def _owner_step(s: StateRef, p: ParamsRef, a: int) -> None:
    """Account `a`'s first step, at its owner's activation (see _start_account)."""
    if int(p.seg[s.ai[a, A_SEGMENT], SEG_MODEL]) == PAID_ONLY:
        _paid_only_decide(s, p, a)
    else:
        _first_free_phase(s, p, a)


@compiled(reference_counted=False, inline="always")
def _leave_unactivated(s: StateRef, p: ParamsRef, a: int) -> None:
    hazard = p.seg[s.ai[a, A_SEGMENT], SEG_UNACTIVATED_HAZARD]
    if hazard > 0:
        _schedule(s, s.f[NOW] + s.af[a, A_FIRST_EXIT] / hazard, a, K_UNACTIVATED_LEAVE)


@compiled(reference_counted=False)
def _free_from_start(s: StateRef, p: ParamsRef, a: int) -> None:
    """The free phases from the start: wait for the owner's activation, then the first draws."""
    owner_activation_t = s.af[a, A_OWNER_ACTIVATION_T]
    if owner_activation_t == INF:
        _leave_unactivated(s, p, a)
    elif owner_activation_t > s.f[NOW]:
        _schedule(s, owner_activation_t, a, K_FREE_START)
    else:
        _first_free_phase(s, p, a)


@compiled(reference_counted=False)
def _first_free_phase(s: StateRef, p: ParamsRef, a: int) -> None:
    """The free phase from the owner's activation on, with the account's first draws."""
    _free_phase(s, p, a, s.af[a, A_FIRST_EXIT], s.af[a, A_FIRST_CONVERSION])


@compiled(reference_counted=False)
def _free_phase(s: StateRef, p: ParamsRef, a: int, exit_draw: float, conversion_draw: float) -> None:
    """Free until the account goes inactive or weighs the plans, whichever comes first."""
    seg = p.seg[s.ai[a, A_SEGMENT]]
    free_hazard, conversion_hazard = seg[SEG_FREE_HAZARD], seg[SEG_CONVERSION_HAZARD]
    to_exit = exit_draw / free_hazard if free_hazard > 0 else INF
    to_buy = conversion_draw / conversion_hazard if conversion_hazard > 0 else INF
    now = s.f[NOW]
    if to_buy < to_exit:
        s.af[a, A_TO_EXIT] = to_exit - to_buy
        _schedule(s, now + to_buy, a, K_FREE_BUY)
    elif to_exit < INF:
        _schedule(s, now + to_exit, a, K_FREE_EXIT)


@compiled(reference_counted=False)
def _free_buy(s: StateRef, p: ParamsRef, a: int) -> None:
    plan = _best_plan(s, p, a, _seats_wanted(s, p, a), True, INF)
    if plan >= 0:
        _start_paying(s, p, a, plan, ORIGIN_LOOP)
    elif s.af[a, A_TO_EXIT] < INF:
        # Weighed the plans once and found none worth its price: free until it leaves.
        _schedule(s, s.f[NOW] + s.af[a, A_TO_EXIT], a, K_FREE_EXIT)


@compiled(reference_counted=False)
def _trial_end(s: StateRef, p: ParamsRef, a: int) -> None:
    seg = p.seg[s.ai[a, A_SEGMENT]]
    activated = s.af[a, A_OWNER_ACTIVATION_T] <= s.f[NOW]
    p_buy = seg[SEG_TRIAL_CONVERSION_ACTIVATED] if activated else seg[SEG_TRIAL_CONVERSION_NOT_ACTIVATED]
    wants = _draw(s, D_CONVERSION_U) < p_buy
    plan = _best_plan(s, p, a, _seats_wanted(s, p, a), True, INF) if wants else -1
    s.al[a, L_TRIAL_END_T] = s.f[NOW]
    s.al[a, L_TRIAL_CONVERTED] = 1.0 if plan >= 0 else 0.0
    if plan >= 0:
        _start_paying(s, p, a, plan, ORIGIN_TOP)
    elif int(seg[SEG_MODEL]) == FREE_TRIAL:
        _close(s, p, a)
    else:
        _set_state(s, p, a, FREE)
        _free_from_start(s, p, a)


@compiled(reference_counted=False)
def _paid_only_decide(s: StateRef, p: ParamsRef, a: int) -> None:
    plan = _best_plan(s, p, a, _seats_wanted(s, p, a), True, INF)
    if plan < 0:
        _close(s, p, a)
    else:
        _start_paying(s, p, a, plan, ORIGIN_TOP)


@compiled(reference_counted=False)
def _start_paying(s: StateRef, p: ParamsRef, a: int, plan: int, origin: int) -> None:
    """A paying phase: seat and plan moves until churn at a renewal."""
    af, ai, now = s.af, s.ai, s.f[NOW]
    annual = af[a, A_ANNUAL_DRAW] < p.plan[plan, PLAN_ANNUAL_SHARE]
    period = 12 if annual else 1
    ai[a, A_ANNUAL] = 1 if annual else 0
    ai[a, A_SEATS] = _seats_wanted(s, p, a)
    _set_plan(s, p, a, plan)
    af[a, A_PAYING_SINCE] = now
    ai[a, A_EPOCH] += 1
    ai[a, A_ORIGIN] = origin
    _set_state(s, p, a, PAYING)
    renewals = _periods_survived(s, _churn_p(s, p, a), period)
    af[a, A_CHURN_T] = now + renewals * period
    _next_move(s, p, a)


@compiled(reference_counted=False)
def _next_move(s: StateRef, p: ParamsRef, a: int) -> None:
    """Competing seat and plan moves at a constant total rate, or churn at a renewal first."""
    seg = p.seg[s.ai[a, A_SEGMENT]]
    rate = seg[SEG_SEAT_ADD] + seg[SEG_SEAT_REMOVE] + seg[SEG_DOWNGRADE]
    wait = _draw(s, D_EXPANSION_EXP) / rate if rate > 0 else INF
    now, churn_t, epoch = s.f[NOW], s.af[a, A_CHURN_T], s.ai[a, A_EPOCH]
    if now + wait >= churn_t:
        _schedule(s, churn_t, a, K_PAY_END, epoch)
    else:
        _schedule(s, now + wait, a, K_PAY_MOVE, epoch)


@compiled(reference_counted=False)
def _pay_move(s: StateRef, p: ParamsRef, a: int) -> None:
    seg = p.seg[s.ai[a, A_SEGMENT]]
    add, remove = seg[SEG_SEAT_ADD], seg[SEG_SEAT_REMOVE]
    # A move that does not apply (removing the last seat) is skipped: the sampling stays exact.
    u = _draw(s, D_EXPANSION_U) * (add + remove + seg[SEG_DOWNGRADE])
    if u < add:
        _change_seats(s, p, a, s.ai[a, A_SEATS] + 1)
    elif u < add + remove:
        if s.ai[a, A_SEATS] > 1:
            _change_seats(s, p, a, s.ai[a, A_SEATS] - 1)
    else:
        _downgrade(s, p, a)
    _next_move(s, p, a)


@compiled(reference_counted=False)
def _pay_end(s: StateRef, p: ParamsRef, a: int) -> None:
    s.ai[a, A_EPOCH] += 1
    seg = p.seg[s.ai[a, A_SEGMENT]]
    model = int(seg[SEG_MODEL])
    has_free_plan = model in (FREEMIUM, REVERSE_TRIAL)
    if has_free_plan and _draw(s, D_EXPANSION_U) < seg[SEG_DOWNGRADE_TO_FREE]:
        _set_state(s, p, a, FREE)
        if s.ai[a, A_ORIGIN] == ORIGIN_TOP:
            _free_from_start(s, p, a)
        else:
            _free_phase(s, p, a, _draw(s, D_FREE_EXP), _draw(s, D_CONVERSION_EXP))
    else:
        _close(s, p, a)


@compiled(reference_counted=False)
def _price_rise(s: StateRef, p: ParamsRef, k: int) -> None:
    """Every account on the plan meets the new price at its next renewal."""
    plan, now, af, ai = p.repricing_plan[k], s.f[NOW], s.af, s.ai
    for a in range(s.c[N_ACCOUNTS]):
        if ai[a, A_STATE] == PAYING and ai[a, A_PLAN] == plan:
            period = 12 if ai[a, A_ANNUAL] else 1
            periods_done = math.floor((now - af[a, A_PAYING_SINCE]) / period) + 1
            renewal_t = af[a, A_PAYING_SINCE] + periods_done * period
            _schedule(s, renewal_t, a, K_REPRICE, ai[a, A_EPOCH] * p.repricing_t.shape[0] + k)


@compiled(reference_counted=False)
def _reprice(s: StateRef, p: ParamsRef, a: int, epoch: int, k: int) -> None:
    plan = p.repricing_plan[k]
    if s.ai[a, A_EPOCH] != epoch or s.ai[a, A_PLAN] != plan:
        return
    per_seat, base_fee = _price(p, plan, p.repricing_t[k])
    seats = s.ai[a, A_SEATS]
    value = s.af[a, A_WTP] * p.plan[plan, PLAN_VALUE]
    priced_out = seats * value - _bill_for(p, plan, seats, per_seat, base_fee) < 0
    churn = p.seg[s.ai[a, A_SEGMENT], SEG_PRICE_CHURN]
    if priced_out and _draw(s, D_PRICE_U) < churn:
        s.ai[a, A_EPOCH] += 1
        _close(s, p, a)
        return
    s.af[a, A_PRICE_SEAT], s.af[a, A_PRICE_BASE] = per_seat, base_fee
    _bill(s, p, a)


# --- the loop ------------------------------------------------------------------------------------
@compiled()
def start(s: StateRef, p: ParamsRef) -> None:
    """The processes' first steps at time 0, in the SimPy engine's order."""
    _with_room(s, p.repricing_t.shape[0])
    _arrival_wake(s, p)
    if p.g[G_EVEN] > 0:
        _even_wake(s, p)
    for k in range(p.repricing_t.shape[0]):
        _schedule(s, p.repricing_t[k], k, K_PRICE_RISE)


@compiled(reference_counted=False)
def _fewest_draws_left(s: StateRef) -> int:
    """The fewest draws left in any row but the invite delays' (which an event may empty)."""
    dn, dc = s.dn, s.dc
    fewest = dn[0] - dc[0]
    for row in range(1, dn.shape[0]):
        if row != D_INVITE_N:
            fewest = min(fewest, dn[row] - dc[row])
    return fewest


@compiled(reference_counted=False)
def _invite_delays_short(s: StateRef, p: ParamsRef) -> bool:
    """Whether the invite delays' row may run out in the next event (an activation draws one
    delay per invite, however many)."""
    dn, dc = s.dn, s.dc
    left = dn[D_INVITE_N] - dc[D_INVITE_N]
    top = s.c[NEXT_PAYLOAD]
    if top & 15 == K_ACTIVATE:
        row = segment_draw_row(SD_INVITES, p.seg.shape[0], s.ui[top >> 4, U_SEGMENT])
        return left < s.dr[row, dc[row]] + DRAW_MARGIN
    return left < DRAW_MARGIN


# nogil: a helper thread draws the next random numbers meanwhile (fast_engine.Draws).
@compiled(nogil=True)
def advance(s: StateRef, p: ParamsRef, until: float) -> None:
    """Run every event before time `until`; stop early when the run hits max_users or needs
    more pre-drawn numbers (status), to be called again after a refill."""
    # Called from Python, it counts references: its arguments are released when it returns.
    _events(s, p, until)


@compiled(reference_counted=False)
def _events(s: StateRef, p: ParamsRef, until: float) -> None:
    c = s.c
    # NOTE: for performance reasons. An event takes at most DRAW_MARGIN numbers of any row but
    # the invite delays', so after finding `fewest` left in those rows, the next
    # (fewest - DRAW_MARGIN) // DRAW_MARGIN events cannot run short: they skip the scan.
    # The run stops for a refill before exactly the same event as with a scan before each.
    # Likewise for room: after `_with_room(s, 0)`, `_events_with_room` events have room (an
    # event that names more pushes, an activation or a price rise, checks for them itself, and
    # `_with_room` then ends the stretch).
    scan_in = 0
    while c[STATUS] == 0 and _next_time(s) < until:
        if scan_in == 0:
            fewest = _fewest_draws_left(s)
            if fewest < DRAW_MARGIN:
                c[STATUS] = STATUS_NEEDS_DRAWS
                break
            scan_in = (fewest - DRAW_MARGIN) // DRAW_MARGIN + 1
        if _invite_delays_short(s, p):
            c[STATUS] = STATUS_NEEDS_DRAWS
            break
        scan_in -= 1
        if c[ROOM_IN] == 0:
            _with_room(s, 0)
            c[ROOM_IN] = _events_with_room(s)
        c[ROOM_IN] -= 1
        t, payload, aux = _pop(s)
        s.f[NOW] = t
        kind, ident = payload & 15, payload >> 4
        if kind == K_ARRIVAL:
            _arrival(s, p)
            if s.c[STATUS] == 0:
                _arrival_wake(s, p)
        elif kind == K_ARRIVAL_WAKE:
            _arrival_wake(s, p)
        elif kind == K_EVEN:
            _signup(s, p, ORGANIC, _draw_segment(s, p), -1, -1)
            if s.c[STATUS] == 0:
                _even_wake(s, p)
        elif kind == K_EVEN_WAKE:
            _even_wake(s, p)
        elif kind == K_ACTIVATE:
            if aux == OWNER_STEP:
                _owner_step(s, p, s.ui[ident, U_ACCOUNT])
            _activate(s, p, ident)
        elif kind == K_INVITE:
            _invite(s, p, ident)
        elif kind == K_TRIAL_END:
            _trial_end(s, p, ident)
        elif kind in (K_UNACTIVATED_LEAVE, K_FREE_EXIT):
            _close(s, p, ident)
        elif kind == K_FREE_START:
            _first_free_phase(s, p, ident)
        elif kind == K_FREE_BUY:
            _free_buy(s, p, ident)
        elif kind == K_PAY_MOVE:
            if s.ai[ident, A_EPOCH] == aux:
                _pay_move(s, p, ident)
        elif kind == K_PAY_END:
            if s.ai[ident, A_EPOCH] == aux:
                _pay_end(s, p, ident)
        elif kind == K_PRICE_RISE:
            _with_room(s, s.c[N_ACCOUNTS])
            _price_rise(s, p, ident)
        else:  # K_REPRICE
            repricings = p.repricing_t.shape[0]
            _reprice(s, p, ident, aux // repricings, aux % repricings)
