"""Typed, frozen models of a scenario file.

Every field carries its unit, default and allowed range in its description; the
README's scenario reference and `plgsim schema` are generated from the same
source, so they cannot drift apart. Unknown keys are rejected (``extra="forbid"``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]

EngineName = Literal["fast", "simpy"]
"""The engines a scenario can run on."""

DAYS_PER_MONTH = 365.25 / 12
"""Length of a simulated month in days; all times inside the engines are in months."""


class StrictModel(BaseModel):
    """Base for every scenario section: unknown keys are errors, values are not coerced from
    other types (a quoted "0.3" is a mistake, not a number), and loaded values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Simulation(StrictModel):
    """How long and how the run goes."""

    months: int = Field(36, ge=1, le=240, description="Horizon in months (1 to 240).")
    seed: int = Field(0, ge=0, description="Seed of every random stream (integer ≥ 0).")
    replications: int = Field(1, ge=1, le=100_000, description="Monte Carlo replications for batch runs (≥ 1).")
    max_users: int = Field(
        2_000_000,
        ge=1,
        description="Stop the run with an error once this many users have signed up (≥ 1).",
    )
    step_days: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="Longest time in days between updates of the signup rate (0 < x ≤ 1).",
    )
    engine: EngineName = Field(
        "fast",
        description="'fast' (the same discrete-event simulation compiled with numba) or 'simpy' "
        "(the reference, SimPy processes; required for --events).",
    )


class Market(StrictModel):
    """The addressable market that acquisition, word of mouth and invites draw from."""

    size: float = Field(
        1_000_000,
        gt=0,
        description="Total addressable users (people). Every channel reaches a share "
        "(1 − signed-up users / size) of its unsaturated volume (Bass-style saturation).",
    )


class PaidChannel(StrictModel):
    """Paid media: spend buys signups, with diminishing returns."""

    monthly_budget: float = Field(0.0, ge=0, description="Paid spend per month (money, ≥ 0).")
    cost_per_signup: float = Field(25.0, gt=0, description="Cost per signup at low spend (money per signup, > 0).")
    saturation_budget: float | None = Field(
        None,
        gt=0,
        description="Monthly spend at which the cost per signup has doubled; signups = "
        "budget / cost_per_signup / (1 + budget / saturation_budget). Empty: no saturation.",
    )

    def signups_per_month(self, budget: float) -> float:
        """Signups a monthly `budget` buys, before market saturation (diminishing returns)."""
        rate = budget / self.cost_per_signup
        if self.saturation_budget is not None:
            rate /= 1.0 + budget / self.saturation_budget
        return rate


class OrganicChannel(StrictModel):
    """Search, content and direct traffic."""

    signups_per_month: float = Field(0.0, ge=0, description="Organic signups per month at month 0 (≥ 0).")
    monthly_growth: float = Field(
        0.0, ge=-0.5, le=1.0, description="Growth of organic volume per month (fraction, −0.5 to 1)."
    )
    innovation_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Bass innovation coefficient p: share of the not-yet-reached market that "
        "signs up per month on its own (per month, 0 to 1).",
    )
    arrivals: Literal["poisson", "even"] = Field(
        "poisson",
        description="'poisson' (random arrival times) or 'even' (evenly spaced, deterministic) "
        "for the signups_per_month stream.",
    )


class WordOfMouthChannel(StrictModel):
    """People who hear of the product from its active users, outside explicit invites."""

    imitation_rate: float = Field(
        0.0,
        ge=0,
        le=5,
        description="Bass imitation coefficient q: signups per month = q × active users / "
        "market size × not-yet-reached users (per month, 0 to 5).",
    )


class Acquisition(StrictModel):
    """Acquisition channels; viral signups come from the virality section."""

    paid: PaidChannel = Field(default_factory=PaidChannel)
    organic: OrganicChannel = Field(default_factory=OrganicChannel)
    word_of_mouth: WordOfMouthChannel = Field(default_factory=WordOfMouthChannel)


class LogNormalDays(StrictModel):
    """A positive duration in days, lognormally distributed."""

    median_days: float = Field(3.0, ge=0, description="Median duration (days, ≥ 0).")
    sigma: float = Field(0.8, ge=0, le=4, description="Log-scale spread (0 gives a fixed duration; 0 to 4).")


class OnboardingFlow(StrictModel):
    """An onboarding flow: self-serve, guided tour, high-touch…"""

    activation_probability: Probability = Field(
        0.4, description="Share of signups that ever reach activation (probability)."
    )
    time_to_value: LogNormalDays = Field(default_factory=LogNormalDays, description="Time from signup to activation.")
    cost_per_signup: float = Field(
        0.0, ge=0, description="Onboarding cost per signup, counted as acquisition spend (money)."
    )


