"""Security tests: hostile agents against the real sandbox (a package so its conftest does not shadow tests/conftest.py)."""
