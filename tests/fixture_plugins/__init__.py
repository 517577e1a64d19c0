"""Plugins the tests install through a real entry point: one good, several broken."""