class Virality(StrictModel):
    """Explicit invites sent by activated users."""

    invites_per_user: float = Field(
        0.0, ge=0, le=1000, description="Mean invites an activated user sends over its life (≥ 0)."
    )
    dispersion: float = Field(
        1.0,
        gt=0,
        description="Negative-binomial shape k of invites per user: small k means a few heavy "
        "inviters; large k approaches Poisson (> 0).",
    )
    cycle_time: LogNormalDays = Field(
        default_factory=lambda: LogNormalDays(median_days=10.0, sigma=0.8),
        description="Delay from the inviter's activation to each invite (days).",
    )
    acceptance_rate: Probability = Field(
        0.2, description="Share of invites accepted by a not-yet-reached person (probability)."
    )
    seat_share: Probability = Field(
        0.5,
        description="Share of accepted invites that join the inviter's account as a new member "
        "(a seat if it pays) rather than start an account of their own (probability).",
    )
    referral_reward: float = Field(
        0.0,
        ge=0,
        description="Reward paid per accepted invite that starts a new account, counted as acquisition spend (money).",
    )


class Trial(StrictModel):
    """Trial settings for the free_trial and reverse_trial models."""

    length_days: float = Field(14.0, gt=0, le=365, description="Trial length (days, 0 to 365).")
    card_required: bool = Field(False, description="Whether starting the trial needs a card.")
    card_signup_factor: Probability = Field(
        0.5,
        description="With a card required: share of would-be signups that still sign up (probability).",
    )
    conversion_activated: Probability = Field(
        0.3,
        description="Probability that an account whose owner activated during the trial buys "
        "at trial end, if some plan is worth its price to it.",
    )
    conversion_not_activated: Probability = Field(
        0.0,
        description="The same for owners who did not activate (forgotten cancellations when a card is on file).",
    )
    plan: str | None = Field(None, description="Plan name used during the trial; empty means the most expensive plan.")


class Monetization(StrictModel):
    """How free users become paying accounts."""

    model: Literal["freemium", "free_trial", "reverse_trial", "paid_only"] = Field(
        "freemium",
        description="freemium (free forever, upgrade at a hazard); free_trial (trial, then pay "
        "or leave); reverse_trial (trial of the top plan, then pay or fall back to free); "
        "paid_only (pay at activation or leave).",
    )
    conversion_hazard: float = Field(
        0.05,
        ge=0,
        le=30,
        description="Rate per month at which an activated free account weighs an upgrade "
        "(per month, 0 to 30). It buys the plan with the largest surplus, if any.",
    )
    trial: Trial = Field(default_factory=Trial)


class Plan(StrictModel):
    """A price plan."""

    price_per_seat: float = Field(ge=0, description="Price per seat per month (money, ≥ 0).")
    base_fee: float = Field(0.0, ge=0, description="Fixed fee per account per month (money, ≥ 0).")
    min_seats: int = Field(1, ge=1, description="Fewest seats billed (≥ 1).")
    max_seats: int | None = Field(
        None, ge=1, description="Most seats allowed; above it the account must upgrade. Empty: no limit."
    )
    value: float = Field(
        1.0,
        gt=0,
        description="What the plan is worth relative to the account's willingness to pay "
        "(multiplier, > 0): higher tiers have more features.",
    )
    annual_share: Probability = Field(0.0, description="Share of new accounts on this plan that pick annual billing.")
    annual_discount: float = Field(0.0, ge=0, le=0.9, description="Discount for annual billing (fraction, 0 to 0.9).")


class Pricing(StrictModel):
    """Price plans, by name."""

    plans: dict[str, Plan] = Field(
        default_factory=lambda: {"pro": Plan(price_per_seat=20.0)},
        min_length=1,
        description="Plans by name (at least one).",
    )


class WillingnessToPay(StrictModel):
    """Each account's willingness to pay per seat per month, lognormal."""

    median: float = Field(20.0, gt=0, description="Median willingness to pay per seat per month (money).")
    sigma: float = Field(0.8, ge=0, le=4, description="Log-scale spread (0 to 4).")


class Seats(StrictModel):
    """Seats bought when an account starts paying."""

    initial_mean: float = Field(
        1.0, ge=1, le=10_000, description="Mean seats at conversion: 1 + Poisson(mean − 1) (≥ 1)."
    )


class Expansion(StrictModel):
    """Seat changes and plan moves of paying accounts."""

    seat_add_rate: float = Field(0.0, ge=0, le=100, description="Seats added per paying account-month.")
    seat_remove_rate: float = Field(
        0.0, ge=0, le=100, description="Seat removals per paying account-month (never below one seat)."
    )
    downgrade_rate: float = Field(0.0, ge=0, le=10, description="Moves to a cheaper plan per paying account-month.")


