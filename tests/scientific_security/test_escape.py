"""tests/security/test_escape.py, run against agents of the scientific runtime."""

from security.test_escape import *  # noqa: F403 - every probe of the hostile suite
