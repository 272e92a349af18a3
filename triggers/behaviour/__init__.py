"""Behaviour: what people browse, click and buy, and what the product learns from it.

Pure code (no IO, no clock): the event model here; profile features, the tenant's tag
rules and behaviour triggers beside it.
"""
