"""Policy documents (TOML) and their loader: `default.toml` holds the seed's rules."""

from restitution.policies.loader import (
    PolicyError,
    PolicyProblem,
    check_policy_text,
    default_policy,
    load_policy,
    parse_policy,
)

__all__ = [
    "PolicyError",
    "PolicyProblem",
    "check_policy_text",
    "default_policy",
    "load_policy",
    "parse_policy",
]
