"""Showing people what they must see: the outbox and each channel's outbound side."""
