"""Channel adapters: Slack, email, cron and webhooks in; replies and human requests out."""
