"""Authentication and authorisation: passwords, API tokens, roles and operation access."""
