"""Problem families, one folder each (see docs/architecture.md); core/family.py maps names here."""
