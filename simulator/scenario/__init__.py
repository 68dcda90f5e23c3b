"""Scenario schema, loading with `extends`, and validation."""

from simulator.scenario.loading import ScenarioError, load_scenario, parent_of, validate_scenario
from simulator.scenario.models import DAYS_PER_MONTH, Scenario

__all__ = ["DAYS_PER_MONTH", "Scenario", "ScenarioError", "load_scenario", "parent_of", "validate_scenario"]
