"""The partitioned mode: gateways publish ping groups to NATS JetStream, partitioned by
user; workers own partitions (leases in NATS KV), keep presence in memory, checkpoint
it with the stream sequence reached, and settle effects in PostgreSQL. See
``docs/scale-out.md``."""
