"""The traffic mix in one place: who visits (user classes), what each does how often (tasks), and
how long each thinks between requests. Every weight is relative within its own table."""

from __future__ import annotations

from typing import Final

# Share of simulated users of each kind: most visitors only read, a few sign in, fewer still write.
# Listeners: an article page open with live updates (a WebSocket to /api/live).
USER_WEIGHTS: Final = {"anonymous": 60, "signed_in": 30, "writer": 10, "listener": 10}

# Anonymous readers: the home page list, a tag's list, an article and its comments.
ANONYMOUS: Final = {"home": 8, "tag": 3, "article": 6, "comments": 4}

# Signed-in readers: their feed, the home list as themselves, articles, (un)favourites, (un)follows.
SIGNED_IN: Final = {"feed": 6, "home": 3, "article": 4, "favourite": 2, "follow": 1}

# Writers: publish, comment, edit and delete their own; log in again now and then.
WRITER: Final = {"publish": 3, "comment": 4, "edit": 2, "delete": 2, "uncomment": 1, "login": 1}

# Seconds a user waits between two tasks (uniform): one request every ~2 s per user.
THINK_SECONDS: Final = (1.0, 3.0)

# What the list pages ask for: the Conduit front end's page size.
PAGE_SIZE: Final = 10

# A writer keeps at most this many of its own articles alive (publishing past it deletes the oldest).
MAX_OWN_ARTICLES: Final = 5

# Live listeners subscribe to this many of the articles (the first of the process's world), and this
# share of the writers' comments go to one of them (the rest anywhere): a few popular articles.
POPULAR_ARTICLES: Final = 3
POPULAR_COMMENT_SHARE: Final = 0.5

# A listener reads its socket this long per task, then re-fetches what a resync asked for.
LISTEN_SECONDS: Final = 5.0

# When the run stops, listeners keep reading until no comment has been posted for this long (at most
# the limit): a comment posted in the last moment still has its time to arrive before it is counted.
# Keep --stop-timeout above the limit, or locust kills them first (and their count is then partial).
LISTEN_SETTLE_SECONDS: Final = 3.0
LISTEN_SETTLE_LIMIT_SECONDS: Final = 8.0
