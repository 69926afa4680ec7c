"""HTTP plumbing every layer may use: cookies, redirects, the client's network, bounded
JSON and form bodies."""
