"""Offline model building: everything the server serves and tests on, made without a hub."""
