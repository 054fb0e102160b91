"""Articles, the feed and favourites (`/api/articles`)."""
