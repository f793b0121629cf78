"""The CLI's commands beyond one-line thread actions: ``dev``, listings, timelines, agents."""
