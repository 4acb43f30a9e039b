"""Webhooks: delivery from the durable outbox, signing, the receiver policy and transport."""
