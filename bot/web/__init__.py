"""The web app: the threads API, health, errors and limits, who is calling."""
