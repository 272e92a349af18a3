"""triggers: the pure decision core — presence (enter/dwell/exit), campaigns, decisions.

Pure: time and configuration are parameters; no IO, no clock, no environment.
"""
