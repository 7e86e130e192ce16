"""Price alerts on the real-time feed, fill notifications, and the push outbox."""
