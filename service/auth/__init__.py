"""Authentication and authorisation: Argon2id passwords, JWTs, and the dependencies that check them."""
