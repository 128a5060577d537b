"""Searches: a bilevel loop composed with a relaxation, a discretization policy and
creation policies."""

from .base import CreationPolicy, DiscretizationPolicy, SearchState

__all__ = ["SearchState", "DiscretizationPolicy", "CreationPolicy"]
