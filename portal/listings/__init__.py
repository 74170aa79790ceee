"""The read side: what the list pages, their CSV exports and the API read (filters in, rows out).
Nothing here writes."""
