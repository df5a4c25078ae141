"""The pure processing core: extract, analyse, compile the watchlist, match, explain. No Redis or HTTP."""
