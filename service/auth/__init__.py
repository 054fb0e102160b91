"""Who is calling and what they may do: Argon2id passwords and JWTs (`security`), roles (`roles`); the
FastAPI dependencies that check them live with the other transport code (`service.dependencies`)."""
