"""What a user can do, transport-neutral: market data, orders (cards, confirm, submit,
reconciliation), the account, alerts, registration. Inputs are parsed here (``inputs``), results are
typed views (``views``); front ends get all of it as one :class:`~chatbot.service.services.Services`.
"""
