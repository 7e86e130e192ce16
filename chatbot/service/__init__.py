"""The transport-neutral trading service: what a user can do, on that user's account.

Front ends (Telegram, console) parse input and render results; every rule lives here.
"""
