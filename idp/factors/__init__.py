"""Authentication factors: e-mail codes, TOTP, known browsers, and the assurance
levels (acr) they reach."""
