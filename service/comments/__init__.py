"""Comments on articles (`/api/articles/{slug}/comments`)."""
