"""venues: the venue model, validation, file import and catalogue snapshots."""
