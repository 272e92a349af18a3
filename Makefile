# Convenience wrappers; dev.py is the source of truth and needs only Python.
.PHONY: demo test bench
demo:
	python3 dev.py demo
test:
	python3 dev.py test
bench:
	python3 dev.py bench
