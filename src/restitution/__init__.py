"""Restitution: a self-hosted buyer-protection engine for online marketplaces."""

__version__ = "0.1.0"
