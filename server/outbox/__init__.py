"""The outbox dispatcher: claims due deliveries, sends them through the channels, and
records what happened (see :mod:`server.outbox.dispatcher`)."""
