"""Rosters: read CSV and XLSX lists of people, validate each row, import them all or none.

``service.import_roster`` is the entry point for the CLI, the API and the tests; ``reader``
turns a file into physical lines of cells, ``columns`` maps headers to fields, ``rows`` turns
cells into validated person data, ``report`` holds the outcome and ``rejects`` writes the bad
rows back out for the operator to fix.
"""
