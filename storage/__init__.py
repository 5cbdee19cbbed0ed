"""Durable storage: SQLAlchemy 2 async models, migrations and the one repository."""
