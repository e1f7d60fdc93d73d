"""Listening to the mail system: bounce and complaint reports from mail and from relay webhooks.

mail (DSN, ARF, other bounces), relays (SES, Mailgun, Postmark) ─► report ─► policy ─► store
"""
