"""The outbox: claims due deliveries, sends them through the channels, records the outcome."""
from server.outbox.roles import DispatchStore as DispatchStore
