"""The Slack channel, tested against the real web app and a local fake of the Slack Web API."""
