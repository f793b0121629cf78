"""How tracing set-up fails, apart from the package so ``setup`` can raise it without importing its parent."""


class TracingConfigError(ValueError):
    """The ``OTEL_*`` variables ask for something this process cannot export to; says what to set."""
