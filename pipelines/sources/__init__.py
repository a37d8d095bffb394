"""Event sources for the local default: a seeded generator of realistic JSON-lines events per contract source."""
