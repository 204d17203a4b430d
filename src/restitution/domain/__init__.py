"""The pure core: money, orders, the policy and its verdicts, the case machine.

Nothing here does I/O or reads a clock; `now` and the policy are always arguments.
"""
