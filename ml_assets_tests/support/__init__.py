"""Harnesses shared by the tests and the benches: real servers, a serving world, a platform
on a temporary data dir, synthetic rows and small models. Import from here, never from a
`conftest.py`; the conftests only wrap these as pytest fixtures."""
