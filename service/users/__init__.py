"""Registration, login and the current user (`/api/users`, `/api/user`, `/api/token`)."""
