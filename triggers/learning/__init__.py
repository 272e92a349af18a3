"""Learning from feedback and behaviour: pure estimators over counts and arrays, no IO
and no clock.

From feedback (read by decisions through :mod:`.signals`): :mod:`.thompson` (variants),
:mod:`.channels` (channel by habit), :mod:`.tolerance` (learned daily caps).

From behaviour events:
- :mod:`.interests`: the probability that a user engages with a category in the next
  period (a gradient-boosted ranker over candidate (user, category) pairs).
- :mod:`.sendtime`: each user's hour-of-day and weekday engagement profile, shrunk toward
  the profile of the user's segment when data are thin.
- :mod:`.baselines`: what those models must beat (category popularity, the user's own
  decayed counts, the global peak hours).
- :mod:`.metrics`: recall@K of next-period categories, hit@K of next-period active hours.
- :mod:`.scoring`: compact per-tenant scorers for the decision path.

Events reach the behaviour models as integer-coded arrays (:mod:`.coding`); reading files
and writing model files is the command line's job (``server/cli``).
"""
