"""Live updates over WebSockets (`GET /api/live`): events published once their write commits, fanned
out to every replica, delivered to the clients subscribed to them. See docs/live.md."""
