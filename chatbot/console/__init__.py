"""The terminal front end: the same Application and handlers, with a local stand-in for the Bot API."""
