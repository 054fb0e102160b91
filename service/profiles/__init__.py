"""Profiles and follows (`/api/profiles/{username}`)."""
