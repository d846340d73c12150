"""One module per Poe protocol, each implementing client.Backend."""
