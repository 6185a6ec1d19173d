"""Configuration: one YAML file validated by pydantic, secrets from the environment."""

from pbx_service.config.load import ConfigError, load_config, parse_config
from pbx_service.config.model import Config, Line
from pbx_service.config.teams import Agent, Team

__all__ = ["Agent", "Config", "ConfigError", "Line", "Team", "load_config", "parse_config"]
