"""Location payloads in: our JSON pings, OwnTracks (HTTP mode), OsmAnd / Traccar Client.

Each format is parsed into :class:`server.api.schemas.PingIn` items — validation errors
name the field *in the client's format* (``tst``, ``lon``, ``location.coords.latitude``)
— and then goes through :func:`server.ingest.pings.screen` and the one ingest pipeline.
Parsing is pure: no store, no clock (``now`` is a parameter).
"""
