"""Inspections, problems and rectification, and the case-handling area register."""
