"""Tro ly Chu ky so (the digital-signature assistant): the core.

A pure conversation engine, config and content loading, FAQ matching, the command line.
"""
