"""Tro ly Chu ky so (digital-signature assistant): the core -- a pure conversation engine, config, content, FAQ matching."""
