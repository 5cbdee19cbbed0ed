"""Trợ lý Chữ ký số: the core -- a pure conversation engine, config, content, FAQ matching."""
