"""A sign-in in progress (the interaction object between protocols and login
methods), browser sessions, and who is signed in."""
