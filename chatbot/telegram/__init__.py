"""The python-telegram-bot front end: one module per feature, all rules in ``chatbot.service``."""
