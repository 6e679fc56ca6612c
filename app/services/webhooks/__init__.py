"""Outbound webhooks: the delivery outbox, payloads and signatures (deliveries), and the guard
for every URL opsgraph calls (outbound)."""