class Churn(StrictModel):
    """Leaving: free accounts at a hazard, paying accounts by the shifted-beta-geometric model."""

    alpha: float = Field(
        1.0, gt=0, description="α of the Beta(α, β) monthly churn probability of a paying account (> 0)."
    )
    beta: float = Field(12.0, gt=0, description="β of the same Beta; mean monthly churn is α / (α + β) (> 0).")
    free_hazard: float = Field(
        0.15, ge=0, le=30, description="Rate per month at which an activated free account goes inactive."
    )
    unactivated_hazard: float = Field(
        1.0, ge=0, le=30, description="Rate per month at which a never-activated account goes inactive."
    )
    downgrade_to_free_share: Probability = Field(
        0.0,
        description="Freemium only: share of churning paying accounts that drop to the free plan "
        "instead of leaving (they may buy again: reactivation).",
    )
    price_increase_churn: Probability = Field(
        0.5,
        description="When a price rise reaches an existing account whose willingness to pay is "
        "now below the price: probability that it churns at its next renewal.",
    )


class Costs(StrictModel):
    """Cost of revenue."""

    gross_margin: Probability = Field(0.8, description="Gross margin on revenue (fraction).")
    cost_to_serve_per_seat: float = Field(0.0, ge=0, description="Further cost per paying seat per month (money, ≥ 0).")


class Segment(StrictModel):
    """A customer segment: its share of signups and what differs for it."""

    share: Probability = Field(1.0, description="Share of non-viral signups (shares sum to 1).")
    flow: str = Field("self_serve", description="Name of the onboarding flow this segment gets.")
    wtp: WillingnessToPay = Field(default_factory=WillingnessToPay, description="Willingness to pay per seat.")
    seats: Seats = Field(default_factory=Seats, description="Seats at conversion.")
    virality: Virality | None = Field(None, description="Override of [virality] (merged over it).")
    monetization: Monetization | None = Field(None, description="Override of [monetization] (merged over it).")
    expansion: Expansion | None = Field(None, description="Override of [expansion] (merged over it).")
    churn: Churn | None = Field(None, description="Override of [churn] (merged over it).")


MONTH_DESCRIPTION = "When it takes effect (months since start; at or past the horizon it never does)."


class PriceChange(StrictModel):
    """From `month`, a plan's price changes."""

    kind: Literal["price_change"]
    month: float = Field(ge=0, description=MONTH_DESCRIPTION)
    plan: str = Field(description="Plan name.")
    change: float | None = Field(
        None, ge=-0.99, le=10, description="Relative change of the per-seat price and base fee (0.3 = +30%)."
    )
    price_per_seat: float | None = Field(None, ge=0, description="New per-seat price (money).")
    applies_to: Literal["new", "all"] = Field(
        "new",
        description="'new': existing customers keep their price (grandfathered); 'all': existing "
        "customers move to it at their next renewal.",
    )

    @model_validator(mode="after")
    def _one_of_change_or_price(self) -> PriceChange:
        if (self.change is None) == (self.price_per_seat is None):
            raise ValueError("give exactly one of 'change' or 'price_per_seat'")
        return self


class OnboardingSwitch(StrictModel):
    """From `month`, segments get another onboarding flow."""

    kind: Literal["onboarding"]
    month: float = Field(ge=0, description=MONTH_DESCRIPTION)
    flow: str = Field(description="Onboarding flow name.")
    segments: list[str] | None = Field(None, description="Segments affected; empty means all.")


class PaidBudgetChange(StrictModel):
    """From `month`, the paid budget changes."""

    kind: Literal["paid_budget"]
    month: float = Field(ge=0, description=MONTH_DESCRIPTION)
    monthly_budget: float | None = Field(None, ge=0, description="New paid budget per month (money).")
    multiplier: float | None = Field(None, ge=0, description="Multiply the current budget by this.")

    @model_validator(mode="after")
    def _one_of_budget_or_multiplier(self) -> PaidBudgetChange:
        if (self.monthly_budget is None) == (self.multiplier is None):
            raise ValueError("give exactly one of 'monthly_budget' or 'multiplier'")
        return self


Intervention = Annotated[PriceChange | OnboardingSwitch | PaidBudgetChange, Field(discriminator="kind")]


def _default_flows() -> dict[str, OnboardingFlow]:
    return {"self_serve": OnboardingFlow()}


def _default_segments() -> dict[str, Segment]:
    return {"everyone": Segment()}


