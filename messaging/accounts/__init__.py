"""Web users' accounts: logins, sessions, passwords."""
