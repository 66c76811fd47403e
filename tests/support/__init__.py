"""Helpers shared by test packages that are not tied to one store or face (``polling``)."""
