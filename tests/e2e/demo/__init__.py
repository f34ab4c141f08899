"""``make demo`` run end to end."""
