"""server: the IO edge — CLI, HTTP service, storage, delivery."""
