"""The pure processing core: extract, analyse, compile the watchlist, match and explain. No Redis, HTTP or clock."""
