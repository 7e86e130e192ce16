"""Price alerts on the real-time feed (book, engine, repository) and the push outbox with its typed notices."""
