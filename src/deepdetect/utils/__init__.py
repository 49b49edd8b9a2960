"""Small shared helpers (logging, seeding, development data lookup)."""
