"""Learning from feedback and behaviour: pure estimators over counts and arrays."""
