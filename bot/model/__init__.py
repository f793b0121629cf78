"""Asking the model: which model answers an agent, the queue of model requests, the async caller."""
