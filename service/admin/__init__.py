"""User administration for admins (`/api/admin/users`): list, change role, deactivate."""
