"""The fault suite: real processes, real faults, promises counted from outside (issue 9)."""
