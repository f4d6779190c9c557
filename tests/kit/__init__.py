"""Helpers and fixtures the tests share: each module one subject. Test modules import from here,
never from each other."""
