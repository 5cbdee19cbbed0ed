"""Channel adapters (Telegram, terminal; Zalo later) around the channel-neutral engine.

An adapter translates a channel's updates into engine inputs and the engine's messages into
the channel's calls. It does not decide anything about the conversation.
"""
