"""What agents use and cost: tokens per thread, the price table, ``outerloop stats``."""
