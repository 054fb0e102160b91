"""The protocol of `GET /api/live` as a page the app serves at /docs/live, since OpenAPI does not
describe WebSockets (the API's description links it). Plain HTML with no script and no style, so the
API's own Content-Security-Policy (`default-src 'none'`) serves it as it is; the close codes come from
the hub's, so the page cannot drift from what the server sends. docs/live.md says why it is so."""

from __future__ import annotations

from html import escape

from service.live import hub
from service.live.endpoint import PATH, SUBPROTOCOL

PAGE = "/docs/live"

_CLOSES = (
    (hub.DRAIN, "the process is shutting down: reconnect (another replica answers)"),
    (hub.BUS_LOST, "the bus (Redis) is lost: reconnect with backoff; live updates resume once it is back"),
    (hub.PROTOCOL, "a message the server cannot take (not JSON, unknown type, too long, too many)"),
    (hub.UNAUTHENTICATED, "the token is invalid, expired, or names a deactivated user, at sign-in"),
    (hub.EXPIRED, "the token expired while the socket was open: sign in again, then reconnect"),
    (hub.DEACTIVATED, "the signed-in user was deactivated"),
    (hub.IDLE, "no subscription for INKWELL_LIVE_IDLE_SECONDS"),
    (hub.SLOW_CONSUMER, "the socket did not read its events fast enough: reconnect with `since`"),
    (hub.TOO_MANY, "the user or the client IP holds as many sockets as it may"),
    (hub.INTERNAL, "the server failed on a message (a bug, logged): reconnect with `since`"),
)

_BODY = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Inkwell live updates</title></head><body>
<h1>Live updates: <code>GET {PATH}</code> (WebSocket)</h1>
<p>Subscribe to topics and receive one JSON text frame per event, published once its write has
committed, from whichever replica served it.</p>
<h2>Connecting and signing in</h2>
<p>Offer the subprotocol <code>{SUBPROTOCOL}</code> (the server selects it). To sign in, also offer
<code>token.&lt;jwt&gt;</code>: <code>new WebSocket(url, ["{SUBPROTOCOL}", "token." + jwt])</code>; or
send <code>{{"type": "auth", "token": "&lt;jwt&gt;"}}</code> as a message (answered
<code>{{"type": "authenticated", "user": &lt;id&gt;}}</code>). Never put the token in the query string.
Anonymous sockets may subscribe to article topics only.</p>
<h2>Messages you send</h2>
<ul>
<li><code>{{"type": "subscribe", "topics": ["article:&lt;slug&gt;", "me"], "since": "&lt;event id&gt;"}}</code>
(<code>since</code> optional) &rarr; <code>{{"type": "subscribed", "topics": [...]}}</code></li>
<li><code>{{"type": "unsubscribe", "topics": [...]}}</code> &rarr; <code>{{"type": "unsubscribed", "topics": [...]}}</code></li>
<li><code>{{"type": "ping"}}</code> &rarr; <code>{{"type": "pong"}}</code> (the server also pings at the WebSocket level)</li>
</ul>
<p>Refusals are <code>{{"type": "error", "errors": {{"&lt;key&gt;": ["&lt;message&gt;"]}}}}</code>, as REST's: an article
that does not exist is <code>{{"article": ["not found"]}}</code>; <code>me</code> without a token is
<code>{{"token": [...]}}</code>; more than INKWELL_LIVE_MAX_TOPICS topics is <code>{{"topics": [...]}}</code>.</p>
<h2>Events you receive</h2>
<p><code>{{"id": "&lt;event id&gt;", "topic": "article:&lt;slug&gt;" | "me", "type": "comment.created", "comment": {{...}}}}</code>:
the object in the Conduit wire format under its name, as an anonymous reader sees it.
On <code>article:&lt;slug&gt;</code>: <code>comment.created</code>, <code>comment.deleted</code>,
<code>article.updated</code>, <code>article.deleted</code>, <code>article.favorites</code> (at most one per
second per article, with the latest count). On <code>me</code>: <code>article.published</code> (an author
you follow), <code>article.favorited</code>, <code>article.commented</code>, <code>profile.followed</code>.</p>
<h2>Reconnecting</h2>
<p>Keep the <code>id</code> of the last event you received and subscribe again with it as
<code>since</code>: what you missed is sent first, in order, once each. If the server no longer holds
everything after it, you get <code>{{"type": "resync", "topics": [...]}}</code>: re-fetch those over REST.</p>
<h2>Close codes</h2>
<table><tr><th>code</th><th>reason</th><th>meaning</th></tr>
{"".join(f"<tr><td>{c.code}</td><td>{escape(c.reason)}</td><td>{escape(m)}</td></tr>" for c, m in _CLOSES)}
</table>
</body></html>
"""


def body() -> str:
    return _BODY