class Scenario(StrictModel):
    """One business: everything the engines need, validated before anything runs."""

    name: str = Field("scenario", min_length=1, description="Short name shown in tables.")
    description: str = Field("", description="What question the scenario answers.")
    currency: str = Field("USD", min_length=1, max_length=8, description="Currency of every amount.")
    simulation: Simulation = Field(default_factory=Simulation)
    market: Market = Field(default_factory=Market)
    acquisition: Acquisition = Field(default_factory=Acquisition)
    onboarding: dict[str, OnboardingFlow] = Field(
        default_factory=_default_flows, min_length=1, description="Onboarding flows by name (at least one)."
    )
    virality: Virality = Field(default_factory=Virality)
    monetization: Monetization = Field(default_factory=Monetization)
    pricing: Pricing = Field(default_factory=Pricing)
    expansion: Expansion = Field(default_factory=Expansion)
    churn: Churn = Field(default_factory=Churn)
    costs: Costs = Field(default_factory=Costs)
    segments: dict[str, Segment] = Field(
        default_factory=_default_segments,
        min_length=1,
        description="Customer segments by name; shares sum to 1. Viral signups join their inviter's segment.",
    )
    timeline: list[Intervention] = Field(default_factory=list)
    sweep: dict[str, list[int | float | bool | str] | int | float | bool | str] = Field(
        default_factory=dict,
        description="Optional grid for `plgsim sweep` and `plgsim batch`: dotted key (quoted, or as nested "
        "tables) → list of values, 'start:stop:step' or one value. A plain `plgsim run` ignores it.",
    )

    @field_validator("sweep", mode="before")
    @classmethod
    def _flatten_sweep(cls, value: object) -> object:
        from simulator.scenario.merge import flatten_dotted

        return flatten_dotted(value) if isinstance(value, dict) else value

    @model_validator(mode="before")
    @classmethod
    def _merge_segment_overrides(cls, data: object) -> object:
        """A segment's override tables are merged over the scenario-wide sections, so that a
        segment names only what differs and its errors point at its own keys."""
        if not isinstance(data, dict) or not isinstance(data.get("segments"), dict):
            return data
        from simulator.scenario.merge import deep_merge

        segments = {}
        for name, segment in data["segments"].items():
            if isinstance(segment, dict):
                segment = dict(segment)
                for section in SEGMENT_OVERRIDABLE:
                    base = data.get(section, {})
                    if section in segment and isinstance(segment[section], dict) and isinstance(base, dict):
                        segment[section] = deep_merge(base, segment[section])
            segments[name] = segment
        return {**data, "segments": segments}

    @model_validator(mode="after")
    def _check_references(self) -> Scenario:
        total = sum(s.share for s in self.segments.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"segments: shares must sum to 1, they sum to {total:g}")
        for name, segment in self.segments.items():
            if segment.flow not in self.onboarding:
                raise ValueError(
                    f"segments.{name}.flow: unknown onboarding flow {segment.flow!r}; "
                    f"defined flows: {', '.join(self.onboarding)}"
                )
        trial_plan = self.monetization.trial.plan
        if trial_plan is not None and trial_plan not in self.pricing.plans:
            raise ValueError(
                f"monetization.trial.plan: unknown plan {trial_plan!r}; plans: {', '.join(self.pricing.plans)}"
            )
        for plan_name, plan in self.pricing.plans.items():
            if plan.max_seats is not None and plan.max_seats < plan.min_seats:
                raise ValueError(f"pricing.plans.{plan_name}.max_seats: must be ≥ min_seats ({plan.min_seats})")
        for i, event in enumerate(self.timeline):
            where = f"timeline.{i}"
            if isinstance(event, PriceChange) and event.plan not in self.pricing.plans:
                raise ValueError(f"{where}.plan: unknown plan {event.plan!r}; plans: {', '.join(self.pricing.plans)}")
            if isinstance(event, OnboardingSwitch):
                if event.flow not in self.onboarding:
                    raise ValueError(f"{where}.flow: unknown onboarding flow {event.flow!r}")
                for seg in event.segments or []:
                    if seg not in self.segments:
                        raise ValueError(f"{where}.segments: unknown segment {seg!r}")
        return self

    def segment_virality(self, segment: str) -> Virality:
        """[virality] as it applies to `segment`."""
        return self.segments[segment].virality or self.virality

    def segment_monetization(self, segment: str) -> Monetization:
        """[monetization] as it applies to `segment`."""
        return self.segments[segment].monetization or self.monetization

    def segment_expansion(self, segment: str) -> Expansion:
        """[expansion] as it applies to `segment`."""
        return self.segments[segment].expansion or self.expansion

    def segment_churn(self, segment: str) -> Churn:
        """[churn] as it applies to `segment`."""
        return self.segments[segment].churn or self.churn

    def segment_shares(self) -> list[float]:
        """Each segment's share of non-viral signups, scaled to sum to 1 exactly (the schema
        accepts shares that sum to within 1e-6 of 1; a sampler needs the exact sum)."""
        total = sum(s.share for s in self.segments.values())
        return [s.share / total for s in self.segments.values()]


SEGMENT_OVERRIDABLE = ("virality", "monetization", "expansion", "churn")
"""Scenario sections a segment may override."""
