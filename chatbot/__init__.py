"""kis-chatops: a Telegram bot for Korea Investment & Securities (KIS Developers Open API)."""

__version__ = "0.1.0"
