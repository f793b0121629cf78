"""The channels wired in: Slack's endpoint and Socket Mode, the mail inbox, webhooks."""
