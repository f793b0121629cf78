"""The Outerloop application: settings, Redis store, queue and workers, web app, CLI, bundled agents."""
