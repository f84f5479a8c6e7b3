"""Notifiers behind ``base.Notifier``: Slack, in-memory and null. They deliver; they never decide."""
